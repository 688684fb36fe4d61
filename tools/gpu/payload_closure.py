#!/usr/bin/env python3
"""The shared libraries of the GPU check's payload (tools/gpu/make_payload.sh).

Follows the ELF NEEDED entries of the payload's roots (our binaries and
libraries; Open MPI's programs and plug-ins) through, in this order:
  1. the payload's own library folders (ours, and the gathered Debian
     packages of tools/gpu/gather_deps.sh under deps/);
  2. the pinned Torch's folders (torch/lib, nvidia/*/lib of --python's
     site-packages), which the GPU machine has in the same version;
  3. what every Linux machine that runs the GPU image has: glibc's
     libraries, libstdc++, libgcc_s, and the NVIDIA driver's libcuda;
  4. this machine's libraries (ldconfig -p), which are then copied into the
     payload's lib/ (--carry-host) as Debian's package gathering leaves them
     out (libudev, libsystemd and the like).
Anything else is an error. With --prune, the gathered packages' libraries
that no root reaches are deleted. Prints a summary; exit status 0 when every
NEEDED entry of the roots resolves, 1 otherwise (each missing library named
with the file that needs it).

  payload_closure.py PAYLOAD_DIR --python PY [--prune] [--carry-host]
"""
import argparse
import os
import shutil
import subprocess
import sys

BASE = {
    # glibc
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libutil.so.1", "libresolv.so.2",
    "libanl.so.1", "ld-linux-x86-64.so.2", "libmvec.so.1",
    # the compiler's runtime, on any machine with a C++ program on it (the GPU image has Python and nvcc)
    "libstdc++.so.6", "libgcc_s.so.1",
    # the NVIDIA driver's
    "libcuda.so.1", "libnvidia-ml.so.1",
}


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def library_dirs(root):
    dirs = []
    for d, _, files in os.walk(root):
        if any(".so" in f for f in files):
            dirs.append(d)
    return sorted(dirs)


def torch_dirs(python):
    code = ("import os, torch; t = os.path.dirname(torch.__file__); s = os.path.dirname(t); "
            "n = os.path.join(s, 'nvidia'); "
            "print('\\n'.join([os.path.join(t, 'lib')] + [os.path.join(n, p, 'lib') for p in sorted(os.listdir(n)) "
            "if os.path.isdir(os.path.join(n, p, 'lib'))]))")
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def host_libraries():
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines()[1:]:
        if "=>" in line and "x86-64" in line:
            name, path = line.split("=>")[0].split()[0], line.split("=>")[1].strip()
            found.setdefault(name, path)
    return found


def roots_of(payload):
    roots, plugins = [], []
    for sub in ("build", "lib"):
        for d, _, files in os.walk(os.path.join(payload, sub)):
            roots += [os.path.join(d, f) for f in files if is_elf(os.path.join(d, f))]
    deps = os.path.join(payload, "deps", "usr")
    for prog in ("orterun", "orted", "ompi_info"):
        path = os.path.join(deps, "bin", prog)
        if os.path.exists(path):
            roots.append(path)
    for d, _, files in os.walk(os.path.join(deps, "lib")):
        # Open MPI's and PMIx's plug-ins (dlopened at MPI_Init)
        if os.path.basename(d) in ("openmpi3", "pmix") or "/pmix2/lib/pmix" in d:
            plugins += [os.path.join(d, f) for f in files if f.endswith(".so") and is_elf(os.path.join(d, f))]
    return sorted(set(roots)), sorted(set(plugins))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("payload")
    ap.add_argument("--python", required=True, help="the interpreter whose torch the payload runs against")
    ap.add_argument("--prune", action="store_true", help="delete gathered libraries no root needs")
    ap.add_argument("--carry-host", action="store_true", help="copy libraries found only on this machine into lib/")
    args = ap.parse_args()
    payload = os.path.abspath(args.payload)
    own_dirs = library_dirs(payload)
    torch = torch_dirs(args.python)
    host = host_libraries()

    def find(name):
        for d in own_dirs:
            if os.path.exists(os.path.join(d, name)):
                return "payload", os.path.join(d, name)
        for d in torch:
            if os.path.exists(os.path.join(d, name)):
                return "torch", os.path.join(d, name)
        if name in BASE:
            return "base", None
        if name in host:
            return "host", host[name]
        return None, None

    roots, plugins = roots_of(payload)
    reached, missing, carried, seen = set(), [], [], set()
    stack = [(p, True) for p in roots] + [(p, False) for p in plugins]
    while stack:
        path, strict = stack.pop()
        real = os.path.realpath(path)
        if (real, strict) in seen:
            continue
        seen.add((real, strict))
        reached.add(real)
        for name in needed(path):
            where, found = find(name)
            if where is None:
                if strict:
                    missing.append(f"{name} (needed by {os.path.relpath(path, payload)})")
                continue
            if where == "host":
                if not args.carry_host:
                    missing.append(f"{name} (only on this machine: {found}; needed by {os.path.relpath(path, payload)})")
                    continue
                os.makedirs(os.path.join(payload, "lib"), exist_ok=True)
                target = os.path.join(payload, "lib", name)
                shutil.copy2(os.path.realpath(found), target)
                carried.append(name)
                own_dirs[:] = library_dirs(payload)
                found = target
            if where in ("payload", "host"):
                stack.append((found, strict))

    pruned = 0
    if args.prune:
        deps_lib = os.path.join(payload, "deps", "usr", "lib")
        for d, _, files in os.walk(deps_lib):
            for f in files:
                path = os.path.join(d, f)
                if ".so" in f and not os.path.islink(path) and is_elf(path) and os.path.realpath(path) not in reached:
                    os.remove(path)
                    pruned += 1
        for d, _, files in os.walk(deps_lib):  # links left pointing at nothing
            for f in files:
                path = os.path.join(d, f)
                if os.path.islink(path) and not os.path.exists(path):
                    os.remove(path)

    print(f"payload_closure: {len(roots)} programs and libraries, {len(plugins)} MPI plug-ins; "
          f"{len(reached)} files reached; torch from {torch[0]}")
    if carried:
        print(f"payload_closure: carried from this machine: {', '.join(sorted(set(carried)))}")
    if args.prune:
        print(f"payload_closure: pruned {pruned} libraries no root needs")
    for m in sorted(set(missing)):
        print(f"payload_closure: MISSING {m}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
