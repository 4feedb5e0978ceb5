#!/usr/bin/env bash
# Checks that every C++ file follows the checked-in .clang-format (Debian 12's clang-format 14).
# Usage: scripts/check-format.sh [--fix]     (--fix rewrites the files that differ)
# CTest runs it as the `format` test; exits 1 and names the files that need formatting.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tool=${CLANG_FORMAT:-clang-format}
if ! command -v "$tool" >/dev/null; then
    echo "clang-format is not installed (installer/packages.txt lists it)" >&2
    exit 1
fi
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.cpp' '*.h' 2>/dev/null \
                     || find src ui app tests bench -name '*.cpp' -o -name '*.h')
if [ "${1:-}" = "--fix" ]; then
    "$tool" -i "${files[@]}"
    exit 0
fi
bad=()
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    if ! "$tool" --dry-run --Werror "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done
if [ ${#bad[@]} -gt 0 ]; then
    echo "${#bad[@]} file(s) do not follow .clang-format; run scripts/check-format.sh --fix:" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
fi
echo "${#files[@]} files follow .clang-format"
