#!/usr/bin/env bash
# Train the camera-scale rate levels of every learned codec against EfficientNet-Lite0, without
# labels, from the photo and video pool of docs/camera_data.md, with the same CPU budget per codec
# family (BUDGET minutes at one thread; continued runs count in it):
#   hecsb, svb:            one level trained in stages 1 + 2 (BUDGET / 3), then five levels, each
#                          continued in stage 2 from the one before it at a lower beta (BUDGET * 2/15
#                          each: a level trained alone at a high beta in a few minutes collapses to
#                          no information; beta:level@from), and a sixth, level 0, continued from
#                          level 2 at a higher beta in search of a level under 1 KB (BUDGET * 2/15
#                          more: these two families get BUDGET * 17/15 in all)
#   crbq:                  four levels (2, 4, 8, 16 channels), each trained from the start (BUDGET / 4 each)
#   factorized:            three levels (lambda 0.004, 0.016, 0.064), each from the start (BUDGET / 3 each)
#   hyperprior:            three levels (lambda 0.004, 0.008, 0.016), each from the start (BUDGET / 3 each;
#                          at 0.016 it already spends more bytes than the factorized prior at 0.016)
# Every edge encoder that reads the teacher's split starts with the teacher's own layers to it, from
# its weights (HECS-B's f_psi, SVB's and CR+BQ's encoders: --stem). SVB and CR+BQ keep them frozen
# (--freeze-stem): training reads the cached split features instead of running those layers, so the
# budget buys 3-5x more steps. HECS-B trains them end to end, as its acquisition network f_psi is
# meant to learn: with them frozen its edge encoder is only the linear W, and at this budget that
# collapsed (beta 3e-4: 12.4% top-1 at 373 B, 26% held-out agreement, December 2026); W starts from
# the principal directions of the split features.
# The input codecs cannot start from the teacher; they train on 64 x 64 patches of the crops in batches
# of 16 (--patch 64), as CompressAI's models are trained on small crops: about 8 times the steps of
# 128 x 128 patches in batches of 32, the recipe that reached only 15-16 dB PSNR in its minutes.
# Levels are checked on 300 held-out training photos (agreement with the teacher) and evaluated on
# the labelled ImageNet photos of TEST_LIST. Usage:
#   DATA=/work/data BUDGET=40 [DEVICE=cuda] scripts/train_camera.sh [FAMILY ...]   (default: all)
# Checkpoints and manifests go to OUT/<family>/ (default runs/camera). The family 'cache' only
# builds the cache of crops and teacher outputs (with all threads; do it first when families train
# in parallel processes, which then share it); 'ship' chooses the levels on the held-out photos
# (python -m hecsb_ros.cli.select_levels) and copies them into hecsb_ros/checkpoints, and writes the
# held-out photos to OUT/held_out.csv for the benchmark's operating points (bench --pick-list).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PY:-$here/.venv/bin/python}"
data="${DATA:-/work/data}"
out="${OUT:-$here/runs/camera}"
budget="${BUDGET:-40}"
cache="${CACHE:-$here/runs/cache}"
test_list="${TEST_LIST:-$data/imagen/labels.csv}"
pool=("$data/photos/clothing-dataset" "$data/photos/debian-opencv-doc" "$data/photos/debian-plasma-workspace-wallpapers"
      "$data/photos/debian-mate-backgrounds" "$data/photos/imagenet-sample-images" "$data/video/CarND-LaneLines-P1"
      "$data/video/debian-opencv-doc")
# Each level's manifest reports top-1 on the first TEST_LIMIT labelled test photos (a quick look; the
# benchmark measures every level on all of them and chooses nothing on them).
common=(--teacher efficientnet_lite0 --data photos "${pool[@]}" --test-list "$test_list" --limit-test "${TEST_LIMIT:-250}" --cache "$cache"
        --crops 3 --video-every 10 --val-images 300 --batch-size 32 --threads 1 --no-progress)
[ -z "${DEVICE:-}" ] || common+=(--device "$DEVICE")  # DEVICE=cuda: train on a GPU
share() { "$py" -c "print(round($budget * $1, 2))"; }

two_stage() {  # family, base beta, base level, "lr1:lr2", "beta:level[@from level] ..." continued from the base
  local kind=$1 beta=$2 level=$3 lr=$4; shift 4
  local cmd=(-m hecsb_ros.cli.train_hecsb) each=""
  each=$(share 0.1333)
  [ "$kind" = svb ] && cmd=(-m hecsb_ros.cli.train_baselines svb --stem --freeze-stem)
  "$py" "${cmd[@]}" --beta "$beta" --levels "$level" --stage1-epochs 1 --stage2-epochs 1 --alpha 1.0 \
    --lr1 "${lr%%:*}" --lr2 "${lr##*:}" --stage2-rate-weight 1 --budget-min "$(share 0.3333)" --out "$out/$kind/base" "${common[@]}"
  local base="$out/$kind/base/${kind}_effl0_r$level.safetensors"
  mkdir -p "$out/$kind"
  cp "$base" "${base%.safetensors}.json" "$out/$kind/"
  for pair in "$@"; do
    local b=${pair%%:*} l=${pair#*:} init=$base
    if [[ $l == *@* ]]; then init="$out/$kind/${kind}_effl0_r${l#*@}.safetensors"; l=${l%@*}; fi
    "$py" "${cmd[@]}" --beta "$b" --levels "$l" --init "$init" --stage1-epochs 0 --stage2-epochs 1 \
      --lr2 "${lr##*:}" --alpha 1.0 --stage2-rate-weight 1 --budget-min "$each" --out "$out/$kind" "${common[@]}"
  done
}

families=("$@")
[ ${#families[@]} -gt 0 ] || families=(cache hecsb svb crbq factorized hyperprior ship)
for family in "${families[@]}"; do
  case "$family" in
    cache) "$py" - "${pool[@]}" <<PY
import sys, torch
from hecsb_ros.core.teachers import load_teacher
from hecsb_ros.core.training.photos import PhotoCrops
torch.set_num_threads(max(1, torch.get_num_threads()))
crops = PhotoCrops(sys.argv[1:], load_teacher("efficientnet_lite0"), "$cache", crops_per_image=3, video_every=10)
print(f"cache: {len(crops)} crops in {crops.folder}")
PY
           ;;
    hecsb) two_stage hecsb 3e-4 1 1e-3:5e-4 1e-4:2@1 3e-5:3@2 1e-5:4@3 3e-6:5@4 1e-6:6@5 3e-4:0@2 ;;
    svb) two_stage svb 3e-4 1 1e-3:5e-4 1e-4:2@1 3e-5:3@2 1e-5:4@3 3e-6:5@4 1e-6:6@5 3e-4:0@2 ;;
    # CR+BQ's 1-channel level collapsed at 18 minutes (8-bit codes of 1 channel carry too little of the split features)
    crbq) for pair in 2:0 4:1 8:2 16:3; do
            "$py" -m hecsb_ros.cli.train_baselines crbq --stem --freeze-stem --channels "${pair%%:*}" --levels "${pair##*:}" --epochs 2 \
              --budget-min "$(share 0.25)" --out "$out/crbq" "${common[@]}"
          done ;;
    factorized|hyperprior)
          lambdas="0.004:0 0.016:1 0.064:2"
          [ "$family" = hyperprior ] && lambdas="0.004:0 0.008:1 0.016:2"
          for pair in $lambdas; do
            "$py" -m hecsb_ros.cli.train_baselines "$family" --patch 64 --lmbda "${pair%%:*}" --levels "${pair##*:}" \
              --epochs 2 --budget-min "$(share 0.3333)" --out "$out/$family" "${common[@]}" --batch-size 16
          done ;;
    ship) "$py" -m hecsb_ros.cli.select_levels "$out"/{hecsb,svb,crbq,factorized,hyperprior} --teacher efficientnet_lite0 \
            --data photos "${pool[@]}" --cache "$cache" --crops 3 --video-every 10 --val-images 300 --no-progress \
            --ship "$here/hecsb_ros/checkpoints" --report "$here/benchmarks/camera/selection.md" \
            --held-out-list "$out/held_out.csv" --threads "${THREADS:-1}" ;;
    *) echo "unknown family $family (cache, hecsb, svb, crbq, factorized, hyperprior, ship)" >&2; exit 2 ;;
  esac
done
