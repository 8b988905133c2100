#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# tests/compile_fail/check.py CASE.cpp -- COMPILER [ARGS...] - one compile-fail test
# (fmt's compile-error tests, as a Meson test).
#
# CASE.cpp is compiled twice with COMPILER ARGS:
#   - as it is, which must succeed: the snippet is right apart from the one line under
#     test, so a failure below cannot come from a typo;
#   - with -DPCPU_COMPILE_FAIL, which selects that line, and which must fail with every
#     text the case names on a line `// expect: TEXT` (a diagnostic that names what
#     went wrong, not merely any error).
# A file may hold several cases instead, each its own `// expect N: TEXT` lines (N =
# 1, 2, ...): it is compiled once as it is and once with -DPCPU_COMPILE_FAIL=N for
# each N, and every one of those must fail with its own texts.
# Exit status 0 when all hold; otherwise the compiler's output is printed.
import re
import subprocess
import sys
import tempfile


def expectations(case):
    """{define: [texts]}: `// expect: T` -> PCPU_COMPILE_FAIL, `// expect N: T` -> ...=N."""
    want = {}
    with open(case, encoding='utf-8') as f:
        for line in f:
            m = re.match(r'\s*// expect( \d+)?:(.*)$', line)
            if m:
                define = 'PCPU_COMPILE_FAIL' + (f'={m.group(1).strip()}' if m.group(1) else '')
                want.setdefault(define, []).append(m.group(2).strip())
    return want


def main():
    case, sep, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    if sep != '--' or not cmd:
        sys.exit('usage: check.py CASE.cpp -- COMPILER [ARGS...]')
    want = expectations(case)
    if not want:
        sys.exit(f'{case}: no `// expect:` line')
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = cmd + ['-c', case, '-o', tmp + '/case.o']
        ok = subprocess.run(base, capture_output=True, text=True)
        if ok.returncode != 0:
            print(f'{case}: FAIL: does not compile without PCPU_COMPILE_FAIL\n{ok.stderr}')
            return 1
        for define, expect in want.items():
            bad = subprocess.run(base + ['-D' + define], capture_output=True, text=True)
            if bad.returncode == 0:
                print(f'{case} -D{define}: FAIL: compiles; it must not')
                failed += 1
                continue
            missing = [e for e in expect if e not in bad.stderr]
            if missing:
                print(f'{case} -D{define}: FAIL: the diagnostic lacks {missing!r}\n{bad.stderr}')
                failed += 1
                continue
            print(f'{case} -D{define}: OK (rejected, naming: {"; ".join(expect)})')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
