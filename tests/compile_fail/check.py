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
# Exit status 0 when both hold; otherwise the compiler's output is printed.
import subprocess
import sys
import tempfile


def main():
    case, sep, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    if sep != '--' or not cmd:
        sys.exit('usage: check.py CASE.cpp -- COMPILER [ARGS...]')
    with open(case, encoding='utf-8') as f:
        expect = [line.split('// expect:', 1)[1].strip() for line in f if line.lstrip().startswith('// expect:')]
    if not expect:
        sys.exit(f'{case}: no `// expect:` line')
    with tempfile.TemporaryDirectory() as tmp:
        base = cmd + ['-c', case, '-o', tmp + '/case.o']
        ok = subprocess.run(base, capture_output=True, text=True)
        if ok.returncode != 0:
            print(f'{case}: FAIL: does not compile without PCPU_COMPILE_FAIL\n{ok.stderr}')
            return 1
        bad = subprocess.run(base + ['-DPCPU_COMPILE_FAIL'], capture_output=True, text=True)
    if bad.returncode == 0:
        print(f'{case}: FAIL: compiles with PCPU_COMPILE_FAIL; it must not')
        return 1
    missing = [e for e in expect if e not in bad.stderr]
    if missing:
        print(f'{case}: FAIL: the diagnostic lacks {missing!r}\n{bad.stderr}')
        return 1
    print(f'{case}: OK (rejected, naming: {"; ".join(expect)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
