#!/usr/bin/env bash
# Builds the checkpoint reader's fuzzer with clang and runs it for a bounded time on the corpus.
# Usage: tests/fuzz/run_fuzz.sh [SECONDS|--long] [BUILD_DIR]     (defaults: 60, build-fuzz)
# Exits non-zero when the fuzzer finds a crash (the input is saved in BUILD_DIR/artifacts/).
#
# CTest runs 60 s (the `fuzz_checkpointreader` test, label slow). A change to the reader is done
# only after a long run finds nothing: --long runs 600 s, e.g. on a shared machine
#   nice -n 10 tests/fuzz/run_fuzz.sh --long
# (a 60 s run missed the stack overflow of issue 13; eight minutes found it). Crashes found are
# fixed and their inputs join corpus/ as regression cases.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seconds=${1:-60}
if [ "$seconds" = "--long" ]; then
    seconds=600
fi
build=${2:-$here/../../build-fuzz}
if ! command -v clang++ >/dev/null; then
    echo "clang++ is not installed (installer/packages.txt lists it): cannot build the fuzzer" >&2
    exit 1
fi
mkdir -p "$build"
if ! { cmake -S "$here" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
           -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build "$build"; } >"$build/build.log" 2>&1; then
    echo "building the fuzzer failed:" >&2
    tail -n 30 "$build/build.log" >&2
    exit 1
fi
mkdir -p "$build/artifacts" "$build/corpus"
# New inputs go to a scratch corpus; the checked-in one is only read.
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "$build/fuzz_checkpointreader" "$build/corpus" "$here/corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
    -artifact_prefix="$build/artifacts/" -print_final_stats=1 2>&1 | tail -n 25
