#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# scripts/size_table.py TARGET=BUILDDIR... - the allocator's code size on each
# bare-metal build given (examples/firmware/libpcpu_footprint_*.a, arm-none-eabi-g++ -Os): bytes of
# .text for each operation alone (everything it pulls in) and for all of them in one
# object (shared code counted once). scripts/test prints it; docs/performance.md and
# the README quote it. Exits non-zero if an object is missing.
import os
import subprocess
import sys

OPS = [('init', 'init'), ('alloc', 'alloc'), ('free', 'free'), ('ptr', 'ptr'), ('this_cpu_add', 'this-CPU add')]
# *_atomic: alloc with the compile-time atomic context (ctx::atomic_t), no sleeping path.
POLICIES = ['static_only', 'contiguous', 'static_only_atomic', 'contiguous_atomic']


def text_size(lib):
    out = subprocess.run(['arm-none-eabi-size', '-t', lib], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])  # the (TOTALS) line


def main():
    header = f'   {"target":<14} {"policy":<19}' + ''.join(f'{label:>14}' for _, label in OPS) + f'{"all":>8}'
    print(header)
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
            print(f'   {cpu:<14} {policy:<19}' + ''.join(f'{s:>14}' for s in sizes[:-1]) + f'{sizes[-1]:>8}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
