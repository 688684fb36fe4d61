#!/usr/bin/env bash
# Makes the payload of the GPU check (tools/gpu/device_check.sh): what a
# borrowed GPU machine needs beside the source tree and its own Python with
# torch 2.11.0+cu130. Runs here, after tools/setup.sh (its venv's torch is the
# pinned one the binaries are built against).
#
#   bash tools/gpu/make_payload.sh        # writes gpu_payload.tar.gz (and gpu_payload/)
#
# 1. build-gpu/: a Release build without GDAL (DA_WITH_GDAL=OFF: its
#    libraries would not fit), with the install RPATH, of da_dist, da_tiles,
#    da_bench_step and test_cuda;
# 2. build-gpu/deps/: Debian's run-time packages of Open MPI, HDF5, yaml-cpp,
#    spdlog and fmt (tools/gpu/gather_deps.sh --runtime-only), once;
# 3. gpu_payload/: the binaries at their build-tree paths (build/...), our
#    libraries and any library only this machine has in lib/, the packages
#    in deps/ without documentation, headers, static libraries or any library
#    nothing needs (tools/gpu/payload_closure.py), and env.sh;
# 4. gpu_payload.tar.gz, refused above PAYLOAD_MAX_MIB (60).
# Environment: PYTHON [.venv/bin/python], BUILD_DIR [build-gpu], JOBS [nproc].
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
PY=${PYTHON:-$root/.venv/bin/python}
build=${BUILD_DIR:-$root/build-gpu}
payload=$root/gpu_payload
max_mib=${PAYLOAD_MAX_MIB:-60}
[ -x "$PY" ] || { echo "make_payload: $PY not found: run tools/setup.sh first (or set PYTHON)" >&2; exit 2; }

torch_prefix=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
torch_version=$("$PY" -c 'import torch; print(torch.__version__)')
nccl_root=$("$PY" -c 'import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])')
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDA_WITH_GDAL=OFF -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
  -DCMAKE_PREFIX_PATH="$torch_prefix" -DDA_PYTHON="$PY" -DNCCL_ROOT="$nccl_root" >"$build/configure.log" 2>&1 ||
  { tail -30 "$build/configure.log" >&2; exit 1; }
grep -q "NCCL: ON" "$build/configure.log" ||
  { echo "make_payload: the build in $build has no NCCL (see $build/configure.log)" >&2; exit 1; }
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target da_dist da_tiles da_bench_step test_cuda

deps=$build/deps
[ -f "$deps/prefix/env.sh" ] || bash "$root/tools/gpu/gather_deps.sh" --runtime-only --no-gdal --no-gtest --out "$deps"

rm -rf "$payload"
mkdir -p "$payload/lib"
for bin in src/da_dist tools/da_tiles/da_tiles tools/bench_train/da_bench_step tests/cuda/test_cuda; do
  mkdir -p "$payload/build/$(dirname "$bin")"
  cp "$build/$bin" "$payload/build/$bin"
done
find "$build" -path "$build/deps" -prune -o -name 'libda_dist*.so*' -print -o -name 'libda_test*.so*' -print |
  while read -r lib; do cp -a "$lib" "$payload/lib/"; done
cp -a "$deps/prefix" "$payload/deps"
(
  cd "$payload/deps/usr"
  rm -rf include share/doc share/doc-base share/man share/lintian share/locale share/apport share/X11 lib/x86_64-linux-gnu/fortran
  find . -name '*.a' -delete
  # Of the programs, Open MPI's launcher and its daemon (mpirun is a link to orterun).
  find bin -type f ! -name orterun ! -name orted ! -name ompi_info -delete
  find bin -xtype l -delete
)
"$PY" "$root/tools/gpu/payload_closure.py" "$payload" --python "$PY" --prune --carry-host

cat >"$payload/env.sh" <<'ENV'
# The GPU check's payload (tools/gpu/make_payload.sh). `source` it to set
# DA_PAYLOAD and DA_PAYLOAD_ENV: the environment (env NAME=VALUE...) under
# which the payload's programs run against DA_PAYLOAD_PYTHON's torch (default
# python3); `env "${DA_PAYLOAD_ENV[@]}" prog ...`. Python itself runs
# outside it (the payload's Debian libraries are not for the machine's own).
DA_PAYLOAD=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_da_torch=$("${DA_PAYLOAD_PYTHON:-python3}" -c "import os, torch; t = os.path.dirname(torch.__file__); n = os.path.join(os.path.dirname(t), 'nvidia'); print(':'.join([os.path.join(t, 'lib')] + [os.path.join(n, p, 'lib') for p in sorted(os.listdir(n)) if os.path.isdir(os.path.join(n, p, 'lib'))]))")
_da_deps=$DA_PAYLOAD/deps/usr
_da_arch=$_da_deps/lib/x86_64-linux-gnu
DA_PAYLOAD_ENV=(
  "PATH=$_da_deps/bin:$PATH"
  "LD_LIBRARY_PATH=$DA_PAYLOAD/lib:$_da_arch:$_da_deps/lib:$_da_arch/hdf5/serial:$_da_arch/openmpi/lib:$_da_torch"
  # Open MPI and PMIx were built for /usr: look for plug-ins, help files and configuration here.
  "OPAL_PREFIX=$_da_deps" "OPAL_LIBDIR=$_da_arch/openmpi/lib" "PMIX_INSTALL_PREFIX=$_da_deps"
  "PMIX_MCA_mca_base_component_path=$_da_arch/pmix2/lib/pmix"
  "OMPI_ALLOW_RUN_AS_ROOT=1" "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
  # test_cuda finds da_dist and da_tiles at their build-tree paths here.
  "DA_TEST_BINARY_DIR=$DA_PAYLOAD/build"
)
unset _da_torch _da_deps _da_arch
ENV
{
  echo "da_dist GPU check payload"
  echo "commit: $(git -C "$root" rev-parse HEAD)$(git -C "$root" diff --quiet HEAD -- . ':!gpu_payload' 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "made: $(date -u '+%Y-%m-%d %H:%M UTC') on $(. /etc/os-release && echo "$PRETTY_NAME"), glibc $(ldd --version | head -1 | awk '{print $NF}')"
  echo "built against torch $torch_version ($torch_prefix)"
  echo "packages:"; sed 's/^/  /' "$deps/packages.txt"
} >"$payload/MANIFEST.txt"

tar -C "$root" -czf "$root/gpu_payload.tar.gz" gpu_payload
size=$(stat -c %s "$root/gpu_payload.tar.gz")
mib=$(( (size + 1048575) / 1048576 ))
echo "make_payload: gpu_payload.tar.gz $mib MiB ($(du -sh "$payload" | cut -f1) unpacked), limit $max_mib MiB"
((mib <= max_mib)) || { echo "make_payload: the payload is over $max_mib MiB" >&2; exit 1; }
