#!/usr/bin/env bash
# Sets everything up and runs the test suite: installs the Debian packages, configures and
# builds the CPU-only Release tree in build/, runs ctest; the same with ASan + UBSan in
# build-asan/ (RelWithDebInfo, fuzz corpora replayed too); then, when nvcc and cuDNN are present,
# builds the CUDA configuration in build-cuda/ too (its GPU tests skip without a GPU). This full
# run is what CI runs (.ci/run); about an hour on 2 cores.
#   bash scripts/test.sh           everything above
#   bash scripts/test.sh --quick   setup, the Release build and its ctest only (a few minutes on
#                                  2 cores once built; the first build takes longer)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    *) echo "test.sh: unknown option $a (use --quick or nothing)" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSPINEMARK_CUDA=OFF
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)
if [ "$quick" = 1 ]; then
  echo "test.sh --quick: the Release tests passed (CI also runs the deploy check, the sanitizer build and the CUDA build: bash scripts/test.sh)"
  exit 0
fi
bash scripts/deploy_check.sh   # the portable `deploy` preset: ldd, size, start-up time

# The same suite with AddressSanitizer and UndefinedBehaviorSanitizer (CPU only): every report
# fails its test. It also replays the committed fuzz corpora and past crash inputs (tests/fuzz/).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPINEMARK_CUDA=OFF -DSPINEMARK_SANITIZE=ON -DSPINEMARK_NATIVE=OFF
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j"$jobs" --timeout 1800)

# The CUDA configuration must compile wherever nvcc and cuDNN exist (CI has them, no GPU):
# its GPU tests skip with a message when no device is present.
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="$PATH:/usr/local/cuda/bin"
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DSPINEMARK_CUDA=ON -DSPINEMARK_TESTS=ON
  cmake --build build-cuda -j"$jobs"
  (cd build-cuda && ctest --output-on-failure -j"$jobs" --timeout 900)
else
  echo "test.sh: no nvcc here; the CUDA configuration was not built"
fi
