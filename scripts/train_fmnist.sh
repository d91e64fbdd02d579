#!/usr/bin/env bash
# Train the Fashion-MNIST rate levels of every learned codec with the same CPU budget per codec
# family (BUDGET minutes of training at one thread; continued runs count in it), holding out the
# last-drawn VAL training images (never trained on) on which the levels and the default are chosen:
#   hecsb, svb:              one level trained in stages 1 + 2 (BUDGET * 2/5), then the other levels
#                            continued from it in stage 2 at their own betas (the rest, shared equally);
#   crbq, factorized,        four levels, each trained from scratch (BUDGET / 4 each).
#   hyperprior:
# Usage:
#   BUDGET=12 [DEVICE=cuda] scripts/train_fmnist.sh [FAMILY ...]     (default: all, then ship)
# Checkpoints and manifests go to OUT/<family>/ (default runs/fmnist). 'ship' runs
# python -m hecsb_ros.cli.select_levels on the held-out images (report:
# benchmarks/hecsb/selection.md) and puts the kept levels into hecsb_ros/checkpoints in place of the
# shipped Fashion-MNIST levels of those codecs.
# Families are independent processes: run two at once on two cores, then 'ship'.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PY:-$here/.venv/bin/python}"
out="${OUT:-$here/runs/fmnist}"
budget="${BUDGET:-12}"
val="${VAL:-5000}"
common=(--val-images "$val" --threads 1 --no-progress)
[ -z "${DEVICE:-}" ] || common+=(--device "$DEVICE")
share() { "$py" -c "print(round($budget * $1, 3))"; }

two_stage() {  # family, base beta, base level, "beta:level ..." continued from the base
  local kind=$1 beta=$2 level=$3; shift 3
  local cmd=(-m hecsb_ros.cli.train_hecsb) rest
  [ "$kind" = svb ] && cmd=(-m hecsb_ros.cli.train_baselines svb)
  rest=$("$py" -c "print(round($budget * 0.6 / $#, 3))")
  "$py" "${cmd[@]}" --beta "$beta" --levels "$level" --stage1-epochs 1 --stage2-epochs 3 --batch-size 128 \
    --lr1 4e-3 --lr2 2e-3 --stage2-rate-weight 100 --budget-min "$(share 0.4)" --out "$out/$kind/base" "${common[@]}"
  local base="$out/$kind/base/${kind}_fmnist_r$level.safetensors"
  mkdir -p "$out/$kind"
  cp "$base" "${base%.safetensors}.json" "$out/$kind/"
  for pair in "$@"; do
    "$py" "${cmd[@]}" --beta "${pair%%:*}" --levels "${pair##*:}" --init "$base" --stage1-epochs 0 --stage2-epochs 3 \
      --batch-size 128 --lr2 1e-3 --stage2-rate-weight 100 --budget-min "$rest" --out "$out/$kind" "${common[@]}"
  done
}

families=("$@")
[ ${#families[@]} -gt 0 ] || families=(hecsb svb crbq factorized hyperprior ship)
for family in "${families[@]}"; do
  case "$family" in
    hecsb) two_stage hecsb 1e-5 3 1e-4:0 4e-5:1 2e-5:2 5e-6:4 3e-6:5 1e-6:6 ;;
    svb) two_stage svb 1e-5 2 1e-4:0 3e-5:1 4e-6:3 1.5e-6:4 6e-7:5 ;;
    crbq) "$py" -m hecsb_ros.cli.train_baselines crbq --channels 1 2 4 8 --epochs 20 --batch-size 128 \
            --budget-min "$(share 0.25)" --out "$out/crbq" "${common[@]}" ;;
    factorized|hyperprior)
          "$py" -m hecsb_ros.cli.train_baselines "$family" --lmbda 0.002 0.008 0.032 0.128 --epochs 20 --batch-size 64 \
            --budget-min "$(share 0.25)" --out "$out/$family" "${common[@]}" ;;
    ship) "$py" -m hecsb_ros.cli.select_levels "$out"/{hecsb,svb,crbq,factorized,hyperprior} --data fashion-mnist \
            --val-images "$val" --no-progress --ship "$here/hecsb_ros/checkpoints" \
            --report "$here/benchmarks/hecsb/selection.md" ;;
    *) echo "unknown family $family (hecsb, svb, crbq, factorized, hyperprior, ship)" >&2; exit 2 ;;
  esac
done
