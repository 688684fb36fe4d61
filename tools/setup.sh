#!/usr/bin/env bash
# One-time set-up on Debian 12 (idempotent, non-interactive, as root or with
# sudo): installs the Debian packages da_dist builds and tests with, then
# configures and builds it in Release under build/.
#   bash tools/setup.sh            # packages + build
#   BUILD_DIR=out bash tools/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config git
  libtorch-dev            # libtorch 1.13 (CPU)
  libopenmpi-dev openmpi-bin
  libyaml-cpp-dev libhdf5-dev zlib1g-dev libspdlog-dev libgtest-dev
  libgdal-dev
  python3-torch python3-torchvision python3-h5py python3-numpy   # reference values and benchmark peers
  protobuf-compiler python3-protobuf   # the independent TensorBoard event reader of the tests
  python3-matplotlib                   # tools/plot_run.py
  python3-gdal                         # scene benchmark peer (tools/bench/scene_peer.py)
  # A real one-node Slurm cluster for the tests of slurm/: tests/slurm/cluster.sh
  # starts munged, slurmctld and slurmd as root in a temporary directory.
  slurmctld slurmd slurm-client munge
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j "$JOBS"
