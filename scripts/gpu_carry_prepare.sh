#!/usr/bin/env bash
# Fills .carry/ (git-ignored) with the header-only dependencies and their CMake package files,
# copied from this machine's Debian packages, so that scripts/gpu_check.sh can configure and
# build on a GPU machine that has CMake, nvcc and PyTorch but no Debian packages and no network.
# Layout: .carry/usr is a prefix (CMAKE_PREFIX_PATH) mirroring /usr:
#   include/{eigen3,doctest,CLI,nlohmann,stb}   headers
#   share/eigen3/cmake, share/cmake/{CLI11,nlohmann_json}, lib/cmake/doctest   package configs
#   lib/libstb.a                                 Debian's stb implementations (static)
# and .carry/bench/peer_torch.py, a copy of ../shared/bench/peer_torch.py (the PyTorch peer).
# doctest's config hard-codes the prefix /usr; the copy computes it from its own location.
# Usage: bash scripts/gpu_carry_prepare.sh   then pass carry: [".carry"] to the device run.
set -euo pipefail
cd "$(dirname "$0")/.."
dst=.carry/usr
rm -rf .carry
mkdir -p "$dst/include" "$dst/share/cmake" "$dst/lib/cmake"

need() { [ -e "$1" ] || { echo "gpu_carry_prepare: missing $1 (run scripts/setup.sh first)" >&2; exit 1; }; }
for p in /usr/include/eigen3 /usr/share/eigen3/cmake /usr/include/doctest /usr/lib/cmake/doctest /usr/include/CLI \
         /usr/share/cmake/CLI11 /usr/include/nlohmann /usr/share/cmake/nlohmann_json /usr/include/stb/stb_image.h; do
  need "$p"
done

cp -r /usr/include/eigen3 /usr/include/doctest /usr/include/CLI /usr/include/nlohmann "$dst/include/"
mkdir -p "$dst/include/stb"
cp /usr/include/stb/*.h "$dst/include/stb/"
mkdir -p "$dst/share/eigen3"
cp -r /usr/share/eigen3/cmake "$dst/share/eigen3/"
cp -r /usr/share/cmake/CLI11 /usr/share/cmake/nlohmann_json "$dst/share/cmake/"
cp -r /usr/lib/cmake/doctest "$dst/lib/cmake/"
# doctest: relocatable prefix (lib/cmake/doctest -> three levels up).
sed -i 's|^set(_IMPORT_PREFIX "/usr")|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
  "$dst/lib/cmake/doctest/doctestTargets.cmake"
# Any other hard-coded /usr prefix would silently point at the GPU machine's /usr: refuse.
if grep -rl 'set(_IMPORT_PREFIX "/usr")' "$dst" >/dev/null 2>&1; then
  echo "gpu_carry_prepare: a package config still hard-codes /usr:" >&2
  grep -rl 'set(_IMPORT_PREFIX "/usr")' "$dst" >&2
  exit 1
fi
# PNG and JPEG input (models/image/png_read.cpp, models/image/jpeg_read.cpp): libpng, zlib and libjpeg-turbo
# headers and Debian's static libraries, so the GPU machine needs none of them installed.
for h in png.h pngconf.h pnglibconf.h zlib.h zconf.h jpeglib.h jerror.h jmorecfg.h x86_64-linux-gnu/jconfig.h; do
  need "/usr/include/$h"
  cp "/usr/include/$h" "$dst/include/"
done
for a in libpng16.a libz.a libjpeg.a; do
  need "/usr/lib/x86_64-linux-gnu/$a"
  cp "/usr/lib/x86_64-linux-gnu/$a" "$dst/lib/"
done
# stb: Debian's static library holds the implementations (else CMake compiles them itself).
if [ -e /usr/lib/x86_64-linux-gnu/libstb.a ]; then cp /usr/lib/x86_64-linux-gnu/libstb.a "$dst/lib/"; fi

# The PyTorch peer benchmark (public measuring stick, not part of the repo): ../shared is not on
# the GPU machine, so gpu_check.sh runs this copy.
peer=../shared/bench/peer_torch.py
if [ -e "$peer" ]; then
  mkdir -p .carry/bench
  cp "$peer" .carry/bench/peer_torch.py
  chmod u+w .carry/bench/peer_torch.py
else
  echo "gpu_carry_prepare: note: $peer not found; gpu_check.sh will skip the PyTorch comparison" >&2
fi

echo "gpu_carry_prepare: .carry ready ($(du -sh .carry | cut -f1)); pass carry: [\".carry\"] to the device run"
