#!/usr/bin/env bash
# Builds da_dist with CUDA and NCCL on a GPU machine that has no package
# access: Torch from a CUDA PyTorch installed with pip (or the libtorch zip),
# NCCL from that PyTorch's nvidia-nccl package (or the CUDA toolkit), and
# everything else from the prefix tools/gpu/gather_deps.sh made on Debian 12.
#
#   bash tools/gpu/build_gpu.sh --deps DIR/prefix [--libtorch DIR] [--nccl DIR]
#        [--build DIR] [--python PY] [-- extra cmake arguments]
#   bash tools/gpu/build_gpu.sh --deps DIR/prefix --check-deps
#
#   --check-deps  only builds tools/gpu/probe against the prefix (no Torch,
#               CUDA or NCCL needed) and runs it on 2 MPI ranks: a minute,
#               where the da_dist build takes many
#
#   --deps      the unpacked prefix of gather_deps.sh (holds env.sh)
#   --libtorch  an unpacked libtorch zip (cxx11 ABI); default: the Torch of
#               `PY -c 'import torch'` (torch.utils.cmake_prefix_path)
#   --nccl      a directory with include/nccl.h and lib/libnccl.so*; default:
#               PY's nvidia-nccl package, else the CUDA toolkit's
#   --build     build directory (default build-gpu); --python (default python3)
# Needs a C++17 compiler, CMake >= 3.22 and the CUDA toolkit (nvcc, for
# Torch's CMake files). Prints the configure summary (Torch, CUDA, NCCL) and
# ends with the path of the da_dist binary. Source DIR/prefix/env.sh in the
# shell that runs it (MPI and the libraries are found through it).
set -euo pipefail
cd "$(dirname "$0")/../.."

deps="" libtorch="" nccl="" build=build-gpu py=python3 check_deps=0
extra=()
while (($#)); do
  case "$1" in
    --deps) deps=$2; shift 2 ;;
    --libtorch) libtorch=$2; shift 2 ;;
    --nccl) nccl=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --python) py=$2; shift 2 ;;
    --check-deps) check_deps=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build_gpu: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$deps" ] && [ -f "$deps/env.sh" ] || { echo "build_gpu: --deps must name the prefix made by tools/gpu/gather_deps.sh (no env.sh in '${deps}')" >&2; exit 2; }
# shellcheck source=/dev/null
source "$deps/env.sh"

# The prefix's libraries as CMake should find them: MPI through its wrapper
# (relocated by OPAL_PREFIX in env.sh), HDF5 by naming its serial flavour's
# header directory and library (Debian's layout, which FindHDF5 does not
# search under a root; its h5cc wrapper would answer Debian's /usr paths).
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
deps_args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_LIBRARY_ARCHITECTURE="$arch"
  -DMPI_C_COMPILER="$DA_DEPS_PREFIX/bin/mpicc" -DMPIEXEC_EXECUTABLE="$DA_DEPS_PREFIX/bin/mpirun"
  -DHDF5_C_COMPILER_EXECUTABLE=HDF5_C_COMPILER_EXECUTABLE-NOTFOUND
  -DHDF5_C_INCLUDE_DIR="$DA_DEPS_PREFIX/include/hdf5/serial"
  -DHDF5_hdf5_LIBRARY_RELEASE="$DA_DEPS_PREFIX/lib/$arch/hdf5/serial/libhdf5.so")
mpirun_args=(-np 2 --oversubscribe)
[ "$(id -u)" = 0 ] && mpirun_args+=(--allow-run-as-root)

if ((check_deps)); then
  cmake -S tools/gpu/probe -B "$build-probe" -DCMAKE_PREFIX_PATH="$DA_DEPS_PREFIX" "${deps_args[@]}"
  cmake --build "$build-probe" -j"$(nproc)"
  mpirun "${mpirun_args[@]}" "$build-probe/deps_probe" "$(mktemp -d)"
  exit 0
fi

if [ -n "$libtorch" ]; then
  torch_prefix=$(cd "$libtorch" && pwd)
  abi=$(grep -ho '_GLIBCXX_USE_CXX11_ABI=[01]' "$torch_prefix"/share/cmake/Torch/TorchConfig.cmake | head -1 | cut -d= -f2)
else
  torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  abi=$("$py" -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')
  "$py" -c 'import torch; assert torch.version.cuda, "this PyTorch has no CUDA"; print("build_gpu: PyTorch", torch.__version__, "CUDA", torch.version.cuda)'
fi
# The Debian libraries are built with the C++11 std::string ABI; a Torch
# built with the old one (pip wheels before PyTorch 2.7, libtorch's
# "pre-cxx11" zip) cannot be linked with them.
[ "${abi:-1}" = 1 ] || { echo "build_gpu: Torch at $torch_prefix uses the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=0); use PyTorch >= 2.7 or the cxx11-ABI libtorch zip" >&2; exit 2; }

if [ -z "$nccl" ]; then
  nccl=$("$py" -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)
fi
if [ -z "$nccl" ] && [ -n "${CUDA_HOME:-}" ]; then nccl=$CUDA_HOME; fi
[ -n "$nccl" ] && [ -f "$nccl/include/nccl.h" ] || { echo "build_gpu: no nccl.h found (looked in PyTorch's nvidia-nccl package and CUDA_HOME); pass --nccl DIR" >&2; exit 2; }

# pip's cuDNN (Torch's CMake files look for it when Torch was built with it).
cudnn=$("$py" -c 'import nvidia.cudnn as n; print(list(n.__path__)[0])' 2>/dev/null || true)
cudnn_args=()
[ -n "$cudnn" ] && cudnn_args=(-DCUDNN_INCLUDE_PATH="$cudnn/include" -DCUDNN_LIBRARY_PATH="$(ls "$cudnn"/lib/libcudnn.so* | head -1)")

cmake -S . -B "$build" -DCMAKE_PREFIX_PATH="$torch_prefix;$DA_DEPS_PREFIX" "${deps_args[@]}" \
  -DDA_WITH_NCCL=ON -DNCCL_ROOT="$nccl" "${cudnn_args[@]}" "${extra[@]}"
cmake --build "$build" -j"$(nproc)"
echo "build_gpu: $PWD/$build/src/da_dist (run it in a shell that sourced $deps/env.sh)"
