#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# examples/firmware/run_qemu_an521.py QEMU GOOD_ELF FAULT_ELF [FAULT_RUNS] - run the
# dual-core firmware on QEMU's mps2-an521 (SSE-200, two Cortex-M33) with multi-threaded
# TCG, so both cores execute at once, and check what it says and how it exits. The
# good image must exit 0 with a consistent per-core table. The image whose index lock
# does not exclude the other core must be caught in every one of FAULT_RUNS runs
# (default 5): a non-zero status from its own checks (3), a fault (4), a pcpu
# assertion (5) or the watchdog (6: a core stuck in a corrupted index), never PASS.
import re
import sys

from run_qemu import run_all

MACHINE = ('-M', 'mps2-an521', '-smp', '2', '-accel', 'tcg,thread=multi')


def check_good(status, out):
    errors = []
    if status != 0:
        errors.append(f'exit status {status}, expected 0')
    if 'pcpu smp firmware: PASS' not in out.splitlines():
        errors.append('no "pcpu smp firmware: PASS" line')
    if 'FAIL' in out:
        errors.append('a FAIL line')
    if 'core 1 released (INITSVTOR1, CPUWAIT); both cores counting' not in out:
        errors.append('core 1 was not released')
    rows = re.findall(r'^cpu (\d) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$', out, re.M)
    if [r[0] for r in rows] != ['0', '1']:
        errors.append(f'per-core rows {[r[0] for r in rows]}, expected cpu 0 and cpu 1')
    for r in rows:
        ticks, loops, events, allocs, frees = (int(x) for x in r[1:6])
        if ticks == 0:
            errors.append(f'cpu {r[0]} took no SysTick interrupt')
        if events != ticks + loops:
            errors.append(f'cpu {r[0]}: {events} events != {ticks} ticks + {loops} loops')
        if allocs == 0 or allocs != frees:
            errors.append(f'cpu {r[0]}: {allocs} allocations, {frees} frees')
    units = re.findall(r'^units: cpu (\d) static_only (0x[0-9a-f]+) contiguous (0x[0-9a-f]+)', out, re.M)
    banks = {int(u[i], 16) >> 15 for u in units for i in (1, 2)}
    if len(units) != 2 or len(banks) != 4:
        errors.append('the units are not in four different 32 KiB SRAM banks')
    total = re.search(r'^total events (\d+) expected (\d+)$', out, re.M)
    counter = re.search(r'^counter: sum (\d+), read (\d+), bound (\d+)$', out, re.M)
    if not total or not counter:
        errors.append('no totals or no counter line')
    else:
        got, want = int(total.group(1)), int(total.group(2))
        csum, cread, cbound = (int(g) for g in counter.groups())
        if got != want or got != sum(int(r[3]) for r in rows):
            errors.append(f'total events {got}, expected {want}')
        if csum != want:
            errors.append(f'counter sum {csum} != {want}')
        if not 0 <= csum - cread < cbound:
            errors.append(f'counter read {cread} not within {cbound} below the sum {csum}')
    if not re.search(r'verify ok after each on both cores', out):
        errors.append('no verify summary')
    if not re.search(r'arena 0 B in use after shutdown', out):
        errors.append('arena not returned at shutdown')
    return errors


def check_fault(status, out):
    errors = []
    if status not in (3, 4, 5, 6):
        errors.append(f'exit status {status}, expected 3, 4, 5 or 6 (the bug caught)')
    if 'pcpu smp firmware: PASS' in out:
        errors.append('claimed PASS')
    return errors


def main():
    qemu, good, fault = sys.argv[1:4]
    fault_runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    runs = [('dual-core firmware', good, check_good)]
    runs += [(f'planted-bug dual-core firmware, run {i + 1}/{fault_runs}', fault, check_fault)
             for i in range(fault_runs)]
    return run_all('run_qemu_an521.py', qemu, runs, MACHINE, timeout=120)


if __name__ == '__main__':
    sys.exit(main())
