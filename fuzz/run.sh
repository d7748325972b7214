#!/bin/sh
# Builds the libFuzzer targets with clang, ASan and UBSan, and runs each
# for a bounded time from seeds made by fuzz/seeds.py (plus a few real
# MNIST files when CGRAD_DATA is set). A crash stops the script with the
# reproducer saved in the work folder.
#
# Usage: fuzz/run.sh [seconds per target]
#   seconds: the argument, else $FUZZ_SECONDS, else 20
#   CGRAD_FUZZ_BUILD    build folder (default: build-fuzz in the repository)
#   CGRAD_FUZZ_TARGETS  which to run (default: "png idx csv archive model")
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
secs=${1:-${FUZZ_SECONDS:-20}}
build=${CGRAD_FUZZ_BUILD:-$root/build-fuzz}
jobs=${CGRAD_FUZZ_JOBS:-2}

CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCGRAD_FUZZ=ON -DCGRAD_SANITIZE=ON -DCGRAD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target fuzz_png fuzz_idx fuzz_csv fuzz_archive fuzz_model

work=$build/fuzz-work
mkdir -p "$work"
python3 "$here/seeds.py" "$work"
if [ -n "${CGRAD_DATA:-}" ] && [ -d "$CGRAD_DATA/mnist_sample/train/3" ]; then
    for f in 10.png 12.png 27.png; do
        cp "$CGRAD_DATA/mnist_sample/train/3/$f" "$work/seeds_png/mnist_$f" 2>/dev/null || true
    done
fi

# Bounded memory: a parser that allocates what a header claims shows up
# as an out-of-memory crash, not a slow machine.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in ${CGRAD_FUZZ_TARGETS:-png idx csv archive model}; do
    echo "== fuzz_$t for ${secs}s"
    mkdir -p "$work/corpus_$t"
    "$build/fuzz/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$work/crash_${t}_" \
        "$work/corpus_$t" "$work/seeds_$t" 2>&1 | grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|.*(crash|leak|timeout|oom)-)" || true
    if ls "$work"/crash_"${t}"_* >/dev/null 2>&1; then
        echo "fuzz_$t: found a failing input:" "$work"/crash_"${t}"_*
        exit 1
    fi
done
echo "fuzz: no crash in ${secs}s per target"
