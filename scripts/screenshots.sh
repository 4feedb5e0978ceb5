#!/usr/bin/env bash
# Screenshots of ImageFolder Studio as a user sees it, in a real X server (Xvfb), for the README
# and for looking at the app. Usage: scripts/screenshots.sh [OUT_DIR]   (default docs/screenshots)
#   IFS_BUILD   build folder (default build/release)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IFS_BUILD:-$repo/build/release}
out=${1:-$repo/docs/screenshots}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gui="$build/app/ifstudio"
cli="$build/app/ifstudio-cli"
sample="${IFS_SAMPLE_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/ImageFolderStudio/fashion-mnist}"
"$cli" sample-data "$sample" >/dev/null

# A fresh settings folder, so screenshots do not depend on whoever ran the app before.
export XDG_CONFIG_HOME="$work/config"
shoot() { # name, then the app's arguments
    local name=$1; shift
    xvfb-run -a -s "-screen 0 1440x900x24" "$gui" "$@" --screenshot "$out/$name.png"
    echo "$out/$name.png"
}

# A dataset with the problems the app exists to catch, made from the sample's images: numeric class
# names, a Jupyter folder that became a class, imbalance, splits that disagree, broken files.
problems="$work/pets-with-problems"
copy() { # split class count source-class-index: images of the sample's same split
    local classes source
    mapfile -t classes < <(ls "$sample/$1")
    mapfile -t source < <(find "$sample/$1/${classes[$4]}" -name '*.png')
    mkdir -p "$problems/$1/$2"
    cp -t "$problems/$1/$2" "${source[@]:0:$3}"
}
copy train 1 120 0; copy train 2 90 1; copy train 10 8 2; copy train .ipynb_checkpoints 2 3
copy val 1 30 0; copy val 10 5 2
cp "$problems/train/1/$(ls "$problems/train/1" | sed -n 5p)" "$problems/val/1/copied-from-train.png"
: > "$problems/train/2/empty.png"
echo "<html>404 Not Found</html>" > "$problems/train/1/download.jpg"
head -c 300 "$sample/train/Bag/00023.png" > "$problems/train/10/cut.png"

shoot empty-state # first: no recent datasets yet
shoot datasets "$sample"
shoot problems "$problems" --screenshot-view health
shoot health "$sample" --screenshot-view health
shoot transforms "$sample" --screenshot-view transforms
# The same on photo-sized pictures (a generated cat/dog set): crop boxes on the original.
photos="$work/photos"
/usr/bin/python3 "$repo/scripts/make_photo_dataset.py" "$photos"
shoot transforms-photos "$photos" --screenshot-view transforms
# A pasted recipe with RandomApply and TrivialAugmentWide (the strip shows what the policy drew),
# and one whole training batch of it (the batch view).
shoot transforms-policies "$photos" --screenshot-view transforms-policies
shoot batch "$photos" --screenshot-view batch

# Checkpoints made by real torch: a plain resnet18 state dict, and a DataParallel training
# checkpoint whose storages say cuda:0 (as one saved on a GPU machine), to load into the first.
/usr/bin/python3 "$repo/tests/tools/checkpointsworkspace_oracle.py" make "$work"
shoot checkpoints "$work/dp_cuda.pth" --screenshot-view checkpoints
shoot checkpoint-load "$work/dp_cuda.pth" "$work/resnet18.pt" --screenshot-view checkpoint-load
shoot checkpoint-save "$work/dp_cuda.pth" --screenshot-view checkpoint-save

# Training: a live run and the evaluation after it, on a 200-images-per-class subset of the sample
# (a whole Fashion-MNIST epoch takes minutes on two cores).
small="$work/fashion-small"
"$cli" sample-data "$small" --limit-per-class 200 >/dev/null
shoot training "$small" --screenshot-view training
shoot distributed "$small" --screenshot-view distributed
shoot evaluation "$small" --screenshot-view evaluation
shoot lr-finder "$small" --screenshot-view lr-finder
# Grad-CAM in the Predict panel, and the Likely Mislabelled tab after a relabel (of $small's copy
# of the sample: the sample itself is never changed).
shoot gradcam "$small" --screenshot-view gradcam
shoot mislabel "$small" --screenshot-view mislabel
# Fine-tuning: weights from a quick run on one half of the classes, the head trained on the other
# half's features (computed once); and ImageNet weights chosen offline with an empty cache: the
# run stops with the message that says which file to put where.
half_a="$work/half-a"; half_b="$work/half-b"
mapfile -t classes < <(ls "$small/train")
for split in train val; do
    mkdir -p "$half_a/$split" "$half_b/$split"
    for i in "${!classes[@]}"; do
        if [ "$i" -lt 5 ]; then dest="$half_a"; else dest="$half_b"; fi
        cp -r "$small/$split/${classes[$i]}" "$dest/$split/"
    done
done
"$cli" train --data "$half_a" --model small_cnn --epochs 2 --out "$work/half-a-run" >/dev/null
IFS_SCREENSHOT_WEIGHTS="$work/half-a-run/last.pth" shoot finetune "$half_b" --screenshot-view finetune
# Export: that run's best checkpoint as TorchScript and ONNX, checked on its images.
shoot export "$work/half-a-run/best.pth" --screenshot-view export
TORCH_HOME="$work/empty-torch-home" IFS_TEST_PRETRAINED_URL="http://127.0.0.1:9/" \
    shoot pretrained "$small" --screenshot-view pretrained
