#!/usr/bin/env bash
# Sets everything up and runs the test suite: installs the Debian packages, configures and
# builds the CPU-only Release tree in build/, runs ctest; then, when nvcc and cuDNN are present,
# builds the CUDA configuration in build-cuda/ too (its GPU tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSPINEMARK_CUDA=OFF
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)
