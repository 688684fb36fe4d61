#!/usr/bin/env bash
# Gathers, on a Debian 12 (bookworm) machine with package access, every
# library da_dist builds against except Torch, NCCL and CUDA (Open MPI,
# yaml-cpp, HDF5, spdlog/fmt, zlib, GoogleTest, GDAL) as Debian packages,
# unpacked into one relocatable prefix, for a GPU machine that has a CUDA
# PyTorch (or the libtorch zip) but no package access. Copy the tarball
# there and follow tools/gpu/README.md (build_gpu.sh does the build).
#
#   bash tools/gpu/gather_deps.sh [--out DIR] [--no-gdal] [--no-gtest] [--runtime-only]
#
# --runtime-only leaves out the -dev packages (headers, CMake files): what
# binaries built here need to run there (tools/gpu/make_payload.sh).
#
# Writes DIR (default: gpu-deps) /
#   debs/          the .deb files (apt-get download; nothing is installed here)
#   prefix/        every package unpacked with dpkg -x (prefix/usr/...)
#   prefix/env.sh  `source` it before configuring, building or running
#   packages.txt   the package list with versions
#   da_dist-deps-bookworm.tar.gz   prefix/ packed, for the copy
#
# Which packages: the -dev packages of our dependencies (headers, CMake
# files), and the run-time libraries with everything they need as apt would
# install it on a fresh system, except Debian's base (libc6, libstdc++6,
# priority required): a GPU machine that can build C++ has those (its glibc must be at least
# bookworm's 2.36: Ubuntu 24.04 and Debian 12 or later). Needs apt-get,
# apt-cache and dpkg-deb; runs as any user (apt-get download needs no root).
set -euo pipefail

out=gpu-deps
with_gdal=1
with_gtest=1
with_dev=1
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --no-gdal) with_gdal=0; shift ;;
    --no-gtest) with_gtest=0; shift ;;
    --runtime-only) with_dev=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "gather_deps: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "gather_deps: needs $tool (run on Debian 12)" >&2; exit 2; }
done
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")
[ "$codename" = bookworm ] || echo "gather_deps: warning: this is '$codename', not bookworm (Debian 12); the prefix targets this release's glibc" >&2

# Headers, CMake files and link names: these packages alone (their own
# dependencies are mostly other -dev packages that our build never reads).
dev=(libopenmpi-dev libyaml-cpp-dev libhdf5-dev libspdlog-dev libfmt-dev zlib1g-dev)
# The run-time libraries and programs, with everything they need.
runtime=(openmpi-bin openmpi-common libopenmpi3 libyaml-cpp0.7 libhdf5-103-1 libspdlog1.10 libfmt9 zlib1g)
((with_gtest)) && dev+=(libgtest-dev)
((with_gdal)) && { dev+=(libgdal-dev); runtime+=(libgdal32); }
((with_dev)) || dev=()

# Left out: what every machine that compiles C++ has, and what only Debian's
# package scripts use.
skip_regex='^(gcc-12-base|libc6|libgcc-s1|libstdc\+\+6|libcrypt1|perl|perl-base|perl-modules-.*|libperl5.*|debconf|dpkg|tar|coreutils|bash|sensible-utils|ucf|init-system-helpers|tzdata|media-types|netbase|adduser|passwd|login|libpam.*|libsystemd0|libudev1)$'
# apt's own resolver on an empty package database: what a fresh Debian would
# install for the run-time packages (first alternatives, one provider per
# virtual package), without recommends.
empty_status=$(mktemp)
trap 'rm -f "$empty_status"' EXIT
closure=$(apt-get -s -o Dir::State::status="$empty_status" install --no-install-recommends "${runtime[@]}" |
            awk '/^Inst /{print $2}')
# Debian's base (priority required, essential) is on any Debian or Ubuntu.
mapfile -t packages < <({ apt-cache show --no-all-versions $closure 2>/dev/null | awk -v skip="$skip_regex" '
  /^Package:/ {name = $2; prio = ""; essential = "no"}
  /^Priority:/ {prio = $2}
  /^Essential:/ {essential = $2}
  /^$/ && name != "" {
    if (name !~ skip && prio != "required" && essential != "yes") print name
    name = ""
  }'; ((${#dev[@]} == 0)) || printf '%s\n' "${dev[@]}"; } | sort -u)
echo "gather_deps: ${#packages[@]} packages (${dev[*]:-no -dev packages} and the run-time closure of ${runtime[*]})" >&2

mkdir -p "$out/debs"
out=$(cd "$out" && pwd)
(cd "$out/debs" && apt-get download "${packages[@]}" >/dev/null)
rm -rf "$out/prefix"
mkdir -p "$out/prefix"
: > "$out/packages.txt"
for deb in "$out"/debs/*.deb; do
  dpkg-deb -x "$deb" "$out/prefix"
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >> "$out/packages.txt"
done
prefix="$out/prefix"
# Older packages still install into /lib; Debian 12 merges it into /usr/lib.
for dir in lib bin sbin; do
  if [ -d "$prefix/$dir" ] && [ ! -L "$prefix/$dir" ]; then
    mkdir -p "$prefix/usr/$dir"
    cp -a "$prefix/$dir/." "$prefix/usr/$dir/"
    rm -rf "${prefix:?}/$dir"
  fi
done

# Symbolic links to absolute paths (/usr/lib/...) would leave the prefix:
# point them at the same file inside it, relatively, so it can move.
while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  case "$target" in
    /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$prefix$target")" "$link" ;;
  esac
done < <(find "$prefix" -type l -print0)

# What Debian's update-alternatives would have made at install time.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for tool in mpicc mpicxx mpic++ mpirun mpiexec; do
  [ -e "$prefix/usr/bin/$tool.openmpi" ] && ln -sfn "$tool.openmpi" "$prefix/usr/bin/$tool"
done
for lib in "$prefix/usr/lib/$arch"/blas/lib*.so.3 "$prefix/usr/lib/$arch"/lapack/lib*.so.3; do
  [ -e "$lib" ] && ln -sfn "$(basename "$(dirname "$lib")")/$(basename "$lib")" "$prefix/usr/lib/$arch/$(basename "$lib")"
done
for lib in "$prefix"/usr/lib/libpsm1/libpsm_infinipath.so.1.*; do
  [ -e "$lib" ] && ln -sfn "../libpsm1/$(basename "$lib")" "$prefix/usr/lib/$arch/libpsm_infinipath.so.1"
done
[ -d "$prefix/usr/lib/$arch/openmpi/include" ] && ln -sfn "../../lib/$arch/openmpi/include" "$prefix/usr/include/$arch/mpi"

cat > "$prefix/env.sh" <<ENV
# da_dist's gathered dependencies (tools/gpu/gather_deps.sh): source this file.
_da_deps=\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)/usr
export DA_DEPS_PREFIX=\$_da_deps
export CMAKE_PREFIX_PATH=\$_da_deps\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}
export PATH=\$_da_deps/bin\${PATH:+:\$PATH}
export LD_LIBRARY_PATH=\$_da_deps/lib/$arch:\$_da_deps/lib:\$_da_deps/lib/$arch/hdf5/serial:\$_da_deps/lib/$arch/openmpi/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
# Open MPI and PMIx were built for /usr: these make them look for their
# plugins, help files and wrapper data under the prefix instead.
export OPAL_PREFIX=\$_da_deps
export OPAL_LIBDIR=\$_da_deps/lib/$arch/openmpi/lib
export PMIX_INSTALL_PREFIX=\$_da_deps
export PMIX_MCA_mca_base_component_path=\$_da_deps/lib/$arch/pmix2/lib/pmix
export GDAL_DATA=\$_da_deps/share/gdal
export PROJ_DATA=\$_da_deps/share/proj
unset _da_deps
ENV
tar -C "$out" -czf "$out/da_dist-deps-bookworm.tar.gz" prefix
echo "gather_deps: $out/da_dist-deps-bookworm.tar.gz ($(du -sh "$out/prefix" | cut -f1) unpacked); on the GPU machine: tar xzf it, then bash tools/gpu/build_gpu.sh --deps <dir>/prefix" >&2
