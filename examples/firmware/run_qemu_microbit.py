#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# examples/firmware/run_qemu_microbit.py QEMU GOOD_ELF FAULT_ELF - run the ARMv6-M
# firmware on QEMU's microbit (Cortex-M0) and check its output and exit status; the
# image with the planted per-CPU bug must exit 3 with a FAIL line.
import re
import sys

from run_qemu import run_all

MACHINE = ('-M', 'microbit')


def check_good(status, out):
    errors = []
    if status != 0:
        errors.append(f'exit status {status}, expected 0')
    if 'pcpu m0 firmware: PASS' not in out.splitlines() or 'FAIL' in out:
        errors.append('no PASS line, or a FAIL line')
    rows = re.findall(r'^cpu (\d) +(\d+) +(\d+)$', out, re.M)
    if len(rows) != 4:
        errors.append(f'{len(rows)} per-CPU rows, expected 4')
    total = re.search(r'^total events (\d+) expected (\d+), ticks (\d+)$', out, re.M)
    if not total:
        errors.append('no totals line')
    else:
        if int(total.group(1)) != int(total.group(2)) or sum(int(r[2]) for r in rows) != int(total.group(1)):
            errors.append('events do not add up')
        if int(total.group(3)) == 0 or sum(int(r[1]) for r in rows) != int(total.group(3)):
            errors.append('no SysTick interrupts, or ticks do not add up')
    if not re.search(r'^static_only: \d+ alloc/free operations, verify ok after each', out, re.M):
        errors.append('no static_only summary')
    return errors


def check_fault(status, out):
    errors = []
    if status != 3:
        errors.append(f'exit status {status}, expected 3 (checks failed)')
    if 'FAIL: per-CPU event counter' not in out or 'pcpu m0 firmware: PASS' in out:
        errors.append('the planted per-CPU bug was not reported')
    return errors


def main():
    qemu, good, fault = sys.argv[1:4]
    return run_all('run_qemu_microbit.py', qemu,
                   [('m0 firmware', good, check_good), ('planted-bug m0 firmware', fault, check_fault)], MACHINE)


if __name__ == '__main__':
    sys.exit(main())
