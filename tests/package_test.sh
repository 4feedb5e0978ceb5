#!/usr/bin/env bash
# Builds the Debian package from this build tree, checks its metadata, unpacks it and runs the
# installed executables. Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$build"
cpack -G DEB -B "$work/out" --config CPackConfig.cmake >"$work/cpack.log" 2>&1 || {
    cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/out/*.deb)
echo "package: $(basename "$deb")"

depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for needed in libtorch libqt6widgets6 libqt6charts6 libopencv-imgcodecs qt6-qpa-plugins; do
    grep -q "$needed" <<<"$depends" || { echo "FAIL: Depends lacks $needed"; exit 1; }
done

dpkg-deb -x "$deb" "$work/root"
for f in usr/bin/ifstudio usr/bin/ifstudio-cli usr/libexec/ifstudio/ifstudio-cli-compute \
         usr/libexec/ifstudio/ifstudio-cli-train \
         usr/share/applications/io.github.imagefolderstudio.ifstudio.desktop \
         usr/share/icons/hicolor/scalable/apps/ifstudio.svg; do
    [ -e "$work/root/$f" ] || { echo "FAIL: $f is not in the package"; exit 1; }
done
desktop-file-validate "$work/root/usr/share/applications/io.github.imagefolderstudio.ifstudio.desktop"

version=$(dpkg-deb -f "$deb" Version)
"$work/root/usr/bin/ifstudio-cli" --version | grep -qx "ifstudio-cli $version" \
    || { echo "FAIL: ifstudio-cli --version"; exit 1; }
"$work/root/usr/bin/ifstudio-cli" --help | grep -q "scan ROOT" || { echo "FAIL: cli --help"; exit 1; }
# `check` runs in ifstudio-cli-compute, which the front finds in ../libexec/ifstudio.
mkdir -p "$work/data/cat" "$work/data/dog"
printf 'not an image' > "$work/data/cat/broken.jpg"
cp "$source/resources/icons/ifstudio.svg" "$work/data/dog/x.png"
set +e
"$work/root/usr/bin/ifstudio-cli" check "$work/data" --json >"$work/check.json" 2>"$work/check.err"
status=$?
set -e
[ "$status" -eq 1 ] && grep -q '"unreadable"' "$work/check.json" \
    || { echo "FAIL: installed ifstudio-cli check (exit $status)"; cat "$work/check.err"; exit 1; }
# `train` runs in ifstudio-cli-train: a bad option gets its usage message from there.
set +e
"$work/root/usr/bin/ifstudio-cli" train --data "$work/nowhere" --out "$work/run" >/dev/null 2>"$work/train.err"
status=$?
set -e
[ "$status" -eq 2 ] && grep -q "does not exist" "$work/train.err" \
    || { echo "FAIL: installed ifstudio-cli train (exit $status)"; cat "$work/train.err"; exit 1; }
QT_QPA_PLATFORM=offscreen "$work/root/usr/bin/ifstudio" --version | grep -q "$version" \
    || { echo "FAIL: ifstudio --version"; exit 1; }
QT_QPA_PLATFORM=offscreen "$work/root/usr/bin/ifstudio" --help | grep -q -- "--threads" \
    || { echo "FAIL: ifstudio --help"; exit 1; }
echo "package: ok"
