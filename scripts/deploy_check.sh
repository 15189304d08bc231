#!/usr/bin/env bash
# Builds the `deploy` preset (CMakePresets.json) and checks what it promises (issue 10): the
# program needs no shared library beyond libc, libm, libgomp and the loader; it is stripped and
# at most 5 MB; nothing was compiled with -march=native; it runs; and it starts fast: the time from
# process start to the first prediction, minus the pipeline's own time, is at most 0.5 s.
# The prediction uses SPINEMARK_DEPLOY_MODEL (a model folder) when set, else a model trained for
# one step per stage (untrained weights time the same). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
max_bytes=5000000       # 5 MB
max_startup_ms=500
allowed='^(linux-vdso\.so\.1|/?(lib64/)?ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libmvec\.so\.1|libgomp\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1)$'

cmake --preset deploy >/dev/null
cmake --build --preset deploy -j"$jobs"
bin=build-deploy/bin/spinemark
failures=0
summary=()
report() {   # report PASS|FAIL "what" "figure"
  summary+=("$(printf '%-4s %-34s %s' "$1" "$2" "$3")")
  [ "$1" = PASS ] || failures=$((failures + 1))
}
now_ns() { date +%s%N; }
# The fastest of $1 runs of the rest of the line, in ms (output discarded; fails if the command does).
fastest_ms() {
  local n=$1 best=''; shift
  for _ in $(seq "$n"); do
    local t0 t1; t0=$(now_ns); "$@" >/dev/null; t1=$(now_ns)
    local ms=$(((t1 - t0) / 1000000))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  echo "$best"
}

# 1. Shared libraries: every one ldd resolves (directly or not) must be on the allowed list.
libs=$(ldd "$bin" | awk '{print $1}' | sort -u)
extra=$(echo "$libs" | grep -Ev "$allowed" || true)
if [ -z "$extra" ] && ! ldd "$bin" | grep -q "not found"; then
  report PASS "shared libraries" "$(echo "$libs" | tr '\n' ' ')"
else
  report FAIL "shared libraries" "not allowed: $(echo "$extra" | tr '\n' ' ')"
fi

# 2. Stripped, and at most 5 MB.
bytes=$(stat -c %s "$bin")
if readelf -S "$bin" | grep -q '\.symtab'; then
  report FAIL "stripped" "the program still has a symbol table"
else
  report PASS "stripped" "no .symtab"
fi
if [ "$bytes" -le "$max_bytes" ]; then
  report PASS "size <= 5 MB" "$bytes bytes"
else
  report FAIL "size <= 5 MB" "$bytes bytes"
fi

# 3. Portable code: no compile command tunes for the build host.
if grep -q -- '-march=native' build-deploy/compile_commands.json; then
  report FAIL "no -march=native" "found in build-deploy/compile_commands.json"
else
  report PASS "no -march=native" "$(grep -c '"command"' build-deploy/compile_commands.json) compile commands"
fi

# 4. It runs; start-up cost of the program alone.
if "$bin" version >/dev/null && "$bin" predict --help >/dev/null; then
  report PASS "spinemark version / predict --help" \
    "$(fastest_ms 5 "$bin" version) ms / $(fastest_ms 5 "$bin" predict --help) ms (fastest of 5)"
else
  report FAIL "spinemark version / predict --help" "exit status non-zero"
fi

# 5. Process start to the first prediction, minus the pipeline's own time (summary.csv's ms).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
quiet() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; echo "deploy_check: failed: $*"; return 1; }; }
model=${SPINEMARK_DEPLOY_MODEL:-}
if [ -z "$model" ]; then
  quiet "$bin" synth --count 2 --seed 1 --out "$tmp/train"
  quiet "$bin" synth --count 1 --seed 1 --first 2 --out "$tmp/val"
  stage='{"minutes": 0.001, "batch": 2, "lr": 0.001, "warmup_steps": 1, "validations": 1}'
  cat >"$tmp/run.json" <<EOF
{"schema": "lumbar-lateral", "preset": "small", "seed": 1, "threads": 2,
 "data": {"train": "train", "val": "val", "val_images_max": 1},
 "stages": {"detect": $stage, "coarse": $stage, "refine": $stage}}
EOF
  quiet "$bin" train --config "$tmp/run.json" --out "$tmp/run" --no-eval
  model=$tmp/run/model
fi
quiet "$bin" synth --count 1 --seed 7 --out "$tmp/film"
film=$(ls "$tmp"/film/*.png | head -1)
best=''
for i in 1 2 3; do
  t0=$(now_ns)
  quiet "$bin" predict --model "$model" --image "$film" --out "$tmp/pred$i" --no-overlay
  t1=$(now_ns)
  total=$(((t1 - t0) / 1000000))
  pipeline=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "ms") c = i } NR == 2 { printf "%d", $c }' "$tmp/pred$i/summary.csv")
  overhead=$((total - pipeline))
  if [ -z "$best" ] || [ "$overhead" -lt "$best" ]; then best=$overhead; best_line="$total ms in all, pipeline $pipeline ms"; fi
done
if [ "$best" -le "$max_startup_ms" ]; then
  report PASS "start to first prediction" "pipeline + $best ms ($best_line; fastest of 3)"
else
  report FAIL "start to first prediction" "pipeline + $best ms > $max_startup_ms ms ($best_line)"
fi

echo
echo "deploy_check: $bin ($("$bin" version | head -1))"
printf '  %s\n' "${summary[@]}"
if [ "$failures" -gt 0 ]; then
  echo "deploy_check: $failures check(s) failed"
  exit 1
fi
echo "deploy_check: all checks passed"
