#!/usr/bin/env bash
# Dependencies point one way (docs/style.md rule 1). Checks every project include
# (`#include "dir/file.h"`) of the product directories:
#   ranks  tensor 0 < autograd 1 < layers 2 < models 3 < train 4 < apps 5
#   - a file may include headers of its own rank or a lower one;
#   - `#include "cuda/..."` is allowed only in tensor/ and in cuda/ itself (everything above reaches
#     the GPU through tensor/device_backend.h);
#   - cuda/ may include only cuda/ and tensor/ headers.
#   - inside models/ and train/ every file lives in a room (a subfolder with one purpose), and the
#     rooms are ordered too; a room may include its own headers and those of a lower room, never
#     those of a room of the same rank (they are siblings) or a higher one:
#       models/: image 0 < geometry 1 < measure 2, nets 2 < pipeline 3
#       train/:  optim 0, synth 0, dist 0 < data 1 < eval 2 < run 3 < bench 4
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

# room_rank models/image -> 0; empty for a folder that is not a room.
room_rank() {
  case "$1" in
    models/image) echo 0 ;; models/geometry) echo 1 ;; models/measure) echo 2 ;; models/nets) echo 2 ;;
    models/pipeline) echo 3 ;;
    train/optim) echo 0 ;; train/synth) echo 0 ;; train/dist) echo 0 ;; train/data) echo 1 ;; train/eval) echo 2 ;;
    train/run) echo 3 ;; train/bench) echo 4 ;;
    *) echo "" ;;
  esac
}

# room_of REL: "models/image" for models/image/x.h, "models/" for a loose file of models/, else "".
room_of() {
  case "$1" in
    models/*/*|train/*/*) local a=${1%%/*} rest=${1#*/}; echo "$a/${rest%%/*}" ;;
    models/*|train/*) echo "${1%%/*}/" ;;
    *) echo "" ;;
  esac
}

# check_tree ROOT: prints violations, returns 1 when there is one.
check_tree() {
  local root=$1 violations=0 file rel dir line num inc target src_rank dst_rank src_room dst_room
  local dirs=(tensor autograd layers models train apps cuda)
  for dir in "${dirs[@]}"; do
    [ -d "$root/$dir" ] || continue
    while IFS= read -r file; do
      rel=${file#"$root"/}
      src_room=$(room_of "$rel")
      if [ -n "$src_room" ] && [ -z "$(room_rank "$src_room")" ]; then
        echo "$rel: not in a room of ${rel%%/*}/ (rooms: see the header of scripts/check_dependencies.sh)"
        violations=$((violations + 1))
      fi
      # grep -n prints "NUM:#include "x/y.h"", one per project include with a directory.
      while IFS= read -r line; do
        [ -n "$line" ] || continue
        num=${line%%:*}
        inc=$(printf '%s' "$line" | sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/')
        target=${inc%%/*}
        if [ "$target" = "cuda" ]; then
          if [ "$dir" != "tensor" ] && [ "$dir" != "cuda" ]; then
            echo "$rel:$num: #include \"$inc\" (only tensor/ and cuda/ may include cuda/)"
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
          continue
        fi
        # Rooms: only between two rooms of the same top folder.
        dst_room=$(room_of "$inc")
        [ "$target" = "$dir" ] || continue
        local sr dr
        sr=$(room_rank "$src_room"); dr=$(room_rank "$dst_room")
        [ -n "$sr" ] && [ -n "$dr" ] && [ "$src_room" != "$dst_room" ] || continue
        if [ "$dr" -gt "$sr" ]; then
          echo "$rel:$num: #include \"$inc\" ($src_room/ (room rank $sr) includes from $dst_room/ (room rank $dr), a room above it)"
          violations=$((violations + 1))
        elif [ "$dr" -eq "$sr" ]; then
          echo "$rel:$num: #include \"$inc\" ($src_room/ and $dst_room/ are sibling rooms of rank $sr: neither may include the other)"
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
  mkdir -p "$tmp"/{tensor,autograd,layers,models/{image,geometry,measure,nets,pipeline},train/{data,run,optim,synth,dist},apps,cuda,tests,bench}
  printf '#include "tensor/tensor.h"\n#include "cuda/backend.h"\n' > "$tmp/tensor/ops.cpp"         # allowed
  printf '#include <vector>\n#include "tensor/ops.h"\n' > "$tmp/autograd/var.h"                     # allowed
  printf '#include "autograd/var.h"\n#include "layers/x.h"\n#include "build_info.h"\n' > "$tmp/layers/x.h"  # allowed
  printf '#include "layers/x.h"\n  #include "train/data/t.h"\n' > "$tmp/models/geometry/m.cpp"   # 2: upward
  printf '#include "models/geometry/m.h"\n#include "apps/command.h"\n' > "$tmp/train/data/deep.cpp"  # 2: upward
  printf '#include "train/data/t.h"\n#include "cuda/backend.h"\n' > "$tmp/apps/cmd_bench.cpp"      # 2: cuda
  printf '#include "cuda/backend.h"\n' > "$tmp/apps/cmd_version.cpp"                               # 1: cuda
  printf '#include "cuda/ops_cuda.h"\n' > "$tmp/layers/glue.h"                                     # 1: cuda
  printf '#include "cuda/context.h"\n#include "tensor/tensor.h"\n#include "layers/x.h"\n' > "$tmp/cuda/k.cu"  # 3: cuda -> layers
  printf '#include "models/image/i.h"\n#include "models/geometry/g.h"\n' > "$tmp/models/image/i.cpp"    # 5: room above
  printf '#include "models/geometry/g.h"\n#include "models/nets/n.h"\n' > "$tmp/models/measure/a.cpp"  # 6: sibling
  printf '#include "train/optim/o.h"\n#include "train/run/r.h"\n' > "$tmp/train/data/d.cpp"            # 7: room above
  printf '#include "layers/x.h"\n#include "train/optim/o.h"\n' > "$tmp/train/dist/c.cpp"             # 8: sibling
  printf '#include "models/pipeline/p.h"\n#include "train/data/d.h"\n#include "train/dist/c.h"\n' > "$tmp/train/run/r.cpp"  # allowed
  printf '#include "layers/x.h"\n' > "$tmp/models/loose.h"                                          # 9: no room
  printf '#include "cuda/backend.h"\n#include "apps/command.h"\n' > "$tmp/tests/test_x.cpp"        # outside: ignored
  printf '#include "cuda/backend.h"\n' > "$tmp/bench/b.cpp"                                        # outside: ignored
  out=$(check_tree "$tmp")
  rc=$?
  local expect=(
    'models/geometry/m.cpp:2: #include "train/data/t.h" (models/ (rank 3) includes from train/ (rank 4), a layer above it)'
    'train/data/deep.cpp:2: #include "apps/command.h" (train/ (rank 4) includes from apps/ (rank 5), a layer above it)'
    'apps/cmd_bench.cpp:2: #include "cuda/backend.h" (only tensor/ and cuda/ may include cuda/)'
    'apps/cmd_version.cpp:1: #include "cuda/backend.h" (only tensor/ and cuda/ may include cuda/)'
    'layers/glue.h:1: #include "cuda/ops_cuda.h" (only tensor/ and cuda/ may include cuda/)'
    'cuda/k.cu:3: #include "layers/x.h" (cuda/ may include only tensor/ and cuda/)'
    'models/image/i.cpp:2: #include "models/geometry/g.h" (models/image/ (room rank 0) includes from models/geometry/ (room rank 1), a room above it)'
    'models/measure/a.cpp:2: #include "models/nets/n.h" (models/measure/ and models/nets/ are sibling rooms of rank 2: neither may include the other)'
    'train/data/d.cpp:2: #include "train/run/r.h" (train/data/ (room rank 1) includes from train/run/ (room rank 3), a room above it)'
    'train/dist/c.cpp:2: #include "train/optim/o.h" (train/dist/ and train/optim/ are sibling rooms of rank 0: neither may include the other)'
  )
  local e
  for e in "${expect[@]}"; do
    if ! grep -qxF "$e" <<<"$out"; then
      echo "self-test: missing expected violation: $e"
      fails=$((fails + 1))
    fi
  done
  if ! grep -qxF 'models/loose.h: not in a room of models/ (rooms: see the header of scripts/check_dependencies.sh)' <<<"$out"; then
    echo "self-test: missing expected violation: models/loose.h not in a room"
    fails=$((fails + 1))
  fi
  if [ "$(grep -c ': #include ' <<<"$out")" -ne "${#expect[@]}" ]; then
    echo "self-test: expected ${#expect[@]} violations, got:"
    echo "$out"
    fails=$((fails + 1))
  fi
  [ "$rc" -eq 1 ] || { echo "self-test: exit status $rc on a tree with violations, expected 1"; fails=$((fails + 1)); }
  # Remove the violations: the same tree must now pass.
  printf '#include "layers/x.h"\n' > "$tmp/models/geometry/m.cpp"
  printf '#include "models/geometry/m.h"\n' > "$tmp/train/data/deep.cpp"
  printf '#include "train/data/t.h"\n' > "$tmp/apps/cmd_bench.cpp"
  printf '#include "tensor/device_backend.h"\n' > "$tmp/apps/cmd_version.cpp"
  printf '#include "models/image/i.h"\n' > "$tmp/models/image/i.cpp"
  printf '#include "models/geometry/g.h"\n' > "$tmp/models/measure/a.cpp"
  printf '#include "train/optim/o.h"\n' > "$tmp/train/data/d.cpp"
  printf '#include "layers/x.h"\n' > "$tmp/train/dist/c.cpp"
  mv "$tmp/models/loose.h" "$tmp/models/nets/loose.h"
  printf '#include "tensor/tensor.h"\n' > "$tmp/layers/glue.h"
  printf '#include "cuda/context.h"\n#include "tensor/tensor.h"\n' > "$tmp/cuda/k.cu"
  out=$(check_tree "$tmp")
  rc=$?
  [ "$rc" -eq 0 ] || { echo "self-test: exit status $rc on a clean tree, expected 0:"; echo "$out"; fails=$((fails + 1)); }
  if [ "$fails" -gt 0 ]; then
    echo "check_dependencies self-test: FAILED ($fails)"
    return 1
  fi
  echo "check_dependencies self-test: passed (11 planted violations reported, exit 1; clean tree exit 0)"
  return 0
}

if [ "${1:-}" = "--self-test" ]; then
  self_test
  exit $?
fi
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
root=${root%/}
check_tree "$root"
