// SPDX-License-Identifier: MIT
// tests/asan_uaf.cpp - under AddressSanitizer a freed per-CPU area is poisoned on every
// CPU (pcpu/detail/poison.hpp), so a write through a stale ptr() is an ASan report.
//
//   asan_uaf POLICY live    allocate, free, reallocate the same area (by then
//                           unpoisoned), write every CPU's copy, churn: must pass
//   asan_uaf POLICY stale   allocate, free, write CPU 1's copy through the stale
//                           handle: must die with an ASan report (meson should_fail)
//
// Registered only in builds with -fsanitize=address (tests/meson.build).
#define DOCTEST_CONFIG_DISABLE
#include "support/sim_platform.hpp"

#include <pcpu/allocator.hpp>

#include <cstdio>
#include <cstring>
#include <vector>

namespace {

using sim = pcpu_test::sim_platform<12, 8>;

template <class Policy>
int run(bool stale) {
    pcpu::allocator<sim, Policy> a(4u);
    using alloc_t = decltype(a);
    constexpr std::size_t unit = 4 * alloc_t::page_size;
    std::vector<unsigned char> units(4 * unit + alloc_t::page_size);
    std::vector<unsigned char> meta(alloc_t::first_chunk_meta_bytes(unit, 64, 256) + alloc_t::meta_align);
    auto align = [](void* p, std::size_t n) {
        return reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(p) + n - 1) / n * n);
    };
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = 4;
    cfg.units = align(units.data(), alloc_t::page_size);
    cfg.unit_size = unit;
    cfg.static_size = 64;
    cfg.reserved_size = 256;
    cfg.meta = align(meta.data(), alloc_t::meta_align);
    cfg.meta_size = meta.size() - alloc_t::meta_align;
    if (a.init(cfg) != pcpu::errc::ok) return 2;

    const pcpu::result<pcpu::handle> h = a.alloc(64, 8, pcpu::ctx::full);
    if (!h) return 3;
    for (unsigned cpu = 0; cpu < 4; ++cpu) std::memset(a.ptr(h.value(), cpu), 0x11, 64);
    if (a.free(h.value()) != pcpu::errc::ok) return 4;
    if (stale) {
        std::fprintf(stderr, "asan_uaf: writing CPU 1's copy of a freed area; ASan must stop this\n");
        static_cast<volatile unsigned char*>(a.ptr(h.value(), 1))[8] = 0x22;
        std::fprintf(stderr, "asan_uaf: the stale write went unseen\n");
        return 0;
    }
    // The same area again, then churn through every chunk kind: every live byte on
    // every CPU must be addressable.
    const pcpu::result<pcpu::handle> again = a.alloc(64, 8, pcpu::ctx::full);
    if (!again || again.value() != h.value()) return 5;
    std::vector<pcpu::handle> live{again.value()};
    for (int round = 0; round < 200; ++round) {
        const std::size_t size = 8 + static_cast<std::size_t>(round * 37) % 2000;
        const pcpu::result<pcpu::handle> r =
            round % 7 == 0 ? a.alloc_reserved(8, 8, pcpu::ctx::full) : a.alloc(size, 8, pcpu::ctx::full);
        if (r) {
            for (unsigned cpu = 0; cpu < 4; ++cpu) std::memset(a.ptr(r.value(), cpu), round, 8);
            live.push_back(r.value());
        }
        if (round % 3 == 0 && live.size() > 1) {
            if (a.free(live[live.size() / 2]) != pcpu::errc::ok) return 6;
            live.erase(live.begin() + static_cast<long>(live.size() / 2));
        }
        if (round % 50 == 0) (void)a.balance(pcpu::ctx::full);
        if (!a.verify().ok) return 7;
    }
    for (pcpu::handle l : live) {
        for (unsigned cpu = 0; cpu < 4; ++cpu) std::memset(a.ptr(l, cpu), 0x33, 8);
        if (a.free(l) != pcpu::errc::ok) return 8;
    }
    (void)a.balance(pcpu::ctx::full);
    a.shutdown();
    // The first chunk's storage is the caller's again, every byte of it.
    std::memset(units.data(), 0, units.size());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    const bool stale = std::strcmp(argv[2], "stale") == 0;
    if (std::strcmp(argv[1], "static_only") == 0) return run<pcpu::static_only>(stale);
    if (std::strcmp(argv[1], "contiguous") == 0) return run<pcpu::contiguous>(stale);
    if (std::strcmp(argv[1], "lazy_mapped") == 0) return run<pcpu::lazy_mapped>(stale);
    return 2;
}
