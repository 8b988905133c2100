// SPDX-License-Identifier: MIT
// tests/test_teardown.cpp - destroying an allocator returns everything to the platform,
// whatever state it is in (suite "teardown").
//
// Each state is built with model_runner (every operation checked), confirmed through
// for_each_chunk() so the test fails if the state was not actually reached, then torn
// down twice over: once by shutdown(), once by the destructor alone. The destructor
// case cannot ask the platform afterwards (the allocator owns it), so ledger_sim
// writes what was still outstanding into a record from its own destructor, which runs
// after the allocator's.
#include "support/model_runner.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

namespace {

namespace ctx = pcpu::ctx;
constexpr unsigned cpus = 3;
constexpr std::size_t unit = 16 * 1024; // 4 pages
constexpr std::size_t page = 4096;

/// teardown_record - what a ledger_sim held when it was destroyed.
struct teardown_record {
    bool destroyed = false;
    bool leaks = true;
    std::size_t bugs = 0;
    std::string outstanding;
    std::string bug_text;
};

/// ledger_sim - the sim platform, reporting its outstanding resources on destruction.
struct ledger_sim : pcpu_test::sim_platform<12, 8> {
    teardown_record* rec;
    ledger_sim(teardown_record* r, unsigned nr_cpus) : pcpu_test::sim_platform<12, 8>(nr_cpus), rec(r) {}
    ~ledger_sim() {
        rec->destroyed = true;
        rec->leaks = leaks();
        rec->outstanding = describe_leaks();
        rec->bugs = bugs();
        rec->bug_text = describe_bugs();
    }
};

template <class Policy>
using runner = pcpu_test::model_runner<Policy, ledger_sim>;

/// slots(r) - the slot list of every chunk, in for_each_chunk order.
template <class R>
std::vector<int> slots(R& r) {
    std::vector<int> s;
    r.alloc().for_each_chunk([&](const pcpu::chunk_stats& c) { s.push_back(c.slot); });
    return s;
}
template <class R>
std::size_t count_slot(R& r, int slot) {
    std::size_t n = 0;
    for (int s : slots(r)) n += s == slot;
    return n;
}
template <class R>
std::size_t partially_populated(R& r) {
    std::size_t n = 0;
    r.alloc().for_each_chunk([&](const pcpu::chunk_stats& c) {
        n += c.kind == pcpu::chunk_kind::dynamic && c.nr_populated != 0 && c.nr_populated < c.nr_pages;
    });
    return n;
}

/// tear(r, by_destructor, rec) - tear the allocator down and require a clean platform.
template <class R>
void tear(std::unique_ptr<R>& r, bool by_destructor, teardown_record& rec) {
    REQUIRE(CHECK_RUN(r->state()));
    if (by_destructor) {
        r.reset(); // ~allocator, then ~ledger_sim records what was left
        REQUIRE(rec.destroyed);
        INFO("outstanding: " << rec.outstanding);
        INFO("bugs: " << rec.bug_text);
        CHECK_FALSE(rec.leaks);
        CHECK(rec.bugs == 0);
    } else {
        CHECK(CHECK_RUN(r->finish()));
        // A second shutdown, and the destructor after it, find nothing to do.
        r->alloc().shutdown();
        CHECK(CHECK_RUN(r->clean()));
        r.reset();
        CHECK_FALSE(rec.leaks);
    }
}

/// Lazy chunks in every mid-way state at once: isolated for depopulation, sidelined,
/// partially populated, live allocations everywhere, the page array allocated.
template <class R>
void build_lazy_midway(R& r, bool leave_isolated) {
    REQUIRE(CHECK_RUN(r.init()));
    // Chunks B, C and D, four one-page allocations each (the first chunk has 64 bytes
    // of dynamic space); D is then freed entirely: 4 empty populated pages.
    std::vector<pcpu::handle> b, c, d;
    for (auto* v : {&b, &c, &d})
        for (int i = 0; i < 4; ++i) {
            pcpu::handle h;
            REQUIRE(CHECK_RUN(r.alloc(page, page, ctx::noio, &h)));
            REQUIRE(h);
            v->push_back(h);
        }
    for (auto h : d) REQUIRE(CHECK_RUN(r.free(h)));
    // Freeing a page of C, then one of B: the other chunks hold more than the
    // reserve's high mark, so free() isolates B for depopulation.
    REQUIRE(CHECK_RUN(r.free(c[1])));
    REQUIRE(CHECK_RUN(r.free(b[1])));
    REQUIRE(count_slot(r, r.to_depopulate_slot()) >= 1);
    if (leave_isolated) return;
    // Balance reclaims the empty pages and sidelines the chunks still in use.
    REQUIRE(CHECK_RUN(r.balance(ctx::noio)));
    REQUIRE(count_slot(r, r.sidelined_slot()) >= 1);
    REQUIRE(partially_populated(r) >= 1);
    // One more fresh chunk, partially populated: 100 bytes on one page of four.
    pcpu::handle h;
    REQUIRE(CHECK_RUN(r.alloc(3 * page, 8, ctx::noio, &h)));
    REQUIRE(CHECK_RUN(r.alloc(100, 8, ctx::full, &h)));
}

} // namespace

TEST_SUITE("teardown") {

TEST_CASE("lazy_mapped: isolated chunks (to_depopulate) are returned") {
    for (bool by_destructor : {false, true}) {
        CAPTURE(by_destructor);
        teardown_record rec;
        auto r = std::make_unique<runner<pcpu::lazy_mapped>>(cpus, unit, unit - 64, 0, &rec, cpus);
        build_lazy_midway(*r, true);
        tear(r, by_destructor, rec);
    }
}

TEST_CASE("lazy_mapped: sidelined and partially populated chunks with live allocations are returned") {
    for (bool by_destructor : {false, true}) {
        CAPTURE(by_destructor);
        teardown_record rec;
        auto r = std::make_unique<runner<pcpu::lazy_mapped>>(cpus, unit, unit - 64, 0, &rec, cpus);
        build_lazy_midway(*r, false);
        CHECK(r->sim().frames() != 0);
        CHECK(r->sim().reservations() >= 3);
        tear(r, by_destructor, rec);
    }
}

TEST_CASE("lazy_mapped: after failed populations (alloc_pages or map failing part-way through the CPUs)") {
    for (auto kind : {pcpu_test::fault::pages, pcpu_test::fault::map, pcpu_test::fault::reserve, pcpu_test::fault::meta}) {
        for (bool by_destructor : {false, true}) {
            CAPTURE(pcpu_test::fault_name(kind));
            CAPTURE(by_destructor);
            teardown_record rec;
            auto r = std::make_unique<runner<pcpu::lazy_mapped>>(cpus, unit, unit - page, 256, &rec, cpus);
            REQUIRE(CHECK_RUN(r->init()));
            pcpu::handle keep, reserved;
            REQUIRE(CHECK_RUN(r->alloc(2 * page, 16, ctx::noio, &keep)));
            REQUIRE(CHECK_RUN(r->alloc(64, 8, ctx::atomic, &reserved, true)));
            // The second CPU's call fails: the first CPU's pages or mapping are undone.
            r->sim().fail_nth(kind, kind == pcpu_test::fault::pages || kind == pcpu_test::fault::map ? 2 : 1);
            pcpu::errc err = pcpu::errc::ok;
            pcpu::handle h;
            REQUIRE(CHECK_RUN(r->alloc(unit, 16, ctx::noio, &h, false, ctx::full, &err)));
            CHECK(err == pcpu::errc::out_of_memory);
            CHECK(r->sim().injected_failures() == 1);
            // And an atomic failure: the refill flag is set, balance asked for.
            REQUIRE(CHECK_RUN(r->alloc(unit, 16, ctx::atomic, &h, false, ctx::full, &err)));
            CHECK(err == pcpu::errc::would_block);
            tear(r, by_destructor, rec);
        }
    }
}

TEST_CASE("lazy_mapped: first-chunk metadata from the platform, page array, spare chunk") {
    for (bool by_destructor : {false, true}) {
        CAPTURE(by_destructor);
        teardown_record rec;
        auto r = std::make_unique<runner<pcpu::lazy_mapped>>(cpus, unit, 100, 512, &rec, cpus);
        r->own_meta();
        REQUIRE(CHECK_RUN(r->init()));
        pcpu::handle h;
        REQUIRE(CHECK_RUN(r->alloc(unit, 8, ctx::full, &h)));
        REQUIRE(CHECK_RUN(r->free(h)));
        REQUIRE(CHECK_RUN(r->balance(ctx::noio))); // a spare free chunk, the reserve refilled
        CHECK(r->sim().meta_blocks() >= 3);       // first-chunk metadata, page array, chunk
        tear(r, by_destructor, rec);
    }
}

TEST_CASE("contiguous: full, partly used and spare chunks are returned") {
    for (bool by_destructor : {false, true}) {
        CAPTURE(by_destructor);
        teardown_record rec;
        auto r = std::make_unique<runner<pcpu::contiguous>>(cpus, unit, unit - page, 0, &rec, cpus);
        REQUIRE(CHECK_RUN(r->init()));
        std::vector<pcpu::handle> live;
        for (std::size_t s : {unit, unit / 2, unit, std::size_t{3000}, unit}) {
            pcpu::handle h;
            REQUIRE(CHECK_RUN(r->alloc(s, 8, ctx::nofs, &h)));
            live.push_back(h);
        }
        REQUIRE(CHECK_RUN(r->free(live[0])));
        REQUIRE(CHECK_RUN(r->free(live[2])));
        CHECK(r->sim().units_blocks() >= 4);
        tear(r, by_destructor, rec);
    }
}

TEST_CASE("static_only: teardown with live allocations touches nothing") {
    for (bool by_destructor : {false, true}) {
        teardown_record rec;
        auto r = std::make_unique<runner<pcpu::static_only>>(cpus, unit, 64, 256, &rec, cpus);
        REQUIRE(CHECK_RUN(r->init()));
        pcpu::handle h;
        REQUIRE(CHECK_RUN(r->alloc(1000, 8, ctx::full, &h)));
        REQUIRE(CHECK_RUN(r->alloc(100, 8, ctx::atomic, &h, true)));
        CHECK(r->sim().failable_calls() == 0);
        tear(r, by_destructor, rec);
    }
}

TEST_CASE("after shutdown: operations report not_initialized, and init works again") {
    teardown_record rec;
    runner<pcpu::lazy_mapped> r(cpus, unit, unit - page, 256, &rec, cpus);
    REQUIRE(CHECK_RUN(r.init()));
    pcpu::handle h;
    REQUIRE(CHECK_RUN(r.alloc(unit, 8, ctx::full, &h)));
    REQUIRE(CHECK_RUN(r.alloc(40, 8, ctx::full, &h, true)));
    REQUIRE(CHECK_RUN(r.finish()));
    CHECK(r.alloc().alloc(8, 8, ctx::full).error() == pcpu::errc::not_initialized);
    CHECK(r.alloc().free(h) == pcpu::errc::not_initialized);
    CHECK(r.alloc().balance(ctx::noio) == pcpu::errc::not_initialized);
    CHECK(r.alloc().verify().ok);

    // A second life over the same storage: a fresh model, every operation checked.
    pcpu::alloc_stats st;
    CHECK(r.alloc().init(r.config()) == pcpu::errc::ok);
    pcpu_test::alloc_model<runner<pcpu::lazy_mapped>::alloc_t> fresh(r.alloc());
    const pcpu::verify_report v = r.alloc().verify();
    char buf[200];
    INFO(v.describe(buf, sizeof buf));
    CHECK(v.ok);
    st = r.alloc().stats();
    CHECK(st.nr_cur_alloc == 0);
    CHECK(st.nr_chunks == 1);
    CHECK(CHECK_RUN(fresh.sync()));
    auto again = r.alloc().alloc(unit, 8, ctx::full);
    REQUIRE(again.ok());
    CHECK(CHECK_RUN(fresh.added(again.value(), unit, 8, false)));
    CHECK(r.alloc().verify().ok);
    CHECK(CHECK_RUN(fresh.sync()));
    r.alloc().shutdown();
    CHECK(CHECK_RUN(r.clean()));
}

} // TEST_SUITE
