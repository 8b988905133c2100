// SPDX-License-Identifier: MIT
// tests/test_chunk_layout.cpp - the chunk layout policy (chunk_layout.hpp): the allocator
// over the kernel's layout and over non-default granules and blocks, static_only and
// lazy_mapped. Every allocator operation is followed by verify().
#include "support/checked_fixture.hpp"
#include "support/sim_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/chunk_layout.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <vector>

namespace {

using plat = pcpu_test::static_platform<12, 8>;
constexpr pcpu::gfp full = pcpu::ctx::full;

using granule8 = pcpu::chunk_layout<8>;
using granule16 = pcpu::chunk_layout<16>;
using block256 = pcpu::chunk_layout<4, 256>;
using g8_block512 = pcpu::chunk_layout<8, 512>;
using scan = pcpu::scan_layout<>;
using scan16 = pcpu::scan_layout<16>;

using pcpu_test::zeroed;

std::size_t round_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }

} // namespace

TEST_SUITE("chunk_layout") {

TEST_CASE("the kernel's layout is the default") {
    static_assert(std::is_same<pcpu::allocator<plat>::chunk_type, pcpu::basic_chunk<12>>::value);
    static_assert(pcpu::allocator<plat>::min_alloc_size == 4 && pcpu::allocator<plat>::max_align == 4096);
    static_assert(pcpu::allocator<plat, pcpu::static_only, granule16>::min_alloc_size == 16);
    static_assert(pcpu::allocator<plat, pcpu::static_only, block256>::max_align == 256);
    // A quarter of the bitmaps at granule 16; sixteen block summaries a page at 256 B.
    using k = pcpu::basic_chunk<12>;
    using g = pcpu::chunk_layout<16>::chunk<12>;
    using b = block256::chunk<12>;
    CHECK(g::meta_bytes(64) < k::meta_bytes(64));
    CHECK(b::meta_bytes(64) == k::meta_bytes(64) + 64 * 15 * sizeof(pcpu::block_md));
}

TEST_CASE_TEMPLATE("randomized alloc/free over a static first chunk, every layout", L, pcpu::kernel_layout,
                   granule8, granule16, block256, g8_block512, scan, scan16) {
    using alloc_t = pcpu::allocator<plat, pcpu::static_only, L>;
    constexpr std::size_t g = alloc_t::min_alloc_size;
    for (unsigned seed : {1u, 2u}) {
        CAPTURE(seed);
        pcpu_test::static_setup<alloc_t> s(3, 64 * 1024, 1000, 3000);
        REQUIRE(s.init() == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        auto& a = s.alloc;
        std::mt19937 rng(seed);
        struct obj { pcpu::handle h; std::size_t size; };
        std::vector<obj> live;
        for (int op = 0; op < 2000; ++op) {
            if (live.empty() || rng() % 100 < 55) {
                const std::size_t size = 1 + rng() % (rng() % 8 == 0 ? 6000 : 100);
                const std::size_t align = std::size_t{1} << (rng() % 13);
                const bool reserved = rng() % 10 == 0;
                auto r = reserved ? a.alloc_reserved(size, align, full) : a.alloc(size, align, full);
                REQUIRE_VERIFIED(a);
                if (align > alloc_t::max_align) {
                    CHECK(r.error() == pcpu::errc::bad_alignment);
                    continue;
                }
                if (!r) {
                    REQUIRE(r.error() == pcpu::errc::no_space);
                    continue;
                }
                const std::uintptr_t p0 = r.value().addr();
                CHECK(p0 % std::max(align, g) == 0);
                CHECK(a.allocation_size(r.value()).value() == round_up(size, g));
                for (const auto& o : live) REQUIRE((p0 + size <= o.h.addr() || o.h.addr() + o.size <= p0));
                REQUIRE(zeroed(a, r.value(), size));
                for (unsigned cpu = 0; cpu < 3; ++cpu) std::memset(a.ptr(r.value(), cpu), 0xee, size);
                live.push_back({r.value(), size});
            } else {
                const std::size_t i = rng() % live.size();
                REQUIRE(a.free(live[i].h, live[i].size) == pcpu::errc::ok);
                REQUIRE_VERIFIED(a);
                live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
            }
        }
        for (const auto& o : live) {
            REQUIRE(a.free(o.h) == pcpu::errc::ok);
            REQUIRE_VERIFIED(a);
        }
        CHECK(a.stats().live_bytes == 0);
        // static + reserved (4000 bytes) fill page 0 only: pages 1 .. 15 are empty.
        CHECK(a.stats().nr_empty_pop_pages == 15);
    }
}

TEST_CASE_TEMPLATE("sizes and alignments below the granule round up to it", L, granule8, granule16, g8_block512,
                   scan16) {
    using alloc_t = pcpu::allocator<plat, pcpu::static_only, L>;
    constexpr std::size_t g = alloc_t::min_alloc_size;
    // A static area that is not a granule multiple: the dynamic area starts rounded.
    pcpu_test::static_setup<alloc_t> s(2, 16 * 1024, 1001, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    std::vector<pcpu::handle> live;
    for (std::size_t size : {std::size_t{1}, std::size_t{3}, g - 1, g, g + 1, 2 * g + 3}) {
        for (std::size_t align : {std::size_t{1}, std::size_t{4}, g / 2, g, 2 * g}) {
            CAPTURE(size);
            CAPTURE(align);
            auto r = a.alloc(size, align, full);
            REQUIRE(r.ok());
            REQUIRE_VERIFIED(a);
            CHECK(r.value().addr() % std::max(align, g) == 0);
            CHECK(a.allocation_size(r.value()).value() == round_up(size, g));
            live.push_back(r.value());
        }
    }
    // A 1-byte allocation takes one granule.
    const std::size_t before = a.stats().live_bytes;
    auto x = a.alloc(1, 1, full), y = a.alloc(1, 1, full);
    REQUIRE_VERIFIED(a);
    REQUIRE((x.ok() && y.ok()));
    CHECK(a.stats().live_bytes - before == 2 * g);
    // free(h, size) accepts any size that rounds to the same granules, nothing else.
    CHECK(a.free(x.value(), g + 1) == pcpu::errc::invalid_pointer);
    REQUIRE_VERIFIED(a);
    CHECK(a.free(x.value(), g - 1) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.free(y.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    // An address inside a granule is not an allocation's start.
    CHECK(a.free(pcpu::handle(live[0].addr() + 4)) == pcpu::errc::invalid_pointer);
    REQUIRE_VERIFIED(a);
    for (auto h : live) {
        CHECK(a.free(h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    CHECK(a.stats().nr_cur_alloc == 0);
}

TEST_CASE("blocks smaller than pages: alignment is honoured up to the block, refused above") {
    using alloc_t = pcpu::allocator<plat, pcpu::static_only, block256>;
    pcpu_test::static_setup<alloc_t> s(2, 16 * 1024, 20, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    std::vector<pcpu::handle> live;
    for (std::size_t align = 1; align <= 256; align *= 2) {
        auto r = a.alloc(4, align, full);
        REQUIRE(r.ok());
        REQUIRE_VERIFIED(a);
        CHECK(r.value().addr() % std::max<std::size_t>(align, 4) == 0);
        live.push_back(r.value());
    }
    CHECK(a.alloc(4, 512, full).error() == pcpu::errc::bad_alignment);
    REQUIRE_VERIFIED(a);
    for (auto h : live) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
}

TEST_CASE_TEMPLATE("lazy_mapped: chunks created, populated, balanced and destroyed, every layout", L,
                   pcpu::kernel_layout, granule16, block256, g8_block512, scan, scan16) {
    using alloc_t = pcpu::allocator<pcpu_test::checked_sim, pcpu::lazy_mapped, L>;
    constexpr std::size_t g = alloc_t::min_alloc_size;
    pcpu_test::checked_fixture<alloc_t> f;
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    CHECK_CLEAN(a);
    auto& sim = pcpu_test::sim_of(a);
    std::mt19937 rng(7);
    struct obj { pcpu::handle h; std::size_t size; };
    std::vector<obj> live;
    for (int op = 0; op < 1500; ++op) {
        if (live.empty() || rng() % 100 < 60) {
            const std::size_t size = 1 + rng() % (rng() % 6 == 0 ? 5000 : 200);
            const std::size_t align = std::size_t{1} << (rng() % 9);
            const bool atomic = rng() % 8 == 0;
            auto r = a.alloc(size, align, atomic ? pcpu::ctx::atomic : pcpu::ctx::full);
            REQUIRE_VERIFIED(a);
            if (!r) {
                REQUIRE((atomic && r.error() == pcpu::errc::would_block));
                continue;
            }
            CHECK(r.value().addr() % std::max(align, g) == 0);
            // Every page the area touches is mapped on every CPU (dynamic chunks: the
            // first chunk is the caller's storage).
            for (unsigned cpu = 0; cpu < pcpu_test::checked_cpus; ++cpu) {
                if (f.in_unit(a.ptr(r.value(), cpu), cpu, 0, pcpu_test::checked_unit)) break;
                const auto p = reinterpret_cast<std::uintptr_t>(a.ptr(r.value(), cpu));
                for (std::uintptr_t q = p / 4096 * 4096; q < p + size; q += 4096) REQUIRE(sim.is_mapped(q));
            }
            REQUIRE(zeroed(a, r.value(), size));
            live.push_back({r.value(), size});
        } else {
            const std::size_t i = rng() % live.size();
            REQUIRE(a.free(live[i].h) == pcpu::errc::ok);
            REQUIRE_VERIFIED(a);
            live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
        }
        if (op % 100 == 99) {
            (void)a.balance();
            REQUIRE_VERIFIED(a);
        }
    }
    CHECK(a.stats().nr_max_chunks > 2);
    for (const auto& o : live) {
        REQUIRE(a.free(o.h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    (void)a.balance();
    CHECK_CLEAN(a);
    CHECK(a.stats().live_bytes == 0);
    CHECK(a.stats().nr_empty_pop_pages <= alloc_t::empty_pop_pages_high + 8);
}

TEST_CASE("blocks smaller than pages: population maps exactly the pages an area touches") {
    using alloc_t = pcpu::allocator<pcpu_test::checked_sim, pcpu::lazy_mapped, block256>;
    pcpu_test::checked_fixture<alloc_t> f(4096); // one dynamic page in the first chunk
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    auto& sim = pcpu_test::sim_of(a);
    // Fill the first chunk's dynamic page so that what follows goes to a new chunk.
    auto first = a.alloc(4096, 4, full);
    REQUIRE(first.ok());
    REQUIRE_VERIFIED(a);
    // A new chunk of 8 pages of 16 blocks. After each allocation in it, the mapped
    // pages are exactly those its areas touch (balance never runs here).
    std::set<std::size_t> want;
    std::uintptr_t base = 0;
    std::vector<pcpu::handle> in_chunk;
    const std::size_t sizes[][2] = {{100, 4}, {6000, 4}, {200, 256}, {5 * 1024, 4}, {40, 128}, {3000, 64}};
    for (const auto& sa : sizes) {
        CAPTURE(sa[0]);
        auto r = a.alloc(sa[0], sa[1], full);
        REQUIRE(r.ok());
        REQUIRE_VERIFIED(a);
        if (base == 0) base = r.value().addr() / 4096 * 4096;
        REQUIRE(r.value().addr() >= base);
        REQUIRE(r.value().addr() + sa[0] <= base + pcpu_test::checked_unit);
        for (std::uintptr_t q = r.value().addr() / 4096; q * 4096 < r.value().addr() + sa[0]; ++q)
            want.insert(q - base / 4096);
        std::set<std::size_t> mapped;
        for (std::size_t p = 0; p < 8; ++p)
            if (sim.is_mapped(base + p * 4096)) mapped.insert(p);
        CHECK(mapped == want);
        in_chunk.push_back(r.value());
    }
    CHECK(want.size() < 8);
    CHECK(a.free(first.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    for (auto h : in_chunk) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    CHECK_CLEAN(a);
}

TEST_CASE("scan_layout, static_only: one chunk searched directly, exact first fit for any alignment") {
    using alloc_t = pcpu::allocator<plat, pcpu::static_only, scan>;
    static_assert(!alloc_t::index_type::sorted);
    static_assert(pcpu::allocator<plat, pcpu::static_only>::index_type::sorted);
    static_assert(pcpu::allocator<pcpu_test::checked_sim, pcpu::lazy_mapped, scan>::index_type::sorted);
    static_assert(alloc_t::max_align == 4096);
    pcpu_test::static_setup<alloc_t> s(2, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    // Page 0: 4-byte allocations with every third one kept, so no free run there is
    // longer than 8 bytes; one 64-aligned 32-byte request then goes to the first
    // aligned run that holds it.
    std::vector<pcpu::handle> all;
    for (int i = 0; i < 1024; ++i) {
        auto r = a.alloc(4, 4, full);
        REQUIRE(r.ok());
        REQUIRE_VERIFIED(a);
        all.push_back(r.value());
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (i % 3 == 0) continue;
        REQUIRE(a.free(all[i]) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    a.for_each_chunk([&](const pcpu::chunk_stats& c) { CHECK(c.slot == 0); });
    // 8-byte holes: a 12-byte request skips page 0 entirely, at any alignment.
    auto big = a.alloc(12, 4, full);
    REQUIRE(big.ok());
    REQUIRE_VERIFIED(a);
    CHECK(big.value().addr() == all[0].addr() + 4096);
    auto hole = a.alloc(8, 8, full);
    REQUIRE(hole.ok());
    REQUIRE_VERIFIED(a);
    CHECK(hole.value().addr() == all[0].addr() + 16); // the first 8-aligned 8-byte hole: bytes 16..24
    a.for_each_chunk([&](const pcpu::chunk_stats& c) { CHECK(c.slot == 0); });
    for (std::size_t i = 0; i < all.size(); i += 3) {
        REQUIRE(a.free(all[i]) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    REQUIRE(a.free(big.value()) == pcpu::errc::ok);
    REQUIRE(a.free(hole.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.stats().nr_cur_alloc == 0);
}

} // TEST_SUITE("chunk_layout")
