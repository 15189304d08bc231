#!/usr/bin/env bash
# Installs everything spinemark needs to build, test and run on Debian 12 (run as root).
# Product dependencies: compiler, CMake, Eigen, libpng, libjpeg-turbo, stb, nlohmann-json, CLI11,
# doctest, DCMTK, OpenMP, Open MPI (data-parallel training: mpirun -np N spinemark train).
# Developer-only extras (golden fixtures, peer benchmark): python3-torch, python3-numpy,
# installed only with --dev. The product never needs them.
set -euo pipefail
dev=0
for a in "$@"; do case "$a" in --dev) dev=1 ;; esac; done
# chromium: tests/test_report.cpp opens the evaluation report headless to check that it renders.
pkgs=(build-essential cmake pkg-config git libeigen3-dev libpng-dev libjpeg62-turbo-dev libstb-dev doctest-dev
      nlohmann-json3-dev libcli11-dev libdcmtk-dev libomp-dev libopenmpi-dev openmpi-bin chromium)
[ "$dev" = 1 ] && pkgs+=(python3-torch python3-numpy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi
