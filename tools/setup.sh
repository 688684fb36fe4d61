#!/usr/bin/env bash
# One-time set-up on Debian 12 (idempotent, non-interactive, as root or with
# sudo): installs the Debian packages da_dist builds and tests with, makes the
# project's Python environment with the Torch GPU users have (pip torch, CUDA
# build), then configures and builds da_dist in Release under build/.
#   bash tools/setup.sh            # packages + venv + build
#   BUILD_DIR=out bash tools/setup.sh
#   TORCH_VERSION=2.11.0 TORCHVISION_VERSION=0.26.0 VENV_DIR=.venv   (defaults)
# Torch comes from the venv's wheel (CMake finds it through
# torch.utils.cmake_prefix_path), NCCL from the wheel's nvidia-nccl package
# (the library libtorch_cuda itself loads), the CUDA toolkit from
# /usr/local/cuda: with both, the NCCL communicator and the CUDA glue are
# compiled and linked (DA_WITH_NCCL=AUTO).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libyaml-cpp-dev libhdf5-dev zlib1g-dev libspdlog-dev libgtest-dev
  libgdal-dev
  libdeflate-dev                       # decodes the deflate chunks the loader reads directly
  libcli11-dev nlohmann-json3-dev     # command lines, JSON out (header-only)
  python3-venv                         # the project's venv (Torch from pip)
  # Seen by the venv (--system-site-packages), so that one numpy ABI serves
  # them and python3-gdal: archives written by h5py, plots, GDAL rasters.
  python3-h5py python3-numpy python3-matplotlib python3-gdal
  protobuf-compiler python3-protobuf   # the independent TensorBoard event reader of the tests
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

# --- Python environment: Torch as GPU users install it -----------------------
TORCH_VERSION=${TORCH_VERSION:-2.11.0}
TORCHVISION_VERSION=${TORCHVISION_VERSION:-0.26.0}
VENV_DIR=${VENV_DIR:-.venv}
PY="$PWD/$VENV_DIR/bin/python"
# Debian's interpreter, so that --system-site-packages means Debian's modules.
[ -x "$PY" ] || /usr/bin/python3 -m venv --system-site-packages "$VENV_DIR"
if "$PY" - "$TORCH_VERSION" "$TORCHVISION_VERSION" 2>/dev/null <<'PY'
import sys, torch, torchvision
sys.exit(0 if (torch.__version__.split("+")[0], torchvision.__version__.split("+")[0]) == tuple(sys.argv[1:3]) else 1)
PY
then
  echo "setup: torch $TORCH_VERSION present in $VENV_DIR"
else
  echo "setup: installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION into $VENV_DIR"
  # numpy < 2: Debian's h5py, matplotlib and GDAL bindings are built for numpy 1.
  "$PY" -m pip install --no-input --disable-pip-version-check --progress-bar off -q \
    "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "numpy<2"
fi
TORCH_PREFIX=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
# The NCCL that the wheel's libtorch_cuda loads; the CUDA toolkit's otherwise.
NCCL_ROOT=${NCCL_ROOT:-$("$PY" -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])' 2>/dev/null || true)}

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  -DDA_PYTHON="$PY" ${NCCL_ROOT:+-DNCCL_ROOT="$NCCL_ROOT"} ${CMAKE_ARGS:-}
# SETUP_NO_BUILD: configure only (tools/sanitize.sh builds chosen targets itself).
[[ -n "${SETUP_NO_BUILD:-}" ]] || cmake --build "$BUILD_DIR" -j "$JOBS"
