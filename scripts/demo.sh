#!/usr/bin/env bash
# Sets everything up and runs the main job: installs the Debian packages, builds the Release
# tree in build/ and runs `spinemark demo` (synthetic lateral lumbar films -> the three networks
# trained on the CPU -> held-out evaluation and report in demo/; about 15 minutes on 2 cores).
# Extra arguments go to `spinemark demo` (e.g. --minutes 30, --out DIR, --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSPINEMARK_CUDA=OFF
cmake --build build -j"$(nproc)" --target spinemark
./build/bin/spinemark version
./build/bin/spinemark demo --out demo "$@"
