#!/usr/bin/env bash
# One command for a GPU machine (CMake, nvcc, PyTorch; no Debian packages, no network): configures
# the CUDA build against the headers carried in .carry/ (scripts/gpu_carry_prepare.sh), builds
# what it runs, then: test_cuda (op parity table, Var-op dispatch, one full ResNet + DSNT training
# step vs the CPU); test_cuda_train (train --device cuda: losses vs the CPU, bit-identical reruns,
# resume across devices, SyncBatchNorm's GPU path, NCCL over one rank); `spinemark train --device
# cuda` for a few hundred steps per stage against a CPU run of the same config, and the paper
# preset's detect stage (images per second); golden_check on the committed fixture on the CPU and with --device cuda; a
# fresh fixture (another seed, tests/golden/make_golden.py with this machine's PyTorch) checked on
# the GPU; `spinemark bench --device cuda --model all`; PyTorch's peer benchmark on cuda from
# .carry/bench/peer_torch.py (or ../shared/bench/); and a summary table last (GPU, test counts,
# golden results, train_step and batch-1 inference ours vs torch with ratios).
# Full logs go to $OUT when set (else build-gpu/logs). Budget: under 9 minutes on an H100 host;
# every step has its own timeout. Exit code 0 only when every test and golden check passed.
#   bash scripts/gpu_check.sh              # everything
#   bash scripts/gpu_check.sh --configure-only   # dry run of the configure step (works without a GPU)
#   SPINEMARK_GPU_ARCH=90 (default; "80;90" for A100 too)   SPINEMARK_GPU_BUILD=build-gpu
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)
configure_only=0
[ "${1:-}" = "--configure-only" ] && configure_only=1
build=${SPINEMARK_GPU_BUILD:-build-gpu}
arch=${SPINEMARK_GPU_ARCH:-90}
# Logs go to $build/logs; with $OUT set, the summary and one archive of all logs are copied there at
# exit (the device tool brings back at most 8 files).
logs=$root/$build/logs
[ "${build#/}" != "$build" ] && logs=$build/logs
rm -rf "$logs"
mkdir -p "$logs" "$build"
jobs=$(nproc 2>/dev/null || echo 4)
declare -a rows=()
row() { rows+=("$(printf '%-28s %-8s %6ss  %s' "$1" "$2" "$3" "$4")"); }
elapsed() { echo $(( $(date +%s) - $1 )); }
# Whole-run budget (s): each step's timeout is its own limit or what is left, whichever is less.
budget=${SPINEMARK_GPU_BUDGET:-540}
tmo() { local left=$(( budget - $(elapsed "$start") )); [ "$left" -lt "$1" ] && echo $(( left > 1 ? left : 1 )) || echo "$1"; }
over_budget() { [ $(( budget - $(elapsed "$start") )) -lt "${1:-15}" ]; }
summary() {
  echo
  echo "==================== gpu_check summary ($(elapsed "$start") s total) ===================="
  echo "gpu: ${gpu_name:-unknown}"
  printf '%-28s %-8s %7s  %s\n' step result time detail
  for r in "${rows[@]}"; do echo "$r"; done
  bench_table
  echo "logs: $logs${OUT:+ (archive: \$OUT/gpu_check_logs.tgz)}"
}
# train_step and infer_bs1 medians, ours vs PyTorch (same GPU, same run); ratio < 1: we are faster.
bench_table() {
  [ -s "$logs/bench_ours.jsonl" ] && [ -n "${py:-}" ] || return 0
  "$py" - "$logs/bench_ours.jsonl" "$logs/peer_torch.jsonl" <<'PY' 2>/dev/null || true
import json, os, sys
def load(p):
    out = {}
    if not os.path.exists(p):
        return out
    for line in open(p):
        if line.startswith("{"):
            r = json.loads(line)
            if "model" in r and "median_s" in r:
                out[(r["bench"], r["model"])] = r["median_s"]
    return out
ours, peer = load(sys.argv[1]), load(sys.argv[2])
print()
print("%-11s %-7s %12s %12s %7s" % ("bench", "model", "ours ms", "torch ms", "ratio"))
for bench in ("train_step", "infer_bs1", "infer_bsN"):
    for model in ("coarse", "refine", "detect"):
        o, p = ours.get((bench, model)), peer.get((bench, model))
        if o is None:
            continue
        ratio = "%7.2f" % (o / p) if p else "      -"
        print("%-11s %-7s %12.2f %12s %s" % (bench, model, o * 1e3, "%.2f" % (p * 1e3) if p else "-", ratio))
print("(goals, issue 21: train_step ratio <= 0.8, infer_bsN ratio <= 1.0; earlier: infer_bs1 < 1)")
PY
}
finish() {
  summary 2>&1 | tee "$logs/summary.txt"
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    cp "$logs/summary.txt" "$OUT/summary.txt"
    tar -czf "$OUT/gpu_check_logs.tgz" -C "$(dirname "$logs")" "$(basename "$logs")" 2>/dev/null
  fi
}
trap finish EXIT

# ---- the machine ---------------------------------------------------------------------------
gpu_name=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
[ -n "$gpu_name" ] || gpu_name="none found by nvidia-smi"
export PATH="/usr/local/cuda/bin:$PATH"
nvcc_bin=$(command -v nvcc || true)
py=$(command -v python3 || true)

# ---- dependencies: carried headers, cuDNN (toolkit or PyTorch's wheel) ------------------------
carry=$root/.carry/usr
if [ ! -d "$carry/include/eigen3" ]; then
  row configure FAIL 0 ".carry/ missing: run scripts/gpu_carry_prepare.sh here and carry .carry"
  exit 1
fi
# Each library is looked for in the toolkit first, then in PyTorch's NVIDIA wheels (nvidia/cudnn,
# nvidia/cublas, nvidia/cu13, ...), which is where an image with pip-installed PyTorch keeps them.
cuda_home=$(dirname "$(dirname "${nvcc_bin:-/usr/local/cuda/bin/nvcc}")")
site_nvidia=""
[ -n "$py" ] && site_nvidia=$("$py" -c 'import nvidia, os; print(" ".join(list(nvidia.__path__)))' 2>/dev/null || true)
search_roots=("$cuda_home" /usr/local/cuda /usr $site_nvidia)
# find_header NAME: first directory holding include/NAME (or NAME) under the search roots.
find_header() {
  local r f
  for r in "${search_roots[@]}"; do
    [ -e "$r/include/$1" ] && { echo "$r/include"; return; }
    [ -e "$r/targets/x86_64-linux/include/$1" ] && { echo "$r/targets/x86_64-linux/include"; return; }
  done
  for r in "${search_roots[@]}"; do
    [ -d "$r" ] && [ "$r" != /usr ] || continue
    f=$(find "$r" -maxdepth 4 -name "$1" -path '*include*' 2>/dev/null | sort | head -1)
    [ -n "$f" ] && { dirname "$f"; return; }
  done
}
# find_lib NAME: libNAME.so (or a versioned one) beside the search roots.
find_lib() {
  local r d f
  for r in "${search_roots[@]}"; do
    for d in lib64 lib targets/x86_64-linux/lib lib/x86_64-linux-gnu; do
      f=$(ls "$r/$d/lib$1.so" "$r/$d"/lib"$1".so.* 2>/dev/null | head -1)
      [ -n "$f" ] && { echo "$f"; return; }
    done
  done
  for r in "${search_roots[@]}"; do
    [ -d "$r" ] && [ "$r" != /usr ] || continue
    f=$(find "$r" -maxdepth 4 -name "lib$1.so*" 2>/dev/null | sort | head -1)
    [ -n "$f" ] && { echo "$f"; return; }
  done
}
cudnn_inc=$(find_header cudnn.h); cudnn_lib=$(find_lib cudnn)
cublas_inc=$(find_header cublas_v2.h); cublas_lib=$(find_lib cublas); cublaslt_lib=$(find_lib cublasLt)
{
  echo "nvcc: ${nvcc_bin:-none} ($("${nvcc_bin:-nvcc}" --version 2>/dev/null | tail -1))"
  echo "cuda_home: $cuda_home; python nvidia packages: ${site_nvidia:-none}"
  echo "cudnn: include ${cudnn_inc:-NOT FOUND}, library ${cudnn_lib:-NOT FOUND}"
  echo "cublas: include ${cublas_inc:-NOT FOUND}, library ${cublas_lib:-NOT FOUND}, Lt ${cublaslt_lib:-NOT FOUND}"
} | tee "$logs/deps.log"
dep_args=()
add_libdir() { export LD_LIBRARY_PATH="$(dirname "$1")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; }
if [ -n "$cudnn_inc" ] && [ -n "$cudnn_lib" ]; then
  dep_args+=(-DCUDNN_INCLUDE_DIR="$cudnn_inc" -DCUDNN_LIBRARY="$cudnn_lib")
  add_libdir "$cudnn_lib"
fi
if [ -n "$cublas_lib" ] && [ "$(dirname "$cublas_lib")" != "$cuda_home/lib64" ]; then
  # Outside the toolkit: hand CMake's FindCUDAToolkit the library and the header directory.
  dep_args+=(-DCUDA_cublas_LIBRARY="$cublas_lib")
  [ -n "$cublaslt_lib" ] && dep_args+=(-DCUDA_cublasLt_LIBRARY="$cublaslt_lib")
  add_libdir "$cublas_lib"
fi
if [ -n "$cublas_inc" ] && [ "$cublas_inc" != "$cuda_home/include" ]; then
  dep_args+=(-DCMAKE_CXX_FLAGS="-I$cublas_inc" -DCMAKE_CUDA_FLAGS="-I$cublas_inc")
fi

# ---- configure ------------------------------------------------------------------------------
t=$(date +%s)
stb_lib=()
[ -e "$carry/lib/libstb.a" ] && stb_lib=(-DSTB_LIBRARY="$carry/lib/libstb.a")
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
[ -e "$build/CMakeCache.txt" ] && gen=()  # keep the generator of an existing tree
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DSPINEMARK_CUDA=ON -DSPINEMARK_DICOM=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" ${nvcc_bin:+-DCMAKE_CUDA_COMPILER="$nvcc_bin"} \
  -DCMAKE_PREFIX_PATH="$carry" \
  -DEigen3_DIR="$carry/share/eigen3/cmake" -Ddoctest_DIR="$carry/lib/cmake/doctest" \
  -DCLI11_DIR="$carry/share/cmake/CLI11" -Dnlohmann_json_DIR="$carry/share/cmake/nlohmann_json" \
  -DSTB_INCLUDE_DIR="$carry/include/stb" "${stb_lib[@]}" "${dep_args[@]}" \
  -DPNG_PNG_INCLUDE_DIR="$carry/include" -DPNG_LIBRARY="$carry/lib/libpng16.a" \
  -DZLIB_INCLUDE_DIR="$carry/include" -DZLIB_LIBRARY="$carry/lib/libz.a" \
  -DJPEG_INCLUDE_DIR="$carry/include" -DJPEG_LIBRARY="$carry/lib/libjpeg.a" >"$logs/configure.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  tail -20 "$logs/configure.log"
  row configure FAIL "$(elapsed "$t")" "see configure.log"
  exit 1
fi
row configure ok "$(elapsed "$t")" "CUDA archs $arch, deps from .carry"
if [ $configure_only -eq 1 ]; then
  grep -E "CUDA|Eigen|build type" "$logs/configure.log" | sed 's/^/  /'
  exit 0
fi

# ---- build (only what this script runs) ---------------------------------------------------------
t=$(date +%s)
timeout "$(tmo 330)" cmake --build "$build" -j"$jobs" --target test_cuda test_cuda_train test_ops op_bench golden_check spinemark >"$logs/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  grep -E "error|Error" "$logs/build.log" | head -20
  row build FAIL "$(elapsed "$t")" "rc $rc, see build.log"
  exit 1
fi
row build ok "$(elapsed "$t")" "-j$jobs: test_cuda test_cuda_train test_ops op_bench golden_check spinemark"

# ---- GPU tests ----------------------------------------------------------------------------------
status=0
# gpu_test NAME: one doctest program (log NAME.log): test_cuda (device, allocator, determinism,
# TF32 conv, one full training step vs the CPU) and test_ops (the op table: float64 gradient
# checks and CPU-vs-GPU parity of every kernel in strict and TF32 modes).
gpu_test() {
  local t rc counts
  t=$(date +%s)
  timeout "$(tmo 240)" "$build/bin/$1" >"$logs/$1.log" 2>&1
  rc=$?
  counts=$(grep -E "^\[doctest\] (test cases|assertions)" "$logs/$1.log" | sed 's/\[doctest\] //' | tr -s ' ' | paste -sd ';' -)
  if grep -q "SKIPPED: no" "$logs/$1.log" && { [ "$1" = test_cuda ] || [ "$1" = test_cuda_train ]; }; then
    row "$1" SKIPPED "$(elapsed "$t")" "no usable GPU: $(grep -m1 -o 'SKIPPED: [^;]*' "$logs/$1.log")"
    status=1
  elif [ $rc -eq 0 ]; then
    row "$1" ok "$(elapsed "$t")" "$counts"
  else
    grep -E "ERROR|error|normalised error" "$logs/$1.log" | head -30
    row "$1" FAIL "$(elapsed "$t")" "rc $rc; $counts"
    status=1
  fi
}
gpu_test test_cuda
gpu_test test_cuda_train
gpu_test test_ops
grep -E "MESSAGE: (training step|CUDA device)" "$logs/test_cuda.log" | sed 's/^.*MESSAGE: /  test_cuda: /'
grep -E "MESSAGE: " "$logs/test_cuda_train.log" | sed 's/^.*MESSAGE: /  test_cuda_train: /'

# ---- `spinemark train --device cuda` (issue 21): every stage a few hundred steps on the GPU, ------
# the first steps' losses against a CPU run of the same config (stopped by Ctrl-C after some
# steps), and images per second per stage; then the paper preset's detect stage for a fixed
# number of steps. Synthetic lateral lumbar films (no data is carried). Logs: train_*.log.
train_steps=${SPINEMARK_GPU_TRAIN_STEPS:-300}
if over_budget 150; then
  row "train (cuda)" SKIPPED 0 "time budget ($budget s) spent"
  status=1
elif [ -z "$py" ]; then
  row "train (cuda)" SKIPPED 0 "no python3 (it writes the run configs and reads metrics.jsonl)"
  status=1
else
  t=$(date +%s)
  tdir=$logs/train
  rm -rf "$tdir" && mkdir -p "$tdir"
  "$build/bin/spinemark" synth --count 160 --seed 3 --size 256 --out "$tdir/data" >"$logs/train_synth.log" 2>&1
  # config NAME DEVICE PRESET STEPS: a run config from the demo's recipe with fixed step counts.
  config() {
    "$py" - "$root/configs/lumbar_synthetic_small.json" "$tdir/$1.json" "$2" "$3" "$4" "$tdir/data" <<'PY'
import json, sys
src, out, device, preset, steps, data = sys.argv[1:]
c = json.load(open(src))
c.update(device=device, preset=preset, threads=8, gpu={"deterministic": True, "tf32": False})
c["data"] = {"train": data, "val_fraction": 0.1, "val_images_max": 16}
for s in c["stages"].values():
    s.pop("minutes", None)
    s.update(steps=int(steps), log_every=1, validations=3, loader_threads=6)
    if preset == "paper":
        s["batch"] = 8
json.dump(c, open(out, "w"), indent=1)
PY
  }
  config gpu cuda small "$train_steps" && config cpu cpu small "$train_steps" && config paper cuda paper 100
  timeout "$(tmo 150)" "$build/bin/spinemark" train --config "$tdir/gpu.json" --out "$tdir/run_gpu" --no-eval >"$logs/train_gpu.log" 2>&1
  rc=$?
  # The CPU reference: the same config (so the same lr schedule), detect and coarse for ~25 s each
  # (only when the GPU run trained: there is nothing to compare otherwise).
  [ $rc -eq 0 ] && for s in detect coarse; do
    timeout -s INT 25 "$build/bin/spinemark" train --config "$tdir/cpu.json" --out "$tdir/run_cpu_$s" --stage "$s" --no-eval \
      >"$logs/train_cpu_$s.log" 2>&1
  done
  detail=$("$py" - "$tdir" <<'PY'
import json, os, statistics, sys
d = sys.argv[1]
def steps(run, stage):
    p = os.path.join(d, run, stage, "metrics.jsonl")
    out = {}
    if os.path.exists(p):
        for line in open(p):
            j = json.loads(line)
            if j.get("type") == "step":
                out[j["step"]] = j
    return out
parts = []
for stage in ("detect", "coarse", "refine"):
    g = steps("run_gpu", stage)
    if not g:
        parts.append(stage + ": no steps")
        continue
    ips = statistics.median(v["images_per_s"] for k, v in g.items() if k > 5) if len(g) > 6 else float("nan")
    text = "%s %d steps %.0f img/s loss %.4f->%.4f" % (stage, len(g), ips, g[min(g)]["loss"], g[max(g)]["loss"])
    c = steps("run_cpu_" + stage, stage)
    common = [k for k in sorted(c) if k in g][:10]
    if common:
        worst = max(abs(g[k]["loss"] - c[k]["loss"]) / abs(c[k]["loss"]) for k in common)
        text += " (cpu: steps 1-%d, rel. loss diff step1 %.1e, worst %.1e)" % (common[-1], abs(g[1]["loss"] - c[1]["loss"]) / abs(c[1]["loss"]), worst)
    parts.append(text)
print("; ".join(parts))
PY
)
  [ $rc -eq 0 ] || detail="rc $rc: $(grep -m1 -E 'error' "$logs/train_gpu.log" | cut -c1-160)"
  row "train (cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$detail"
  [ $rc -eq 0 ] || { tail -5 "$logs/train_gpu.log"; status=1; }
  if ! over_budget 90; then
    t=$(date +%s)
    timeout "$(tmo 90)" "$build/bin/spinemark" train --config "$tdir/paper.json" --out "$tdir/run_paper" --stage detect --no-eval \
      >"$logs/train_paper.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
      detail="$(grep -m1 -o 'detect: done.*' "$logs/train_paper.log"); $(tail -1 "$tdir/run_paper/detect/metrics.jsonl" | grep -o '"images_per_s":[0-9.]*')"
    else
      detail="rc $rc: $(grep -m1 -E 'error' "$logs/train_paper.log" | cut -c1-160)"
    fi
    row "train paper detect (cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$detail"
    [ $rc -eq 0 ] || { tail -5 "$logs/train_paper.log"; status=1; }
  fi
fi

# golden_check FIXTURE DEVICE LABEL: one comparison against a PyTorch fixture (log golden_LABEL.log).
golden() {
  local t rc detail
  if over_budget 10; then row "golden $3" SKIPPED 0 "time budget ($budget s) spent"; status=1; return; fi
  t=$(date +%s)
  timeout "$(tmo 90)" "$build/bin/golden_check" "$1" --device "$2" >"$logs/golden_$3.log" 2>&1
  rc=$?
  detail=$(grep -m1 -o "[0-9]* of [0-9]* comparisons failed" "$logs/golden_$3.log" || tail -1 "$logs/golden_$3.log")
  row "golden $3" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$detail"
  [ $rc -eq 0 ] || { grep -E "^FAIL|error" "$logs/golden_$3.log" | head -10; status=1; }
}
golden tests/golden/golden_seed1.safetensors cpu seed1_cpu
golden tests/golden/golden_seed1.safetensors cuda seed1_cuda
# A fresh fixture with another seed, made by this machine's PyTorch (CPU, float32).
seed=${SPINEMARK_GOLDEN_SEED:-7}
fresh="$logs/golden_seed$seed.safetensors"
if over_budget 60; then
  row "make_golden seed$seed" SKIPPED 0 "time budget ($budget s) spent"
  status=1
elif [ -n "$py" ] && "$py" -c "import torch, numpy" >/dev/null 2>&1; then
  t=$(date +%s)
  timeout "$(tmo 120)" "$py" tests/golden/make_golden.py --seed "$seed" --out "$fresh" >"$logs/make_golden.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    row "make_golden seed$seed" ok "$(elapsed "$t")" "torch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
    golden "$fresh" cuda "seed${seed}_cuda"
    golden "$fresh" cpu "seed${seed}_cpu"
  else
    row "make_golden seed$seed" FAIL "$(elapsed "$t")" "rc $rc, see make_golden.log"
    status=1
  fi
else
  row "make_golden seed$seed" SKIPPED 0 "no python3 with torch and numpy"
fi

# ---- end to end: the demo trains on the GPU (its held-out error is compared with the CPU's) ------
# demo DEVICE LABEL SNAPSHOTS LIMIT: one dsnt-demo run (log demo_DEVICE.log); returns its exit code.
demo() {
  local t rc log="$logs/demo_$1.log"
  t=$(date +%s)
  timeout "$(tmo "$4")" "$build/bin/spinemark" dsnt-demo --device "$1" --out "$3" >"$log" 2>&1
  rc=$?
  row "$2" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" \
    "held-out $(grep -m1 'held-out' "$log" | grep -o 'mean [0-9.]* px'), $(grep -m1 -o '^total.*' "$log")"
  [ $rc -eq 0 ] || tail -5 "$log"
  return $rc
}
if over_budget 60; then
  row "dsnt-demo (cuda)" SKIPPED 0 "time budget ($budget s) spent"
else
  demo cuda "dsnt-demo (cuda)" "$logs/demo_cuda" 60 || status=1
  demo cpu "dsnt-demo (cpu, reference)" "" 40  # the reference: its failure is reported, not fatal
fi

# ---- benchmarks (never a test: failures are reported, not fatal) --------------------------------
if over_budget 40; then
  row "bench (ours, cuda)" SKIPPED 0 "time budget ($budget s) spent"
else
  t=$(date +%s)
  timeout "$(tmo 180)" "$build/bin/spinemark" bench --device cuda --model all >"$logs/bench_ours.jsonl" 2>"$logs/bench_ours.err"
  rc=$?
  row "bench (ours, cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$(grep -c '^{' "$logs/bench_ours.jsonl") JSON lines, rc $rc"
  [ $rc -eq 0 ] || tail -5 "$logs/bench_ours.err"
fi
# The cost of determinism (train --device cuda's default): the training steps again with cuDNN's
# fixed deterministic algorithms, against the measured ones above.
if ! over_budget 60; then
  t=$(date +%s)
  timeout "$(tmo 90)" "$build/bin/spinemark" bench --device cuda --model all --deterministic >"$logs/bench_ours_det.jsonl" 2>"$logs/bench_ours_det.err"
  rc=$?
  row "bench deterministic (cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$("$py" - "$logs/bench_ours.jsonl" "$logs/bench_ours_det.jsonl" <<'PY' 2>/dev/null
import json, sys
def steps(p):
    return {r["model"]: r["median_s"] for r in map(json.loads, (l for l in open(p) if l.startswith("{"))) if r.get("bench") == "train_step"}
a, d = steps(sys.argv[1]), steps(sys.argv[2])
print("train_step deterministic/measured: " + ", ".join("%s %.2f" % (m, d[m] / a[m]) for m in sorted(d) if m in a))
PY
)"
fi
# Per-op GPU timings (the op table's op_bench) and the 2-step pipeline per image on the GPU.
if ! over_budget 60; then
  t=$(date +%s)
  timeout "$(tmo 60)" "$build/bin/op_bench" --device cuda --reps 5 >"$logs/op_bench_cuda.txt" 2>&1
  rc=$?
  row "op_bench (cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$(grep -c ' cuda ' "$logs/op_bench_cuda.txt") ops timed, rc $rc"
  t=$(date +%s)
  timeout "$(tmo 60)" "$build/bin/spinemark" bench --device cuda --model pipeline --infer-reps 10 >"$logs/bench_pipeline_cuda.jsonl" 2>&1
  rc=$?
  row "bench pipeline (cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" \
    "$(grep -o '"median_s":[0-9.e-]*' "$logs/bench_pipeline_cuda.jsonl" | head -2 | paste -sd ' ' -)"
fi
peer=""
for p in "$root/.carry/bench/peer_torch.py" "$root/../shared/bench/peer_torch.py"; do [ -e "$p" ] && peer=$p && break; done
if [ -z "$peer" ]; then
  row "peer_torch (cuda)" SKIPPED 0 "peer_torch.py not in .carry/bench (run gpu_carry_prepare.sh) nor ../shared/bench"
elif [ -z "$py" ]; then
  row "peer_torch (cuda)" SKIPPED 0 "no python3"
elif over_budget 40; then
  row "peer_torch (cuda)" SKIPPED 0 "time budget ($budget s) spent"
else
  t=$(date +%s)
  timeout "$(tmo 240)" "$py" "$peer" --device cuda --model all >"$logs/peer_torch.jsonl" 2>"$logs/peer_torch.err"
  rc=$?
  row "peer_torch (cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$(grep -c '^{' "$logs/peer_torch.jsonl") JSON lines, rc $rc"
  [ $rc -eq 0 ] || tail -5 "$logs/peer_torch.err"
fi
# ---- memory checker over test_cuda, when compute-sanitizer is there and time is left -------------
# The allocator case is left out: it asks for more memory than the card has on purpose, and
# memcheck counts each refused cudaMalloc as an error (seen on an H100: 4 "errors", all of them that).
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ] && ! over_budget 70; then
  t=$(date +%s)
  timeout "$(tmo 150)" "$sanitizer" --tool memcheck --error-exitcode 9 "$build/bin/test_cuda" \
    -tce='*allocator*' >"$logs/memcheck.log" 2>&1
  rc=$?
  row "memcheck (test_cuda)" "$([ $rc -eq 0 ] && echo ok || ([ $rc -eq 124 ] && echo TIMEOUT || echo FAIL))" "$(elapsed "$t")" \
    "$(grep -m1 -E 'ERROR SUMMARY' "$logs/memcheck.log")"
  [ $rc -eq 0 ] || [ $rc -eq 124 ] || { grep -m10 -E 'Invalid|at 0x|by thread' "$logs/memcheck.log"; status=1; }
else
  row "memcheck (test_cuda)" SKIPPED 0 "${sanitizer:+time budget spent}${sanitizer:-no compute-sanitizer}"
fi
# ---- the whole suite of the CUDA build on the GPU machine (the other programs, data tests skip) ----
if ! over_budget 150; then
  t=$(date +%s)
  timeout "$(tmo 120)" cmake --build "$build" -j"$jobs" >"$logs/build_all.log" 2>&1 &&
    (cd "$build" && timeout "$(tmo 120)" ctest -j"$jobs" --timeout 110 >"$logs/ctest.log" 2>&1)
  rc=$?
  row "ctest (CUDA build)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$(grep -m1 -E 'tests passed' "$logs/ctest.log" 2>/dev/null)"
  [ $rc -eq 0 ] || { grep -E 'Failed|\*\*\*' "$logs/ctest.log" 2>/dev/null | head -10; status=1; }
else
  row "ctest (CUDA build)" SKIPPED 0 "time budget ($budget s) spent"
fi
exit $status
