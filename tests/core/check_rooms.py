#!/usr/bin/env python3
"""The rooms' dependencies point one way (README, "Where things live").

Every #include "<room>/..." of a source file in io/, dist/, methods/ and
src/<room>/ must name its own room or one the table allows. Prints each
include that breaks the rule (file, line, the room it reaches) and exits 1;
exits 2 when a folder is in no room of the table (a new folder needs its
line here and in the README).
    check_rooms.py REPO_ROOT
"""
import os
import re
import sys

ALLOWED = {
    "io": set(),
    "dist": set(),
    "ranks": set(),
    "config": {"io"},  # io/one_line.h: the one-line messages of its errors
    "command_line": {"config"},
    "methods": {"ranks"},
    "models": {"ranks"},
    "metrics": set(),
    "log": {"config", "io"},
    "run": {"config", "io"},
    "callbacks": {"config"},
    # What training and inference share: never the loop, inference or the CLI.
    "setup": {"config", "command_line", "dist", "io", "log", "methods", "metrics", "models", "ranks", "run"},
    "trainer": {"callbacks", "config", "command_line", "dist", "io", "log", "methods", "metrics", "models",
                "ranks", "run", "setup"},
    "inference": {"config", "command_line", "dist", "io", "log", "metrics", "models", "ranks", "run", "setup"},
    "cli": {"config", "command_line", "dist", "inference", "io", "log", "metrics", "models", "run", "setup"},
    "main": None,  # src/main.cpp wires the CLI to the loop: it may use every room
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/', re.M)


def room_of(path):
    parts = path.split("/")
    if parts[0] != "src":
        return parts[0]
    return "main" if len(parts) == 2 else parts[1]


def main(root):
    broken, unknown = [], set()
    for top in ("io", "dist", "methods", "src"):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".h", ".cpp")):
                    continue
                path = os.path.relpath(os.path.join(folder, name), root)
                room = room_of(path)
                if room not in ALLOWED:
                    unknown.add(room)
                    continue
                allowed = ALLOWED[room]
                with open(os.path.join(root, path), encoding="utf-8") as f:
                    text = f.read()
                for m in INCLUDE.finditer(text):
                    target = m.group(1)
                    if target not in ALLOWED or allowed is None or target == room or target in allowed:
                        continue
                    line = text.count("\n", 0, m.start()) + 1
                    broken.append(f"{path}:{line}: {room}/ includes {target}/")
    if unknown:
        print("rooms missing from the table: " + ", ".join(sorted(unknown)))
        return 2
    for item in broken:
        print(item)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
