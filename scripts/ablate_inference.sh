#!/usr/bin/env bash
# Paired inference ablations of one trained model (docs/accuracy.md): the same weights on the same
# films with the ordered level decoding on or off (model.json "level_prior" kept or removed) and
# each quad_check mode, one eval folder per variant, then one table of the headline numbers.
#   bash scripts/ablate_inference.sh MODEL_DIR DATA OUT_DIR
# DATA is what `spinemark eval --data` takes (a folder or a .jsonl manifest). Needs python3 (to
# edit the copies' model.json) and a built build/bin/spinemark.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 MODEL_DIR DATA OUT_DIR" >&2; exit 2; }
model=$1 data=$2 out=$3
bin="$(cd "$(dirname "$0")/.." && pwd)/build/bin/spinemark"
[ -x "$bin" ] || { echo "ablate_inference.sh: build the program first ($bin)" >&2; exit 1; }
mkdir -p "$out"
variants="chain+retry chain+fallback chain+flag chain+off means+retry means+off"
for v in $variants; do
  m="$out/model-$v"
  rm -rf "$m" && cp -r "$model" "$m"
  python3 - "$m/model.json" "$v" <<'PY'
import json, sys
path, variant = sys.argv[1], sys.argv[2]
levels, quad = variant.split("+")
j = json.load(open(path))
if levels == "means":
    j.pop("level_prior", None)
elif "level_prior" not in j:
    sys.exit(f"{path}: this model has no level_prior (trained before the ordered decoding); only 'means' variants apply")
j["quad_check"] = quad
json.dump(j, open(path, "w"), indent=1)
PY
  rm -rf "$out/eval-$v"
  "$bin" eval --model "$m" --data "$data" --out "$out/eval-$v" > "$out/eval-$v.log" 2>&1 || true
done
python3 - "$out" $variants <<'PY'
import json, sys, os
out, variants = sys.argv[1], sys.argv[2:]
print("| variant | median rel. x / y % | median angle errors ° | SMAPE % | gross misses | mixed / off-level quads | verdict: miss films caught, false alarms |")
print("|---|---|---|---|---|---|---|")
for v in variants:
    p = os.path.join(out, "eval-" + v, "metrics.json")
    if not os.path.exists(p):
        print(f"| {v} | (failed: see eval-{v}.log) |"); continue
    m = json.load(open(p)); f = m["final"]; o = f["overall"]
    angles = " / ".join("%.2f" % a["median_abs_error"] for a in f["angles"].values())
    smape = "%.2f" % f["smape_percent"] if f.get("smape_percent") is not None else "–"
    g = m["gross_misses"]; q = m["quad_levels"]; vd = m["verdict"]
    print(f"| {v} | {o['rel_x_pct']['median']:.2f} / {o['rel_y_pct']['median']:.2f} | {angles} | {smape} | {g['misses']} of {g['landmarks']} | "
          f"{q['mixed']} / {q['off_level']} of {q['quads']} | {vd['gross_miss_films_caught']} of {vd['films_with_gross_miss']}, "
          f"{vd['films_without_gross_miss_marked']} of {vd['films_without_gross_miss']} |")
PY
