// SPDX-License-Identifier: MIT
// tests/test_lifecycle.cpp - a long life: fill, free everything, balance, again, the way
// firmware and servers use an allocator for years. After every free-all + balance the
// memory must have come back (populated pages, spare chunks), and allocation must cost
// no more in cycle k than in cycle 0, counted as chunks find-fit visits per allocation
// (the find-fit debug counters, pcpu/debug/find_fit_stats.hpp: this binary is built with
// PCPU_FIND_FIT_STATS=1), never as a time.
//
// verify() runs at every phase boundary and every `verify_every` operations inside a
// phase (after each one would make the suite quadratic in the object count).
#include "support/sim_platform.hpp"
#include "support/static_platform.hpp"
#include "support/test_scale.hpp"

#include "../bench/workload.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/debug/find_fit_stats.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#if !PCPU_FIND_FIT_STATS
#error "tests/test_lifecycle.cpp counts find-fit work: build it with -DPCPU_FIND_FIT_STATS=1"
#endif

namespace {

using sim = pcpu_test::sim_platform<12, 8>;
namespace ctx = pcpu::ctx;

/// layout - a first chunk as Linux lays it out ("s<static> r<reserved> d<dynamic> u<unit>").
struct layout {
    std::size_t unit, static_size, reserved, dyn;
};
/// Linux 6.18's boot layout on a 2-CPU x86-64 machine is s185560 r0 d31528 u1048576; at
/// 64 KiB units the same dynamic area after the static area of the recorded trace.
constexpr layout linux_64k{64 * 1024, 29912, 0, 31528};
constexpr layout linux_1m{1024 * 1024, 185560, 0, 31528};
constexpr unsigned nr_cpus = 2;
constexpr std::size_t high_mark = 4; // the atomic reserve's high mark (allocator.hpp)

/// setup<Policy, ChunkLayout> - an allocator over the sim platform with the layout's
/// first chunk.
template <class Policy, class ChunkLayout = pcpu::kernel_layout>
struct setup : pcpu_test::static_setup<pcpu::allocator<sim, Policy, ChunkLayout>> {
    using alloc_t = pcpu::allocator<sim, Policy, ChunkLayout>;
    std::size_t balance_seen = 0;
    explicit setup(const layout& l)
        : pcpu_test::static_setup<alloc_t>(nr_cpus, l.unit, l.static_size, l.reserved) {
        this->cfg.dyn_size = l.dyn;
        this->alloc.platform().set_recording(false);
        REQUIRE(this->init() == pcpu::errc::ok);
    }
    /// balance_if_requested() - what a work queue does when pcpu asks for balance.
    void balance_if_requested() {
        const std::size_t n = this->alloc.platform().balance_requests();
        if (n == balance_seen) return;
        balance_seen = n;
        REQUIRE(this->alloc.balance() == pcpu::errc::ok);
    }
};

/// memory - what a long life must give back, from the public statistics.
struct memory {
    std::size_t first_pages = 0;   ///< the first chunk's pages (always populated)
    std::size_t dynamic_pages = 0; ///< populated pages of dynamic chunks
    std::size_t dynamic_chunks = 0;
    std::size_t chunks = 0;        ///< chunks on the slot lists, the first included
    std::size_t pages() const { return first_pages + dynamic_pages; }
};
template <class A>
memory memory_of(const A& a) {
    memory m;
    a.for_each_chunk([&](const pcpu::chunk_stats& s) {
        if (s.kind == pcpu::chunk_kind::first) m.first_pages += s.nr_populated;
        if (s.kind == pcpu::chunk_kind::dynamic) {
            m.dynamic_pages += s.nr_populated;
            ++m.dynamic_chunks;
        }
    });
    m.chunks = a.stats().nr_chunks;
    return m;
}

/// xorshift64 - the fixed-seed shuffle of the issue.
struct xorshift64 {
    std::uint64_t s;
    std::uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

enum class order { fifo, lifo, shuffled };

/// cycle - one fill + free-all + balance, measured.
struct cycle {
    double visits_per_alloc = 0; ///< find_fit() calls (chunks visited) per allocation
    memory peak;                 ///< at the end of the fill
    memory after;                ///< after the free-all and one balance()
};

/// run_cycles(s, sizes, o, cycles, verify_every) - allocate one object of each size in
/// `sizes` (align 8), free them all in order o, balance whenever pcpu asks and once at
/// the end of the cycle; check verify() all along.
template <class Setup>
std::vector<cycle> run_cycles(Setup& s, const std::vector<std::uint32_t>& sizes, order o, unsigned cycles,
                              std::size_t verify_every = 997) {
    auto& a = s.alloc;
    std::vector<cycle> out;
    std::vector<pcpu::handle> live(sizes.size());
    std::vector<std::size_t> idx(sizes.size());
    xorshift64 rng{0x9e3779b97f4a7c15ull};
    for (unsigned k = 0; k < cycles; ++k) {
        cycle c;
        pcpu::debug::find_fit_counters = {};
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            const pcpu::result<pcpu::handle> r = a.alloc(sizes[i], 8, ctx::full);
            if (!r.ok())
                REQUIRE_MESSAGE(false, "cycle " << k << ", allocation " << i << ": " << pcpu::errc_name(r.error()));
            live[i] = r.value();
            s.balance_if_requested();
            if (i % verify_every == 0) REQUIRE_VERIFIED(a);
        }
        c.visits_per_alloc = static_cast<double>(pcpu::debug::find_fit_counters.find_fit_calls) /
                             static_cast<double>(sizes.size());
        REQUIRE_VERIFIED(a);
        c.peak = memory_of(a);
        for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = o == order::lifo ? idx.size() - 1 - i : i;
        if (o == order::shuffled)
            for (std::size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[static_cast<std::size_t>(rng.next() % i)]);
        for (std::size_t i = 0; i < idx.size(); ++i) {
            const pcpu::errc e = a.free(live[idx[i]]);
            if (e != pcpu::errc::ok)
                REQUIRE_MESSAGE(false, "cycle " << k << ", free " << i << ": " << pcpu::errc_name(e));
            s.balance_if_requested();
            if (i % verify_every == 0) REQUIRE_VERIFIED(a);
        }
        REQUIRE(a.balance() == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
        c.after = memory_of(a);
        out.push_back(c);
    }
    return out;
}

/// visit_slack - how many more chunks find-fit may visit per allocation in a later
/// cycle than in cycle 0: the spare chunk, and the one being filled, tried once more
/// before the sleeping search populates. A chunk walked by every allocation adds one
/// per chunk (14.7 with the 39 free chunks the issue found).
constexpr double visit_slack = 2.0;

/// check_long_life(cycles, spare_pages) - the bounds after every cycle: pages
/// back to the first chunk's plus spare_pages (the reserve's high mark where pages can
/// be unmapped, a whole spare chunk where they cannot), at most one spare dynamic
/// chunk, and find-fit visits per allocation within a small constant of cycle 0's.
void check_long_life(const std::vector<cycle>& cs, std::size_t spare_pages = high_mark) {
    REQUIRE(!cs.empty());
    for (std::size_t k = 0; k < cs.size(); ++k) {
        INFO("cycle " << k << ": pages after " << cs[k].after.pages() << " (first chunk "
                      << cs[k].after.first_pages << "), dynamic chunks " << cs[k].after.dynamic_chunks
                      << ", find-fit visits per alloc " << cs[k].visits_per_alloc << " (cycle 0: "
                      << cs[0].visits_per_alloc << "), peak pages " << cs[k].peak.pages());
        CHECK(cs[k].after.pages() <= cs[k].after.first_pages + spare_pages);
        CHECK(cs[k].after.dynamic_chunks <= 1);
        CHECK(cs[k].visits_per_alloc <= cs[0].visits_per_alloc + visit_slack);
    }
}

/// workload(size, n) - n sizes: all `size`, or for size 0 the mixed 4/16/64/256 (fixed seed).
std::vector<std::uint32_t> workload(std::uint32_t size, std::size_t n) {
    static constexpr std::uint32_t mix[] = {4, 16, 64, 256};
    std::vector<std::uint32_t> v(n, size);
    xorshift64 rng{0x2545f4914f6cdd1dull};
    if (size == 0)
        for (auto& x : v) x = mix[rng.next() % 4];
    return v;
}

/// objects_per_cycle(size, capacity) - enough objects to need several chunks at 64 KiB
/// units (the first chunk alone at 1 MiB for the small sizes), capped so the suite
/// stays quick under emulation, and within capacity bytes (static_only).
std::size_t objects_per_cycle(std::uint32_t size, std::size_t capacity) {
    const std::size_t bytes = size == 0 ? 85 : size; // the mix's mean
    std::size_t n = 256 * 1024 / bytes;
    const std::size_t cap = pcpu_test::scaled(std::size_t{3000}); // a quarter under emulation
    if (n > cap) n = cap;
    if (n < 300) n = 300;
    if (n * bytes > capacity) n = capacity / bytes;
    return n;
}

} // namespace

// The kernel's chunk layout and two others (chunk_layout.hpp): a 16-byte granule, and
// 256-byte blocks on the 4 KiB pages.
#define PCPU_LIFECYCLE_LAYOUTS pcpu::kernel_layout, pcpu::chunk_layout<16>, pcpu::chunk_layout<4, 256>, pcpu::scan_layout<>

TEST_SUITE("lifecycle") {

TEST_CASE_TEMPLATE("regression: the public trace's memory comes back (Linux layout, 64 KiB units, 2 CPUs)", L,
                   PCPU_LIFECYCLE_LAYOUTS) {
    const pcpu_bench::trace t = pcpu_bench::load_trace(PCPU_LIFECYCLE_TRACE);
    REQUIRE(!t.ops.empty());
    setup<pcpu::lazy_mapped, L> s(linux_64k);
    auto& a = s.alloc;
    std::vector<pcpu::handle> slots(t.nr_slots);
    std::vector<bool> live(t.nr_slots, false);
    for (std::size_t i = 0; i < t.ops.size(); ++i) {
        const pcpu_bench::op& o = t.ops[i];
        if (o.alloc) {
            pcpu::result<pcpu::handle> r = a.alloc(o.size, o.align, o.atomic ? ctx::atomic : ctx::full);
            if (!r.ok() && o.atomic) { // the reserve ran dry: what the caller's retry meets
                s.balance_if_requested();
                r = a.alloc(o.size, o.align, ctx::atomic);
            }
            REQUIRE(r.ok());
            slots[o.slot] = r.value();
        } else {
            REQUIRE(a.free(slots[o.slot]) == pcpu::errc::ok);
        }
        live[o.slot] = o.alloc;
        s.balance_if_requested();
        if (i % 257 == 0) REQUIRE_VERIFIED(a);
    }
    REQUIRE_VERIFIED(a);
    for (std::uint32_t i = 0; i < t.nr_slots; ++i)
        if (live[i]) {
            REQUIRE(a.free(slots[i]) == pcpu::errc::ok);
            s.balance_if_requested();
        }
    REQUIRE_VERIFIED(a);
    for (int i = 0; i < 3; ++i) REQUIRE(a.balance() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    const memory m = memory_of(a);
    INFO("populated pages " << m.pages() << " (first chunk " << m.first_pages << ", dynamic " << m.dynamic_pages
                            << "), chunks " << m.chunks);
    // Linux 6.18 replayed the same way ends with 8 populated pages (its first chunk's)
    // and 2 chunks: the first chunk's pages and no dynamic one. (A 16-byte granule rounds
    // the static and dynamic areas up: the first chunk then ends 16 bytes into a ninth
    // page.)
    using alloc_t = typename setup<pcpu::lazy_mapped, L>::alloc_t;
    const std::size_t g = alloc_t::min_alloc_size;
    const std::size_t head = (linux_64k.static_size + g - 1) / g * g;
    const std::size_t first_pages = alloc_t::rules::region_pages(head, head + (linux_64k.dyn + g - 1) / g * g);
    if (std::is_same<L, pcpu::kernel_layout>::value) CHECK(first_pages == 8);
    CHECK(m.pages() <= first_pages);
    CHECK(m.chunks <= 2);
}

constexpr std::uint32_t sizes_of_matrix[] = {4, 16, 64, 256, 1024, 0}; // 0: mixed 4/16/64/256
constexpr order orders[] = {order::fifo, order::lifo, order::shuffled};
constexpr unsigned matrix_cycles = 4;

TEST_CASE_TEMPLATE("lazy_mapped: cycles of fill and free-all for every size, free order and unit size", L,
                   PCPU_LIFECYCLE_LAYOUTS) {
    for (const layout& l : {linux_64k, linux_1m})
        for (const std::uint32_t size : sizes_of_matrix)
            for (const order o : orders) {
                INFO("unit " << l.unit << ", size " << size << " (0: mixed), free order " << int(o));
                setup<pcpu::lazy_mapped, L> s(l);
                check_long_life(run_cycles(s, workload(size, objects_per_cycle(size, ~std::size_t{0})), o,
                                           matrix_cycles));
            }
}

TEST_CASE("contiguous: cycles of fill and free-all; the spare chunk stays populated, nothing more") {
    for (const layout& l : {linux_64k, linux_1m})
        for (const std::uint32_t size : sizes_of_matrix)
            for (const order o : orders) {
                INFO("unit " << l.unit << ", size " << size << " (0: mixed), free order " << int(o));
                setup<pcpu::contiguous> s(l);
                // Pages of a contiguous chunk cannot be unmapped: the spare keeps all of
                // its own, and the reserve lives in them.
                check_long_life(run_cycles(s, workload(size, objects_per_cycle(size, ~std::size_t{0})), o,
                                           matrix_cycles),
                                l.unit / 4096);
            }
}

TEST_CASE_TEMPLATE("static_only: cycles of fill and free-all of the first chunk", L, PCPU_LIFECYCLE_LAYOUTS) {
    for (layout l : {linux_64k, linux_1m}) {
        l.dyn = 0; // the whole unit: the only memory there is
        // In 4-byte objects; a larger granule holds fewer (at worst 1 per granule).
        const std::size_t granules_per_4 = pcpu::allocator<sim, pcpu::static_only, L>::min_alloc_size / 4;
        const std::size_t capacity = (l.unit - l.static_size) / 2 / granules_per_4;
        for (const std::uint32_t size : sizes_of_matrix)
            for (const order o : orders) {
                INFO("unit " << l.unit << ", size " << size << " (0: mixed), free order " << int(o));
                setup<pcpu::static_only, L> s(l);
                check_long_life(run_cycles(s, workload(size, objects_per_cycle(size, capacity)), o, matrix_cycles),
                                0);
            }
    }
}

TEST_CASE("sidelined chunks with no populated fit are not scanned by every allocation") {
    // Chunks whose populated pages are full and whose free space is all unmapped:
    // reclaim sidelines them. A sleeping allocation's lock-free try must not walk
    // them one by one, each time.
    setup<pcpu::lazy_mapped> s(linux_64k);
    auto& a = s.alloc;
    std::vector<pcpu::handle> hs;
    for (int i = 0; i < 40 * 256; ++i) {
        const pcpu::result<pcpu::handle> r = a.alloc(256, 8, ctx::full);
        REQUIRE(r.ok());
        hs.push_back(r.value());
    }
    REQUIRE_VERIFIED(a);
    // Keep the first chunk and the first page of every dynamic chunk full, free the
    // rest, reclaim.
    std::vector<std::uintptr_t> bases;
    a.for_each_chunk([&](const pcpu::chunk_stats& c) {
        if (c.kind == pcpu::chunk_kind::dynamic) bases.push_back(c.base);
    });
    for (const pcpu::handle h : hs) {
        bool first_page = s.in_unit(a.ptr(h, 0), 0, 0, linux_64k.unit);
        for (const std::uintptr_t b : bases) first_page |= h.addr() >= b && h.addr() < b + 4096;
        if (!first_page) REQUIRE(a.free(h) == pcpu::errc::ok);
        s.balance_if_requested();
    }
    for (int i = 0; i < 3; ++i) REQUIRE(a.balance() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    std::size_t sidelined = 0;
    a.for_each_chunk([&](const pcpu::chunk_stats& c) {
        if (c.kind == pcpu::chunk_kind::dynamic && c.nr_alloc != 0 && c.nr_empty_pop_pages == 0 &&
            c.nr_populated < c.nr_pages)
            ++sidelined;
    });
    INFO(sidelined << " chunks with their populated pages full");
    REQUIRE(sidelined >= 10);
    // 400 allocations: the chunk in use fills, then the spare, then a sidelined chunk
    // is put back into use by the sleeping search.
    std::uint64_t most = 0, total = 0;
    constexpr int n = 400;
    for (int i = 0; i < n; ++i) {
        pcpu::debug::find_fit_counters = {};
        REQUIRE(a.alloc(256, 8, ctx::full).ok());
        const std::uint64_t v = pcpu::debug::find_fit_counters.find_fit_calls;
        most = v > most ? v : most;
        total += v;
        s.balance_if_requested();
    }
    REQUIRE_VERIFIED(a);
    INFO("find-fit visits per allocation: " << static_cast<double>(total) / n << " on average, " << most
                                            << " at most");
    CHECK(static_cast<double>(total) / n <= 1.0 + visit_slack);
    CHECK(most <= 4);
}

TEST_CASE("regression: 10,000 x 256 B, shuffled free, 20 cycles: pages come back, allocation stays flat") {
    const std::vector<std::uint32_t> sizes(10000, 256);
    for (const layout& l : {linux_64k, linux_1m}) {
        INFO("unit " << l.unit);
        setup<pcpu::lazy_mapped> s(l);
        check_long_life(run_cycles(s, sizes, order::shuffled, 20));
    }
}

} // TEST_SUITE
