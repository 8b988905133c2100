#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/embedded/check_typed_cm4.sh SRC INCLUDE_DIR OUT_DIR - build the typed layer for a
# Cortex-M4 (arm-none-eabi-g++, -fno-exceptions -fno-rtti -Os, -Werror), link it with
# --gc-sections, and check that GNU ld defined the pcpu_data boundary symbols around
# both static per-CPU variables. Skips (77) when the toolchain is not installed.
set -euo pipefail
src=$1 inc=$2 out=$3
command -v arm-none-eabi-g++ >/dev/null 2>&1 || { echo "arm-none-eabi-g++ not installed: skipped"; exit 77; }
mkdir -p "$out"
flags=(-std=c++17 -mcpu=cortex-m4 -mthumb -fno-exceptions -fno-rtti -Os -ffunction-sections -fdata-sections
       -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wcast-align -Wold-style-cast -Werror
       -I"$inc")
arm-none-eabi-g++ "${flags[@]}" -c "$src" -o "$out/typed_cm4.o"
arm-none-eabi-g++ "${flags[@]}" "$out/typed_cm4.o" -Wl,--gc-sections --specs=nosys.specs -o "$out/typed_cm4.elf"
arm-none-eabi-size "$out/typed_cm4.o" "$out/typed_cm4.elf"
syms=$(arm-none-eabi-nm "$out/typed_cm4.elf")
addr() { awk -v s="$1" '$3 == s { print $1 }' <<<"$syms"; }
start=$(addr __start_pcpu_data) stop=$(addr __stop_pcpu_data)
[ -n "$start" ] && [ -n "$stop" ] || { echo "FAIL: __start_pcpu_data/__stop_pcpu_data not defined"; exit 1; }
size=$((16#$stop - 16#$start))
echo "pcpu_data: $size bytes at 0x$start"
# irq_count (4 bytes) and latency (8 x 4 bytes) must both be in the block.
[ "$size" -ge 36 ] || { echo "FAIL: pcpu_data holds $size bytes, expected at least 36"; exit 1; }
for v in pcpu_static_irq_count pcpu_static_latency; do
    grep -q "$v" <<<"$syms" || { echo "FAIL: $v was dropped"; exit 1; }
done
# The double-width cmpxchg without a this-CPU guard: a Cortex-M4 has no 8-byte CAS, so
# it must be a compile error that says so, not a silent lock or a libatomic call.
if arm-none-eabi-g++ "${flags[@]}" -DPCPU_CM4_EXPECT_DWCAS_ERROR -c "$src" -o "$out/dwcas.o" 2>"$out/dwcas.err"; then
    echo "FAIL: this_cpu_cmpxchg_double compiled for a guard-less Cortex-M4"; exit 1
fi
grep -q "no compare-and-swap as wide as T" "$out/dwcas.err" ||
    { echo "FAIL: the double-width error does not name its cause:"; head -5 "$out/dwcas.err"; exit 1; }
echo "guard-less double-width cmpxchg: compile error, as intended"
echo "ok"
