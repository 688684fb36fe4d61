#!/usr/bin/python3
"""Runs a command and reports its wall time and the peak of its process
tree's memory: the sum of every process's PSS (shared pages split among
the processes sharing them), sampled every 0.2 s, for benchmarks whose
peers run several processes (GNU time reports one process's peak RSS).

Usage: peak_memory.py COMMAND [ARG...]
Prints the command's output, then 'MEASURED wall_s=W peak_pss_mib=M'; exits
with the command's status."""
import os
import subprocess
import sys
import time


def tree(root):
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(parent, []).append(int(pid))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    start = time.monotonic()
    process = subprocess.Popen(sys.argv[1:])
    peak = 0
    while process.poll() is None:
        peak = max(peak, sum(pss_kib(pid) for pid in tree(process.pid)))
        time.sleep(0.2)
    print(f"MEASURED wall_s={time.monotonic() - start:.1f} peak_pss_mib={peak / 1024:.0f}", flush=True)
    sys.exit(process.returncode)


if __name__ == "__main__":
    main()
