// SPDX-License-Identifier: MIT
// tests/test_dynamic.cpp - dynamic chunks, population, the atomic path, balance, and the
// allocation context end to end, against the instrumented sim_platform under the
// context checker. Every allocator operation is followed by verify().
#include "support/checked_fixture.hpp"
#include "support/sim_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/debug/context_checker.hpp>
#include <pcpu/debug/platform_wrapper.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using sim = pcpu_test::sim_platform<12, 8>;
using checked = pcpu_test::checked_sim;
using cb = pcpu::debug::callback;
namespace ctx = pcpu::ctx;

constexpr std::size_t unit = pcpu_test::checked_unit;
constexpr unsigned cpus = pcpu_test::checked_cpus;
template <class Alloc>
using fixture = pcpu_test::checked_fixture<Alloc>;
using pcpu_test::free_verified;
using pcpu_test::grow_to_chunks;
using pcpu_test::sim_of;

template <class A>
void write_all(A& a, pcpu::handle h, std::size_t size, unsigned char v) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) std::memset(a.ptr(h, cpu), static_cast<int>(v + cpu), size);
}
template <class A>
bool holds_all(A& a, pcpu::handle h, std::size_t size, unsigned char v) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        auto* p = static_cast<unsigned char*>(a.ptr(h, cpu));
        for (std::size_t i = 0; i < size; ++i)
            if (p[i] != static_cast<unsigned char>(v + cpu)) return false;
    }
    return true;
}

/// widen_map<Inner> - a deliberately wrong platform layer: it passes the full context
/// to map whatever pcpu asked for. The checker below it must catch it.
template <class Inner>
struct widen_map : pcpu::debug::platform_wrapper<Inner> {
    using pcpu::debug::platform_wrapper<Inner>::platform_wrapper;
    bool map(std::uintptr_t addr, const pcpu::page_ref* pages, std::size_t n, pcpu::gfp) noexcept {
        return this->inner().map(addr, pages, n, ctx::full);
    }
};

/// forget_scope<Inner> - another wrong layer: it opens a full scope around map, as a
/// platform that "helpfully" lifts restrictions would.
template <class Inner>
struct forget_scope : pcpu::debug::platform_wrapper<Inner> {
    using pcpu::debug::platform_wrapper<Inner>::platform_wrapper;
    bool map(std::uintptr_t addr, const pcpu::page_ref* pages, std::size_t n, pcpu::gfp c) noexcept {
        auto& s = this->inner().inner(); // the sim, under the checker
        const auto saved = s.current_scope();
        s.scope_restore(ctx::full); // lift every restriction for the call
        const bool ok = this->inner().map(addr, pages, n, c);
        s.scope_restore(saved);
        return ok;
    }
};

/// page_table_map<Inner> - map() as a real MMU does it: it allocates page tables
/// itself, with a fixed mask that no argument narrows, only the task's implicit scope
/// (current_gfp_context). Records the context each such implicit allocation got.
template <class Inner>
struct page_table_map : pcpu::debug::platform_wrapper<Inner> {
    using pcpu::debug::platform_wrapper<Inner>::platform_wrapper;
    std::vector<pcpu::gfp> implicit;
    bool map(std::uintptr_t addr, const pcpu::page_ref* pages, std::size_t n, pcpu::gfp c) noexcept {
        const pcpu::gfp table_ctx = pcpu::narrow(ctx::full, this->inner().current_scope());
        implicit.push_back(table_ctx);
        void* table = this->inner().alloc_meta(256, 64, table_ctx);
        if (table == nullptr) return false;
        const bool ok = this->inner().map(addr, pages, n, c);
        this->inner().free_meta(table, 256);
        return ok;
    }
};

/// implicit_everywhere<Inner> - a platform whose chunk creation and page allocation
/// also allocate on their own with a fixed full mask narrowed only by the task's scope
/// (bookkeeping, a page-table level, a guard page), as map() does with page tables:
/// records the context each of those implicit allocations gets.
template <class Inner>
struct implicit_everywhere : pcpu::debug::platform_wrapper<Inner> {
    using pcpu::debug::platform_wrapper<Inner>::platform_wrapper;
    std::vector<std::pair<const char*, pcpu::gfp>> implicit;
    void note(const char* where) { implicit.emplace_back(where, pcpu::narrow(ctx::full, this->inner().current_scope())); }
    void* alloc_meta(std::size_t bytes, std::size_t align, pcpu::gfp c) noexcept {
        note("alloc_meta");
        return this->inner().alloc_meta(bytes, align, c);
    }
    std::uintptr_t reserve(std::size_t bytes, pcpu::gfp c) noexcept {
        note("reserve");
        return this->inner().reserve(bytes, c);
    }
    bool alloc_pages(unsigned cpu, pcpu::page_ref* pages, std::size_t n, pcpu::gfp c) noexcept {
        note("alloc_pages");
        return this->inner().alloc_pages(cpu, pages, n, c);
    }
};

} // namespace

TEST_SUITE("dynamic") {

TEST_CASE("the seed's deadlock: a noio caller holding a lock IO reclaim needs") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    // Background full: nothing caps the callbacks, so only the caller's own noio,
    // carried through every step, keeps them out of IO reclaim.
    sim_of(a).set_background_context(ctx::full);
    std::mutex fs_lock; // what IO reclaim would need
    sim_of(a).set_reclaim_lock(&fs_lock);
    REQUIRE(f.init() == pcpu::errc::ok);
    CHECK_CLEAN(a);

    std::lock_guard<std::mutex> hold(fs_lock); // the caller holds it and allocates
    // (a) a new chunk, (b) population of its pages, (c) the page array's first allocation
    auto r1 = a.alloc(12 * 1024, 8, ctx::noio);
    REQUIRE(r1.ok());
    CHECK_CLEAN(a);
    CHECK(a.stats().nr_chunks == 2);
    CHECK(a.platform().calls(cb::reserve) == 1);
    CHECK(a.platform().calls(cb::alloc_meta) == 2); // chunk metadata, page array
    CHECK(a.platform().calls(cb::map) == cpus);
    // (b) again: more pages of the same chunk, the page array already there (12 KiB
    // does not fit the first chunk's 8 KiB dynamic area either)
    auto r2 = a.alloc(12 * 1024, 8, ctx::noio);
    REQUIRE(r2.ok());
    CHECK_CLEAN(a);
    CHECK(a.platform().calls(cb::alloc_meta) == 2);
    CHECK(a.platform().calls(cb::map) == 2 * cpus);
    write_all(a, r1.value(), 12 * 1024, 1);
    write_all(a, r2.value(), 12 * 1024, 9);
    CHECK(holds_all(a, r1.value(), 12 * 1024, 1));

    CHECK(sim_of(a).deadlocks() == 0);
    for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map, cb::scope_apply})
        CHECK(a.platform().all_within(k, ctx::noio));
    CHECK(a.platform().map_scopes_within(ctx::noio));
    CHECK(a.platform().calls(cb::alloc_pages, ctx::noio) == 2 * cpus);

    CHECK(a.free(r1.value()) == pcpu::errc::ok);
    CHECK(a.free(r2.value()) == pcpu::errc::ok);
    CHECK_CLEAN(a);
    a.shutdown();
    INFO(sim_of(a).describe_leaks());
    CHECK_FALSE(sim_of(a).leaks());
}

TEST_CASE("every callback that can block receives the context, the freeing ones included") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    std::vector<pcpu::handle> hs;
    for (int i = 0; i < 24; ++i) {
        auto r = a.alloc(6 * 1024, 8, ctx::noio);
        REQUIRE(r.ok());
        hs.push_back(r.value());
        CHECK_CLEAN(a);
    }
    for (pcpu::handle h : hs) {
        CHECK(a.free(h) == pcpu::errc::ok);
        CHECK_CLEAN(a);
    }
    CHECK(a.balance() == pcpu::errc::ok); // depopulates and destroys: unmap, free_pages, release, free_meta
    CHECK_CLEAN(a);
    const std::size_t before_shutdown = sim_of(a).freeing_calls_with_context();
    CHECK(before_shutdown != 0); // the sim's context-taking forms were the ones called
    auto& chk = a.platform();
    // Every context here is noio: the caller's, and balance's background default.
    for (cb k : {cb::slow_lock, cb::free_meta, cb::free_pages, cb::unmap, cb::release}) {
        INFO(pcpu::debug::callback_name(k));
        CHECK(pcpu::debug::callback_blocks(k));
        CHECK(chk.calls(k) != 0);
        CHECK(chk.calls(k, ctx::noio) == chk.calls(k)); // each call carried the context, and no wider one
    }
    for (std::size_t i = 0; i < pcpu::debug::nr_callbacks; ++i) {
        const auto k = static_cast<cb>(i);
        INFO(pcpu::debug::callback_name(k));
        if (pcpu::debug::callback_blocks(k)) CHECK(pcpu::debug::callback_takes_context(k));
    }
}

TEST_CASE("the checker catches a layer that passes full to map, and the sim shows the deadlock") {
    using alloc_t = pcpu::allocator<widen_map<checked>, pcpu::lazy_mapped>;
    pcpu_test::static_setup<alloc_t> f(cpus, unit, unit - 8 * 1024, 0);
    auto& chk = f.alloc.platform().inner();
    chk.set_violation_handler(&checked::record_only);
    auto& s = chk.inner();
    std::mutex fs_lock;
    s.set_reclaim_lock(&fs_lock);
    REQUIRE(f.init() == pcpu::errc::ok);
    {
        std::lock_guard<std::mutex> hold(fs_lock);
        auto r = f.alloc.alloc(12 * 1024, 8, ctx::noio);
        // The widened map entered reclaim and "deadlocked": the sim failed it, so the
        // allocation fails cleanly instead of hanging.
        CHECK(r.error() == pcpu::errc::out_of_memory);
        REQUIRE_VERIFIED(f.alloc);
    }
    CHECK(s.deadlocks() >= 1);
    REQUIRE(chk.violations() >= 1);
    const std::string msg = chk.violation(0);
    INFO(msg);
    CHECK(msg.find("map") != std::string::npos);
    CHECK(msg.find("block|io|fs") != std::string::npos);
    CHECK(msg.find("block") != std::string::npos);
    f.alloc.shutdown();
    CHECK_FALSE(s.leaks());
}

TEST_CASE("the checker catches map run outside the caller's scope") {
    using alloc_t = pcpu::allocator<forget_scope<checked>, pcpu::lazy_mapped>;
    pcpu_test::static_setup<alloc_t> f(cpus, unit, unit - 8 * 1024, 0);
    auto& chk = f.alloc.platform().inner();
    chk.set_violation_handler(&checked::record_only);
    REQUIRE(f.init() == pcpu::errc::ok);
    auto r = f.alloc.alloc(12 * 1024, 8, ctx::noio);
    CHECK(r.ok());
    REQUIRE_VERIFIED(f.alloc);
    REQUIRE(chk.violations() >= 1);
    INFO(std::string(chk.last_violation()));
    CHECK(std::string(chk.last_violation()).find("scope") != std::string::npos);
}

TEST_CASE("scopes: the effective context is the caller's narrowed by the task's scope") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    sim_of(a).set_background_context(ctx::full);
    REQUIRE(f.init() == pcpu::errc::ok);
    {
        pcpu::scope_guard<sim> nofs(sim_of(a), ctx::nofs);
        CHECK(sim_of(a).current_scope() == ctx::nofs);
        {
            pcpu::scope_guard<sim> noio(sim_of(a), ctx::noio);
            CHECK(sim_of(a).current_scope() == ctx::noio);
            {
                pcpu::scope_guard<sim> nofs2(sim_of(a), ctx::nofs); // NOIO wins
                CHECK(sim_of(a).current_scope() == ctx::noio);
                // A full request inside a noio scope is a noio request, all the way down.
                auto r = a.alloc(12 * 1024, 8, ctx::full);
                REQUIRE(r.ok());
                CHECK_CLEAN(a);
            }
            CHECK(sim_of(a).current_scope() == ctx::noio);
        }
        CHECK(sim_of(a).current_scope() == ctx::nofs);
    }
    CHECK(sim_of(a).current_scope() == ctx::full);
    for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map}) CHECK(a.platform().all_within(k, ctx::noio));
    // An allocation map makes on its own (page tables) sees the scope pcpu opened.
    CHECK(a.platform().map_scopes_within(ctx::noio));
    CHECK(a.platform().map_scope_calls(ctx::noio) == cpus);
}

TEST_CASE("scopes: an implicit allocation inside map (page tables) sees the caller's scope") {
    using pt_sim = page_table_map<sim>;
    using alloc_t = pcpu::allocator<pcpu::debug::context_checker<pt_sim>, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    pt_sim& pt = a.platform().inner();
    sim& s = pt.inner();
    s.set_background_context(ctx::full); // no cap: the caller's context alone decides
    std::mutex fs_lock;
    s.set_reclaim_lock(&fs_lock);
    REQUIRE(f.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);

    // A full caller's page tables may do anything (and the model sees no deadlock:
    // nobody holds the reclaim lock).
    auto r1 = a.alloc(12 * 1024, 8, ctx::full);
    REQUIRE(r1.ok());
    REQUIRE_VERIFIED(a);
    REQUIRE(pt.implicit.size() == cpus);
    for (pcpu::gfp c : pt.implicit) CHECK(c == ctx::full);

    // A noio caller holding the lock IO reclaim needs: its page tables are noio.
    pt.implicit.clear();
    pcpu::result<pcpu::handle> r2 = pcpu::errc::no_space;
    {
        std::lock_guard<std::mutex> hold(fs_lock);
        r2 = a.alloc(12 * 1024, 8, ctx::noio);
    }
    REQUIRE(r2.ok());
    REQUIRE_VERIFIED(a);
    REQUIRE(pt.implicit.size() == cpus);
    for (pcpu::gfp c : pt.implicit) CHECK(c == ctx::noio);

    // The same through a nofs scope opened inside a noio one: still noio.
    pt.implicit.clear();
    pcpu::result<pcpu::handle> r3 = pcpu::errc::no_space;
    {
        pcpu::scope_guard<pt_sim> noio(pt, ctx::noio);
        pcpu::scope_guard<pt_sim> nofs(pt, ctx::nofs);
        std::lock_guard<std::mutex> hold(fs_lock);
        r3 = a.alloc(12 * 1024, 8, ctx::full);
    }
    REQUIRE(r3.ok());
    REQUIRE_VERIFIED(a);
    REQUIRE(pt.implicit.size() == cpus);
    for (pcpu::gfp c : pt.implicit) CHECK(c == ctx::noio);

    CHECK(s.deadlocks() == 0);
    CHECK(a.platform().violations() == 0);
    CHECK(s.bugs() == 0);
    for (auto h : {r1.value(), r2.value(), r3.value()}) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    a.shutdown();
    INFO(s.describe_leaks());
    CHECK_FALSE(s.leaks());
}

TEST_CASE("nofs reaches the callbacks as nofs; nofail never does; the background cap applies under the lock") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    // Default background context noio: even a full caller's callbacks are noio.
    auto r = a.alloc(12 * 1024, 8, ctx::full | pcpu::gfp::nofail | pcpu::gfp::noretry);
    REQUIRE(r.ok());
    CHECK_CLEAN(a);
    CHECK(a.platform().all_within(cb::alloc_pages, ctx::noio | pcpu::gfp::noretry));
    CHECK(a.platform().calls(cb::alloc_pages, ctx::noio | pcpu::gfp::noretry) == cpus);

    sim_of(a).set_background_context(ctx::full);
    a.platform().clear_calls();
    auto r2 = a.alloc(16 * 1024, 8, ctx::nofs);
    REQUIRE(r2.ok());
    CHECK_CLEAN(a);
    CHECK(a.platform().calls(cb::alloc_pages, ctx::nofs) > 0);
    CHECK(a.platform().all_within(cb::alloc_pages, ctx::nofs));
}

TEST_CASE("atomic: only populated space, no blocking callback, would_block, then balance refills") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f(8 * 1024);
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    const auto blocking = [&] {
        std::uint32_t n = 0;
        for (cb k : {cb::slow_lock, cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map}) n += a.platform().calls(k);
        return n;
    };
    std::vector<pcpu::handle> got;
    pcpu::errc last = pcpu::errc::ok;
    for (int i = 0; i < 100; ++i) {
        // Counted around the allocation alone: verify() takes the sleeping lock.
        const std::uint32_t before = blocking();
        auto r = a.alloc(256, 4, ctx::atomic);
        CHECK(blocking() == before); // never reached a blocking callback
        CHECK_CLEAN(a);
        if (!r) {
            last = r.error();
            break;
        }
        got.push_back(r.value());
    }
    CHECK(last == pcpu::errc::would_block);
    CHECK(got.size() == 8 * 1024 / 256);   // the first chunk's dynamic area, nothing more
    CHECK(sim_of(a).balance_requests() >= 1);
    CHECK(a.alloc(256, 4, ctx::nowait).error() == pcpu::errc::would_block);
    CHECK(sim_of(a).warnings().size() == 1); // atomic warns, nowait does not

    REQUIRE(a.balance() == pcpu::errc::ok);
    CHECK_CLEAN(a);
    const auto st = a.stats();
    CHECK(st.nr_empty_pop_pages >= 2);
    CHECK(st.nr_empty_pop_pages <= 4);
    for (int i = 0; i < 16; ++i) {
        auto r = a.alloc(256, 4, ctx::atomic);
        REQUIRE(r.ok());
        CHECK_CLEAN(a);
        got.push_back(r.value());
    }
    for (auto h : got) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        CHECK_CLEAN(a);
    }
    a.shutdown();
    CHECK_FALSE(sim_of(a).leaks());
}

TEST_CASE("fault injection: each callback fails in turn during creation and population") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    for (auto kind : {pcpu_test::fault::meta, pcpu_test::fault::reserve, pcpu_test::fault::pages, pcpu_test::fault::map}) {
        for (std::size_t nth = 1; nth <= 3; ++nth) {
            CAPTURE(pcpu_test::fault_name(kind));
            CAPTURE(nth);
            fixture<alloc_t> f;
            auto& a = f.alloc;
            REQUIRE(f.init() == pcpu::errc::ok);
            sim_of(a).fail_nth(kind, nth);
            std::vector<pcpu::handle> live;
            std::size_t failures = 0;
            for (std::size_t size : {12 * 1024u, 8 * 1024u, 20 * 1024u, 4u, 30 * 1024u}) {
                auto r = a.alloc(size, 8, ctx::noio);
                CHECK_CLEAN(a);
                if (r) {
                    write_all(a, r.value(), size, 3);
                    live.push_back(r.value());
                } else {
                    CHECK(r.error() == pcpu::errc::out_of_memory);
                    ++failures;
                }
            }
            CHECK(sim_of(a).injected_failures() == failures);
            CHECK(a.stats().nr_cur_alloc == live.size());
            for (auto h : live) {
                REQUIRE(a.free(h) == pcpu::errc::ok);
                CHECK_CLEAN(a);
            }
            CHECK(a.balance() == pcpu::errc::ok);
            CHECK_CLEAN(a);
            a.shutdown();
            INFO(sim_of(a).describe_leaks());
            CHECK_FALSE(sim_of(a).leaks());
        }
    }
}

TEST_CASE("fault injection: the temporary page array's first allocation fails") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    // alloc_meta calls of a first population: the new chunk's metadata, then the page array.
    sim_of(a).fail_nth(pcpu_test::fault::meta, 2);
    auto r = a.alloc(12 * 1024, 8, ctx::noio);
    CHECK(r.error() == pcpu::errc::out_of_memory);
    CHECK_CLEAN(a);
    CHECK(sim_of(a).injected_failures() == 1);
    CHECK(a.platform().calls(cb::alloc_pages) == 0); // it failed before any page
    CHECK(sim_of(a).frames() == 0);
    CHECK(a.stats().nr_chunks == 2);                 // the chunk stays, empty, as the spare
    // The next population allocates the page array again, and succeeds.
    const auto meta_before = a.platform().calls(cb::alloc_meta);
    auto r2 = a.alloc(12 * 1024, 8, ctx::noio);
    REQUIRE(r2.ok());
    CHECK_CLEAN(a);
    CHECK(a.platform().calls(cb::alloc_meta) == meta_before + 1);
    CHECK(a.stats().nr_chunks == 2);
    REQUIRE(a.free(r2.value()) == pcpu::errc::ok);
    CHECK_CLEAN(a);
    a.shutdown();
    INFO(sim_of(a).describe_leaks());
    CHECK_FALSE(sim_of(a).leaks());
}

TEST_CASE("fault injection sweep: fail call k for every k until the workload no longer reaches it") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    std::size_t k = 1;
    for (;; ++k) {
        CAPTURE(k);
        fixture<alloc_t> f;
        auto& a = f.alloc;
        REQUIRE(f.init() == pcpu::errc::ok);
        sim_of(a).fail_call(k);
        std::vector<pcpu::handle> live;
        for (std::size_t size : {12 * 1024u, 64u, 20 * 1024u, 30 * 1024u, 100u}) {
            auto r = a.alloc(size, 16, ctx::noio);
            CHECK_CLEAN(a);
            if (r) live.push_back(r.value());
            else CHECK(r.error() == pcpu::errc::out_of_memory);
        }
        for (std::size_t i = 0; i < live.size(); i += 2) REQUIRE(a.free(live[i]) == pcpu::errc::ok);
        const pcpu::errc b = a.balance();
        CHECK((b == pcpu::errc::ok || b == pcpu::errc::out_of_memory));
        CHECK_CLEAN(a);
        for (std::size_t i = 1; i < live.size(); i += 2) REQUIRE(a.free(live[i]) == pcpu::errc::ok);
        CHECK_CLEAN(a);
        const bool reached = sim_of(a).injected_failures() != 0;
        a.shutdown();
        INFO(sim_of(a).describe_leaks());
        CHECK_FALSE(sim_of(a).leaks());
        if (!reached) break;
    }
    MESSAGE("fault sweep covered " << k - 1 << " failure points");
    CHECK(k > 10);
}

TEST_CASE("balance: surplus free chunks destroyed, pages unmapped and returned, reserve between low and high") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f(8 * 1024);
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    std::vector<pcpu::handle> live;
    for (int i = 0; i < 13; ++i) { // 13 x 8 KiB: the first chunk's 8 KiB, then 3 full dynamic chunks
        auto r = a.alloc(8 * 1024, 8, ctx::full);
        REQUIRE(r.ok());
        CHECK_CLEAN(a);
        live.push_back(r.value());
    }
    CHECK(a.stats().nr_chunks == 4);
    CHECK(sim_of(a).frames() == 3 * 8 * cpus);
    for (auto h : live) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        CHECK_CLEAN(a);
    }
    CHECK(sim_of(a).balance_requests() >= 1);

    a.platform().clear_calls();
    REQUIRE(a.balance() == pcpu::errc::ok);
    CHECK_CLEAN(a);
    const auto st = a.stats();
    CHECK(st.nr_chunks == 2); // the first chunk and one spare
    CHECK(st.nr_empty_pop_pages >= 2);
    CHECK(st.nr_empty_pop_pages <= 4);
    // The first chunk's two dynamic pages count; the spare keeps the rest of the reserve.
    CHECK(sim_of(a).frames() == (st.nr_empty_pop_pages - 2) * cpus);
    CHECK(sim_of(a).mapped_pages() == sim_of(a).frames());
    CHECK(a.platform().calls(cb::unmap) > 0);
    CHECK(a.platform().calls(cb::flush_tlb) > 0);
    for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map, cb::scope_apply})
        CHECK(a.platform().all_within(k, ctx::noio));
    CHECK(a.platform().map_scopes_within(ctx::noio));

    // A second balance finds nothing to do.
    const auto frames = sim_of(a).frames();
    REQUIRE(a.balance() == pcpu::errc::ok);
    CHECK_CLEAN(a);
    CHECK(sim_of(a).frames() == frames);
    a.shutdown();
    CHECK_FALSE(sim_of(a).leaks());
}

TEST_CASE("balance refills the reserve for atomic callers, with the background context") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f(4 * 1024);
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    auto fill = a.alloc(4 * 1024, 4, ctx::full); // the first chunk is now full
    REQUIRE(fill.ok());
    CHECK_CLEAN(a);
    CHECK(a.stats().nr_empty_pop_pages == 0);
    a.platform().clear_calls();
    REQUIRE(a.balance(ctx::full) == pcpu::errc::ok); // asked for full, runs as noio
    CHECK(a.platform().calls(cb::op_begin, ctx::noio) == 1);
    CHECK(a.platform().calls(cb::op_begin) == 1);
    CHECK_CLEAN(a);
    CHECK(a.stats().nr_empty_pop_pages == 4);
    CHECK(a.platform().all_within(cb::alloc_pages, ctx::noio));
    CHECK(a.balance(ctx::atomic) == pcpu::errc::would_block); // balance sleeps
}

TEST_CASE("contiguous: chunks come populated from alloc_units; balance frees surplus") {
    using alloc_t = pcpu::allocator<checked, pcpu::contiguous>;
    fixture<alloc_t> f(4 * 1024);
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    auto r = a.alloc(16 * 1024, 64, ctx::noio);
    REQUIRE(r.ok());
    CHECK_CLEAN(a);
    CHECK(sim_of(a).units_blocks() == 1);
    CHECK(a.platform().calls(cb::map) == 0);
    CHECK(a.platform().all_within(cb::alloc_units, ctx::noio));
    // An atomic allocation can use the rest of the chunk: it is populated.
    auto at = a.alloc(8 * 1024, 8, ctx::atomic);
    REQUIRE(at.ok());
    CHECK_CLEAN(a);
    auto r2 = a.alloc(32 * 1024, 8, ctx::full); // a whole unit: a second chunk
    REQUIRE(r2.ok());
    CHECK_CLEAN(a);
    CHECK(sim_of(a).units_blocks() == 2);
    for (auto h : {r.value(), at.value(), r2.value()}) REQUIRE(a.free(h) == pcpu::errc::ok);
    CHECK_CLEAN(a);
    REQUIRE(a.balance() == pcpu::errc::ok);
    CHECK_CLEAN(a);
    CHECK(sim_of(a).units_blocks() == 1); // one spare kept
    a.shutdown();
    CHECK_FALSE(sim_of(a).leaks());
}

TEST_CASE("first-chunk metadata from the platform uses the full context") {
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    f.cfg.meta = nullptr;
    f.cfg.meta_size = 0;
    REQUIRE(f.init() == pcpu::errc::ok);
    CHECK(f.alloc.platform().calls(cb::alloc_meta, ctx::full) == 1);
    CHECK_CLEAN(f.alloc);
    f.alloc.shutdown();
    CHECK_FALSE(sim_of(f.alloc).leaks());
}

TEST_CASE("scopes: the whole population step runs under the caller's scope, not only map") {
    // The caller's context reaches every callback as an argument; the scope must cover
    // what the platform allocates without one, in chunk creation and page allocation as
    // in map (the metadata, the address space, the pages: all of pcpu_populate_chunk).
    using plat = implicit_everywhere<sim>;
    using alloc_t = pcpu::allocator<pcpu::debug::context_checker<plat>, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    plat& p = a.platform().inner();
    p.inner().set_background_context(ctx::full); // no cap: the caller's context alone decides
    REQUIRE(f.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    p.implicit.clear();
    // Larger than the first chunk's free space: a chunk is created and populated.
    const std::vector<pcpu::handle> live = grow_to_chunks(a, 2, 12 * 1024, ctx::noio);
    bool reserve_seen = false, pages_seen = false, meta_seen = false;
    for (const auto& [where, c] : p.implicit) {
        INFO(std::string(where));
        CHECK(pcpu::within(c, ctx::noio));
        reserve_seen |= std::string(where) == "reserve";
        pages_seen |= std::string(where) == "alloc_pages";
        meta_seen |= std::string(where) == "alloc_meta";
    }
    CHECK(reserve_seen);
    CHECK(pages_seen);
    CHECK(meta_seen);
    free_verified(a, live);
    a.shutdown();
}

TEST_CASE("contexts: the cap under the sleeping lock and balance's background context are separate settings") {
    // A platform that passes callers' contexts through (cap full) keeps balance at its
    // background context (noio): lifting one does not lift the other.
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    sim_of(a).set_sleeping_lock_cap(ctx::full);
    REQUIRE(f.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    const std::vector<pcpu::handle> live = grow_to_chunks(a, 2, 12 * 1024, ctx::full);
    // The full caller's own context reached chunk creation and population.
    CHECK(a.platform().calls(cb::reserve, ctx::full) >= 1);
    CHECK(a.platform().calls(cb::map, ctx::full) >= 1);
    free_verified(a, live);
    a.platform().clear_calls();
    // Balance, asked with full, runs with the background context: noio.
    CHECK(a.balance(ctx::full) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.platform().calls(cb::op_begin) >= 1);
    for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map, cb::unmap, cb::free_pages, cb::release})
        CHECK(a.platform().all_within(k, ctx::noio));
    CHECK(a.platform().calls(cb::unmap) + a.platform().calls(cb::alloc_pages) >= 1); // balance did work
    CHECK_CLEAN(a);
    a.shutdown();
}

TEST_CASE("first-chunk metadata asked for inside a noio scope is asked for with noio") {
    // init() narrows its full context by the task's scope: an allocator set up by code
    // that runs under a noio scope (a driver's probe holding an IO lock) must not
    // allocate with full.
    using alloc_t = pcpu::allocator<checked, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    f.cfg.meta = nullptr;
    f.cfg.meta_size = 0;
    const auto token = sim_of(f.alloc).scope_apply(ctx::noio); // the task's own scope
    REQUIRE(f.init() == pcpu::errc::ok);
    sim_of(f.alloc).scope_restore(token);
    CHECK(f.alloc.platform().calls(cb::alloc_meta, ctx::noio) == 1);
    CHECK(f.alloc.platform().calls(cb::alloc_meta, ctx::full) == 0);
    CHECK_CLEAN(f.alloc);
    f.alloc.shutdown();
    CHECK_FALSE(sim_of(f.alloc).leaks());
}

TEST_CASE("lock discipline: a second noio allocation waits for the sleeping lock held by a populating one") {
    // gate<Inner>: holds thread A inside map until thread B is waiting on slow_lock.
    struct shared_state {
        std::mutex m;
        std::condition_variable cv;
        bool a_in_map = false;
        bool b_waiting = false;
        std::thread::id b;
        std::vector<std::string> order;
    };
    static shared_state st; // the gate's members are static: one instance per process
    struct gate_platform : checked {
        using checked::checked;
        void slow_lock() noexcept {
            if (std::this_thread::get_id() == st.b) {
                std::lock_guard<std::mutex> g(st.m);
                st.b_waiting = true;
                st.cv.notify_all();
            }
            checked::slow_lock();
            std::lock_guard<std::mutex> g(st.m);
            st.order.push_back(std::this_thread::get_id() == st.b ? "B locked" : "A locked");
        }
        void slow_unlock() noexcept {
            {
                std::lock_guard<std::mutex> g(st.m);
                st.order.push_back(std::this_thread::get_id() == st.b ? "B unlocked" : "A unlocked");
            }
            checked::slow_unlock();
        }
        bool map(std::uintptr_t addr, const pcpu::page_ref* pages, std::size_t n, pcpu::gfp c) noexcept {
            if (std::this_thread::get_id() != st.b) {
                std::unique_lock<std::mutex> g(st.m);
                st.a_in_map = true;
                st.cv.notify_all();
                st.cv.wait_for(g, std::chrono::seconds(5), [] { return st.b_waiting; });
            }
            return checked::map(addr, pages, n, c);
        }
    };
    using alloc_t = pcpu::allocator<gate_platform, pcpu::lazy_mapped>;
    fixture<alloc_t> f;
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    pcpu::errc ea = pcpu::errc::ok, eb = pcpu::errc::ok;
    std::thread ta([&] { ea = a.alloc(12 * 1024, 8, ctx::noio).error(); });
    {
        std::unique_lock<std::mutex> g(st.m);
        REQUIRE(st.cv.wait_for(g, std::chrono::seconds(5), [] { return st.a_in_map; }));
    }
    std::atomic<bool> go{false};
    std::thread tb([&] {
        while (!go.load()) std::this_thread::yield();
        eb = a.alloc(12 * 1024, 8, ctx::noio).error();
    });
    {
        std::lock_guard<std::mutex> g(st.m);
        st.b = tb.get_id();
    }
    go.store(true);
    ta.join();
    tb.join();
    CHECK(ea == pcpu::errc::ok);
    CHECK(eb == pcpu::errc::ok);
    CHECK_CLEAN(a);
    REQUIRE(st.order.size() >= 4);
    CHECK(st.order[0] == "A locked");
    CHECK(st.order[1] == "A unlocked");
    CHECK(st.order[2] == "B locked");
    for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map}) CHECK(a.platform().all_within(k, ctx::noio));
}

} // TEST_SUITE
