// SPDX-License-Identifier: MIT
// tests/test_ctx_type.cpp - compile-time contexts (pcpu/ctx_type.hpp): the algebra
// agrees with the run-time one, and an allocation with a compile-time context behaves
// exactly as one with the same run-time context, through the context checker. What
// must not compile is in tests/compile_fail/ (widening conversions, and the proof that
// a compile-time atomic allocation instantiates no sleeping path).
#include "support/checked_fixture.hpp"
#include "support/sim_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/counter.hpp>
#include <pcpu/ctx_type.hpp>
#include <pcpu/debug/context_checker.hpp>
#include <pcpu/percpu.hpp>

#include <doctest/doctest.h>

#include <string>
#include <type_traits>
#include <vector>

namespace {

using pcpu::ctx_bits;
using pcpu::ctx_t;
using pcpu::gfp;
namespace ctx = pcpu::ctx;
using sim = pcpu_test::sim_platform<12, 8>;
using checked = pcpu_test::checked_sim;
using cb = pcpu::debug::callback;

// ---- The algebra, at compile time, against the run-time one --------------------------

constexpr ctx_bits nofail_noio = ctx_bits::noio | ctx_bits::nofail;
constexpr ctx_bits noretry_full = ctx_bits::full | ctx_bits::noretry;

static_assert(ctx::full_t::value == ctx::full && ctx::noio_t::value == ctx::noio && ctx::atomic_t::value == ctx::atomic &&
                  ctx::nofs_t::value == ctx::nofs && ctx::nowait_t::value == ctx::nowait,
              "the presets' types stand for the presets' values");
static_assert(ctx::noio_t::may_block && !ctx::noio_t::may_io && !ctx::atomic_t::may_block && ctx::nowait_t::nowarn,
              "permissions are members of the type");
static_assert(std::is_empty<ctx::noio_t>::value, "a compile-time context carries no run-time state");

/// agrees<A, B>() - narrow and within of ctx_t<A>, ctx_t<B> are the run-time ones.
template <ctx_bits A, ctx_bits B>
constexpr bool agrees() {
    using meet = decltype(pcpu::narrow(ctx_t<A>{}, ctx_t<B>{}));
    return pcpu::is_ctx_t<meet>::value && meet::value == pcpu::narrow(ctx_t<A>::value, ctx_t<B>::value) &&
           pcpu::within(ctx_t<A>{}, ctx_t<B>{}) == pcpu::within(ctx_t<A>::value, ctx_t<B>::value) &&
           pcpu::narrows_to<A, B>::value == pcpu::within(ctx_t<B>::value, ctx_t<A>::value);
}
template <ctx_bits A, ctx_bits... Bs>
constexpr bool agrees_row() {
    return (agrees<A, Bs>() && ...);
}
template <ctx_bits... Cs>
constexpr bool agrees_all() {
    return (agrees_row<Cs, Cs...>() && ...);
}
static_assert(agrees_all<ctx_bits::full, ctx_bits::nofs, ctx_bits::noio, ctx_bits::atomic, ctx_bits::nowait,
                         nofail_noio, noretry_full, ctx_bits::noretry>(),
              "compile-time narrow/within are the run-time ones");

// Narrowing conversions keep the target's value; a compile-time context passes as the
// run-time one unchanged.
constexpr gfp via_noio(ctx::noio_t c) { return c; }
static_assert(via_noio(ctx::full_t{}) == ctx::noio, "full narrows to noio");
static_assert(via_noio(ctx_t<nofail_noio>{}) == ctx::noio, "dropping nofail narrows");
constexpr gfp via_runtime(gfp c) { return c; }
static_assert(via_runtime(ctx::nofs_t{}) == ctx::nofs, "to the run-time context, unchanged");
// The narrowest context is within every run-time one, so that conversion is allowed.
constexpr ctx_bits narrowest = ctx_bits::nowait | ctx_bits::noretry;
static_assert(pcpu::runtime_narrows_to<narrowest>::value && !pcpu::runtime_narrows_to<ctx_bits::atomic>::value,
              "only the narrowest context can come from a run-time one");
constexpr ctx_t<narrowest> from_runtime(gfp c) { return c; }
static_assert(from_runtime(ctx::full).value.bits == static_cast<std::uint8_t>(narrowest), "");

// ---- Allocations ------------------------------------------------------------------------

constexpr std::size_t unit = pcpu_test::checked_unit;
constexpr unsigned cpus = pcpu_test::checked_cpus;
template <class Alloc>
using fixture = pcpu_test::checked_fixture<Alloc>;
using pcpu_test::sim_of;

using lazy = pcpu::allocator<checked, pcpu::lazy_mapped>;

/// blocking(a) - calls of every blocking member so far.
template <class A>
std::uint32_t blocking(A& a) {
    std::uint32_t n = 0;
    for (cb k : {cb::slow_lock, cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map, cb::scope_apply})
        n += a.platform().calls(k);
    return n;
}

/// may_block(c) - for either kind of context (a compile-time one converts).
bool may_block(gfp c) { return pcpu::context_traits<gfp>::may_block(c); }

/// run(a, c, n) - up to n allocations of 256 bytes with context c; the handles, then
/// the first error (ok if none).
template <class A, class C>
std::pair<std::vector<std::uintptr_t>, pcpu::errc> run(A& a, C c, int n) {
    std::vector<std::uintptr_t> got;
    for (int i = 0; i < n; ++i) {
        const std::uint32_t before = blocking(a);
        auto r = a.alloc(256, 4, c);
        if (!may_block(c)) CHECK(blocking(a) == before);
        CHECK_CLEAN(a);
        if (!r) return {got, r.error()};
        got.push_back(r.value().addr());
    }
    return {got, pcpu::errc::ok};
}

} // namespace

TEST_SUITE("ctx_type") {

TEST_CASE("compile-time atomic: the same allocations, failure and warning as the run-time atomic") {
    fixture<lazy> rt, ct;
    REQUIRE(rt.init() == pcpu::errc::ok);
    REQUIRE(ct.init() == pcpu::errc::ok);
    const auto r = run(rt.alloc, ctx::atomic, 100);
    const auto c = run(ct.alloc, ctx::atomic_t{}, 100);
    CHECK(r.second == pcpu::errc::would_block);
    CHECK(c.second == pcpu::errc::would_block);
    CHECK(c.first.size() == 8 * 1024 / 256); // the first chunk's dynamic area, nothing more
    // Same layout, same offsets from the first chunk.
    REQUIRE(c.first.size() == r.first.size());
    for (std::size_t i = 0; i < c.first.size(); ++i)
        CHECK(c.first[i] - reinterpret_cast<std::uintptr_t>(ct.cfg.units) ==
              r.first[i] - reinterpret_cast<std::uintptr_t>(rt.cfg.units));
    CHECK(sim_of(ct.alloc).balance_requests() == sim_of(rt.alloc).balance_requests());
    CHECK(sim_of(ct.alloc).warnings().size() == 1); // atomic warns
    CHECK(ct.alloc.alloc(256, 4, ctx::nowait_t{}).error() == pcpu::errc::would_block);
    CHECK(sim_of(ct.alloc).warnings().size() == 1); // nowait does not
    CHECK(ct.alloc.alloc_reserved(64, 8, ctx::atomic_t{}).error() == pcpu::errc::no_space); // no reserve
    CHECK_CLEAN(ct.alloc);

    // After balance refills the reserve, the compile-time atomic path serves from it.
    REQUIRE(ct.alloc.balance() == pcpu::errc::ok);
    CHECK_CLEAN(ct.alloc);
    const std::uint32_t before = blocking(ct.alloc);
    auto h = ct.alloc.alloc(256, 4, ctx::atomic_t{});
    REQUIRE(h.ok());
    CHECK(blocking(ct.alloc) == before);
    CHECK_CLEAN(ct.alloc);
    REQUIRE(ct.alloc.free(h.value()) == pcpu::errc::ok);
    CHECK_CLEAN(ct.alloc);
    // The typed allocation takes the same compile-time path.
    const std::uint32_t before_typed = blocking(ct.alloc);
    auto t = pcpu::alloc_percpu<std::uint32_t>(ct.alloc, ctx::atomic_t{}, 7u);
    REQUIRE(t.ok());
    CHECK(blocking(ct.alloc) == before_typed);
    for (unsigned cpu = 0; cpu < cpus; ++cpu) CHECK(*t.value().ptr(cpu) == 7u);
    CHECK_CLEAN(ct.alloc);
    REQUIRE(pcpu::free_percpu(ct.alloc, t.value()) == pcpu::errc::ok);
    CHECK_CLEAN(ct.alloc);
    for (auto a : c.first) {
        REQUIRE(ct.alloc.free(pcpu::handle(a)) == pcpu::errc::ok);
        CHECK_CLEAN(ct.alloc);
    }
    ct.alloc.shutdown();
    CHECK_FALSE(sim_of(ct.alloc).leaks());
}

TEST_CASE("compile-time noio: creates and populates like the run-time noio, every callback within noio") {
    fixture<lazy> f;
    auto& a = f.alloc;
    sim_of(a).set_background_context(ctx::full); // no cap: what reaches the callbacks is the caller's
    REQUIRE(f.init() == pcpu::errc::ok);
    std::vector<pcpu::handle> got;
    for (int i = 0; i < 8; ++i) {
        auto r = a.alloc(4 * 1024, 8, ctx::noio_t{});
        REQUIRE(r.ok());
        CHECK_CLEAN(a);
        got.push_back(r.value());
    }
    CHECK(a.platform().calls(cb::reserve) >= 1); // past the first chunk: a chunk was created
    CHECK(a.platform().calls(cb::map) >= 1);
    for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map}) {
        CHECK(a.platform().all_within(k, ctx::noio));
        CHECK(a.platform().calls(k, ctx::noio) >= 1);
    }
    for (auto h : got) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        CHECK_CLEAN(a);
    }
    a.shutdown();
    CHECK_FALSE(sim_of(a).leaks());
}

TEST_CASE("counters initialised with a compile-time context allocate with it: atomic never blocks, noio within noio") {
    fixture<lazy> f(4 * 1024);
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    // Fill the populated first chunk with atomic allocations: what remains needs a
    // sleeping allocation (a new chunk or page).
    std::vector<pcpu::handle> fill;
    for (;;) {
        auto r = a.alloc(64, 4, ctx::atomic_t{});
        CHECK_CLEAN(a);
        if (!r) break;
        fill.push_back(r.value());
    }
    pcpu::counter<lazy> one, group[3];
    // verify() takes the sleeping lock: count around each init only.
    std::uint32_t before = blocking(a);
    CHECK(one.init(a, 5, ctx::atomic_t{}) == pcpu::errc::would_block);
    CHECK(blocking(a) == before); // no sleeping path taken
    CHECK_CLEAN(a);
    before = blocking(a);
    CHECK(pcpu::counter<lazy>::init_many(group, 3, a, 5, ctx::nowait_t{}) == pcpu::errc::would_block);
    CHECK(blocking(a) == before);
    CHECK_CLEAN(a);
    CHECK_FALSE(one.initialized());

    before = blocking(a);
    REQUIRE(one.init(a, 5, ctx::noio_t{}) == pcpu::errc::ok);
    CHECK(blocking(a) > before); // it needed population or a chunk
    CHECK_CLEAN(a);
    REQUIRE(pcpu::counter<lazy>::init_many(group, 3, a, 5, ctx::noio_t{}) == pcpu::errc::ok);
    CHECK_CLEAN(a);
    for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map})
        CHECK(a.platform().all_within(k, ctx::noio));
    one.add(3);
    group[2].add(-7);
    CHECK(one.sum() == 8);
    CHECK(group[2].sum() == -2);
    CHECK(one.destroy() == pcpu::errc::ok);
    CHECK_CLEAN(a);
    CHECK(pcpu::counter<lazy>::destroy_many(group, 3) == pcpu::errc::ok);
    CHECK_CLEAN(a);
    pcpu_test::free_verified(a, fill);
    a.shutdown();
    CHECK_FALSE(sim_of(a).leaks());
}

TEST_CASE("a compile-time context that may block is still narrowed by the task's scope") {
    fixture<lazy> f(4 * 1024);
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    {
        // An atomic scope (memalloc_noreclaim-like): a full_t request may not block in it.
        pcpu::scope_guard<sim> atomic_scope(sim_of(a), ctx::atomic);
        const std::uint32_t before = blocking(a);
        auto r = a.alloc(8 * 1024, 8, ctx::full_t{});
        CHECK(r.error() == pcpu::errc::would_block);
        CHECK(blocking(a) == before);
    }
    CHECK_CLEAN(a);
    {
        pcpu::scope_guard<sim> noio_scope(sim_of(a), ctx::noio);
        auto r = a.alloc(8 * 1024, 8, ctx::full_t{});
        REQUIRE(r.ok());
        CHECK_CLEAN(a);
        for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map}) CHECK(a.platform().all_within(k, ctx::noio));
        REQUIRE(a.free(r.value()) == pcpu::errc::ok);
        CHECK_CLEAN(a);
    }
    a.shutdown();
    CHECK_FALSE(sim_of(a).leaks());
}

TEST_CASE("static_only: compile-time and run-time contexts allocate alike") {
    using st = pcpu::allocator<pcpu_test::static_platform<>, pcpu::static_only>;
    pcpu_test::static_setup<st> f(cpus, unit, unit - 4096, 0);
    REQUIRE(f.init() == pcpu::errc::ok);
    auto a = f.alloc.alloc(64, 64, ctx::atomic_t{});
    auto b = f.alloc.alloc(64, 64, ctx::full_t{});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE_VERIFIED(f.alloc);
    CHECK(f.alloc.free(a.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(f.alloc);
    auto c = f.alloc.alloc(64, 64, ctx::atomic); // the run-time atomic gets the same hole back
    REQUIRE(c.ok());
    CHECK(c.value().addr() == a.value().addr());
    REQUIRE_VERIFIED(f.alloc);
    CHECK(f.alloc.alloc(8192, 4, ctx::nowait_t{}).error() == pcpu::errc::no_space);
    REQUIRE_VERIFIED(f.alloc);
}

} // TEST_SUITE
