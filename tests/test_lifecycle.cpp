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

#include "../bench/workload.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/debug/find_fit_stats.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
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

/// setup<Policy> - an allocator over the sim platform with the layout's first chunk.
template <class Policy>
struct setup : pcpu_test::static_setup<pcpu::allocator<sim, Policy>> {
    using alloc_t = pcpu::allocator<sim, Policy>;
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
            REQUIRE(r.ok());
            live[i] = r.value();
            s.balance_if_requested();
            if (i % verify_every == 0) CHECK_VERIFIED(a);
        }
        c.visits_per_alloc = static_cast<double>(pcpu::debug::find_fit_counters.find_fit_calls) /
                             static_cast<double>(sizes.size());
        CHECK_VERIFIED(a);
        c.peak = memory_of(a);
        for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = o == order::lifo ? idx.size() - 1 - i : i;
        if (o == order::shuffled)
            for (std::size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng.next() % i]);
        for (std::size_t i = 0; i < idx.size(); ++i) {
            REQUIRE(a.free(live[idx[i]]) == pcpu::errc::ok);
            s.balance_if_requested();
            if (i % verify_every == 0) CHECK_VERIFIED(a);
        }
        REQUIRE(a.balance() == pcpu::errc::ok);
        CHECK_VERIFIED(a);
        c.after = memory_of(a);
        out.push_back(c);
    }
    return out;
}

/// check_long_life(cycles, first_pages) - the bounds after every cycle: pages
/// back to the first chunk's plus the reserve's high mark, at most one spare dynamic
/// chunk, and find-fit visits per allocation within a small constant of cycle 0's.
void check_long_life(const std::vector<cycle>& cs) {
    REQUIRE(!cs.empty());
    for (std::size_t k = 0; k < cs.size(); ++k) {
        INFO("cycle " << k << ": pages after " << cs[k].after.pages() << " (first chunk "
                      << cs[k].after.first_pages << "), dynamic chunks " << cs[k].after.dynamic_chunks
                      << ", find-fit visits per alloc " << cs[k].visits_per_alloc << " (cycle 0: "
                      << cs[0].visits_per_alloc << ")");
        CHECK(cs[k].after.pages() <= cs[k].after.first_pages + high_mark);
        CHECK(cs[k].after.dynamic_chunks <= 1);
        CHECK(cs[k].visits_per_alloc <= cs[0].visits_per_alloc + 2.0);
    }
}

} // namespace

TEST_SUITE("lifecycle") {

TEST_CASE("regression: the public trace's memory comes back (Linux layout, 64 KiB units, 2 CPUs)") {
    const pcpu_bench::trace t = pcpu_bench::load_trace(PCPU_LIFECYCLE_TRACE);
    REQUIRE(!t.ops.empty());
    setup<pcpu::lazy_mapped> s(linux_64k);
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
        if (i % 257 == 0) CHECK_VERIFIED(a);
    }
    CHECK_VERIFIED(a);
    for (std::uint32_t i = 0; i < t.nr_slots; ++i)
        if (live[i]) {
            REQUIRE(a.free(slots[i]) == pcpu::errc::ok);
            s.balance_if_requested();
        }
    CHECK_VERIFIED(a);
    for (int i = 0; i < 3; ++i) REQUIRE(a.balance() == pcpu::errc::ok);
    CHECK_VERIFIED(a);
    const memory m = memory_of(a);
    INFO("populated pages " << m.pages() << " (first chunk " << m.first_pages << ", dynamic " << m.dynamic_pages
                            << "), chunks " << m.chunks);
    // Linux 6.18 replayed the same way ends with 8 populated pages (its first chunk's)
    // and 2 chunks.
    CHECK(m.pages() <= 8);
    CHECK(m.chunks <= 2);
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
