#!/usr/bin/env bash
# One command for a GPU machine (CMake, nvcc, PyTorch; no Debian packages, no network): configures
# the CUDA build against the headers carried in .carry/ (scripts/gpu_carry_prepare.sh), builds
# what it runs, then: test_cuda (op parity table, Var-op dispatch, one full ResNet + DSNT training
# step vs the CPU); golden_check on the committed fixture on the CPU and with --device cuda; a
# fresh fixture (another seed, tests/golden/make_golden.py with this machine's PyTorch) checked on
# the GPU; `spinemark bench --device cuda --model all`; PyTorch's peer benchmark on cuda from
# .carry/bench/peer_torch.py (or ../shared/bench/); and a summary table last (GPU, test counts,
# golden results, train_step and batch-1 inference ours vs torch with ratios).
# Full logs go to $OUT when set (else build-gpu/logs). Budget: under 8 minutes on an H100 host;
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
logs=${OUT:-$root/$build/logs}
mkdir -p "$logs" "$build"
jobs=$(nproc 2>/dev/null || echo 4)
declare -a rows=()
row() { rows+=("$(printf '%-28s %-8s %6ss  %s' "$1" "$2" "$3" "$4")"); }
elapsed() { echo $(( $(date +%s) - $1 )); }
# Whole-run budget (s): each step's timeout is its own limit or what is left, whichever is less.
budget=${SPINEMARK_GPU_BUDGET:-470}
tmo() { local left=$(( budget - $(elapsed "$start") )); [ "$left" -lt "$1" ] && echo $(( left > 1 ? left : 1 )) || echo "$1"; }
over_budget() { [ $(( budget - $(elapsed "$start") )) -lt "${1:-15}" ]; }
summary() {
  echo
  echo "==================== gpu_check summary ($(elapsed "$start") s total) ===================="
  echo "gpu: ${gpu_name:-unknown}"
  printf '%-28s %-8s %7s  %s\n' step result time detail
  for r in "${rows[@]}"; do echo "$r"; done
  bench_table
  echo "logs: $logs"
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
print("(goals: train_step ratio <= 1.2, infer_bs1 ratio < 1)")
PY
}
trap summary EXIT

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
cudnn_args=()
cuda_home=$(dirname "$(dirname "${nvcc_bin:-/usr/local/cuda/bin/nvcc}")")
if [ ! -e "$cuda_home/include/cudnn.h" ] && [ ! -e /usr/include/cudnn.h ] && [ -n "$py" ]; then
  # PyTorch's cuDNN wheel (nvidia-cudnn-cu13): headers and libcudnn.so.9, no unversioned link.
  cudnn_root=$("$py" -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__) if nvidia.cudnn.__file__ else list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)
  if [ -n "$cudnn_root" ] && [ -e "$cudnn_root/include/cudnn.h" ]; then
    lib=$(ls "$cudnn_root"/lib/libcudnn.so* 2>/dev/null | head -1)
    cudnn_args=(-DCUDNN_INCLUDE_DIR="$cudnn_root/include" -DCUDNN_LIBRARY="$lib")
    export LD_LIBRARY_PATH="$cudnn_root/lib:${LD_LIBRARY_PATH:-}"
  fi
fi
if ! ls "$cuda_home"/lib64/libcublas.so* >/dev/null 2>&1 && ! ls "$cuda_home"/targets/*/lib/libcublas.so* >/dev/null 2>&1; then
  echo "gpu_check: warning: no libcublas under $cuda_home; CMake's CUDA::cublas will be missing" | tee -a "$logs/configure.log"
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
  -DSTB_INCLUDE_DIR="$carry/include/stb" "${stb_lib[@]}" "${cudnn_args[@]}" >"$logs/configure.log" 2>&1
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
timeout "$(tmo 330)" cmake --build "$build" -j"$jobs" --target test_cuda golden_check spinemark >"$logs/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  grep -E "error|Error" "$logs/build.log" | head -20
  row build FAIL "$(elapsed "$t")" "rc $rc, see build.log"
  exit 1
fi
row build ok "$(elapsed "$t")" "-j$jobs: test_cuda golden_check spinemark"

# ---- GPU tests ----------------------------------------------------------------------------------
status=0
t=$(date +%s)
timeout "$(tmo 240)" "$build/bin/test_cuda" >"$logs/test_cuda.log" 2>&1
rc=$?
counts=$(grep -E "^\[doctest\] (test cases|assertions)" "$logs/test_cuda.log" | sed 's/\[doctest\] //' | tr -s ' ' | paste -sd ';' -)
if grep -q "SKIPPED" "$logs/test_cuda.log"; then
  row test_cuda SKIPPED "$(elapsed "$t")" "no usable GPU: $(grep -m1 -o 'SKIPPED: [^;]*' "$logs/test_cuda.log")"
  status=1
elif [ $rc -eq 0 ]; then
  row test_cuda ok "$(elapsed "$t")" "$counts"
else
  grep -E "ERROR|error|normalised error" "$logs/test_cuda.log" | head -30
  row test_cuda FAIL "$(elapsed "$t")" "rc $rc; $counts"
  status=1
fi
grep -E "MESSAGE: (training step|CUDA device)" "$logs/test_cuda.log" | sed 's/^.*MESSAGE: /  test_cuda: /'

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
exit $status
