#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# tests/fuzz/make_seeds.py - writes the committed seed corpus (corpus/allocator/).
# Deterministic: the same files every run. Each seed fixes the header (policy, CPUs,
# first-chunk layout, operations before init; see driver.hpp) and follows it with a
# weighted random run of operations, so every policy and layout starts covered and
# libFuzzer mutates from inputs that already reach chunk creation, population,
# balance and injected failures.
import os
import random
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "allocator")

# op byte % 12: 0-2 alloc, 3 alloc_reserved, 4-5 free, 6 bad free, 7 free many,
# 8 write/read, 9 balance, 10 fault, 11 clear faults
def op(r, weights):
    kind = r.choices(list(weights), weights=list(weights.values()))[0]
    if kind == "alloc":
        size_sel = r.choice([r.randrange(1, 255)] * 8 + [0, 255])
        return [r.randrange(0, 3), size_sel, r.randrange(256), r.randrange(256), r.randrange(256),
                r.randrange(256), r.randrange(256)]
    if kind == "reserved":
        return [3, 4 * r.randrange(1, 60), r.randrange(256), r.randrange(4), r.randrange(256), r.randrange(256)]
    if kind == "free":
        return [4, r.randrange(256)]
    if kind == "bad":
        return [6, r.randrange(256), r.randrange(256), r.randrange(256), r.randrange(256), r.randrange(256)]
    if kind == "many":
        return [7, r.randrange(256)]
    if kind == "rw":
        return [8, r.randrange(256)]
    if kind == "balance":
        return [9, r.randrange(256)]
    if kind == "fault":
        return [10, r.randrange(256), r.randrange(256)]
    return [11]


def seed(name, head, layout, preinit, n, weights, rnd):
    data = [head, layout, preinit]
    for _ in range(n):
        data += op(rnd, weights)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes(b & 0xFF for b in data))


def main():
    os.makedirs(OUT, exist_ok=True)
    plain = {"alloc": 6, "free": 4, "rw": 3, "many": 1, "balance": 1, "bad": 1, "reserved": 1}
    faulty = dict(plain, fault=2, clear=1, balance=2)
    policies = {0: "static", 1: "contiguous", 2: "lazy"}
    rnd = random.Random(20240601)
    for policy, pname in policies.items():
        for cpus in (1, 4):
            head = policy + 3 * (cpus - 1)
            # layouts: bits 0-1 static, 2-3 reserved, 4 background full, 5 own meta, 6 failing meta
            seed(f"{pname}-{cpus}cpu-plain", head, 0b000101, 1, 120, plain, rnd)
            seed(f"{pname}-{cpus}cpu-faults", head, 0b111011 if policy else 0b001011, 0, 120, faulty, rnd)
        seed(f"{pname}-small-first-chunk", policy + 3, 0b0011, 0, 160, dict(plain, balance=3), rnd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
