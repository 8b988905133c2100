// SPDX-License-Identifier: MIT
// tests/test_allocator.cpp - the allocator over a static first chunk (static_only).
// Every allocator operation is followed by verify().
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <vector>

namespace {

using plat = pcpu_test::static_platform<12, 8>;
using alloc_t = pcpu::allocator<plat>;
using setup_t = pcpu_test::static_setup<alloc_t>;
constexpr pcpu::gfp full = pcpu::ctx::full;

// A small-page allocator makes block boundaries dense.
using small_plat = pcpu_test::static_platform<8, 4>;
using small_alloc_t = pcpu::allocator<small_plat>;
using small_setup_t = pcpu_test::static_setup<small_alloc_t>;

/// fill(a, h, size, seed) - a different byte pattern on every CPU.
template <class A>
void fill(A& a, pcpu::handle h, std::size_t size, unsigned seed) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        auto* p = static_cast<unsigned char*>(a.ptr(h, cpu));
        for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<unsigned char>(seed * 31u + cpu * 7u + i);
    }
}
template <class A>
bool holds(A& a, pcpu::handle h, std::size_t size, unsigned seed) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        auto* p = static_cast<unsigned char*>(a.ptr(h, cpu));
        for (std::size_t i = 0; i < size; ++i)
            if (p[i] != static_cast<unsigned char>(seed * 31u + cpu * 7u + i)) return false;
    }
    return true;
}
using pcpu_test::zeroed;

} // namespace

TEST_SUITE("allocator") {

TEST_CASE("init rejects impossible geometry and leaves the allocator unusable") {
    setup_t s(4, 32 * 1024, 4096, 8192);
    pcpu::first_chunk_config good = s.cfg;

    auto rejects = [&](pcpu::first_chunk_config c) {
        alloc_t a;
        CHECK(a.init(c) == pcpu::errc::bad_config);
        CHECK_FALSE(a.initialized());
        CHECK(a.alloc(8, 4, full).error() == pcpu::errc::not_initialized);
    };
    auto c = good; c.nr_cpus = 0; rejects(c);
    c = good; c.nr_cpus = 9; rejects(c);
    c = good; c.unit_size = 0; rejects(c);
    c = good; c.unit_size = 32 * 1024 + 4; rejects(c);
    c = good; c.units = static_cast<unsigned char*>(good.units) + 4; rejects(c);
    c = good; c.units = nullptr; rejects(c);
    c = good; c.static_size = 24 * 1024; rejects(c); // no dynamic space left
    c = good; c.meta = nullptr; rejects(c);
    c = good; c.meta_size = good.meta_size - 1; rejects(c);

    REQUIRE(s.init() == pcpu::errc::ok);
    CHECK(s.alloc.init(good) == pcpu::errc::bad_config); // twice
    REQUIRE_VERIFIED(s.alloc);
}

TEST_CASE("dyn_size: the first chunk ends where it says, the unit's tail stays hidden") {
    // Linux's boot layout, at 64 KiB units: static 29,912, reserved 0, dynamic 31,528.
    setup_t s(2, 64 * 1024, 29912, 0);
    pcpu::first_chunk_config good = s.cfg;
    auto rejects = [&](pcpu::first_chunk_config c) {
        alloc_t a;
        CHECK(a.init(c) == pcpu::errc::bad_config);
        CHECK_FALSE(a.initialized());
    };
    auto c = good; c.dyn_size = 64 * 1024 - 29912 + 1; rejects(c); // past the unit's end
    c = good; c.dyn_size = static_cast<std::size_t>(-1); rejects(c); // no overflow in the check
    c = good; c.dyn_size = static_cast<std::size_t>(-3); rejects(c); // nor in its rounding
    // The metadata it needs is smaller than the whole unit's, and checked against it.
    CHECK(alloc_t::first_chunk_meta_bytes(64 * 1024, 29912, 0, 31528) <=
          alloc_t::first_chunk_meta_bytes(64 * 1024, 29912, 0));
    c = good; c.dyn_size = 31528;
    c.meta_size = alloc_t::first_chunk_meta_bytes(64 * 1024, 29912, 0, 31528) - 1; rejects(c);

    s.cfg.dyn_size = 31528;
    s.cfg.meta_size = alloc_t::first_chunk_meta_bytes(64 * 1024, 29912, 0, 31528);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    REQUIRE_VERIFIED(a);
    const pcpu::alloc_stats st = a.stats();
    CHECK(st.dynamic_size == 31528);
    CHECK(st.nr_populated_pages == 15); // (29,912 + 31,528) / 4 KiB rounded up
    a.for_each_chunk([&](const pcpu::chunk_stats& cs) {
        CHECK(cs.nr_pages == 8);
        CHECK(cs.free_bytes == 31528);
        CHECK(cs.contig_bytes == 31528);
    });
    CHECK(a.alloc(31528 + 4, 4, full).error() == pcpu::errc::no_space);
    auto h = a.alloc(31528, 4, full);
    REQUIRE(h.ok());
    REQUIRE_VERIFIED(a);
    CHECK(s.in_unit(a.ptr(h.value(), 1), 1, 29912, 29912 + 31528));
    CHECK(a.alloc(4, 4, full).error() == pcpu::errc::no_space);
    // The tail is no allocation.
    CHECK(a.free(pcpu::handle(reinterpret_cast<std::uintptr_t>(s.cfg.units) + 29912 + 31528)) ==
          pcpu::errc::invalid_pointer);
    CHECK(a.free(h.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);

    // dyn_size rounded up to 4 and exactly to the unit's end are accepted.
    setup_t t(1, 16 * 1024, 100, 0);
    t.cfg.dyn_size = 16 * 1024 - 100;
    REQUIRE(t.init() == pcpu::errc::ok);
    CHECK(t.alloc.stats().dynamic_size == 16 * 1024 - 100);
    setup_t u(1, 16 * 1024, 100, 0);
    u.cfg.dyn_size = 1001;
    REQUIRE(u.init() == pcpu::errc::ok);
    CHECK(u.alloc.stats().dynamic_size == 1004);
    REQUIRE_VERIFIED(u.alloc);
}

TEST_CASE("static image is copied to every CPU and reachable through the same pointer math") {
    unsigned char image[100];
    for (unsigned i = 0; i < sizeof image; ++i) image[i] = static_cast<unsigned char>(i + 1);
    setup_t s(3, 16 * 1024, sizeof image, 0, image);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    for (unsigned cpu = 0; cpu < 3; ++cpu) {
        auto* p = static_cast<unsigned char*>(s.alloc.ptr(s.alloc.static_handle(0), cpu));
        CHECK(std::memcmp(p, image, sizeof image) == 0);
        CHECK(s.in_unit(p, cpu, 0, sizeof image));
    }
    // The dynamic area starts after the (4-byte rounded) static area.
    auto h = s.alloc.alloc(4, 4, full);
    REQUIRE(h.ok());
    REQUIRE_VERIFIED(s.alloc);
    CHECK(s.in_unit(s.alloc.ptr(h.value(), 0), 0, 100, 16 * 1024));
}

TEST_CASE("per-CPU copies never alias, are zeroed, and survive other operations") {
    setup_t s(4, 32 * 1024, 1000, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    std::vector<std::pair<pcpu::handle, std::size_t>> live;
    for (std::size_t size : {4u, 8u, 12u, 64u, 100u, 4096u, 5000u}) {
        auto r = a.alloc(size, 4, full);
        REQUIRE(r.ok());
        REQUIRE_VERIFIED(a);
        CHECK(zeroed(a, r.value(), size));
        for (unsigned cpu = 0; cpu < 4; ++cpu) {
            CHECK(s.in_unit(a.ptr(r.value(), cpu), cpu, 1000, 32 * 1024));
            CHECK(s.in_unit(static_cast<char*>(a.ptr(r.value(), cpu)) + size - 1, cpu, 1000, 32 * 1024));
        }
        fill(a, r.value(), size, static_cast<unsigned>(live.size()));
        live.emplace_back(r.value(), size);
    }
    for (unsigned i = 0; i < live.size(); ++i) CHECK(holds(a, live[i].first, live[i].second, i));

    // Freed memory comes back zeroed on every CPU.
    REQUIRE(a.free(live[3].first) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    auto r = a.alloc(64, 4, full);
    REQUIRE(r.ok());
    REQUIRE_VERIFIED(a);
    CHECK(r.value() == live[3].first); // first fit reuses the hole
    CHECK(zeroed(a, r.value(), 64));
    for (unsigned i = 0; i < live.size(); ++i)
        if (i != 3) CHECK(holds(a, live[i].first, live[i].second, i));
}

TEST_CASE("reserved allocations come only from the reserved area, and normal ones never do") {
    const std::size_t st = 512, res = 8192, unit = 32 * 1024;
    setup_t s(2, unit, st, res);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    std::vector<pcpu::handle> reserved, normal;
    for (;;) {
        auto r = a.alloc_reserved(100, 4, full);
        REQUIRE_VERIFIED(a);
        if (!r) {
            CHECK(r.error() == pcpu::errc::no_space);
            break;
        }
        for (unsigned cpu = 0; cpu < 2; ++cpu) CHECK(s.in_unit(a.ptr(r.value(), cpu), cpu, st, st + res));
        reserved.push_back(r.value());
    }
    CHECK(reserved.size() == res / 100);
    for (;;) {
        auto r = a.alloc(100, 4, full);
        REQUIRE_VERIFIED(a);
        if (!r) {
            CHECK(r.error() == pcpu::errc::no_space);
            break;
        }
        for (unsigned cpu = 0; cpu < 2; ++cpu) CHECK(s.in_unit(a.ptr(r.value(), cpu), cpu, st + res, unit));
        normal.push_back(r.value());
    }
    CHECK(normal.size() == (unit - st - res) / 100);
    // A full dynamic area does not spill into the reserve and vice versa.
    REQUIRE(a.free(reserved[5]) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.alloc(100, 4, full).error() == pcpu::errc::no_space);
    REQUIRE_VERIFIED(a);
    CHECK(a.alloc_reserved(100, 4, full).value() == reserved[5]);
    REQUIRE_VERIFIED(a);

    auto st_ = a.stats();
    CHECK(st_.nr_cur_alloc == reserved.size() + normal.size());
    CHECK(st_.live_bytes == (reserved.size() + normal.size()) * 100);
}

TEST_CASE("no reserved area: alloc_reserved fails, nothing changes") {
    setup_t s(2, 16 * 1024, 64, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    CHECK(s.alloc.alloc_reserved(8, 4, full).error() == pcpu::errc::no_space);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(s.alloc.stats().nr_cur_alloc == 0);
}

TEST_CASE("bad input: each gets its own error and leaves the allocator intact") {
    setup_t s(2, 32 * 1024, 256, 4096);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    auto h1 = a.alloc(40, 8, full).value();
    auto h2 = a.alloc(64, 64, full).value();
    auto hr = a.alloc_reserved(16, 4, full).value();
    fill(a, h1, 40, 1);
    fill(a, h2, 64, 2);
    fill(a, hr, 16, 3);
    REQUIRE_VERIFIED(a);
    const auto before = a.stats();

    auto intact = [&] {
        REQUIRE_VERIFIED(a);
        CHECK(holds(a, h1, 40, 1));
        CHECK(holds(a, h2, 64, 2));
        CHECK(holds(a, hr, 16, 3));
        const auto now = a.stats();
        CHECK(now.nr_cur_alloc == before.nr_cur_alloc);
        CHECK(now.live_bytes == before.live_bytes);
        CHECK(now.nr_empty_pop_pages == before.nr_empty_pop_pages);
    };
    CHECK(a.alloc(0, 4, full).error() == pcpu::errc::zero_size);
    intact();
    CHECK(a.alloc(32 * 1024 + 1, 4, full).error() == pcpu::errc::size_too_large);
    intact();
    CHECK(a.alloc(8, 0, full).error() == pcpu::errc::bad_alignment);
    intact();
    CHECK(a.alloc(8, 12, full).error() == pcpu::errc::bad_alignment);
    intact();
    CHECK(a.alloc(8, 8192, full).error() == pcpu::errc::bad_alignment);
    intact();
    CHECK(a.alloc_reserved(0, 4, full).error() == pcpu::errc::zero_size);
    intact();

    const auto base = h1.addr();
    CHECK(a.free(pcpu::handle(base + 4)) == pcpu::errc::invalid_pointer);     // interior
    intact();
    CHECK(a.free(pcpu::handle(base + 1)) == pcpu::errc::invalid_pointer);     // misaligned
    intact();
    CHECK(a.free(pcpu::handle(0x10)) == pcpu::errc::invalid_pointer);        // nowhere near
    intact();
    CHECK(a.free(a.static_handle(0)) == pcpu::errc::invalid_pointer);         // static area
    intact();
    CHECK(a.free(pcpu::handle(h1.addr() + a.cpu_offsets()[1])) == pcpu::errc::invalid_pointer); // CPU 1 copy
    intact();
    auto* end_of_unit0 = static_cast<unsigned char*>(s.cfg.units) + s.cfg.unit_size;
    CHECK(a.free(pcpu::handle(reinterpret_cast<std::uintptr_t>(end_of_unit0) - 4)) == pcpu::errc::double_free);
    intact(); // a free word at the end of the dynamic area: never allocated

    // Double free of a freed area; the area next to it survives.
    auto h3 = a.alloc(24, 4, full).value();
    REQUIRE_VERIFIED(a);
    REQUIRE(a.free(h3) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.free(h3) == pcpu::errc::double_free);
    intact();
    CHECK(a.free(pcpu::handle()) == pcpu::errc::ok); // null: no-op
    intact();

    const auto after = a.stats();
    CHECK(after.nr_failed == before.nr_failed + 6);
    CHECK(after.nr_bad_free == 7);
}

TEST_CASE("failures are warned at most ten times, never under nowarn") {
    setup_t s(1, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    CHECK(a.alloc(0, 4, pcpu::ctx::nowait).error() == pcpu::errc::zero_size); // nowait = nowarn
    CHECK(a.alloc(0, 4, full | pcpu::gfp::nowarn).error() == pcpu::errc::zero_size);
    CHECK(a.platform().warnings.empty());
    for (int i = 0; i < 25; ++i) CHECK(a.alloc(0, 4, full).error() == pcpu::errc::zero_size);
    REQUIRE_VERIFIED(a);
    REQUIRE(a.platform().warnings.size() == 11);
    CHECK(a.platform().warnings[0].find("size=0") != std::string::npos);
    CHECK(a.platform().warnings[10].find("limit reached") != std::string::npos);
}

TEST_CASE("alignment is honoured for every power of two up to the page") {
    small_setup_t s(2, 4096, 20, 0); // 256-byte pages: 16 blocks
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    std::vector<pcpu::handle> live;
    for (std::size_t align = 1; align <= 256; align *= 2) {
        auto r = a.alloc(4, align, full);
        REQUIRE(r.ok());
        REQUIRE_VERIFIED(a);
        for (unsigned cpu = 0; cpu < 2; ++cpu)
            CHECK(reinterpret_cast<std::uintptr_t>(a.ptr(r.value(), cpu)) % std::max<std::size_t>(align, 4) == 0);
        live.push_back(r.value());
    }
    CHECK(a.alloc(4, 512, full).error() == pcpu::errc::bad_alignment);
    for (auto h : live) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    CHECK(a.stats().nr_cur_alloc == 0);
}

TEST_CASE("a chunk that fails a fit is demoted to slot 0, searched last, and moved back when it grows") {
    small_setup_t s(1, 4096, 0, 0); // 16 pages of 256 bytes, no static area
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    // Fill everything with 4-byte objects, then free every other one: 4-byte holes only.
    std::vector<pcpu::handle> all;
    for (;;) {
        auto r = a.alloc(4, 4, full);
        if (!r) break;
        all.push_back(r.value());
    }
    REQUIRE_VERIFIED(a);
    REQUIRE(all.size() == 1024);
    for (std::size_t i = 0; i < all.size(); i += 2) REQUIRE(a.free(all[i]) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    int slot_before = -2;
    a.for_each_chunk([&](const pcpu::chunk_stats& c) { slot_before = c.slot; });
    CHECK(slot_before == 1); // 4-byte contig: slot 1

    // An 8-byte request looks in slot 1 (fls(8) - 3 = 1), fails, and demotes the chunk.
    CHECK(a.alloc(8, 4, full).error() == pcpu::errc::no_space);
    REQUIRE_VERIFIED(a);
    int slot_after = -2;
    a.for_each_chunk([&](const pcpu::chunk_stats& c) { slot_after = c.slot; });
    CHECK(slot_after == 0);
    // Slot 0 is searched last, so a request that fits still succeeds (the kernel would
    // create a chunk instead; a static-only allocator cannot).
    auto r4 = a.alloc(4, 4, full);
    REQUIRE(r4.ok());
    REQUIRE_VERIFIED(a);
    CHECK(r4.value() == all[0]);
    // Relocation compares computed slots: a free that leaves the contig hint in slot 1
    // leaves the chunk in slot 0...
    REQUIRE(a.free(all[3]) == pcpu::errc::ok); // holes 2..4: 12 bytes, slot 1
    REQUIRE_VERIFIED(a);
    a.for_each_chunk([&](const pcpu::chunk_stats& c) { CHECK(c.slot == 0); });
    // ...and one that raises it to slot 2 moves it back.
    REQUIRE(a.free(all[5]) == pcpu::errc::ok); // holes 2..6: 20 bytes, slot 2
    REQUIRE_VERIFIED(a);
    a.for_each_chunk([&](const pcpu::chunk_stats& c) { CHECK(c.slot == 2); });
    auto r = a.alloc(8, 4, full);
    CHECK(r.ok());
    REQUIRE_VERIFIED(a);
}

TEST_CASE("stats follow the kernel's percpu_stats") {
    setup_t s(2, 32 * 1024, 128, 1024);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    auto st = a.stats();
    CHECK(st.nr_cpus == 2);
    CHECK(st.unit_size == 32 * 1024);
    CHECK(st.static_size == 128);
    CHECK(st.reserved_size == 1024);
    CHECK(st.dynamic_size == 32 * 1024 - 1152);
    CHECK(st.nr_chunks == 1);
    CHECK(st.min_alloc_size == 32 * 1024);
    CHECK(st.nr_populated_pages == 8);
    CHECK(st.nr_empty_pop_pages == 7); // page 0 holds static + reserved + dynamic start

    auto x = a.alloc(10, 4, full).value();
    auto y = a.alloc(300, 4, full).value();
    auto z = a.alloc_reserved(20, 4, full).value();
    REQUIRE_VERIFIED(a);
    st = a.stats();
    CHECK(st.nr_alloc == 3);
    CHECK(st.nr_cur_alloc == 3);
    CHECK(st.nr_max_alloc == 3);
    CHECK(st.min_alloc_size == 12);
    CHECK(st.max_alloc_size == 300);
    CHECK(st.live_bytes == 12 + 300 + 20);
    REQUIRE(a.free(x) == pcpu::errc::ok);
    REQUIRE(a.free(y) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    st = a.stats();
    CHECK(st.nr_dealloc == 2);
    CHECK(st.nr_cur_alloc == 1);
    CHECK(st.nr_max_alloc == 3);
    CHECK(st.max_alloc_size == 300); // monotone
    CHECK(st.live_bytes == 20);

    int seen = 0;
    a.for_each_chunk([&](const pcpu::chunk_stats& c) {
        if (seen++ == 0) {
            CHECK(c.kind == pcpu::chunk_kind::reserved);
            CHECK(c.slot == -1);
            CHECK(c.nr_alloc == 1);
        } else {
            CHECK(c.kind == pcpu::chunk_kind::first);
            CHECK(c.nr_alloc == 0);
            CHECK(c.max_alloc_size == 300);
            CHECK(c.free_bytes == 32 * 1024 - 1152);
            CHECK(c.contig_bytes == 32 * 1024 - 1152);
            CHECK(c.sum_frag == 0);
        }
    });
    CHECK(seen == 2);
    (void)z;
}

TEST_CASE("fragment statistics count holes, not the free tail") {
    setup_t s(1, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    std::vector<pcpu::handle> h;
    for (int i = 0; i < 6; ++i) h.push_back(a.alloc(64, 4, full).value());
    REQUIRE(a.free(h[1]) == pcpu::errc::ok);
    REQUIRE(a.free(h[3]) == pcpu::errc::ok);
    REQUIRE(a.free(h[4]) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    a.for_each_chunk([&](const pcpu::chunk_stats& c) {
        CHECK(c.sum_frag == 64 + 128);
        CHECK(c.max_frag == 128);
        CHECK(c.first_free == 64);
    });
}

TEST_CASE("randomized alloc/free on several CPUs against a model") {
    for (unsigned seed : {1u, 2u, 3u}) {
        CAPTURE(seed);
        small_setup_t s(3, 8192, 36, 512); // 32 pages of 256 bytes
        REQUIRE(s.init() == pcpu::errc::ok);
        auto& a = s.alloc;
        std::mt19937 rng(seed);
        struct obj { pcpu::handle h; std::size_t size; unsigned tag; bool reserved; };
        std::vector<obj> live;
        unsigned tag = 0;
        std::size_t fails = 0;
        for (int op = 0; op < 3000; ++op) {
            const bool do_alloc = live.empty() || rng() % 100 < 55;
            if (do_alloc) {
                const std::size_t size = 1 + rng() % (rng() % 8 == 0 ? 1200 : 60);
                const std::size_t align = std::size_t{1} << (rng() % 9);
                const bool reserved = rng() % 10 == 0;
                auto r = reserved ? a.alloc_reserved(size, align, full) : a.alloc(size, align, full);
                REQUIRE_VERIFIED(a);
                if (!r) {
                    REQUIRE(r.error() == pcpu::errc::no_space);
                    ++fails;
                    continue;
                }
                const std::uintptr_t p0 = r.value().addr();
                REQUIRE(p0 % std::max<std::size_t>(align, 4) == 0);
                for (const auto& o : live) // no overlap in CPU 0's unit (the layout is shared)
                    REQUIRE((p0 + size <= o.h.addr() || o.h.addr() + o.size <= p0));
                REQUIRE(zeroed(a, r.value(), size));
                fill(a, r.value(), size, ++tag);
                live.push_back({r.value(), size, tag, reserved});
            } else {
                const std::size_t i = rng() % live.size();
                REQUIRE(a.free(live[i].h) == pcpu::errc::ok);
                REQUIRE_VERIFIED(a);
                live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
            }
            if (op % 50 == 0)
                for (const auto& o : live) REQUIRE(holds(a, o.h, o.size, o.tag));
        }
        for (const auto& o : live) REQUIRE(holds(a, o.h, o.size, o.tag));
        const auto st = a.stats();
        CHECK(st.nr_cur_alloc == live.size());
        CHECK(st.nr_failed == fails);
        for (const auto& o : live) {
            REQUIRE(a.free(o.h) == pcpu::errc::ok);
            REQUIRE_VERIFIED(a);
        }
        CHECK(a.stats().live_bytes == 0);
        // static + reserved = 548 bytes reach into page 2 of the 256-byte pages: the
        // dynamic area's empty pages are 3 .. 31.
        CHECK(a.stats().nr_empty_pop_pages == 29);
    }
}

TEST_CASE("the index lock is taken and released around every operation") {
    setup_t s(2, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    auto& a = s.alloc;
    const auto n0 = a.platform().nr_locks;
    auto h = a.alloc(16, 4, full).value();
    CHECK(a.free(h) == pcpu::errc::ok);
    CHECK(a.free(h) == pcpu::errc::double_free);
    REQUIRE_VERIFIED(a);
    (void)a.stats();
    CHECK(a.platform().nr_locks >= n0 + 4);
    CHECK(a.platform().lock_depth == 0);
    CHECK(a.platform().max_lock_depth == 1); // never nested
}

} // TEST_SUITE
