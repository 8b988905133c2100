#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# tests/readme_snippets.py README.md INCLUDE_DIR OUT_DIR CXX... - compile every ```cpp
# block of the README as written, each as its own translation unit, with exceptions and
# RTTI off and warnings as errors; link and run the ones that define main() (exit 0
# expected). A block whose info string says `cortex-m` is compiled for a Cortex-M4 with
# arm-none-eabi-g++ instead. A README that drifts from the headers fails the test.
import os
import re
import shutil
import subprocess
import sys

readme, include, out, cxx = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
os.makedirs(out, exist_ok=True)
blocks = re.findall(r"^```cpp([^\n]*)\n(.*?)^```", open(readme).read(), re.M | re.S)
if not blocks:
    sys.exit(f"readme_snippets: no ```cpp block in {readme}")
flags = ["-std=c++17", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror", "-I" + include]
failed = 0
for i, (info, code) in enumerate(blocks, 1):
    src = os.path.join(out, f"snippet_{i}.cpp")
    with open(src, "w") as f:
        f.write(code)
    if "cortex-m" in info.split():
        arm = shutil.which("arm-none-eabi-g++")
        if arm is None:
            print(f"snippet {i}: FAIL (arm-none-eabi-g++ not installed)")
            failed += 1
            continue
        cmd = [arm, "-mcpu=cortex-m4", "-mthumb", "-Os", "-c", "-o", src + ".o"] + flags + [src]
        kind = "compiled for Cortex-M4"
    elif re.search(r"^int main\(", code, re.M):
        cmd = cxx + flags + ["-pthread", "-o", src + ".exe", src]
        kind = "built and ran"
    else:
        cmd = cxx + flags + ["-c", "-o", src + ".o", src]
        kind = "compiled"
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 0 and kind == "built and ran":
        r = subprocess.run([src + ".exe"], capture_output=True, text=True)
        if r.returncode != 0:
            r.stderr += f"\nexit status {r.returncode}"
    if r.returncode != 0:
        failed += 1
        print(f"snippet {i} (```cpp{info}): FAIL\n{r.stdout}{r.stderr}")
    else:
        print(f"snippet {i}: {kind}")
print(f"readme_snippets: {len(blocks) - failed} of {len(blocks)} snippets ok")
sys.exit(1 if failed else 0)
