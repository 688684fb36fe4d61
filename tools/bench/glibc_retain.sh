# Sourced by the benchmarks that run a PyTorch peer: GLIBC_TUNABLES with the
# values of da_dist's run.host_allocator: retain (src/setup/host_allocator.h:
# mmap and trim thresholds 1 GiB, top pad 64 MiB), so the peer can be run with
# the same allocator behaviour as well as with glibc's defaults.
retain_tunables=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864
