#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# examples/check_per_core_stats.py EXE [ARGS...] - run the per-core statistics demo and
# check its output independently of its own verdict: the exit status, the per-core
# table adding up to threads x events, the printed totals, the counter's exact sum and
# its approximate read within the printed error bound.
import re
import subprocess
import sys

exe, args = sys.argv[1], sys.argv[2:]
events = 500000
if "--events" in args:
    events = int(args[args.index("--events") + 1])
proc = subprocess.run([exe] + args, capture_output=True, text=True, timeout=300)
out = proc.stdout
print(out, end="")
if proc.stderr:
    print(proc.stderr, end="", file=sys.stderr)

failures = []
def check(cond, what):
    if not cond:
        failures.append(what)

check(proc.returncode == 0, f"exit status {proc.returncode}")
m = re.search(r"^threads: (\d+), events per thread: (\d+)$", out, re.M)
check(m is not None, "no 'threads:' line")
if m:
    threads, per_thread = int(m.group(1)), int(m.group(2))
    check(per_thread == events, f"events per thread {per_thread}, asked for {events}")
    expected = threads * events
    rows = re.findall(r"^ +(\d+) +(\S+) +(\d+) +(-?\d+) +(\d+)((?: +\d+)+)$", out, re.M)
    check(len(rows) == threads, f"{len(rows)} table rows for {threads} threads")
    check(sorted(int(r[0]) for r in rows) == list(range(threads)), "table rows are not cores 0..n-1")
    check(sum(int(r[2]) for r in rows) == expected, f"table events add up to {sum(int(r[2]) for r in rows)}, expected {expected}")
    hist = sum(sum(int(v) for v in r[5].split()) for r in rows)
    check(hist == expected, f"histogram cells add up to {hist}, expected {expected}")
    for r in rows:
        check(int(r[4]) < 2**32 - 1, f"core {r[0]}: minimum latency never updated")
        check(abs(int(r[3])) < 2**31, f"core {r[0]}: delta out of range")
    t = re.search(r"^total events: (\d+) \(expected (\d+)\)$", out, re.M)
    check(t is not None and int(t.group(1)) == expected and int(t.group(2)) == expected,
          f"total events line wrong (expected {expected})")
    h = re.search(r"^histogram total: (\d+)$", out, re.M)
    check(h is not None and int(h.group(1)) == expected, "histogram total wrong")
    c = re.search(r"^counter: sum (-?\d+), read (-?\d+), error bound (\d+) \(batch (\d+) x (\d+) CPUs\)", out, re.M)
    check(c is not None, "no counter line")
    if c:
        total, approx, bound, batch, cpus = (int(g) for g in c.groups())
        check(total == expected, f"counter sum {total}, expected {expected}")
        check(bound == batch * cpus and cpus == threads, "error bound is not batch x CPUs")
        check(abs(total - approx) < bound, f"|sum - read| = {abs(total - approx)} not below {bound}")
    check(re.search(r"^result: OK$", out, re.M) is not None, "no 'result: OK'")

if failures:
    for f in failures:
        print("check_per_core_stats: FAIL:", f, file=sys.stderr)
    sys.exit(1)
print("check_per_core_stats: all totals check out")
