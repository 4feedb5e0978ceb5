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

shoot datasets "$sample"
shoot empty-state
shoot health "$sample" --screenshot-view health
