#!/usr/bin/env python3
"""Kills a process (SIGKILL) the moment it is seen writing a checkpoint:
once DIR holds last.pt, the first temporary file of a checkpoint write
(NAME.tmp.PID) to appear in DIR triggers the kill. DIR is polled as fast as
Python can list it; a write of a few milliseconds is enough to be seen.

Usage: kill_during_write.py DIR PID TIMEOUT_S
Prints 'killed PID while writing FILE' and exits 0, or exits 1 when no write
was seen within TIMEOUT_S (or the process ended first)."""
import os
import signal
import sys
import time


def main():
    directory, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            names = []
        if "last.pt" in names:
            writing = [n for n in names if ".pt.tmp." in n]
            if writing:
                os.kill(pid, signal.SIGKILL)
                print(f"killed {pid} while writing {writing[0]}", flush=True)
                return 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"process {pid} ended before a checkpoint write was seen", flush=True)
            return 1
    print(f"no checkpoint write seen within {timeout} s", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
