"""pip install of the ROS-free library and its command-line tools.

ROS 2 users build the package (messages, nodes, launch files) with colcon through CMakeLists.txt;
this file serves training and evaluation on machines without ROS (``pip install .``).
"""

from setuptools import find_packages, setup

setup(
    name="hecsb_ros",
    version="0.1.0",
    description="HECS-B split computing: compressed-sensing bottleneck, codecs, training, "
    "evaluation",
    license="Apache-2.0",
    packages=find_packages(include=["hecsb_ros", "hecsb_ros.*"]),
    package_data={
        "hecsb_ros": [
            "checkpoints/*.safetensors",
            "checkpoints/*.json",
            "checkpoints/SHA256SUMS",
            "core/teachers/imagenet_synsets.txt",
        ]
    },
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "compressai>=1.2.8",
        "numpy<2",
        "opencv-python-headless>=4.8,<5",
        "safetensors",
        "tqdm",
        "pyyaml",
        "matplotlib",
        "scikit-learn",
        "scipy",
        "pillow",
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/hecsb_ros"]),
        ("share/hecsb_ros", ["package.xml"]),
    ],
    # The node executables are the ones 'ros2 run hecsb_ros <name>' starts (CMakeLists.txt installs
    # scripts/nodes/<name>). Every tool is a subcommand of 'hecsb' (hecsb_ros/cli/hecsb.py); the
    # older hecsb_<tool> commands stay as aliases of their subcommands (docs/commands.md).
    entry_points={
        "console_scripts": [
            "hecsb = hecsb_ros.cli.hecsb:main",
            "hecsb_demo = hecsb_ros.cli.run_demo:main",
            "hecsb_train_teacher = hecsb_ros.cli.train_teacher:main",
            "hecsb_train = hecsb_ros.cli.train_hecsb:main",
            "hecsb_evaluate = hecsb_ros.cli.evaluate_hecsb:main",
            "hecsb_cs_experiment = hecsb_ros.cli.cs_experiment:main",
            "hecsb_export_onnx = hecsb_ros.cli.export_onnx:main",
            "hecsb_camera_source = hecsb_ros.nodes.camera_source:main",
            "hecsb_edge = hecsb_ros.nodes.edge:main",
            "hecsb_server = hecsb_ros.nodes.server:main",
            "hecsb_link_emulator = hecsb_ros.nodes.link_emulator:main",
        ],
    },
)
