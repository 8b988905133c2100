// SPDX-License-Identifier: MIT
// tests/test_bad_input.cpp - every bad call returns its own error and leaves the
// allocator exactly as it was (suite "badinput"), for every policy. These are the
// tests docs/reliability.md's bad-input table points to.
//
// "Exactly as it was": verify() passes, the model agrees (every live allocation still
// holds its contents on every CPU, per-chunk and global statistics unchanged), the
// platform was not called and holds what it held, and only the failure counters moved.
#include "support/model_runner.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

namespace ctx = pcpu::ctx;
constexpr unsigned cpus = 2;
constexpr std::size_t unit = 16 * 1024;
constexpr std::size_t page = 4096;

/// platform_snapshot - what the platform holds and how often it was asked for more.
struct platform_snapshot {
    std::size_t meta = 0, units = 0, reservations = 0, frames = 0, mapped = 0, failable = 0, blocking = 0;
    template <class R>
    static platform_snapshot of(R& r) {
        platform_snapshot s;
        s.meta = r.sim().meta_blocks();
        s.units = r.sim().units_blocks();
        s.reservations = r.sim().reservations();
        s.frames = r.sim().frames();
        s.mapped = r.sim().mapped_pages();
        s.failable = r.sim().failable_calls();
        return s;
    }
    bool operator==(const platform_snapshot& o) const {
        return meta == o.meta && units == o.units && reservations == o.reservations && frames == o.frames &&
               mapped == o.mapped && failable == o.failable;
    }
};

/// bad_input_fixture<Policy> - an allocator with live allocations in the first chunk,
/// the reserved chunk and (for policies that create them) a dynamic chunk, each
/// holding its owner's contents.
template <class Policy>
struct bad_input_fixture {
    pcpu_test::model_runner<Policy> r{cpus, unit, 100, 512, cpus};
    std::vector<pcpu::handle> live;
    pcpu::alloc_stats before;
    platform_snapshot plat;

    bad_input_fixture() {
        REQUIRE(CHECK_RUN(r.init()));
        const std::size_t sizes[] = {40, 64, 3000, Policy::creates_chunks ? unit : 5000};
        for (std::size_t s : sizes) {
            pcpu::handle h;
            REQUIRE(CHECK_RUN(r.alloc(s, 8, ctx::full, &h)));
            REQUIRE(h);
            live.push_back(h);
        }
        pcpu::handle hr;
        REQUIRE(CHECK_RUN(r.alloc(16, 4, ctx::full, &hr, true)));
        REQUIRE(hr);
        live.push_back(hr);
        for (auto h : live) REQUIRE(CHECK_RUN(r.write(h)));
        snapshot();
    }
    void snapshot() {
        before = r.alloc().stats();
        plat = platform_snapshot::of(r);
    }

    /// intact(failed, bad_frees) - nothing changed but those counters.
    void intact(std::uint64_t failed, std::uint64_t bad_frees) {
        CHECK(CHECK_RUN(r.state())); // verify, model statistics, every live allocation's contents
        const auto now = r.alloc().stats();
        CHECK(now.nr_alloc == before.nr_alloc);
        CHECK(now.nr_dealloc == before.nr_dealloc);
        CHECK(now.nr_cur_alloc == before.nr_cur_alloc);
        CHECK(now.live_bytes == before.live_bytes);
        CHECK(now.nr_chunks == before.nr_chunks);
        CHECK(now.nr_empty_pop_pages == before.nr_empty_pop_pages);
        CHECK(now.nr_populated_pages == before.nr_populated_pages);
        CHECK(now.nr_failed == before.nr_failed + failed);
        CHECK(now.nr_bad_free == before.nr_bad_free + bad_frees);
        CHECK(platform_snapshot::of(r) == plat);
        snapshot();
    }
    /// expect_alloc(size, align, want, reserved) - one bad allocation, every context.
    void expect_alloc(std::size_t size, std::size_t align, pcpu::errc want, bool reserved = false) {
        for (pcpu::gfp c : {ctx::full, ctx::nofs, ctx::noio, ctx::atomic, ctx::nowait}) {
            CAPTURE(pcpu_test::describe(c));
            pcpu::errc got = pcpu::errc::ok;
            pcpu::handle h;
            CHECK(CHECK_RUN(r.alloc(size, align, c, &h, reserved, ctx::full, &got)));
            CHECK(got == want);
            CHECK_FALSE(h);
            intact(1, 0);
        }
    }
    void expect_free(pcpu::handle h, pcpu::errc want) {
        pcpu::errc got = pcpu::errc::ok;
        CHECK(CHECK_RUN(r.free(h, &got)));
        CHECK(got == want);
        intact(0, 1);
    }
};

#define POLICIES pcpu::static_only, pcpu::contiguous, pcpu::lazy_mapped

} // namespace

TEST_SUITE("badinput") {

TEST_CASE_TEMPLATE("bad input: size 0 -> zero_size", Policy, POLICIES) {
    bad_input_fixture<Policy> f;
    f.expect_alloc(0, 8, pcpu::errc::zero_size);
    f.expect_alloc(0, 8, pcpu::errc::zero_size, true);
    f.expect_alloc(0, 0, pcpu::errc::zero_size); // the first error found is the one reported
}

TEST_CASE_TEMPLATE("bad input: size above the unit -> size_too_large", Policy, POLICIES) {
    bad_input_fixture<Policy> f;
    f.expect_alloc(unit + 1, 8, pcpu::errc::size_too_large);
    f.expect_alloc(unit + 1, 8, pcpu::errc::size_too_large, true);
    f.expect_alloc(SIZE_MAX, 8, pcpu::errc::size_too_large);
}

TEST_CASE_TEMPLATE("bad input: alignment not a power of two -> bad_alignment", Policy, POLICIES) {
    bad_input_fixture<Policy> f;
    for (std::size_t a : {std::size_t{0}, std::size_t{3}, std::size_t{12}, std::size_t{24}, page - 1}) {
        CAPTURE(a);
        f.expect_alloc(8, a, pcpu::errc::bad_alignment);
        f.expect_alloc(8, a, pcpu::errc::bad_alignment, true);
    }
}

TEST_CASE_TEMPLATE("bad input: alignment above the page -> bad_alignment", Policy, POLICIES) {
    bad_input_fixture<Policy> f;
    for (std::size_t a : {2 * page, 64 * page, std::size_t{1} << 31}) {
        CAPTURE(a);
        f.expect_alloc(8, a, pcpu::errc::bad_alignment);
        f.expect_alloc(8, a, pcpu::errc::bad_alignment, true);
    }
}

TEST_CASE_TEMPLATE("bad input: free of a pointer pcpu never gave -> invalid_pointer", Policy, POLICIES) {
    bad_input_fixture<Policy> f;
    int on_stack = 0;
    auto& a = f.r.alloc();
    const auto units = reinterpret_cast<std::uintptr_t>(f.r.config().units);
    f.expect_free(pcpu::handle(reinterpret_cast<std::uintptr_t>(&on_stack)), pcpu::errc::invalid_pointer);
    f.expect_free(pcpu::handle(0x10), pcpu::errc::invalid_pointer);
    f.expect_free(pcpu::handle(units), pcpu::errc::invalid_pointer);             // the static area
    f.expect_free(pcpu::handle(units + 96), pcpu::errc::invalid_pointer);        // the static area's last word
    f.expect_free(pcpu::handle(units + unit), pcpu::errc::invalid_pointer);      // CPU 1's unit
    f.expect_free(pcpu::handle(f.live[0].addr() + a.cpu_offsets()[1]), pcpu::errc::invalid_pointer); // CPU 1's copy
    f.expect_free(pcpu::handle(UINTPTR_MAX - 3), pcpu::errc::invalid_pointer);
}

TEST_CASE_TEMPLATE("bad input: free of an interior pointer -> invalid_pointer", Policy, POLICIES) {
    bad_input_fixture<Policy> f;
    for (auto h : f.live) {
        f.expect_free(pcpu::handle(h.addr() + 4), pcpu::errc::invalid_pointer);  // inside
        f.expect_free(pcpu::handle(h.addr() + 1), pcpu::errc::invalid_pointer);  // misaligned
        f.expect_free(pcpu::handle(h.addr() + 12), pcpu::errc::invalid_pointer); // inside, or the next word
    }
}

TEST_CASE_TEMPLATE("bad input: double free -> double_free", Policy, POLICIES) {
    bad_input_fixture<Policy> f;
    for (std::size_t i : {std::size_t{1}, std::size_t{3}, std::size_t{4}}) { // first, dynamic/first, reserved chunk
        const pcpu::handle h = f.live[i];
        pcpu::errc got = pcpu::errc::ok;
        REQUIRE(CHECK_RUN(f.r.free(h, &got)));
        REQUIRE(got == pcpu::errc::ok);
        f.snapshot();
        f.expect_free(h, pcpu::errc::double_free);
        f.expect_free(h, pcpu::errc::double_free);
    }
    // A free area that was never allocated: the last word of the first chunk's unit.
    const auto units = reinterpret_cast<std::uintptr_t>(f.r.config().units);
    f.expect_free(pcpu::handle(units + unit - 4), pcpu::errc::double_free);
}

TEST_CASE_TEMPLATE("bad input: operations before init -> not_initialized", Policy, POLICIES) {
    pcpu_test::model_runner<Policy> r(cpus, unit, 100, 512, cpus);
    auto& a = r.alloc();
    for (pcpu::gfp c : {ctx::full, ctx::atomic}) {
        CHECK(a.alloc(8, 8, c).error() == pcpu::errc::not_initialized);
        CHECK(a.alloc_reserved(8, 8, c).error() == pcpu::errc::not_initialized);
        CHECK(a.balance(c) == pcpu::errc::not_initialized);
        CHECK(a.verify().ok);
    }
    CHECK(a.free(pcpu::handle(0x1000)) == pcpu::errc::not_initialized);
    CHECK(a.free(pcpu::handle()) == pcpu::errc::ok); // null is a no-op everywhere
    CHECK(a.verify().ok);
    CHECK_FALSE(a.initialized());
    CHECK(a.stats().nr_alloc == 0);
    CHECK(a.stats().nr_failed == 0);
    CHECK(r.sim().failable_calls() == 0);
    CHECK(CHECK_RUN(r.clean()));
    // ...and none of it stops a normal start.
    REQUIRE(CHECK_RUN(r.init()));
    pcpu::handle h;
    CHECK(CHECK_RUN(r.alloc(64, 8, ctx::full, &h)));
    CHECK(h);
    CHECK(CHECK_RUN(r.finish()));
}

TEST_CASE_TEMPLATE("bad input: balance with an atomic context -> would_block (ok: no-op for static_only)", Policy,
                   POLICIES) {
    bad_input_fixture<Policy> f;
    for (pcpu::gfp c : {ctx::atomic, ctx::nowait, ctx::atomic | pcpu::gfp::nofail}) {
        CAPTURE(pcpu_test::describe(c));
        pcpu::errc got = pcpu::errc::ok;
        CHECK(CHECK_RUN(f.r.balance(c, &got))); // also: no blocking callback reached
        CHECK(got == (Policy::creates_chunks ? pcpu::errc::would_block : pcpu::errc::ok));
        f.intact(0, 0);
    }
    // A scope that forbids blocking makes a full balance atomic too.
    {
        pcpu::scope_guard<pcpu_test::sim_platform<12, 8>> g(f.r.sim(), ctx::atomic);
        pcpu::errc got = pcpu::errc::ok;
        CHECK(CHECK_RUN(f.r.balance(ctx::full, &got)));
        CHECK(got == (Policy::creates_chunks ? pcpu::errc::would_block : pcpu::errc::ok));
    }
    f.intact(0, 0);
}

TEST_CASE_TEMPLATE("bad input: alloc_reserved without a reserved area -> no_space", Policy, POLICIES) {
    pcpu_test::model_runner<Policy> r(cpus, unit, 100, 0, cpus);
    REQUIRE(CHECK_RUN(r.init()));
    for (pcpu::gfp c : {ctx::full, ctx::atomic}) {
        pcpu::errc got = pcpu::errc::ok;
        CHECK(CHECK_RUN(r.alloc(8, 8, c, nullptr, true, ctx::full, &got)));
        CHECK(got == pcpu::errc::no_space);
    }
    CHECK(r.sim().failable_calls() == 0);
    CHECK(CHECK_RUN(r.finish()));
}

TEST_CASE_TEMPLATE("bad input: init twice -> bad_config", Policy, POLICIES) {
    bad_input_fixture<Policy> f;
    CHECK(CHECK_RUN(f.r.init(pcpu::errc::bad_config)));
    f.intact(0, 0);
}

} // TEST_SUITE
