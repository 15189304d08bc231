#!/usr/bin/env bash
# The AASCE recipe (issue 8 §4): sets everything up, imports ../shared/data/aasce16-train with the
# project's importer (anatomical order, quirks flagged) into runs/aasce-data, trains the small
# preset for about 40 minutes on the CPU (configs/aasce_ap_small.json; validation split held out
# by seed) and writes the validation report (SMAPE by the exact rule of method.md §3.1).
# Extra arguments go to `spinemark train` (e.g. --minutes 20, or --resume to continue).
set -euo pipefail
cd "$(dirname "$0")/.."
src=../shared/data/aasce16-train
[ -d "$src" ] || { echo "aasce.sh: $src is not here (the AASCE training split is shared data, never in the repo)"; exit 1; }
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSPINEMARK_CUDA=OFF
cmake --build build -j"$(nproc)" --target spinemark
mkdir -p runs   # the import report is redirected into it before the importer runs
if [ ! -f runs/aasce-data/.imported ]; then
  ./build/bin/spinemark import aasce --src "$src" --out runs/aasce-data --absolute > runs/aasce-import.json
  touch runs/aasce-data/.imported
fi
resume=()
for a in "$@"; do [ "$a" = "--resume" ] && resume=(--resume); done
if [ ${#resume[@]} -gt 0 ]; then
  ./build/bin/spinemark train --out runs/aasce "$@"
else
  ./build/bin/spinemark train --config configs/aasce_ap_small.json --out runs/aasce "$@"
fi
echo "report: runs/aasce/eval-val/report.html"
