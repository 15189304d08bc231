#!/usr/bin/env bash
# Do two builds of spinemark compute the same thing? Runs each one through the same short,
# fixed-step job (synth 48 + 12 films -> train detect, coarse and refine for 12 steps each ->
# eval on the 12) with 2 threads and compares, file by file, the films, annotations, weights and
# model files (sha256), and every number of eval's metrics.json except timings. Use it before and
# after a refactor that must not change behaviour (a move of code, a split of a function): the
# run is bit-identical within one CPU kernel family (README, "reproducible").
#   scripts/same_run.sh OLD_BINARY NEW_BINARY [WORK_DIR]
# Exit 0 when everything matches; otherwise the differences are printed and the exit code is 1.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: scripts/same_run.sh OLD_BINARY NEW_BINARY [WORK_DIR]" >&2; exit 2; }
old=$(realpath "$1"); new=$(realpath "$2"); work=${3:-$(mktemp -d "${TMPDIR:-/tmp}/same_run.XXXXXX")}

# run BIN OUT: the job; leaves OUT/hashes.txt and OUT/metrics.txt.
run() {
  local bin=$1 out=$2
  rm -rf "$out"; mkdir -p "$out"
  "$bin" synth --schema lumbar-lateral --count 48 --seed 3 --out "$out/data/train" > /dev/null
  "$bin" synth --schema lumbar-lateral --count 12 --seed 3 --first 48 --out "$out/data/val" > /dev/null
  cat > "$out/cfg.json" <<J
{"schema": "lumbar-lateral", "preset": "small", "data": {"train": "data/train", "val": "data/val"}, "seed": 5,
 "threads": 2, "stages": {"detect": {"steps": 12, "batch": 4, "validations": 2},
                          "coarse": {"steps": 12, "batch": 4, "validations": 2},
                          "refine": {"steps": 12, "batch": 8, "validations": 2}}}
J
  "$bin" train --config "$out/cfg.json" --out "$out/run" > "$out/train.log" 2>&1
  # An untrained model's films may be skipped or reviewed: eval's exit code is not the question.
  "$bin" eval --model "$out/run/model" --data "$out/data/val" --out "$out/eval" > "$out/eval.log" 2>&1 || true
  # model.json's provenance (git revision, run folder) names the build and the folder, not the
  # computation: compared without it.
  python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); j.pop("provenance", None); print(json.dumps(j, sort_keys=True))' \
    "$out/run/model/model.json" > "$out/model_json_sans_provenance.txt"
  (cd "$out" && find data run/model model_json_sans_provenance.txt -type f ! -name model.json | LC_ALL=C sort | xargs sha256sum) \
    > "$out/hashes.txt"
  python3 - "$out/eval/metrics.json" > "$out/metrics.txt" <<'P'
import json, sys
def walk(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            if "second" not in k and "time" not in k and "ms" not in k:
                walk(v, path + "." + k)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            walk(v, "%s[%d]" % (path, i))
    else:
        print(path, x)
walk(json.load(open(sys.argv[1])))
P
}

echo "same_run: $old -> $work/old"; run "$old" "$work/old"
echo "same_run: $new -> $work/new"; run "$new" "$work/new"
rc=0
diff "$work/old/hashes.txt" "$work/new/hashes.txt" || rc=1
diff "$work/old/metrics.txt" "$work/new/metrics.txt" || rc=1
if [ "$rc" = 0 ]; then
  echo "same_run: identical ($(wc -l < "$work/new/hashes.txt") files, $(wc -l < "$work/new/metrics.txt") metric values)"
else
  echo "same_run: the two builds differ (above)"
fi
exit "$rc"
