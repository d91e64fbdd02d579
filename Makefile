# Benchmarks of the seed paper's section 4.2 (Fig. 8 rate-accuracy, Table 2 latency).
# PY defaults to the project's virtual environment (scripts/setup.sh creates it).
PY ?= .venv/bin/python

.PHONY: bench bench-quick bench-ros train-levels

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

# Retrain every learned codec's Fashion-MNIST rate levels with one CPU budget per codec family
# (BUDGET minutes at one thread), then choose the levels and defaults on held-out training images and
# ship them into hecsb_ros/checkpoints (scripts/train_fmnist.sh; about 5 x BUDGET minutes of CPU).
BUDGET ?= 12
train-levels:
	BUDGET=$(BUDGET) PY=$(PY) scripts/train_fmnist.sh
