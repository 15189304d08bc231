#!/usr/bin/env bash
# Regenerates the seed inputs of tests/fuzz/corpus/<target>/ (tests/fuzz/make_seeds.cpp: made by the project's
# own writers, nothing from ../shared/). Inputs added by `scripts/fuzz.sh TARGET merge` stay.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cmake --build "$build" -j"$(nproc)" --target fuzz_seeds
"$build/bin/fuzz_seeds" tests/fuzz/corpus
