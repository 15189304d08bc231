#!/usr/bin/env bash
# Dependencies point one way (docs/style.md rule 1). Checks every project include
# (`#include "dir/file.h"`) of the product directories:
#   ranks  tensor 0 < autograd 1 < layers 2 < models 3 < train 4 < apps 5
#   - a file may include headers of its own rank or a lower one;
#   - `#include "cuda/..."` is allowed only in tensor/, in cuda/ itself and in apps/cmd_version.cpp
#     (the device report of `spinemark version`);
#   - cuda/ may include only cuda/ and tensor/ headers.
# tests/ and bench/ are outside the product layering (they may test any layer, and the GPU tests
# call cuda/ directly); the build (CMakeLists.txt, scripts/) is not C++ and not checked.
# Includes without a directory ("build_info.h", generated) and system includes (<...>) are
# ignored. Prints each violation as `file:line: include (rule)` and exits 1; exits 0 when clean.
#   scripts/check_dependencies.sh [SOURCE_DIR]   (default: the repository holding this script)
#   scripts/check_dependencies.sh --self-test    (runs the check on a temporary fake tree)
set -u

rank_of() {
  case "$1" in
    tensor) echo 0 ;; autograd) echo 1 ;; layers) echo 2 ;; models) echo 3 ;; train) echo 4 ;; apps) echo 5 ;;
    *) echo "" ;;
  esac
}

# check_tree ROOT: prints violations, returns 1 when there is one.
check_tree() {
  local root=$1 violations=0 file rel dir line num inc target src_rank dst_rank
  local dirs=(tensor autograd layers models train apps cuda)
  for dir in "${dirs[@]}"; do
    [ -d "$root/$dir" ] || continue
    while IFS= read -r file; do
      rel=${file#"$root"/}
      # grep -n prints "NUM:#include "x/y.h"", one per project include with a directory.
      while IFS= read -r line; do
        [ -n "$line" ] || continue
        num=${line%%:*}
        inc=$(printf '%s' "$line" | sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/')
        target=${inc%%/*}
        if [ "$target" = "cuda" ]; then
          if [ "$dir" != "tensor" ] && [ "$dir" != "cuda" ] && [ "$rel" != "apps/cmd_version.cpp" ]; then
            echo "$rel:$num: #include \"$inc\" (only tensor/, cuda/ and apps/cmd_version.cpp may include cuda/)"
            violations=$((violations + 1))
          fi
          continue
        fi
        dst_rank=$(rank_of "$target")
        [ -n "$dst_rank" ] || continue  # not a layered directory (tests/, generated, ...)
        if [ "$dir" = "cuda" ]; then
          if [ "$target" != "tensor" ]; then
            echo "$rel:$num: #include \"$inc\" (cuda/ may include only tensor/ and cuda/)"
            violations=$((violations + 1))
          fi
          continue
        fi
        src_rank=$(rank_of "$dir")
        if [ "$dst_rank" -gt "$src_rank" ]; then
          echo "$rel:$num: #include \"$inc\" ($dir/ (rank $src_rank) includes from $target/ (rank $dst_rank), a layer above it)"
          violations=$((violations + 1))
        fi
      done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"/]+/[^"]*"' "$file")
    done < <(find "$root/$dir" -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' -o -name '*.cu' -o -name '*.cuh' \) | LC_ALL=C sort)
  done
  if [ "$violations" -gt 0 ]; then
    echo "check_dependencies: $violations violation(s) of docs/style.md rule 1 under $root"
    return 1
  fi
  echo "check_dependencies: every include under $root follows docs/style.md rule 1"
  return 0
}

# A fake tree with one file per rule: the check must report exactly the planted violations, and
# pass once they are removed.
self_test() {
  local tmp out rc fails=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_dependencies.XXXXXX") || return 1
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp"/{tensor,autograd,layers,models,train/sub,apps,cuda,tests,bench}
  printf '#include "tensor/tensor.h"\n#include "cuda/backend.h"\n' > "$tmp/tensor/ops.cpp"         # allowed
  printf '#include <vector>\n#include "tensor/ops.h"\n' > "$tmp/autograd/var.h"                     # allowed
  printf '#include "autograd/var.h"\n#include "layers/x.h"\n#include "build_info.h"\n' > "$tmp/layers/x.h"  # allowed
  printf '#include "layers/x.h"\n  #include "train/t.h"\n' > "$tmp/models/m.cpp"                   # 2: upward
  printf '#include "models/m.h"\n#include "apps/command.h"\n' > "$tmp/train/sub/deep.cpp"          # 2: upward, in a subfolder
  printf '#include "train/t.h"\n#include "cuda/backend.h"\n' > "$tmp/apps/cmd_bench.cpp"           # 2: cuda
  printf '#include "cuda/backend.h"\n' > "$tmp/apps/cmd_version.cpp"                               # allowed
  printf '#include "cuda/ops_cuda.h"\n' > "$tmp/layers/glue.h"                                     # 1: cuda
  printf '#include "cuda/context.h"\n#include "tensor/tensor.h"\n#include "layers/x.h"\n' > "$tmp/cuda/k.cu"  # 3: cuda -> layers
  printf '#include "cuda/backend.h"\n#include "apps/command.h"\n' > "$tmp/tests/test_x.cpp"        # outside: ignored
  printf '#include "cuda/backend.h"\n' > "$tmp/bench/b.cpp"                                        # outside: ignored
  out=$(check_tree "$tmp")
  rc=$?
  local expect=(
    'models/m.cpp:2: #include "train/t.h" (models/ (rank 3) includes from train/ (rank 4), a layer above it)'
    'train/sub/deep.cpp:2: #include "apps/command.h" (train/ (rank 4) includes from apps/ (rank 5), a layer above it)'
    'apps/cmd_bench.cpp:2: #include "cuda/backend.h" (only tensor/, cuda/ and apps/cmd_version.cpp may include cuda/)'
    'layers/glue.h:1: #include "cuda/ops_cuda.h" (only tensor/, cuda/ and apps/cmd_version.cpp may include cuda/)'
    'cuda/k.cu:3: #include "layers/x.h" (cuda/ may include only tensor/ and cuda/)'
  )
  local e
  for e in "${expect[@]}"; do
    if ! grep -qxF "$e" <<<"$out"; then
      echo "self-test: missing expected violation: $e"
      fails=$((fails + 1))
    fi
  done
  if [ "$(grep -c ': #include ' <<<"$out")" -ne "${#expect[@]}" ]; then
    echo "self-test: expected ${#expect[@]} violations, got:"
    echo "$out"
    fails=$((fails + 1))
  fi
  [ "$rc" -eq 1 ] || { echo "self-test: exit status $rc on a tree with violations, expected 1"; fails=$((fails + 1)); }
  # Remove the violations: the same tree must now pass.
  printf '#include "layers/x.h"\n' > "$tmp/models/m.cpp"
  printf '#include "models/m.h"\n' > "$tmp/train/sub/deep.cpp"
  printf '#include "train/t.h"\n' > "$tmp/apps/cmd_bench.cpp"
  printf '#include "tensor/tensor.h"\n' > "$tmp/layers/glue.h"
  printf '#include "cuda/context.h"\n#include "tensor/tensor.h"\n' > "$tmp/cuda/k.cu"
  out=$(check_tree "$tmp")
  rc=$?
  [ "$rc" -eq 0 ] || { echo "self-test: exit status $rc on a clean tree, expected 0:"; echo "$out"; fails=$((fails + 1)); }
  if [ "$fails" -gt 0 ]; then
    echo "check_dependencies self-test: FAILED ($fails)"
    return 1
  fi
  echo "check_dependencies self-test: passed (5 planted violations reported, exit 1; clean tree exit 0)"
  return 0
}

if [ "${1:-}" = "--self-test" ]; then
  self_test
  exit $?
fi
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
root=${root%/}
check_tree "$root"
