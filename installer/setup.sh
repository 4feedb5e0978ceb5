#!/usr/bin/env bash
# ImageFolder Studio set-up for Debian 12: installs the packages in installer/packages.txt (once),
# builds with the CMake preset, then runs the app or the tests. Safe to re-run.
#
#   installer/setup.sh run    install, build (Release), export the sample dataset, launch the GUI
#   installer/setup.sh test   install, build (Release), run the whole test suite through CTest
#   installer/setup.sh build  install and build only
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
action=${1:-build}
shift || true

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/packages.txt" | grep -v '^$')
    local missing=()
    for pkg in "${wanted[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "All ${#wanted[@]} Debian packages are installed"
        return
    fi
    log "Installing ${#missing[@]} Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
    log "Configuring and building (preset: release)"
    cd "$repo"
    # Debian 12's compiler is the one we build with: its warnings in our code are errors.
    cmake --preset release -DIFS_WERROR=ON >/dev/null
    cmake --build --preset release
}

case "$action" in
    build)
        install_packages
        build
        ;;
    test)
        install_packages
        build
        log "Running the test suite"
        cd "$repo"
        ctest --preset release "$@"
        ;;
    run)
        install_packages
        build
        data="${IFS_SAMPLE_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/ImageFolderStudio/fashion-mnist}"
        log "Exporting the Fashion-MNIST sample dataset to $data (once)"
        "$repo/build/release/app/ifstudio-cli" sample-data "$data"
        log "Launching ImageFolder Studio"
        exec "$repo/build/release/app/ifstudio" "$data" "$@"
        ;;
    *)
        echo "usage: installer/setup.sh run|test|build" >&2
        exit 2
        ;;
esac
