#!/usr/bin/env bash
# Sets everything up and runs the main job: installs the Debian packages, builds the Release
# tree in build/ and runs `spinemark dsnt-demo` (pictures in dsnt-demo/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSPINEMARK_CUDA=OFF
cmake --build build -j"$(nproc)" --target spinemark
./build/bin/spinemark version
./build/bin/spinemark dsnt-demo --out dsnt-demo "$@"
