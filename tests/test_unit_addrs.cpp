// SPDX-License-Identifier: MIT
// tests/test_unit_addrs.cpp - each CPU's unit where the platform puts it
// (first_chunk_config::unit_addrs): arbitrary layouts with gaps, any order and units
// below CPU 0's, for the first chunk (static_only) and for dynamic chunks (contiguous
// over the static arena, which is asked for the span of the layout); and the layouts
// init() must refuse.
#include <pcpu/allocator.hpp>
#include <pcpu/platform/static_arena.hpp>

#include "support/sim_platform.hpp"
#include "support/static_platform.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

using pcpu::errc;
namespace ctx = pcpu::ctx;

constexpr std::size_t page = 1024;
constexpr std::size_t unit_size = 4 * page;
using static_alloc = pcpu::allocator<pcpu_test::static_platform<10, 8>, pcpu::static_only>;

/// layout - one random placement of nr_cpus units in a pool of pages: a random
/// permutation of slots with random gaps, so CPU 0 is anywhere (often not lowest).
struct layout {
    std::vector<unsigned char> pool;
    std::vector<const void*> addrs;
    unsigned char* base = nullptr;

    layout(unsigned nr_cpus, std::mt19937& rng) {
        std::vector<std::size_t> starts; // in pages
        std::size_t at = 0;
        for (unsigned i = 0; i < nr_cpus; ++i) {
            at += rng() % 3; // a gap of 0-2 pages
            starts.push_back(at);
            at += unit_size / page;
        }
        std::shuffle(starts.begin(), starts.end(), rng);
        pool.assign((at + 1) * page, 0xEE);
        base = static_cast<unsigned char*>(pcpu_test::static_setup<static_alloc>::align_up(pool.data(), page));
        for (unsigned c = 0; c < nr_cpus; ++c) addrs.push_back(base + starts[c] * page);
    }
    /// unit_of(p) - the CPU whose unit holds p, or -1 (a gap, or outside).
    int unit_of(const void* p) const {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        for (std::size_t c = 0; c < addrs.size(); ++c) {
            const auto u = reinterpret_cast<std::uintptr_t>(addrs[c]);
            if (a >= u && a < u + unit_size) return static_cast<int>(c);
        }
        return -1;
    }
};

template <class A>
void fill(const A& a, pcpu::handle h, std::size_t size, unsigned tag) {
    for (unsigned c = 0; c < a.nr_cpus(); ++c) std::memset(a.ptr(h, c), static_cast<int>((tag * 7 + c) & 0xFF), size);
}
template <class A>
bool intact(const A& a, pcpu::handle h, std::size_t size, unsigned tag) {
    for (unsigned c = 0; c < a.nr_cpus(); ++c) {
        const auto* p = static_cast<const unsigned char*>(a.ptr(h, c));
        for (std::size_t i = 0; i < size; ++i)
            if (p[i] != static_cast<unsigned char>((tag * 7 + c) & 0xFF)) return false;
    }
    return true;
}

struct live_alloc {
    pcpu::handle h;
    std::size_t size;
    unsigned tag;
};

} // namespace

TEST_SUITE("unit_addrs") {

TEST_CASE("static_only over random unit layouts: ptr() of every CPU lands in that CPU's unit") {
    std::mt19937 rng(20261203);
    for (int round = 0; round < 40; ++round) {
        const unsigned nr_cpus = 1 + static_cast<unsigned>(rng() % 8);
        layout lay(nr_cpus, rng);
        CAPTURE(round);
        CAPTURE(nr_cpus);

        // A static image: every unit must start with a copy of it.
        unsigned char image[100];
        for (std::size_t i = 0; i < sizeof image; ++i) image[i] = static_cast<unsigned char>(i * 3 + 1);
        std::vector<unsigned char> meta(static_alloc::first_chunk_meta_bytes(unit_size, sizeof image, 0) +
                                        static_alloc::meta_align);
        static_alloc a;
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = nr_cpus;
        cfg.unit_addrs = lay.addrs.data();
        cfg.unit_size = unit_size;
        cfg.static_image = image;
        cfg.static_size = sizeof image;
        cfg.meta = pcpu_test::static_setup<static_alloc>::align_up(meta.data(), static_alloc::meta_align);
        cfg.meta_size = meta.size() - static_alloc::meta_align;
        REQUIRE(a.init(cfg) == errc::ok);
        REQUIRE_VERIFIED(a);
        for (unsigned c = 0; c < nr_cpus; ++c) {
            CHECK(a.ptr(a.static_handle(0), c) == lay.addrs[c]);
            CHECK(std::memcmp(lay.addrs[c], image, sizeof image) == 0);
        }

        std::vector<live_alloc> live;
        for (unsigned op = 0; op < 300; ++op) {
            if (live.empty() || rng() % 3 != 0) {
                const std::size_t size = 4 + rng() % 900;
                const std::size_t align = std::size_t{4} << (rng() % 5);
                auto r = a.alloc(size, align, ctx::full);
                REQUIRE_VERIFIED(a);
                if (!r) {
                    CHECK(r.error() == errc::no_space);
                    continue;
                }
                // Every CPU's copy lies wholly inside that CPU's own unit, past the
                // static area: distinct memory for every CPU.
                for (unsigned c = 0; c < nr_cpus; ++c) {
                    const auto* p = static_cast<const unsigned char*>(a.ptr(r.value(), c));
                    REQUIRE(lay.unit_of(p) == static_cast<int>(c));
                    REQUIRE(lay.unit_of(p + size - 1) == static_cast<int>(c));
                    REQUIRE(p >= static_cast<const unsigned char*>(lay.addrs[c]) + sizeof image);
                }
                fill(a, r.value(), size, op);
                live.push_back({r.value(), size, op});
            } else {
                const std::size_t k = rng() % live.size();
                REQUIRE(intact(a, live[k].h, live[k].size, live[k].tag));
                REQUIRE(a.free(live[k].h) == errc::ok);
                REQUIRE_VERIFIED(a);
                live[k] = live.back();
                live.pop_back();
            }
        }
        for (const auto& l : live) {
            REQUIRE(intact(a, l.h, l.size, l.tag));
            REQUIRE(a.free(l.h) == errc::ok);
            REQUIRE_VERIFIED(a);
        }
        // The static image survived all of it, and the gaps were never written.
        for (unsigned c = 0; c < nr_cpus; ++c) CHECK(std::memcmp(lay.addrs[c], image, sizeof image) == 0);
        for (std::size_t i = 0; i + page <= lay.pool.size(); ++i) {
            unsigned char* p = lay.pool.data() + i;
            if (p >= lay.base && lay.unit_of(p) < 0 && p < lay.base + (lay.pool.size() - page)) REQUIRE(*p == 0xEE);
        }
    }
}

TEST_CASE("a unit below CPU 0's: the offset wraps and ptr() still reaches it") {
    std::mt19937 rng(1);
    layout lay(2, rng);
    // Force CPU 1 below CPU 0 with a gap of one page between.
    lay.addrs = {lay.base + unit_size + page, lay.base};
    std::vector<unsigned char> meta(static_alloc::first_chunk_meta_bytes(unit_size, 0, 0) + static_alloc::meta_align);
    static_alloc a;
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = 2;
    cfg.unit_addrs = lay.addrs.data();
    cfg.unit_size = unit_size;
    cfg.meta = pcpu_test::static_setup<static_alloc>::align_up(meta.data(), static_alloc::meta_align);
    cfg.meta_size = meta.size() - static_alloc::meta_align;
    REQUIRE(a.init(cfg) == errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.cpu_offsets()[1] == static_cast<std::uintptr_t>(0) - (unit_size + page));
    auto r = a.alloc(unit_size, 4, ctx::full); // the whole unit
    REQUIRE_VERIFIED(a);
    REQUIRE(r.ok());
    CHECK(a.ptr(r.value(), 0) == lay.addrs[0]);
    CHECK(a.ptr(r.value(), 1) == lay.addrs[1]);
    REQUIRE(a.free(r.value()) == errc::ok);
    REQUIRE_VERIFIED(a);
}

TEST_CASE("init refuses a bad unit layout with bad_config and stays usable") {
    std::vector<unsigned char> pool(16 * unit_size);
    auto* base = static_cast<unsigned char*>(pcpu_test::static_setup<static_alloc>::align_up(pool.data(), page));
    std::vector<unsigned char> meta(static_alloc::first_chunk_meta_bytes(unit_size, 0, 0) + static_alloc::meta_align);
    static_alloc a;
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = 3;
    cfg.unit_size = unit_size;
    cfg.meta = pcpu_test::static_setup<static_alloc>::align_up(meta.data(), static_alloc::meta_align);
    cfg.meta_size = meta.size() - static_alloc::meta_align;

    const auto top = reinterpret_cast<const void*>(~std::uintptr_t{0} / page * page); // last page: wraps
    const std::vector<std::vector<const void*>> bad = {
        {base, base + 4 * unit_size, nullptr},                    // a null unit
        {base, base + 4 * unit_size + 4, base + 8 * unit_size},   // misaligned
        {base, base + unit_size - page, base + 8 * unit_size},    // overlaps CPU 0's
        {base + 8 * unit_size, base, base + 8 * unit_size + 3 * page}, // CPU 2 overlaps CPU 0
        {base, base + 4 * unit_size, top},                        // wraps the address space
        {base, base, base + 2 * unit_size},                       // the same unit twice
    };
    for (const auto& addrs : bad) {
        cfg.unit_addrs = addrs.data();
        CHECK(a.init(cfg) == errc::bad_config);
        CHECK_FALSE(a.initialized());
    }
    // Both `units` and `unit_addrs`: ambiguous.
    const std::vector<const void*> good = {base + 2 * unit_size, base, base + 5 * unit_size};
    cfg.unit_addrs = good.data();
    cfg.units = base;
    CHECK(a.init(cfg) == errc::bad_config);
    cfg.units = nullptr;
    REQUIRE(a.init(cfg) == errc::ok);
    REQUIRE_VERIFIED(a);
    auto r = a.alloc(unit_size, 4, ctx::full);
    REQUIRE_VERIFIED(a);
    REQUIRE(r.ok());
    for (unsigned c = 0; c < 3; ++c) CHECK(a.ptr(r.value(), c) == good[c]);
}

TEST_CASE("contiguous with a sparse layout: dynamic chunks get the same offsets from one span each") {
    // The arena platform, remembering what alloc_units() was asked for.
    struct plat_t : pcpu::static_arena<8, 10> {
        using static_arena::static_arena;
        std::vector<std::size_t> asked;
        void* alloc_units(std::size_t bytes, context c) noexcept {
            asked.push_back(bytes);
            return static_arena::alloc_units(bytes, c);
        }
    };
    using alloc_t = pcpu::allocator<plat_t, pcpu::contiguous>;
    std::mt19937 rng(77);
    for (int round = 0; round < 10; ++round) {
        const unsigned nr_cpus = 2 + static_cast<unsigned>(rng() % 4);
        layout lay(nr_cpus, rng);
        CAPTURE(round);
        const auto lo = reinterpret_cast<std::uintptr_t>(*std::min_element(lay.addrs.begin(), lay.addrs.end()));
        const auto hi = reinterpret_cast<std::uintptr_t>(*std::max_element(lay.addrs.begin(), lay.addrs.end()));
        const std::size_t span = hi - lo + unit_size;

        std::vector<unsigned char> storage(3 * span + 8 * page);
        alloc_t a(storage.data(), storage.size());
        const pcpu::arena& ar = a.platform().memory();
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = nr_cpus;
        cfg.unit_addrs = lay.addrs.data();
        cfg.unit_size = unit_size;
        REQUIRE(a.init(cfg) == errc::ok);
        REQUIRE_VERIFIED(a);

        std::vector<live_alloc> live;
        for (unsigned tag = 0; tag < 12; ++tag) {
            auto r = a.alloc(unit_size / 2, 8, ctx::full);
            REQUIRE_VERIFIED(a);
            if (!r) {
                CHECK(r.error() == errc::out_of_memory);
                break;
            }
            const auto cpu0 = reinterpret_cast<std::uintptr_t>(a.ptr(r.value(), 0));
            if (lay.unit_of(a.ptr(r.value(), 0)) < 0) {
                // A dynamic chunk: its span came from the arena, CPU 0's unit sits
                // where it sits in the first chunk's layout, every CPU inside the span.
                for (unsigned c = 0; c < nr_cpus; ++c) {
                    const auto p = reinterpret_cast<std::uintptr_t>(a.ptr(r.value(), c));
                    REQUIRE(ar.owns(reinterpret_cast<void*>(p)));
                    REQUIRE(ar.owns(reinterpret_cast<void*>(p + unit_size / 2 - 1)));
                    CHECK(p - cpu0 == reinterpret_cast<std::uintptr_t>(lay.addrs[c]) -
                                          reinterpret_cast<std::uintptr_t>(lay.addrs[0]));
                }
            } else {
                for (unsigned c = 0; c < nr_cpus; ++c) REQUIRE(lay.unit_of(a.ptr(r.value(), c)) == static_cast<int>(c));
            }
            fill(a, r.value(), unit_size / 2, tag);
            live.push_back({r.value(), unit_size / 2, tag});
        }
        // Two allocations per unit; the first chunk and at least two dynamic chunks,
        // each one span of the layout.
        CHECK(live.size() >= 6);
        CHECK(a.platform().asked.size() >= 2);
        for (std::size_t bytes : a.platform().asked) CHECK(bytes == span);
        CHECK(a.stats().nr_chunks >= 3);
        for (const auto& l : live) {
            REQUIRE(intact(a, l.h, l.size, l.tag));
            REQUIRE(a.free(l.h) == errc::ok);
            REQUIRE_VERIFIED(a);
        }
        REQUIRE(a.balance() == errc::ok);
        REQUIRE_VERIFIED(a);
        a.shutdown();
        CHECK(ar.nr_live() == 0);
        CHECK(ar.nr_bad_free() == 0); // every span went back exactly as it was handed out
        CHECK(ar.verify());
    }
}

TEST_CASE("lazy_mapped with a sparse layout: each CPU's pages mapped at its offset inside the reserved span") {
    // The simulated MMU platform: reserve() is PROT_NONE address space, map() makes
    // pages accessible, so a page populated at the wrong CPU offset faults on touch.
    using sim = pcpu_test::sim_platform<12, 4>;
    using alloc_t = pcpu::allocator<sim, pcpu::lazy_mapped>;
    constexpr std::size_t page4k = 4096, unit = 4 * page4k;
    std::vector<unsigned char> pool(14 * unit);
    auto* base = static_cast<unsigned char*>(pcpu_test::static_setup<alloc_t>::align_up(pool.data(), page4k));
    // CPU 0 in the middle, CPU 1 lowest, CPU 2 highest after a gap.
    const std::vector<const void*> addrs = {base + 3 * unit, base, base + 7 * unit + page4k};
    const std::size_t span = 7 * unit + page4k + unit;
    {
        alloc_t a;
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = 3;
        cfg.unit_addrs = addrs.data();
        cfg.unit_size = unit;
        REQUIRE(a.init(cfg) == errc::ok);
        REQUIRE_VERIFIED(a);
        std::vector<live_alloc> live;
        for (unsigned tag = 0; tag < 9; ++tag) {
            auto r = a.alloc(unit / 2 + 4 * tag, 8, ctx::full);
            REQUIRE_VERIFIED(a);
            REQUIRE(r.ok());
            fill(a, r.value(), unit / 2 + 4 * tag, tag);
            live.push_back({r.value(), unit / 2 + 4 * tag, tag});
        }
        CHECK(a.stats().nr_chunks >= 3);
        for (const auto& l : a.platform().log())
            if (l.kind == pcpu::debug::callback::reserve) CHECK(l.size == span);
        for (const auto& l : live) {
            REQUIRE(intact(a, l.h, l.size, l.tag));
            // Every CPU's copy sits at that CPU's offset from CPU 0's.
            for (unsigned c = 0; c < 3; ++c)
                CHECK(reinterpret_cast<std::uintptr_t>(a.ptr(l.h, c)) - l.h.addr() ==
                      reinterpret_cast<std::uintptr_t>(addrs[c]) - reinterpret_cast<std::uintptr_t>(addrs[0]));
            REQUIRE(a.free(l.h) == errc::ok);
            REQUIRE_VERIFIED(a);
        }
        REQUIRE(a.balance() == errc::ok);
        REQUIRE_VERIFIED(a);
        a.shutdown();
        SIM_CHECK_CLEAN(a.platform());
    }
}

} // TEST_SUITE
