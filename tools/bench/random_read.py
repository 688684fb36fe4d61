#!/usr/bin/python3
"""The random-read limit for big_archive_bench.sh: --reads preads of --block
bytes at random 4 KiB-aligned offsets of FILE, split over --threads threads
(os.pread releases the GIL, so the reads are in flight together). Prints
'RESULT kind=random_read ... reads_per_s=R mib_per_s=M'. Drop the page cache
first for a cold-cache limit."""
import argparse
import os
import random
import threading
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--reads", type=int, default=16000)
    p.add_argument("--block", type=int, default=12288)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    size = os.path.getsize(a.file)
    fd = os.open(a.file, os.O_RDONLY)

    def work(seed, n):
        rng = random.Random(seed)
        for _ in range(n):
            os.pread(fd, a.block, rng.randrange(0, size - a.block) // 4096 * 4096)

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(t, a.reads // a.threads)) for t in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    reads = a.reads // a.threads * a.threads
    print(f"RESULT kind=random_read file={a.file} reads={reads} block={a.block} threads={a.threads} "
          f"seconds={elapsed:.3f} reads_per_s={reads / elapsed:.1f} mib_per_s={reads * a.block / elapsed / 2**20:.1f}")


if __name__ == "__main__":
    main()
