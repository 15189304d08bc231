#!/usr/bin/env bash
# Data-parallel training throughput on this machine (issue 21 part 2): the same fixed-step
# training of the `small` preset on synthetic films, as one process with 2 OpenMP threads and as
# `mpirun -np 2` ranks with 1 thread each (the same global batch: each rank takes half of it).
# Throughput is the training images per second of metrics.jsonl's step lines, the first logging
# interval (start-up, first batches) left out. The two set-ups alternate, REPS times each, so that
# a load that comes and goes on the machine falls on both alike; the medians and their ratio
# (2 ranks / 1 process; the aim is >= 0.9) are printed with the machine's details.
#   scripts/scaling_bench.sh [--build DIR] [--stage detect|coarse|refine] [--steps N] [--batch B]
#                            [--reps R] [--work DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build stage=detect steps=40 batch=16 reps=2 work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "usage: scripts/scaling_bench.sh [--build DIR] [--stage S] [--steps N] [--batch B] [--reps R] [--work DIR]" >&2; exit 2 ;;
  esac
done
bin=$build/bin/spinemark
[ -x "$bin" ] || { echo "scaling_bench: $bin not found (build first)" >&2; exit 2; }
command -v mpirun > /dev/null || { echo "scaling_bench: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }
"$bin" version | grep -q "MPI          : yes" || { echo "scaling_bench: $bin was built without MPI" >&2; exit 2; }
work=${work:-$(mktemp -d "${TMPDIR:-/tmp}/scaling_bench.XXXXXX")}
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # CI and this machine run as root

if [ ! -f "$work/data/train/.done" ]; then
  "$bin" synth --schema lumbar-lateral --count 96 --seed 1 --size 512 --out "$work/data/train" > /dev/null
  "$bin" synth --schema lumbar-lateral --count 8 --seed 1 --size 512 --first 96 --out "$work/data/val" > /dev/null
  touch "$work/data/train/.done"
fi
log_every=$((steps / 4))
[ "$log_every" -ge 1 ] || log_every=1
cat > "$work/cfg.json" <<J
{"schema": "lumbar-lateral", "preset": "small", "data": {"train": "data/train", "val": "data/val", "val_images_max": 8},
 "seed": 1, "threads": 2,
 "stages": {"$stage": {"steps": $steps, "batch": $batch, "validations": 1, "log_every": $log_every, "loader_threads": 1}}}
J

# throughput RUN: mean images/s of the step lines after the first.
throughput() {
  python3 - "$1/$stage/metrics.jsonl" <<'P'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ips = [r["images_per_s"] for r in rows if r.get("type") == "step"][1:]
print(f"{sum(ips) / len(ips):.2f}")
P
}

one=() two=()
for r in $(seq 1 "$reps"); do
  rm -rf "$work/run1"
  "$bin" train --config "$work/cfg.json" --out "$work/run1" --stage "$stage" --no-eval --threads 2 > "$work/run1.log" 2>&1
  one+=("$(throughput "$work/run1")")
  rm -rf "$work/run2"
  mpirun --allow-run-as-root --oversubscribe -np 2 --bind-to none \
    "$bin" train --config "$work/cfg.json" --out "$work/run2" --stage "$stage" --no-eval --threads 1 > "$work/run2.log" 2>&1
  two+=("$(throughput "$work/run2")")
  echo "repetition $r: 1 process x 2 threads ${one[-1]} img/s, 2 ranks x 1 thread ${two[-1]} img/s"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
m1=$(median "${one[@]}") m2=$(median "${two[@]}")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "spinemark: $("$bin" version | sed -n 's/.*git revision : //p'), CPU kernels $("$bin" version | sed -n 's/.*CPU kernels  : \([a-z0-9]*\).*/\1/p'), $(mpirun --version | head -1)"
echo "small preset, $stage, global batch $batch, $steps steps, median of $reps"
echo "1 process x 2 threads: $m1 img/s"
echo "2 ranks x 1 thread   : $m2 img/s"
awk -v a="$m2" -v b="$m1" 'BEGIN {printf "ratio (2 ranks / 1 process): %.3f (aim >= 0.9)\n", a / b}'
