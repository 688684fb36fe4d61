#!/usr/bin/env bash
# Proves the gathered prefix is self-sufficient: a bare Debian 12 (debootstrap
# minbase, plus only g++, cmake and make) as a chroot, the tarball of
# gather_deps.sh unpacked in it, and build_gpu.sh --check-deps run inside.
# Needs root, debootstrap and package access (a few minutes, ~1 GB in DIR).
#
#   sudo bash tools/gpu/check_bare_debian.sh [DIR]     (default /tmp/da-bare-debian)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/da-bare-debian}
[ "$(id -u)" = 0 ] || { echo "check_bare_debian: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "check_bare_debian: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }

chroot_dir=$dir/chroot
[ -x "$chroot_dir/usr/bin/cmake" ] ||
  debootstrap --variant=minbase --include=g++,cmake,make bookworm "$chroot_dir" http://deb.debian.org/debian
bash "$root/tools/gpu/gather_deps.sh" --out "$dir/deps"

rm -rf "$chroot_dir/opt/deps" "$chroot_dir/src"
mkdir -p "$chroot_dir/opt/deps" "$chroot_dir/src/tools"
tar -C "$chroot_dir/opt/deps" -xzf "$dir/deps/da_dist-deps-bookworm.tar.gz"
cp -r "$root/tools/gpu" "$chroot_dir/src/tools/"
cleanup() { for m in tmp dev/shm dev sys proc; do umount "$chroot_dir/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount --bind /proc "$chroot_dir/proc"
mount --bind /sys "$chroot_dir/sys"
mount --bind /dev "$chroot_dir/dev"
mount --bind /dev/shm "$chroot_dir/dev/shm"
mount -t tmpfs tmpfs "$chroot_dir/tmp"
# Nothing of the gathered libraries is installed in the chroot: what the
# probe finds and loads comes from /opt/deps/prefix.
chroot "$chroot_dir" bash -c 'cd /src && bash tools/gpu/build_gpu.sh --deps /opt/deps/prefix --check-deps'
