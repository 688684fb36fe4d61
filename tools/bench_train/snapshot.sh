# Sourced by the training benchmarks (weak_scaling.sh, end_to_end.sh).
#
# snapshot_binaries NAME BUILD_DIR WORK BINARY...
# Copies BINARY... into WORK/bin and the libraries of BUILD_DIR (every
# libda_dist*.so, wherever its folder) into WORK/lib, and puts WORK/lib first on LD_LIBRARY_PATH
# (the binaries use RUNPATH, so LD_LIBRARY_PATH wins): a concurrent rebuild of
# BUILD_DIR cannot then swap a library under a running measurement. A copy
# taken while BUILD_DIR is being relinked is refused (every copy must start
# with --help); the snapshot is retried a few times. Exits 2 (messages
# prefixed NAME) when the copies do not run or still load BUILD_DIR's libraries.
snapshot_binaries() {
  local name=$1 build=$2 work=$3 attempt b ok
  shift 3
  mkdir -p "$work/bin" "$work/lib"
  export LD_LIBRARY_PATH=$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  for attempt in 1 2 3 4 5 6; do
    rm -f "$work/bin/"* "$work/lib/"*
    cp "$@" "$work/bin/"
    find "$build" -name 'libda_dist*.so*' -not -path '*/CMakeFiles/*' -exec cp -P {} "$work/lib/" \;
    ok=1
    for b in "$@"; do
      "$work/bin/$(basename "$b")" --help >/dev/null 2>&1 || ok=0
    done
    if ((ok)); then break; fi
    if ((attempt == 6)); then echo "$name: the binaries in $build do not run (rebuild in progress?)" >&2; exit 2; fi
    echo "$name: the binaries in $build do not run yet (rebuild in progress?); retrying in 20 s" >&2
    sleep 20
  done
  for b in "$@"; do
    if ldd "$work/bin/$(basename "$b")" | grep -q "$build/"; then
      echo "$name: $(basename "$b") still loads libraries from $build:" >&2
      ldd "$work/bin/$(basename "$b")" | grep "$build/" >&2
      exit 2
    fi
  done
}
