#!/usr/bin/env bash
# Train the camera-scale rate levels of every learned codec against EfficientNet-Lite0, without labels,
# from the broad photo pool of docs/camera_data.md ("pool v2", about 47,000 photos), for a budget
# counted in core-hours, resumable: run it again (any day, after a stop) and it continues from the
# state in OUT. docs/camera_training.md describes the recipe; OUT/ledger.csv records every finished
# level (core-hours, samples, pool version, commit).
#
#   DATA=/work/data nice -n 19 scripts/train_camera.sh hecsb          # one family (resumes)
#   DATA=/work/data scripts/train_camera.sh                           # every family, then 'ship'
#   HOURS_HECSB=6 HOURS_SVB=6 HOURS_OTHERS=1.5 DEVICE=cuda ...       # budgets (core-hours per family)
#
# The recipe ("function matching", Beyer et al. 2022): every draw of a photo is a fresh random resized
# crop, the teacher is run on that very view (no cached targets), half of the stage-2 batches are
# mixed pairwise (mixup) with the teacher run on the mixed images, and the schedule is long.
#   hecsb, svb: a base level at a low beta (1e-6, the most accurate level, r6) in stages 1 + 2 (1 : 3)
#               for 1/3 of the family's budget, then five or six levels, each continued in stage 2 from
#               the one before at a higher beta (fewer bytes), down to level 0 at 6e-4 in search of a
#               useful level under 1 KB (the other 2/3 of the budget, shared equally). A level that
#               gives up accuracy for bytes starts from one that has it, not the other way round.
#               HECS-B trains its stem (the teacher's layers to stride 8) end to end; SVB keeps it frozen.
#               HECS-B's r6 starts stage 2 from the stage-1 state of a first base level at beta 3e-4
#               that was stopped (docs/camera_training.md; training/camera/discarded/).
#   crbq:       2, 4, 8, 16 channels (levels 0-3), head distillation, 1/4 of the budget each.
#   factorized, hyperprior: three lambdas each on 64 x 64 patches, 1/3 of the budget each.
# Each level's epochs are fitted to its share of the budget (step times measured first) and cut into
# epochs of at most EPOCH_MIN minutes; the state (model, optimisers, random state, core-seconds so far)
# is written after each, so a stop loses at most that much. A level whose checkpoint exists is done.
# 'ship' chooses the levels on 300 held-out pool photos and copies them into hecsb_ros/checkpoints.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PY:-$here/.venv/bin/python}"
data="${DATA:-/work/data}"
out="${OUT:-$here/training/camera}"
cache="${CACHE:-$here/runs/cache}"
test_list="${TEST_LIST:-$data/imagen/labels.csv}"
hours_hecsb="${HOURS_HECSB:-6}"
hours_svb="${HOURS_SVB:-6}"
hours_light="${HOURS_LIGHT:-3}"
hours_others="${HOURS_OTHERS:-1.5}"
pool=()
for f in caltech101 imagenette imagewoof natural-images clothing-dataset cats-and-dogs pacs-photo \
         imagenet-sample-images camvid debian-opencv-doc debian-plasma-workspace-wallpapers debian-mate-backgrounds; do
  [ -d "$data/photos/$f" ] || { echo "missing $data/photos/$f: run DATA=$data scripts/get_camera_data.sh" >&2; exit 1; }
  pool+=("$data/photos/$f")
done
pool+=("$data/video/CarND-LaneLines-P1" "$data/video/debian-opencv-doc")
# Each level's manifest reports top-1 on the first TEST_LIMIT labelled test photos (a quick look; the
# benchmark measures every level on all of them and chooses nothing on them).
common=(--teacher efficientnet_lite0 --data pool "${pool[@]}" --test-list "$test_list" --limit-test "${TEST_LIMIT:-250}"
        --cache "$cache" --crops 3 --video-every 10 --val-images 300 --batch-size 32 --threads "${THREADS:-1}"
        --no-progress --ledger "$out/ledger.csv" --epoch-max-min "${EPOCH_MIN:-10}")
[ -z "${DEVICE:-}" ] || common+=(--device "$DEVICE")  # DEVICE=cuda: train on a GPU
minutes() { "$py" -c "print(round($1 * 60 * $2, 2))"; }  # core-hours, share -> minutes

two_stage() {  # family, hours, base beta, base level, "lr1:lr2", "stage-1:stage-2 epochs",
              # "beta:level[@from level] ..." continued from the base
  local kind=$1 hours=$2 beta=$3 level=$4 lr=$5 ratio=$6; shift 6
  local cmd=(-m hecsb_ros.cli.train_hecsb) dir="$out/$kind"
  [ "$kind" = svb ] && cmd=(-m hecsb_ros.cli.train_baselines svb --stem --freeze-stem)
  [ "$kind" = hecsb_light ] && cmd=(-m hecsb_ros.cli.train_hecsb --head light)
  local each=0; [ $# -eq 0 ] || each=$(minutes "$hours" "$("$py" -c "print(2 / 3 / $#)")")
  mkdir -p "$dir"
  if [ ! -f "$dir/${kind}_effl0_r$level.json" ]; then
    "$py" "${cmd[@]}" --beta "$beta" --levels "$level" --stage1-epochs "${ratio%%:*}" --stage2-epochs "${ratio##*:}" --alpha 1.0 --mixup 0.5 \
      --lr1 "${lr%%:*}" --lr2 "${lr##*:}" --stage2-rate-weight 1 --resume --budget-min "$(minutes "$hours" 0.3333)" \
      --out "$dir" "${common[@]}"
  fi
  for pair in "$@"; do
    local b=${pair%%:*} l=${pair#*:} from=$level
    if [[ $l == *@* ]]; then from=${l#*@}; l=${l%@*}; fi
    [ -f "$dir/${kind}_effl0_r$l.json" ] && continue
    "$py" "${cmd[@]}" --beta "$b" --levels "$l" --init "$dir/${kind}_effl0_r$from.safetensors" --stage1-epochs 0 \
      --stage2-epochs 1 --lr2 "${lr##*:}" --alpha 1.0 --mixup 0.5 --stage2-rate-weight 1 --resume --budget-min "$each" \
      --out "$dir" "${common[@]}"
  done
}

families=("$@")
[ ${#families[@]} -gt 0 ] || families=(hecsb svb hecsb_light crbq factorized hyperprior ship)
for family in "${families[@]}"; do
  case "$family" in
    hecsb) two_stage hecsb "$hours_hecsb" 1e-6 6 1e-3:5e-4 1:3 3e-6:5@6 1e-5:4@5 3e-5:3@4 1e-4:2@3 3e-4:1@2 6e-4:0@1 ;;
    svb) two_stage svb "$hours_svb" 1e-6 6 1e-3:5e-4 1:3 3e-6:5@6 1e-5:4@5 3e-5:3@4 1e-4:2@3 3e-4:1@2 6e-4:0@1 ;;
    # the light head (docs/light_head.md): its separable layers start untrained, so its base level (r5,
    # 3e-6) gives stage 1 half of its share (a 2-minute run at 3e-4 from scratch collapsed to 8 B)
    hecsb_light) two_stage hecsb_light "$hours_light" 3e-6 5 1e-3:5e-4 1:1 1e-5:4@5 3e-5:3@4 1e-4:2@3 3e-4:1@2 ;;
    crbq) for pair in 2:0 4:1 8:2 16:3; do
            [ -f "$out/crbq/crbq_effl0_r${pair##*:}.json" ] && continue
            "$py" -m hecsb_ros.cli.train_baselines crbq --stem --freeze-stem --channels "${pair%%:*}" --levels "${pair##*:}" \
              --epochs 2 --budget-min "$(minutes "$hours_others" 0.25)" --out "$out/crbq" "${common[@]}"
          done ;;
    factorized|hyperprior)
          lambdas="0.004:0 0.016:1 0.064:2"
          [ "$family" = hyperprior ] && lambdas="0.004:0 0.008:1 0.016:2"
          for pair in $lambdas; do
            [ -f "$out/$family/${family}_effl0_r${pair##*:}.json" ] && continue
            "$py" -m hecsb_ros.cli.train_baselines "$family" --patch 64 --lmbda "${pair%%:*}" --levels "${pair##*:}" \
              --epochs 2 --budget-min "$(minutes "$hours_others" 0.3333)" --out "$out/$family" "${common[@]}" --batch-size 16
          done ;;
    ship) "$py" -m hecsb_ros.cli.select_levels "$out"/{hecsb,svb,hecsb_light,crbq,factorized,hyperprior} --teacher efficientnet_lite0 \
            --data pool "${pool[@]}" --cache "$cache" --crops 3 --video-every 10 --val-images 300 --no-progress \
            --ship "$here/hecsb_ros/checkpoints" --report "$here/benchmarks/camera/selection.md" \
            --held-out-list "$out/held_out.csv" --threads "${THREADS:-1}" ;;
    *) echo "unknown family $family (hecsb, svb, hecsb_light, crbq, factorized, hyperprior, ship)" >&2; exit 2 ;;
  esac
done
