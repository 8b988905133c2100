#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# tests/include_rooms.py INCLUDE_DIR - the include graph between pcpu's rooms points
# only downward:
#   - nothing outside debug/ includes a debug/ header (the allocator never depends on
#     its debugging aids; they hook into it, pcpu/internal/fit_counters.hpp);
#   - internal/ (the chunk layer: bitmap, block, chunk, chunk index, slot index) and
#     detail/ (helpers) include only their own room, detail/ and config.hpp, so
#     include/pcpu/ itself holds the public face and nothing below reaches up into it;
#   - backend/ (the back ends: static_only, contiguous, lazy_mapped) sits between the
#     core and the platform: it includes its own room, internal/, detail/ and the
#     platform contract (platform.hpp with what it rests on, scope.hpp), never the
#     core (allocator.hpp) nor the umbrella populate.hpp that the core includes;
#   - core/ holds the allocator's members defined out of the class (first-chunk setup,
#     chunk lifecycle, balance): allocator.hpp includes them at its end and is the only
#     header outside core/ that may; each includes allocator.hpp back (the one cycle, so
#     that it compiles on its own) and otherwise only internal/, detail/ and the platform
#     contract (core/guards.hpp, the guards an operation holds, rests on it alone);
#   - every quoted include names an existing header.
# Prints each violation and exits 1 if there is one.
import os
import re
import sys

root = os.path.abspath(sys.argv[1])
include_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def room(rel):
    parts = rel.split("/")
    if len(parts) >= 3 and parts[0] == "pcpu" and parts[1] in ("debug", "internal", "detail", "platform", "backend", "core"):
        return parts[1]
    return "public"


# room -> rooms (or single headers) it may include; None: anything but debug/.
allowed = {
    "internal": {"internal", "detail", "pcpu/config.hpp"},
    "detail": {"detail", "pcpu/config.hpp"},
    "core": {"core", "internal", "detail", "pcpu/allocator.hpp", "pcpu/config.hpp", "pcpu/context.hpp",
             "pcpu/error.hpp", "pcpu/platform.hpp", "pcpu/scope.hpp"},
    "backend": {"backend", "internal", "detail", "pcpu/config.hpp", "pcpu/context.hpp", "pcpu/error.hpp",
                "pcpu/platform.hpp", "pcpu/scope.hpp"},
}

bad = 0
checked = 0
for dirpath, _, names in os.walk(root):
    for name in sorted(names):
        if not name.endswith(".hpp"):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        src = room(rel)
        for inc in include_re.findall(open(path).read()):
            target = os.path.normpath(os.path.join(dirpath, inc))
            trel = os.path.relpath(target, root).replace(os.sep, "/")
            checked += 1
            if not os.path.isfile(target):
                print(f"{rel}: includes \"{inc}\", which does not exist")
                bad += 1
                continue
            dst = room(trel)
            if dst == "debug" and src != "debug":
                print(f"{rel} ({src}) includes {trel}: only debug/ may include debug/")
                bad += 1
            elif dst == "core" and src != "core" and rel != "pcpu/allocator.hpp":
                print(f"{rel} ({src}) includes {trel}: only allocator.hpp may include core/")
                bad += 1
            elif src in allowed and dst not in allowed[src] and trel not in allowed[src]:
                print(f"{rel} ({src}) includes {trel} ({dst}): {src}/ may include only "
                      + ", ".join(sorted(allowed[src])))
                bad += 1
if checked == 0:
    sys.exit(f"include_rooms: no include found under {root}")
print(f"include_rooms: {checked} includes checked, {bad} pointing the wrong way")
sys.exit(1 if bad else 0)
