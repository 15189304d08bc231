#!/usr/bin/env bash
# One command for a GPU machine (CMake, nvcc, PyTorch; no Debian packages, no network): configures
# the CUDA build against the headers carried in .carry/ (scripts/gpu_carry_prepare.sh), builds,
# runs the GPU tests, the GPU benchmark when bench/ has one, PyTorch's peer benchmark when
# ../shared/bench/peer_torch.py is reachable, and prints a short summary table last.
# Full logs go to $OUT when set (else build-gpu/logs). Budget: under 8 minutes on 16 cores.
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
summary() {
  echo
  echo "==================== gpu_check summary ($(elapsed "$start") s total) ===================="
  echo "gpu: ${gpu_name:-unknown}"
  printf '%-28s %-8s %7s  %s\n' step result time detail
  for r in "${rows[@]}"; do echo "$r"; done
  echo "logs: $logs"
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

# ---- build ------------------------------------------------------------------------------------
t=$(date +%s)
timeout 300 cmake --build "$build" -j"$jobs" >"$logs/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  grep -E "error|Error" "$logs/build.log" | head -20
  row build FAIL "$(elapsed "$t")" "rc $rc, see build.log"
  exit 1
fi
row build ok "$(elapsed "$t")" "-j$jobs"

# ---- GPU tests ----------------------------------------------------------------------------------
status=0
t=$(date +%s)
timeout 180 "$build/bin/test_cuda" >"$logs/test_cuda.log" 2>&1
rc=$?
counts=$(grep -E "^\[doctest\] test cases" "$logs/test_cuda.log" | sed 's/\[doctest\] //')
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
# The golden test of the core engine, when it exists (CPU path until the layers dispatch to CUDA).
if [ -x "$build/bin/golden_check" ] && [ -e tests/golden/golden_seed1.safetensors ]; then
  t=$(date +%s)
  timeout 120 "$build/bin/golden_check" tests/golden/golden_seed1.safetensors >"$logs/golden.log" 2>&1
  rc=$?
  row golden_check "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "rc $rc"
  [ $rc -eq 0 ] || status=1
fi

# ---- benchmarks (never a test: failures are reported, not fatal) --------------------------------
bench_bin=""
for b in "$build/bin/bench" "$build/bin/spinemark_bench" "$build/bin/bench_train"; do [ -x "$b" ] && bench_bin=$b && break; done
if [ -n "$bench_bin" ]; then
  t=$(date +%s)
  timeout 150 "$bench_bin" --device cuda --model all >"$logs/bench_ours.jsonl" 2>"$logs/bench_ours.err"
  rc=$?
  row "bench (ours, cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$(wc -l <"$logs/bench_ours.jsonl") JSON lines, rc $rc"
else
  row "bench (ours, cuda)" SKIPPED 0 "no benchmark program in $build/bin (bench/ has none yet)"
fi
peer=""
for p in "$root/../shared/bench/peer_torch.py" "$root/shared/bench/peer_torch.py"; do [ -e "$p" ] && peer=$p && break; done
if [ -z "$peer" ]; then
  row "peer_torch (cuda)" SKIPPED 0 "../shared/bench/peer_torch.py not reachable on this machine"
elif [ -z "$py" ]; then
  row "peer_torch (cuda)" SKIPPED 0 "no python3"
else
  t=$(date +%s)
  timeout 150 "$py" "$peer" --device cuda --model all >"$logs/peer_torch.jsonl" 2>"$logs/peer_torch.err"
  rc=$?
  row "peer_torch (cuda)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(elapsed "$t")" "$(wc -l <"$logs/peer_torch.jsonl") JSON lines, rc $rc"
fi
exit $status
