#!/usr/bin/env bash
# Does a 2-thread run collapse when another CPU-bound process shares the machine?
#   bash bench/contention.sh [MODEL] [SPINEMARK]     (default: detect, build/bin/spinemark)
# Runs `spinemark bench --model MODEL --threads 2` four ways, each twice, alternating:
#   alone / beside one busy-loop process, each with libgomp's default wait policy (spin up to
#   300,000 iterations at a barrier: GOMP_SPINCOUNT=300000) and with the program's own default,
#   passive (threads sleep at once at a barrier; apps/omp_wait_policy.h).
# Prints the median train_step and infer_bs1 time of each and the slowdown ratio beside the hog.
# A run that merely shares the cores fairly should be at most about 1.5x slower (3 runnable
# threads on 2 cores); much more than that is a collapse (threads spinning at barriers while the
# thread they wait for has no core).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-detect}
bin=${2:-build/bin/spinemark}
one() {  # $1 = label, rest = env assignments
  local label=$1; shift
  env "$@" "$bin" bench --model "$model" --threads 2 --steps 5 --warmup 2 --infer-reps 10 |
    python3 -c '
import json, sys
label = sys.argv[1]
out = {}
for line in sys.stdin:
    if line.startswith("{"):
        r = json.loads(line)
        if "median_s" in r and r["bench"] in ("train_step", "infer_bs1"):
            out[r["bench"]] = r["median_s"]
print(json.dumps({"case": label, **out}))' "$label"
}
hog_start() { (exec nice -n 0 sh -c 'while :; do :; done') & HOG=$!; }
hog_stop() { kill "$HOG" 2>/dev/null || true; wait "$HOG" 2>/dev/null || true; }
trap hog_stop EXIT
results=()
for round in 1 2; do
  results+=("$(one alone_spin GOMP_SPINCOUNT=300000)")
  results+=("$(one alone_passive)")
  hog_start; results+=("$(one hog_spin GOMP_SPINCOUNT=300000)"); hog_stop
  hog_start; results+=("$(one hog_passive)"); hog_stop
done
printf '%s\n' "${results[@]}" | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin]
med = {}
for case in ("alone_spin", "alone_passive", "hog_spin", "hog_passive"):
    rs = [r for r in rows if r["case"] == case]
    med[case] = {k: statistics.median(r[k] for r in rs) for k in ("train_step", "infer_bs1")}
    print("%-14s train_step %.3f s  infer_bs1 %.1f ms" % (case, med[case]["train_step"], 1e3 * med[case]["infer_bs1"]))
for pol in ("spin", "passive"):
    a, h = med["alone_" + pol], med["hog_" + pol]
    print("beside a busy process, %-7s: train_step x%.2f, infer_bs1 x%.2f" %
          (pol, h["train_step"] / a["train_step"], h["infer_bs1"] / a["infer_bs1"]))
'
