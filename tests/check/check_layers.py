#!/usr/bin/env python3
# check_layers.py - fails when a C file of the service includes a header that points up the
# layering: dependencies run one way, down the data flow, so a module may include its own
# headers and the public headers of the modules in LOWER rows of ORDER below, never a peer in
# its own row nor a higher one, and never another module's private header (*_internal.h, shared
# only by the files of its own module). The order is written here once; README.md and the
# project's rules describe it, this list decides it.
#
# Files: every server/**/*.c and *.h below the root. A file's module is its folder under
# server/ (server/main.c is the top, "main.c"); an include "x/name.h" names module x. An include
# in quotes that names no module (no folder) is flagged too, so nothing escapes the check.
# Each hit is printed as path:line: what is wrong: the include line.
#
# Usage: check_layers.py [ROOT]   (default: the repository holding this script)
# Exit status: 0 clean, 1 an include breaks the layering, 2 the tree could not be read.
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checklib  # noqa: E402

# Lowest first; the modules of one row are peers and may not include each other.
ORDER = [
    ["core"],
    ["config", "model", "ws", "eim", "camera", "tls"],
    ["auth", "media"],
    ["ingest"],
    ["store"],
    ["sources", "forward", "live"],
    ["http", "tools", "greengrass"],
    ["app"],
    ["main.c"],
]
RANK = {module: row for row, modules in enumerate(ORDER) for module in modules}

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]*)"')


def module_of(rel):
    """The module of a path relative to server/ ("http/http.c" -> "http", "main.c" -> "main.c")."""
    return rel.split("/")[0]


def source_files(server):
    files = []
    for d, dirs, names in os.walk(server):
        dirs.sort()
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                files.append(os.path.relpath(os.path.join(d, n), server).replace(os.sep, "/"))
    return files


def problem(mine, header):
    """What is wrong with module `mine` including `header`, or None when it may."""
    if "/" not in header:
        return "an include that names no module (write \"module/%s\")" % header
    theirs = header.split("/")[0]
    if theirs not in RANK:
        return "module %s is not in the layering order (tests/check/check_layers.py)" % theirs
    if theirs == mine:
        return None
    if os.path.basename(header).endswith("_internal.h"):
        return "another module's private header (%s's)" % theirs
    if RANK[theirs] == RANK[mine]:
        return "a peer in the same row (%s and %s)" % (mine, theirs)
    if RANK[theirs] > RANK[mine]:
        return "an upward include (%s is above %s)" % (theirs, mine)
    return None


def scan(root):
    """Every (path relative to root, line number, what is wrong, include line)."""
    server = os.path.join(root, "server")
    if not os.path.isdir(server):
        raise OSError("no server/ folder in %s" % root)
    hits = []
    for rel in source_files(server):
        path = "server/" + rel
        mine = module_of(rel)
        with open(os.path.join(server, rel), "rb") as f:
            lines = f.read().decode("utf-8", "replace").split("\n")
        if mine not in RANK:
            hits.append((path, 1, "module %s is not in the layering order "
                         "(tests/check/check_layers.py)" % mine, lines[0].strip()))
            continue
        for n, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            why = m and problem(mine, m.group(1))
            if why:
                hits.append((path, n, why, line.strip()))
    return hits


def main(argv):
    return checklib.check_main(argv, "check_layers", scan,
                               lambda hit: "%s:%d: breaks the layering: %s: %s" % hit)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
