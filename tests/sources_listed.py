#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# tests/sources_listed.py TESTS_DIR FILE... - every tests/test_*.cpp is one of FILE...
# (tests/meson.build's test_sources), and every FILE exists: a test file left out of
# that list would never be built, and so never fail.
import glob
import os
import sys

tests_dir, listed = sys.argv[1], set(sys.argv[2:])
on_disk = {os.path.basename(p) for p in glob.glob(os.path.join(tests_dir, "test_*.cpp"))}
bad = 0
for name in sorted(on_disk - listed):
    print(f"{name}: not in tests/meson.build's test_sources (never built, never run)")
    bad += 1
for name in sorted(listed):
    if not os.path.isfile(os.path.join(tests_dir, name)):
        print(f"{name}: listed in test_sources but missing")
        bad += 1
print(f"sources_listed: {len(on_disk)} test files on disk, {len(listed)} listed, {bad} wrong")
sys.exit(1 if bad else 0)
