# Benchmarks of the seed paper's section 4.2 (Fig. 8 rate-accuracy, Table 2 latency).
# PY defaults to the project's virtual environment (scripts/setup.sh creates it).
PY ?= .venv/bin/python

.PHONY: bench bench-quick bench-ros train-baselines

# Every codec at every rate point on the 10,000 test images, then the ROS-measured latency table;
# writes benchmarks/ (about 30-60 min on 2 shared cores, of which the ROS runs take about 15).
bench:
	$(PY) -m hecsb_ros.cli.bench

# 500 test images, fewer image-codec settings, no ROS runs; writes runs/bench_quick/ (CI runs it).
bench-quick:
	$(PY) -m hecsb_ros.cli.bench --quick

# Only the ROS-measured latency table, from benchmarks/results.json.
bench-ros:
	$(PY) -m hecsb_ros.cli.bench --ros-only

# Retrain the learned baselines' shipped rate levels (hecsb_ros/checkpoints/*_fmnist_r*.safetensors).
train-baselines:
	$(PY) -m hecsb_ros.cli.train_baselines svb --beta 0.01 0.002 0.0005 0.0001 --stage1-epochs 2 --stage2-epochs 1
	$(PY) -m hecsb_ros.cli.train_baselines crbq --channels 1 2 4 8 --epochs 4
	$(PY) -m hecsb_ros.cli.train_baselines factorized --lmbda 0.002 0.008 0.032 0.128 --epochs 3
	$(PY) -m hecsb_ros.cli.train_baselines hyperprior --lmbda 0.002 0.008 0.032 0.128 --epochs 3
