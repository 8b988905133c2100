#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# examples/firmware/run_qemu.py QEMU GOOD_ELF FAULT_ELF - run both firmware images on
# QEMU's mps2-an386 (Cortex-M4) with semihosting and check what they say and how they
# exit. The good image must exit 0 and print consistent per-CPU figures; the image
# with the planted per-CPU bug must be caught: exit status 3 and a FAIL line. Running
# the second one proves, in every CI run, that a failing firmware fails the test (the
# status travels from SYS_EXIT_EXTENDED through QEMU to us).
import re
import subprocess
import sys


def run(qemu, elf, machine=('-M', 'mps2-an386'), timeout=60):
    """Run elf under qemu; (exit status, output), or (None, '') on a timeout."""
    cmd = [qemu, *machine, '-nographic', '-monitor', 'none',
           '-semihosting-config', 'enable=on,target=native', '-kernel', elf]
    print('$ ' + ' '.join(cmd), flush=True)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, ''
    out = p.stdout.decode('utf-8', 'replace')
    sys.stdout.write(out)
    print(f'[exit status {p.returncode}]', flush=True)
    return p.returncode, out


def check_good(status, out):
    errors = []
    if status != 0:
        errors.append(f'exit status {status}, expected 0')
    if 'pcpu firmware: PASS' not in out.splitlines():
        errors.append('no "pcpu firmware: PASS" line')
    if 'FAIL' in out:
        errors.append('a FAIL line')
    rows = re.findall(r'^cpu (\d+) +(\d+) +(\d+) +(\d+)$', out, re.M)
    if len(rows) != 4:
        errors.append(f'{len(rows)} per-CPU rows, expected 4')
    total = re.search(r'^total events (\d+) expected (\d+)$', out, re.M)
    if not total:
        errors.append('no totals line')
    else:
        got, want = int(total.group(1)), int(total.group(2))
        if got != want:
            errors.append(f'total events {got} != expected {want}')
        events = sum(int(r[3]) for r in rows)
        ticks = sum(int(r[1]) for r in rows)
        if events != got or ticks != got:
            errors.append(f'per-CPU rows sum to {events} events / {ticks} ticks, total says {got}')
        if any(int(r[1]) == 0 for r in rows):
            errors.append('a logical CPU never ran: the CPU switching is not exercised')
    counter = re.search(r'^counter: sum (\d+), read (\d+), bound (\d+)$', out, re.M)
    if not counter:
        errors.append('no counter line')
    else:
        csum, cread, cbound = (int(g) for g in counter.groups())
        if total and csum != int(total.group(1)):
            errors.append(f'counter sum {csum} != total events {total.group(1)}')
        if not 0 <= csum - cread < cbound:
            errors.append(f'counter read {cread} not within {cbound} below the sum {csum}')
    if not re.search(r'^static_only: (\d+) alloc/free operations, verify ok after each', out, re.M):
        errors.append('no static_only summary')
    if 'exhaustion: out of memory' not in out:
        errors.append('contiguous part did not report arena exhaustion as out of memory')
    if 'shutdown returned the arena: 0 bytes in use' not in out:
        errors.append('arena not returned at shutdown')
    return errors


def check_fault(status, out):
    errors = []
    if status != 3:
        errors.append(f'exit status {status}, expected 3 (checks failed)')
    if 'FAIL: per-CPU event counter' not in out:
        errors.append('the planted per-CPU bug was not reported')
    if 'pcpu firmware: PASS' in out:
        errors.append('claimed PASS')
    return errors


def run_all(script, qemu, runs, machine=('-M', 'mps2-an386'), timeout=60):
    """Run each (name, elf, checker) and report; 1 if any check failed, else 0."""
    failed = False
    warned = False
    for name, elf, checker in runs:
        if checker is not runs[0][2] and not warned:
            warned = True
            print(f'{script}: next, the planted-bug image: its FAIL lines and exit status 3 are '
                  'EXPECTED (they prove a failing firmware fails this test)', flush=True)
        status, out = run(qemu, elf, machine, timeout)
        errors = [f'timed out after {timeout} s'] if status is None else checker(status, out)
        for e in errors:
            print(f'{script}: {name}: {e}', file=sys.stderr)
        failed |= bool(errors)
        print(f'{script}: {name}: {"FAILED" if errors else "ok"}', flush=True)
    return 1 if failed else 0


def exit_zero(status, _out):
    return [] if status == 0 else [f'exit status {status}, expected 0']


def exit_nonzero(status, _out):
    return [] if status not in (0, None) else ['exit status 0: the planted bug went unnoticed']


def main():
    if sys.argv[1] == '--exit-status':
        # An image whose exit status is its verdict, and its planted-bug twin.
        qemu, good, fault = sys.argv[2:5]
        return run_all('run_qemu.py', qemu, [(good, good, exit_zero), (fault, fault, exit_nonzero)])
    qemu, good, fault = sys.argv[1:4]
    return run_all('run_qemu.py', qemu, [('firmware', good, check_good), ('planted-bug firmware', fault, check_fault)])


if __name__ == '__main__':
    sys.exit(main())
