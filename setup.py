"""pip install of the ROS-free library and its command-line tools.

ROS 2 users build the package (messages, nodes, launch files) with colcon through CMakeLists.txt;
this file serves training and evaluation on machines without ROS (``pip install .``).
"""
from setuptools import find_packages, setup

setup(
    name="hecsb_ros",
    version="0.1.0",
    description="HECS-B split computing: compressed-sensing bottleneck, codecs, training, evaluation",
    license="Apache-2.0",
    packages=find_packages(include=["hecsb_ros", "hecsb_ros.*"]),
    package_data={"hecsb_ros": ["checkpoints/*.safetensors", "checkpoints/*.json", "checkpoints/SHA256SUMS",
                               "core/teachers/imagenet_synsets.txt"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1", "torchvision>=0.16", "compressai>=1.2.8", "numpy<2",
        "opencv-python-headless>=4.8,<5", "safetensors", "tqdm", "pyyaml", "matplotlib",
        "scikit-learn",
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/hecsb_ros"]),
        ("share/hecsb_ros", ["package.xml"]),
    ],
    entry_points={
        "console_scripts": [
            "hecsb-demo = hecsb_ros.cli.run_demo:main",
            "hecsb-train-teacher = hecsb_ros.cli.train_teacher:main",
            "hecsb-train = hecsb_ros.cli.train_hecsb:main",
            "hecsb-evaluate = hecsb_ros.cli.evaluate_hecsb:main",
            "hecsb-cs-experiment = hecsb_ros.cli.cs_experiment:main",
            "hecsb-camera-source = hecsb_ros.nodes.camera_source:main",
            "hecsb-edge = hecsb_ros.nodes.edge:main",
            "hecsb-server = hecsb_ros.nodes.server:main",
            "hecsb-link-emulator = hecsb_ros.nodes.link_emulator:main",
        ],
    },
)
