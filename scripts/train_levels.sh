#!/usr/bin/env bash
# Train every learned codec's Fashion-MNIST rate levels at once, each job in its own process and
# each fitted into a time budget (HECS-B, SVB, CR+BQ, factorized prior, mean-scale hyperprior).
# Meant for a GPU machine (one GPU, >= 16 cores); works on the CPU too, only slower.
#
#   scripts/train_levels.sh OUT_DIR            # then copy OUT_DIR/*.safetensors|json to hecsb_ros/checkpoints
#
# Environment: PY (python, default python3), DEVICE (auto), BUDGET_MIN (6: minutes per HECS-B/SVB
# level; CR+BQ and the input codecs share the same wall time, see below), DEADLINE_S (stop every
# job still running after this many seconds and keep what exists; 0 = none), EXTRA (extra options
# for every job, e.g. "--limit-train 2048 --limit-test 500" for a smoke test).
# HECS-B and SVB use the same schedule: stage 1 : stage 2 epochs = 1 : 3, batch 128, learning
# rates 4e-3 / 2e-3, stage-2 rate weight 100.
set -uo pipefail
OUT=${1:?usage: scripts/train_levels.sh OUT_DIR}
PY=${PY:-python3}
DEVICE=${DEVICE:-auto}
BUDGET_MIN=${BUDGET_MIN:-6}
DEADLINE_S=${DEADLINE_S:-0}
EXTRA=${EXTRA:-}
mkdir -p "$OUT/logs"
start=$(date +%s)
pids=()

job() {  # job NAME ARGS...: run one training process in the background, log to OUT/logs/NAME.log
    local name=$1; shift
    PYTHONUNBUFFERED=1 "$PY" "$@" --device "$DEVICE" --threads 1 --out "$OUT" --no-progress $EXTRA \
        >"$OUT/logs/$name.log" 2>&1 &
    pids+=($!)
    echo "started $name (pid $!)"
}

share() { "$PY" -c "print(round($BUDGET_MIN * $1, 3))"; }  # a fraction of the budget, in minutes

common=(--stage1-epochs 1 --stage2-epochs 3 --batch-size 128 --lr1 4e-3 --lr2 2e-3 --stage2-rate-weight 100
        --budget-min "$BUDGET_MIN")
# (the shipped HECS-B levels 4 and 5 were continued on the CPU afterwards; their manifests list the
# commands)
level=0
for beta in 1e-4 4e-5 2e-5 1e-5 5e-6 2.5e-6; do
    job "hecsb_r$level" -m hecsb_ros.cli.train_hecsb --beta "$beta" --levels "$level" "${common[@]}"
    level=$((level + 1))
done
level=0
for beta in 1e-4 3e-5 1e-5 4e-6 1.5e-6; do
    job "svb_r$level" -m hecsb_ros.cli.train_baselines svb --beta "$beta" --levels "$level" "${common[@]}"
    level=$((level + 1))
done
# CR+BQ: four levels one after the other in one process; each gets a fifth of the budget (the
# rest covers their evaluations).
job crbq -m hecsb_ros.cli.train_baselines crbq --channels 1 2 4 8 --batch-size 128 --budget-min "$(share 0.2)"
# Input codecs: two processes per kind, two levels each, 0.4 of the budget per level.
job factorized_a -m hecsb_ros.cli.train_baselines factorized --lmbda 0.002 0.008 --levels 0 1 \
    --batch-size 64 --budget-min "$(share 0.4)"
job factorized_b -m hecsb_ros.cli.train_baselines factorized --lmbda 0.032 0.128 --levels 2 3 \
    --batch-size 64 --budget-min "$(share 0.4)"
job hyperprior_a -m hecsb_ros.cli.train_baselines hyperprior --lmbda 0.002 0.008 --levels 0 1 \
    --batch-size 64 --budget-min "$(share 0.4)"
job hyperprior_b -m hecsb_ros.cli.train_baselines hyperprior --lmbda 0.032 0.128 --levels 2 3 \
    --batch-size 64 --budget-min "$(share 0.4)"

status=0
while :; do
    running=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=$((running + 1)); done
    [ "$running" -eq 0 ] && break
    elapsed=$(( $(date +%s) - start ))
    if [ "$DEADLINE_S" -gt 0 ] && [ "$elapsed" -ge "$DEADLINE_S" ]; then
        echo "deadline of $DEADLINE_S s reached: stopping $running job(s)"
        kill "${pids[@]}" 2>/dev/null
        status=1
        break
    fi
    sleep 5
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "all jobs ended after $(( $(date +%s) - start )) s (status $status)"
for f in "$OUT"/logs/*.log; do echo "== $(basename "$f")"; grep -E "budget|level [0-9]|Error|error" "$f" | tail -8; done
exit $status
