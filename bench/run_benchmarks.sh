#!/usr/bin/env bash
# Benchmarks against the Python peer, measured in the same run; prints ratios (>1: we are faster).
# Usage: bench/run_benchmarks.sh [path/to/ifstudio-cli [path/to/ifs-bench-input
#                                  [path/to/ifs-bench-checkpoint [path/to/ifs-bench-train]]]]
#   IFS_BENCH_DIR   where the generated trees live (default /tmp/ifs-bench; reused)
#   IFS_BENCH_REPEATS  repeats per measurement (default 5)
#   IFS_BENCH_ONLY  the sections to run, e.g. "train" or "loader checkpoint" (default: all of
#                   scan check loader policies checkpoint train bf16 cache ddp)
#   IFS_BENCH_TRAIN_ROUNDS  interleaved rounds of each training case (default 5 short ones for
#                   the small CNN, 2 for ResNet-18, whose rounds take minutes on 2 cores)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cli=${1:-$here/../build/release/app/ifstudio-cli}
bench_input=${2:-$(dirname "$cli")/../bench/ifs-bench-input}
bench_checkpoint=${3:-$(dirname "$cli")/../bench/ifs-bench-checkpoint}
bench_train=${4:-$(dirname "$cli")/../bench/ifs-bench-train}
py=/usr/bin/python3
dir=${IFS_BENCH_DIR:-/tmp/ifs-bench}
repeats=${IFS_BENCH_REPEATS:-5}
mkdir -p "$dir"
want() { [[ " ${IFS_BENCH_ONLY:-scan check loader policies checkpoint train bf16 cache ddp} " == *" $1 "* ]]; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
wall() { # seconds of one run of a command, output discarded
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}

if want scan; then
    echo "== Scan: ImageFolder(root) vs ifstudio-cli scan (200k files, 1000 classes, warm cache)"
    tree="$dir/scan-200k"
    $py "$here/make_data.py" scan-tree "$tree" 1000 200
    "$cli" scan "$tree" >/dev/null                 # warm the cache
    # Interleaved rounds (torchvision's call, its process, ours, ours --json), medians over the
    # rounds: on a shared machine a burst of load then hits every contender alike.
    peer_calls=() peer_procs=() ours_procs=() ours_jsons=() loads=()
    for _ in $(seq "$repeats"); do
        loads+=("$(cut -d' ' -f1 /proc/loadavg)")
        read -r call peer_n < <($py "$here/peer.py" scan "$tree" 3)
        peer_calls+=("$call")
        peer_procs+=("$(wall $py -c "from torchvision.datasets import ImageFolder; ImageFolder('$tree')")")
        ours_procs+=("$(wall "$cli" scan "$tree")")
        ours_jsons+=("$(wall "$cli" scan "$tree" --json)")
    done
    peer_call=$(printf '%s\n' "${peer_calls[@]}" | median)
    peer_proc=$(printf '%s\n' "${peer_procs[@]}" | median)
    ours_proc=$(printf '%s\n' "${ours_procs[@]}" | median)
    ours_json=$(printf '%s\n' "${ours_jsons[@]}" | median)
    ours_n=$("$cli" scan "$tree" --json | $py -c "import json,sys; print(len(json.load(sys.stdin)['samples']))")
    [ "$ours_n" = "$peer_n" ] || { echo "sample counts differ: ours $ours_n, torchvision $peer_n"; exit 1; }
    printf '  torchvision ImageFolder() call      %8.3f s   (%s samples)\n' "$peer_call" "$peer_n"
    printf '  python process (import + scan)      %8.3f s\n' "$peer_proc"
    printf '  ifstudio-cli scan (whole process)   %8.3f s\n' "$ours_proc"
    printf '  ifstudio-cli scan --json            %8.3f s\n' "$ours_json"
    printf '  ratio, their call / our process:    %8.1fx   (goal: >= 3x)\n' "$(echo "$peer_call / $ours_proc" | bc -l)"
    printf '  ratio, their call / our --json:     %8.1fx   (goal: >= 2.5x)\n' "$(echo "$peer_call / $ours_json" | bc -l)"
    printf '  ratio, process / process:           %8.1fx\n' "$(echo "$peer_proc / $ours_proc" | bc -l)"
    printf '  %d interleaved rounds; 1-minute load average %s on %d cores\n' "$repeats" "${loads[*]}" "$(nproc)"
fi

if want check; then
    echo "== Health check: decode every image (2,000 JPEGs 500x375)"
    jpegs="$dir/jpeg-2k"
    $py "$here/make_data.py" jpeg-tree "$jpegs" 10 200
    "$cli" check "$jpegs" --json >/dev/null || true  # warm the cache
    peer_rate=$($py "$here/peer.py" decode "$jpegs")
    ours_time=$(for _ in $(seq 3); do wall "$cli" check "$jpegs" --json; done | median)
    ours_rate=$(echo "2000 / $ours_time" | bc -l)
    printf '  torchvision default_loader (1 proc) %8.0f img/s\n' "$peer_rate"
    printf '  ifstudio-cli check (all cores)      %8.0f img/s  (%d threads)\n' "$ours_rate" "$(nproc)"
    printf '  ratio:                              %8.1fx\n' "$(echo "$ours_rate / $peer_rate" | bc -l)"
fi

if want loader; then
    echo "== Training input pipeline: JPEG decode + RandomResizedCrop(224) + RandomHorizontalFlip +"
    echo "   ToTensor + Normalize, batches of 64, one shuffled epoch of 5,000 JPEGs 500x375"
    loader_tree="$dir/jpeg-5k"
    $py "$here/make_data.py" jpeg-tree "$loader_tree" 10 500
    cores=$(nproc)
    "$bench_input" "$loader_tree" --workers "$cores" >/dev/null    # warm the page cache
    # Rounds interleave every configuration, so that load on a shared machine hits them alike; the
    # best of the rounds counts for each.
    declare -A best
    configs=("peer 0" "peer $cores" "ours --exact" "ours --no-fast-decode" "ours default")
    for _ in 1 2 3; do
        for config in "${configs[@]}"; do
            read -r who arg <<<"$config"
            if [ "$who" = peer ]; then
                rate=$($py "$here/peer.py" loader "$loader_tree" "$arg" 64)
            elif [ "$arg" = default ]; then
                rate=$("$bench_input" "$loader_tree" --workers "$cores" | cut -d' ' -f1)
            else
                rate=$("$bench_input" "$loader_tree" --workers "$cores" "$arg" | cut -d' ' -f1)
            fi
            if [ -z "${best[$config]:-}" ] || (( $(echo "$rate > ${best[$config]}" | bc -l) )); then
                best[$config]=$rate
            fi
        done
    done
    best_peer=${best["peer 0"]}
    if (( $(echo "${best["peer $cores"]} > $best_peer" | bc -l) )); then best_peer=${best["peer $cores"]}; fi
    printf '  torchvision DataLoader, num_workers=0       %8.0f img/s\n' "${best["peer 0"]}"
    printf '  torchvision DataLoader, num_workers=%-2s      %8.0f img/s\n' "$cores" "${best["peer $cores"]}"
    for config in "ours --exact" "ours --no-fast-decode" "ours default"; do
        case "$config" in
            *--exact) label="exact engine per image";;
            *--no-fast-decode) label="fused crop-decode (exact pixels)";;
            *) label="fused + reduced-scale decoding";;
        esac
        printf '  ours, %-34s %8.0f img/s   ratio %5.1fx (goal: >= 3x)\n' "$label" "${best[$config]}" \
            "$(echo "${best[$config]} / $best_peer" | bc -l)"
    done
    echo "  (best of 3 interleaved rounds; against the peer's better worker setting; $cores cores)"
fi

if want policies; then
    echo "== Augmentation policies per image, one thread each side: JPEG decode + RandomResizedCrop(176)"
    echo "   + RandomHorizontalFlip + policy + ToTensor + Normalize, one epoch of 2,000 JPEGs 500x375"
    jpegs="$dir/jpeg-2k"
    $py "$here/make_data.py" jpeg-tree "$jpegs" 10 200
    norm="T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])"
    for policy in "T.TrivialAugmentWide()" "T.RandAugment()"; do
        code="T.Compose([T.RandomResizedCrop(176), T.RandomHorizontalFlip(), $policy, $norm])"
        "$bench_input" "$jpegs" --workers 1 --pipeline "$code" >/dev/null   # warm the page cache
        peer_best=0 ours_best=0
        for _ in 1 2 3; do   # interleaved rounds, the best of each side counts
            rate=$($py "$here/peer.py" loader "$jpegs" 0 64 "$code")
            if (( $(echo "$rate > $peer_best" | bc -l) )); then peer_best=$rate; fi
            rate=$("$bench_input" "$jpegs" --workers 1 --pipeline "$code" | cut -d' ' -f1)
            if (( $(echo "$rate > $ours_best" | bc -l) )); then ours_best=$rate; fi
        done
        printf '  %-22s torchvision %6.2f ms/img   ours (exact engine) %6.2f ms/img   ratio %4.1fx\n' \
            "${policy#T.}" "$(echo "1000 / $peer_best" | bc -l)" "$(echo "1000 / $ours_best" | bc -l)" \
            "$(echo "$ours_best / $peer_best" | bc -l)"
    done
fi

if want checkpoint; then
    echo "== Checkpoints: a ResNet-50 state dict (~100 MB), each measurement in a fresh process"
    ckpt="$dir/resnet50.pth"
    [ -f "$ckpt" ] || $py "$here/peer.py" ckpt-make "$ckpt"
    "$bench_checkpoint" load "$ckpt" --touch >/dev/null   # warm the page cache
    median_of() { for _ in $(seq "$repeats"); do "$@" | cut -d' ' -f1; done | median; }
    peer_load=$(median_of $py "$here/peer.py" ckpt-load "$ckpt")
    ours_load=$(median_of "$bench_checkpoint" load "$ckpt")
    ours_touch=$(median_of "$bench_checkpoint" load "$ckpt" --touch)
    peer_save=$(median_of $py "$here/peer.py" ckpt-save "$ckpt" "$dir/peer-save.pth")
    ours_save=$(median_of "$bench_checkpoint" save "$ckpt" "$dir/ours-save.pth")
    ours_quick=$(median_of "$bench_checkpoint" save "$ckpt" "$dir/ours-save.pth" --quick)
    printf '  torch.load(map_location="cpu")         %8.3f s\n' "$peer_load"
    printf '  ours, read (pread, CRCs checked)       %8.3f s   ratio %5.1fx (goal: >= 2x)\n' "$ours_load" "$(echo "$peer_load / $ours_load" | bc -l)"
    printf '  ours, read + touch every tensor byte   %8.3f s   ratio %5.1fx\n' "$ours_touch" "$(echo "$peer_load / $ours_touch" | bc -l)"
    printf '  torch.save                             %8.3f s\n' "$peer_save"
    printf '  ours, write (atomic, no fsync, as torch.save) %5.3f s   ratio %5.1fx (goal: >= 1x)\n' "$ours_quick" "$(echo "$peer_save / $ours_quick" | bc -l)"
    printf '  ours, write durably (fsync + rename)   %8.3f s   ratio %5.1fx\n' "$ours_save" "$(echo "$peer_save / $ours_save" | bc -l)"
fi

if want train; then
    echo "== Training throughput on the CPU: Trainer against a typical PyTorch script (same model,"
    echo "   data, transforms, batch and thread count), images/s over the steps after warm-up"
    cores=$(nproc)
    # tuneAllocator()'s settings (src/base/allocator.cpp), given to the peer for a second, like-for-like
    # figure: glibc's defaults make both sides pay page faults for every big tensor.
    tunables=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=536870912
    # The peer trains the small CNN from the Python source our library ships.
    "$bench_train" --small-cnn-source >"$dir/small_cnn.py"

    # train_case TAG ARCH ROOT TRANSFORM BATCH WARMUP STEPS ROUNDS
    train_case() {
        local tag=$1 arch=$2 root=$3 transform=$4 batch=$5 warmup=$6 steps=$7 rounds=$8
        local -A rate peak runs
        local configs=("peer 0" "peer $cores" "tuned 0" "tuned $cores" "ours default" "ours nchw")
        local round config who arg out r p w other load
        find "$root" -type f -print0 | xargs -0 cat >/dev/null   # warm the page cache
        load=$(cut -d' ' -f1 /proc/loadavg)
        for round in $(seq "$rounds"); do
            for config in "${configs[@]}"; do
                read -r who arg <<<"$config"
                if [ "$round" -gt 1 ] && [ "$who" != ours ]; then
                    # A worker setting that lost clearly in round 1 is not run again.
                    other=$([ "$arg" = 0 ] && echo "$who $cores" || echo "$who 0")
                    if (( $(echo "${rate[$config]} < 0.8 * ${rate[$other]}" | bc -l) )); then
                        continue
                    fi
                fi
                if [ "$who" = ours ]; then
                    local flags=()
                    if [ "$arg" = nchw ]; then flags=(--memory-format contiguous); fi
                    out=$("$bench_train" "$root" --arch "$arch" --transform "$transform" \
                        --batch "$batch" --threads "$cores" --warmup "$warmup" --steps "$steps" \
                        "${flags[@]}") || { echo "  ifs-bench-train failed ($config)"; return 1; }
                    read -r r p _ <<<"$out"
                    p="peak $p MB"
                else
                    local env=()
                    if [ "$who" = tuned ]; then env=(env "GLIBC_TUNABLES=$tunables"); fi
                    out=$("${env[@]}" $py "$here/peer.py" train "$root" "$arch" "$transform" "$arg" \
                        "$batch" "$cores" "$warmup" "$steps" "$dir/small_cnn.py") \
                        || { echo "  peer.py train failed ($config)"; return 1; }
                    read -r r p w <<<"$out"
                    if [ "$arg" -gt 0 ]; then p="peak $p MB + $arg workers x $w MB"; else p="peak $p MB"; fi
                fi
                runs[$config]=$(( ${runs[$config]:-0} + 1 ))
                if [ -z "${rate[$config]:-}" ] || (( $(echo "$r > ${rate[$config]}" | bc -l) )); then
                    rate[$config]=$r; peak[$config]=$p
                fi
            done
        done
        load="$load -> $(cut -d' ' -f1 /proc/loadavg)"
        # The peer as users run it: the better of its worker settings, default allocator.
        local peer="peer 0" tuned="tuned 0"
        if (( $(echo "${rate["peer $cores"]} > ${rate[$peer]}" | bc -l) )); then peer="peer $cores"; fi
        if (( $(echo "${rate["tuned $cores"]} > ${rate[$tuned]}" | bc -l) )); then tuned="tuned $cores"; fi
        for config in "${configs[@]}"; do
            read -r who arg <<<"$config"
            case "$config" in
                peer*) label="python, DataLoader num_workers=$arg";;
                tuned*) label="python + our malloc settings, workers=$arg";;
                "ours default") label="ours (auto: channels_last)";;
                *) label="ours, contiguous NCHW";;
            esac
            printf '  %-44s %8.1f img/s  (%s; best of %d)' "$label" "${rate[$config]}" \
                "${peak[$config]}" "${runs[$config]}"
            if [ "$who" = ours ]; then
                printf '  ratio %4.2fx' "$(echo "${rate[$config]} / ${rate[$peer]}" | bc -l)"
            fi
            echo
        done
        printf '  %s: ours %.1f img/s (%s) | python %.1f img/s (%s) | ratio %.2fx (goal: >= 1.2x) | vs python + our malloc settings %.2fx | NCHW instead %.2fx\n' \
            "$tag" "${rate["ours default"]}" "${peak["ours default"]}" "${rate[$peer]}" "${peak[$peer]}" \
            "$(echo "${rate["ours default"]} / ${rate[$peer]}" | bc -l)" \
            "$(echo "${rate["ours default"]} / ${rate[$tuned]}" | bc -l)" \
            "$(echo "${rate["ours nchw"]} / ${rate["ours default"]}" | bc -l)"
        echo "  (load average $load: other work on the machine makes every figure noisy)"
    }

    echo "-- small_cnn on a Fashion-MNIST sample (10,000 PNGs 28x28 gray), batch 64, 10 + 50 steps"
    fmnist="$dir/fmnist-1k"
    if "$cli" sample-data "$fmnist" --limit-per-class 1000 >/dev/null; then
        train_case "train small_cnn fmnist b64 t$cores" small_cnn "$fmnist/train" \
            "transforms.Compose([transforms.RandomCrop(28, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize((0.286, 0.286, 0.286), (0.353, 0.353, 0.353))])" \
            64 10 50 "${IFS_BENCH_TRAIN_ROUNDS:-5}"
        echo "-- resnet18 on the same 28x28 images (the README's accuracy runs), batch 64, 5 + 30 steps"
        train_case "train resnet18 fmnist b64 t$cores" resnet18 "$fmnist/train" \
            "transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize((0.286, 0.286, 0.286), (0.353, 0.353, 0.353))])" \
            64 5 30 "${IFS_BENCH_TRAIN_ROUNDS:-3}"
    else
        echo "  skipped: no Fashion-MNIST to export (Debian package dataset-fashion-mnist)"
    fi
    echo "-- resnet18 on photos (5,000 JPEGs 500x375, RandomResizedCrop(224)), batch 32, 3 + 10 steps"
    photos="$dir/jpeg-5k"
    $py "$here/make_data.py" jpeg-tree "$photos" 10 500
    train_case "train resnet18 photos b32 t$cores" resnet18 "$photos" \
        "transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])" \
        32 3 10 "${IFS_BENCH_TRAIN_ROUNDS:-2}"
    echo "  (best of interleaved rounds; the peer's better num_workers of 0 and $cores counts;"
    echo "   peaks are the processes' maximum RSS; DataLoader workers share pages with the parent)"
fi

if want bf16; then
    echo "== bf16 on the CPU ($(grep -o -m1 'avx512_bf16\|amx_bf16' /proc/cpuinfo || echo 'no native bf16')):"
    echo "   ours in float32, bf16 and auto against the Python peer as users run it (float32) and"
    echo "   tuned (torch.autocast(\"cpu\", torch.bfloat16) + channels_last), images/s after warm-up"
    cores=$(nproc)
    "$bench_train" --small-cnn-source >"$dir/small_cnn.py"

    # amp_case TAG ARCH ROOT TRANSFORM BATCH WARMUP STEPS ROUNDS [head]
    amp_case() {
        local tag=$1 arch=$2 root=$3 transform=$4 batch=$5 warmup=$6 steps=$7 rounds=$8 head=${9:-}
        local -A rate
        local configs=("peer 0" "peer $cores" "tunedpeer 0" "tunedpeer $cores" "ours off" "ours bf16" "ours auto")
        # Head-only: the peer in float32 only (train-head); its tuned figures stand in as equal.
        local round config who arg out r other mode fine=()
        if [ -n "$head" ]; then fine=(--finetune head); fi
        find "$root" -type f -print0 | xargs -0 cat >/dev/null
        local load; load=$(cut -d' ' -f1 /proc/loadavg)
        for round in $(seq "$rounds"); do
            for config in "${configs[@]}"; do
                read -r who arg <<<"$config"
                if [ -n "$head" ] && [ "$who" = tunedpeer ]; then continue; fi
                if [ "$round" -gt 1 ] && [ "$who" != ours ]; then
                    other=$([ "$arg" = 0 ] && echo "$who $cores" || echo "$who 0")
                    if (( $(echo "${rate[$config]} < 0.8 * ${rate[$other]}" | bc -l) )); then continue; fi
                fi
                if [ "$who" = ours ]; then
                    out=$("$bench_train" "$root" --arch "$arch" --transform "$transform" --batch "$batch" \
                        --threads "$cores" --warmup "$warmup" --steps "$steps" --amp "$arg" "${fine[@]}" 2>/dev/null) \
                        || { echo "  ifs-bench-train failed ($config)"; return 1; }
                else
                    mode=train
                    if [ "$who" = tunedpeer ]; then mode=train-bf16; fi
                    if [ -n "$head" ]; then mode=train-head; fi
                    out=$($py "$here/peer.py" "$mode" "$root" "$arch" "$transform" "$arg" "$batch" "$cores" \
                        "$warmup" "$steps" "$dir/small_cnn.py") || { echo "  peer.py failed ($config)"; return 1; }
                fi
                read -r r _ <<<"$out"
                if [ -z "${rate[$config]:-}" ] || (( $(echo "$r > ${rate[$config]}" | bc -l) )); then rate[$config]=$r; fi
            done
        done
        local peer="peer 0" tuned="tunedpeer 0"
        if (( $(echo "${rate["peer $cores"]} > ${rate[$peer]}" | bc -l) )); then peer="peer $cores"; fi
        if [ -n "$head" ]; then
            rate["tunedpeer 0"]=${rate[$peer]}
        elif (( $(echo "${rate["tunedpeer $cores"]} > ${rate[$tuned]}" | bc -l) )); then
            tuned="tunedpeer $cores"
        fi
        printf '  %-40s %8.1f img/s\n' "python float32 (workers ${peer#peer })" "${rate[$peer]}"
        if [ -z "$head" ]; then printf '  %-40s %8.1f img/s\n' "python bf16 autocast + channels_last" "${rate[$tuned]}"; fi
        printf '  %-40s %8.1f img/s\n' "ours float32" "${rate["ours off"]}"
        printf '  %-40s %8.1f img/s\n' "ours bf16" "${rate["ours bf16"]}"
        printf '  %-40s %8.1f img/s\n' "ours auto (the app's default)" "${rate["ours auto"]}"
        printf '  %s: bf16/fp32 ours %.2fx, python %.2fx | ours bf16 / python tuned %.2fx | ours fp32 / python fp32 %.2fx\n' \
            "$tag" "$(echo "${rate["ours bf16"]} / ${rate["ours off"]}" | bc -l)" \
            "$(echo "${rate[$tuned]} / ${rate[$peer]}" | bc -l)" \
            "$(echo "${rate["ours bf16"]} / ${rate[$tuned]}" | bc -l)" \
            "$(echo "${rate["ours off"]} / ${rate[$peer]}" | bc -l)"
        echo "  (best of $rounds interleaved rounds; load average $load -> $(cut -d' ' -f1 /proc/loadavg))"
    }

    fmnist="$dir/fmnist-1k"
    if [ -d "$fmnist/train" ] || "$cli" sample-data "$fmnist" --limit-per-class 1000 >/dev/null; then
        echo "-- small_cnn on Fashion-MNIST 28x28, batch 64, 10 + 50 steps"
        amp_case "bf16 small_cnn b64" small_cnn "$fmnist/train" \
            "transforms.Compose([transforms.RandomCrop(28, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize((0.286, 0.286, 0.286), (0.353, 0.353, 0.353))])" \
            64 10 50 "${IFS_BENCH_TRAIN_ROUNDS:-3}"
    fi
    photos="$dir/jpeg-5k"
    $py "$here/make_data.py" jpeg-tree "$photos" 10 500
    for size in 112 224; do
        echo "-- resnet18 on photos, RandomResizedCrop($size), batch 32, 3 + 10 steps"
        amp_case "bf16 resnet18 ${size}px b32" resnet18 "$photos" \
            "transforms.Compose([transforms.RandomResizedCrop($size), transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])" \
            32 3 10 "${IFS_BENCH_TRAIN_ROUNDS:-2}"
    done
    echo "-- resnet18 head-only fine-tuning at 112 px (backbone frozen), batch 32, 3 + 10 steps"
    amp_case "bf16 resnet18 head-only 112px b32" resnet18 "$photos" \
        "transforms.Compose([transforms.RandomResizedCrop(112), transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])" \
        32 3 10 "${IFS_BENCH_TRAIN_ROUNDS:-2}" head
fi

if want cache; then
    echo "== head-only fine-tuning on cached features: resnet18, photos Resize(128) + CenterCrop(112),"
    echo "   batch 32, float32, images/s after warm-up (an epoch's time is its images / the rate)"
    cores=$(nproc)
    photos="$dir/jpeg-5k"
    [ -d "$photos" ] || $py "$here/make_data.py" jpeg-tree "$photos" 10 500
    "$bench_train" --small-cnn-source >"$dir/small_cnn.py"
    find "$photos" -type f -print0 | xargs -0 cat >/dev/null
    transform="transforms.Compose([transforms.Resize(128), transforms.CenterCrop(112), transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])"
    declare -A crate
    load=$(cut -d' ' -f1 /proc/loadavg)
    for round in $(seq "${IFS_BENCH_TRAIN_ROUNDS:-2}"); do
        for config in "cached" "images" "full" "peer 0" "peer $cores"; do
            read -r who arg <<<"$config"
            case $who in
                cached) out=$("$bench_train" "$photos" --arch resnet18 --transform "$transform" --batch 32 \
                            --threads "$cores" --warmup 5 --steps 100 --amp off --finetune head 2>"$dir/cache.err") \
                            || { echo "  ifs-bench-train failed ($config)"; break 2; }
                        built=$(grep -o 'computed once in [0-9.]* s' "$dir/cache.err" | grep -o '[0-9.]*' | head -1) ;;
                images) out=$("$bench_train" "$photos" --arch resnet18 --transform "$transform" --batch 32 \
                            --threads "$cores" --warmup 3 --steps 10 --amp off --finetune head --no-feature-cache 2>/dev/null) \
                            || { echo "  ifs-bench-train failed ($config)"; break 2; } ;;
                full) out=$("$bench_train" "$photos" --arch resnet18 --transform "$transform" --batch 32 \
                          --threads "$cores" --warmup 3 --steps 10 --amp off --finetune full 2>/dev/null) \
                          || { echo "  ifs-bench-train failed ($config)"; break 2; } ;;
                peer) out=$($py "$here/peer.py" train-head "$photos" resnet18 "$transform" "$arg" 32 "$cores" \
                          3 10 "$dir/small_cnn.py") || { echo "  peer.py failed ($config)"; break 2; } ;;
            esac
            read -r r _ <<<"$out"
            if [ -z "${crate[$config]:-}" ] || (( $(echo "$r > ${crate[$config]}" | bc -l) )); then crate[$config]=$r; fi
        done
    done
    if [ -n "${crate["peer $cores"]:-}" ]; then
        peer="peer 0"
        if (( $(echo "${crate["peer $cores"]} > ${crate[$peer]}" | bc -l) )); then peer="peer $cores"; fi
        printf '  %-52s %9.1f img/s\n' "python head-only (frozen backbone, workers ${peer#peer })" "${crate[$peer]}"
        printf '  %-52s %9.1f img/s\n' "ours full fine-tuning" "${crate[full]}"
        printf '  %-52s %9.1f img/s\n' "ours head-only, every image through the backbone" "${crate[images]}"
        printf '  %-52s %9.1f img/s (features of 5,000 images computed once in %s s)\n' \
            "ours head-only on cached features (the default)" "${crate[cached]}" "${built:-?}"
        printf '  cache: cached head-only epoch %.0fx faster than a full fine-tuning epoch, %.0fx than python head-only\n' \
            "$(echo "${crate[cached]} / ${crate[full]}" | bc -l)" "$(echo "${crate[cached]} / ${crate[$peer]}" | bc -l)"
        echo "  (best of ${IFS_BENCH_TRAIN_ROUNDS:-2} interleaved rounds; load average $load -> $(cut -d' ' -f1 /proc/loadavg))"
    fi
fi

if want ddp; then
    echo "== Data-parallel scaling under torchrun (Gloo on the loopback): 1 process x 2 threads against"
    echo "   2 processes x 1 thread, Fashion-MNIST 5,000 images at 28 px, float32, images/s of all processes"
    fm="$dir/fmnist-5k"
    [ -d "$fm/train" ] || "$cli" sample-data "$fm" --limit-per-class 500 >/dev/null
    "$bench_train" --small-cnn-source >"$dir/small_cnn.py"
    transform="transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])"
    port=$((29700 + RANDOM % 200))
    launch() { # launch PROCESSES THREADS command... (Debian's torchrun needs -r 2 -t 2 on Python 3.11)
        local n=$1 t=$2; shift 2
        port=$((port + 1))
        OMP_NUM_THREADS=$t GLOO_SOCKET_IFNAME=lo torchrun -r 2 -t 2 --nproc_per_node="$n" \
            --master_port="$port" "$@" 2>/dev/null | grep -v '^\*\|^Setting OMP' | tail -1
    }
    load=$(cut -d' ' -f1 /proc/loadavg)
    for case in "small_cnn 64 5 30" "resnet18 32 3 12"; do
        read -r arch batch warmup steps <<<"$case"
        declare -A rate=()
        for round in $(seq "${IFS_BENCH_TRAIN_ROUNDS:-2}"); do
            for config in "ours 1" "ours 2" "peer 1" "peer 2"; do
                read -r who n <<<"$config"
                t=$((2 / n))
                if [ "$who" = ours ]; then
                    out=$(launch "$n" "$t" --no_python "$bench_train" "$fm/train" --arch "$arch" \
                        --transform "$transform" --batch "$batch" --threads "$t" --workers "$t" \
                        --warmup "$warmup" --steps "$steps" --amp off)
                else
                    out=$(launch "$n" "$t" "$here/peer.py" ddp "$fm/train" "$arch" "$transform" \
                        "$batch" "$warmup" "$steps" "$dir/small_cnn.py")
                fi
                read -r r _ <<<"$out"
                [ -n "$r" ] || { echo "  $config failed for $arch"; continue; }
                if [ -z "${rate[$config]:-}" ] || (( $(echo "$r > ${rate[$config]}" | bc -l) )); then rate[$config]=$r; fi
            done
        done
        printf '  %-10s ours   1x2 %7.1f  2x1 %7.1f img/s (x%.2f)   python DDP 1x2 %7.1f  2x1 %7.1f img/s (x%.2f)\n' \
            "$arch" "${rate[ours 1]:-0}" "${rate[ours 2]:-0}" "$(echo "${rate[ours 2]:-0} / ${rate[ours 1]:-1}" | bc -l)" \
            "${rate[peer 1]:-0}" "${rate[peer 2]:-0}" "$(echo "${rate[peer 2]:-0} / ${rate[peer 1]:-1}" | bc -l)"
        printf '  %-10s ddp: ours 2x1 against python DDP 2x1: %.2fx\n' "$arch" \
            "$(echo "${rate[ours 2]:-0} / ${rate[peer 2]:-1}" | bc -l)"
        unset rate
    done
    echo "  (batch per process as given, best of ${IFS_BENCH_TRAIN_ROUNDS:-2} interleaved rounds; load average $load -> $(cut -d' ' -f1 /proc/loadavg))"
fi
