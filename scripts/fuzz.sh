#!/usr/bin/env bash
# Runs one libFuzzer target for N minutes (docs/reliability.md):
#   scripts/fuzz.sh TARGET MINUTES          fuzz; new inputs go to build-fuzz/corpus/TARGET/
#   scripts/fuzz.sh TARGET merge            add the inputs that reach new coverage to tests/fuzz/corpus/TARGET/
#   scripts/fuzz.sh TARGET MINUTES -fork=1 -ignore_crashes=1   extra libFuzzer flags: go on past a
#                                           known finding (each one is still written as below)
# Targets: safetensors image annotation schema run_config network_config checkpoint aasce.
# Builds build-fuzz/ with clang (ASan + UBSan + libFuzzer) when needed; runs under nice -n 19.
# A finding is written to build-fuzz/crashes/TARGET/; once fixed, copy it to fuzz/crashes/TARGET/
# so that every later CI run replays it (ctest fuzz_replay_TARGET).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET MINUTES|merge}
what=${2:?usage: scripts/fuzz.sh TARGET MINUTES|merge}
build=${SPINEMARK_FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPINEMARK_CUDA=OFF \
    -DSPINEMARK_TESTS=OFF -DSPINEMARK_FUZZ=ON -DSPINEMARK_NATIVE=OFF
fi
cmake --build "$build" -j"$(nproc)" --target "fuzz_$target"
work="$build/corpus/$target"
mkdir -p "$work" "$build/crashes/$target" "tests/fuzz/corpus/$target"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ "$what" = merge ]; then
  exec nice -n 19 "$build/bin/fuzz_$target" -merge=1 "tests/fuzz/corpus/$target" "$work"
fi
exec nice -n 19 "$build/bin/fuzz_$target" -max_total_time=$((what * 60)) -print_final_stats=1 -timeout=30 \
  -rss_limit_mb=2560 -artifact_prefix="$build/crashes/$target/" "${@:3}" "$work" "tests/fuzz/corpus/$target"
