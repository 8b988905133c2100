#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# scripts/size_table.py TARGET=BUILDDIR... - the allocator's code size on each
# bare-metal build given (examples/firmware/libpcpu_footprint_*.a, arm-none-eabi-g++ -Os): bytes of
# .text for each operation alone (everything it pulls in), for the five in one object
# (shared code counted once) and for "all" (the five, the typed accessors and, for
# contiguous, balance and shutdown), then "all" against a recorded before and "the five"
# against the budget issue 12 set. scripts/test prints it; docs/performance.md and the README quote
# it. Exits non-zero if an object is missing.
import os
import subprocess
import sys

OPS = [('init', 'init'), ('alloc', 'alloc'), ('free', 'free'), ('ptr', 'ptr'), ('this_cpu_add', 'this-CPU add'),
       ('five', 'the five')]
# "the five": init, alloc, free, ptr and this-CPU add in one object, the set issue 12's
# budget names; "all" adds the typed accessors and, for contiguous, balance and shutdown.
# *_atomic: alloc with the compile-time atomic context (ctx::atomic_t), no sleeping path.
# *_scan: the firmware chunk policy, scan_layout (no block hints); the others use the
# kernel's layout.
POLICIES = ['static_only', 'contiguous', 'static_only_atomic', 'contiguous_atomic',
            'static_only_scan', 'contiguous_scan', 'static_only_scan_atomic', 'contiguous_scan_atomic']
# "all" before the footprint round of issue 12: main at 2b0f486, measured as this script
# does (docs/performance.md, "Footprint round"). The issue itself quoted 6,212 bytes for
# cortex-m4 static_only, measured before issue 13's checks and warnings were added.
BEFORE_REF = 'main 2b0f486'
BEFORE = {
    'cortex-m0plus': {'static_only': 7673, 'contiguous': 10297, 'static_only_atomic': 7673, 'contiguous_atomic': 10003},
    'cortex-m4': {'static_only': 7459, 'contiguous': 9859, 'static_only_atomic': 7459, 'contiguous_atomic': 9565},
    'cortex-m33': {'static_only': 7463, 'contiguous': 9857, 'static_only_atomic': 7463, 'contiguous_atomic': 9563},
}
# Issue 12's budget for "the five" on a Cortex-M4 (-Os): 4 KiB for static_only, 6 KiB for
# contiguous; a compile-time atomic context and a chunk policy are the firmware's
# choice, so every row has its back end's budget.
BUDGET = {'cortex-m4': {'static_only': 4096, 'contiguous': 6144}}


def text_size(lib):
    out = subprocess.run(['arm-none-eabi-size', '-t', lib], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])  # the (TOTALS) line


def main():
    header = f'   {"target":<14} {"policy":<23}' + ''.join(f'{label:>14}' for _, label in OPS) + f'{"all":>8}'
    print(header)
    alls = []
    for arg in sys.argv[1:]:
        cpu, build = arg.split('=', 1)
        fw = os.path.join(build, 'examples', 'firmware')
        for policy in POLICIES:
            libs = [os.path.join(fw, f'libpcpu_footprint_{policy}_{op}.a') for op, _ in OPS]
            libs.append(os.path.join(fw, f'libpcpu_footprint_{policy}.a'))
            missing = [lib for lib in libs if not os.path.exists(lib)]
            if missing:
                print(f'size_table.py: {missing[0]} was not built', file=sys.stderr)
                return 1
            sizes = [text_size(lib) for lib in libs]
            print(f'   {cpu:<14} {policy:<23}' + ''.join(f'{s:>14}' for s in sizes[:-1]) + f'{sizes[-1]:>8}')
            alls.append((cpu, policy, sizes[-1], sizes[-2]))
    print(f'   "all" against {BEFORE_REF}; "the five" against the budget:')
    for cpu, policy, now, five in alls:
        line = f'   {cpu:<14} {policy:<23}'
        # A *_scan row is measured against the same configuration before the round,
        # when the kernel's layout was the only chunk policy.
        before = BEFORE.get(cpu, {}).get(policy.replace('_scan', ''))
        line += f'{before:>8} -> {now:>6} ({now - before:+d})' if before is not None else f'{"":>8}    {now:>6}'
        budget = BUDGET.get(cpu, {}).get(policy.removesuffix('_atomic').removesuffix('_scan'))
        if budget is not None:
            over = five - budget
            line += f'   the five {five}, budget {budget}: ' + (f'over by {over}' if over > 0 else f'met, {-over} to spare')
        print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
