// SPDX-License-Identifier: MIT
// tests/test_checker.cpp - the debugging platforms (platform_wrapper, context_checker)
// and the instrumented test platform (sim_platform), driven by hand the way the
// allocator drives them.
#include "support/sim_platform.hpp"

#include <pcpu/debug/context_checker.hpp>
#include <pcpu/debug/platform_wrapper.hpp>
#include <pcpu/populate.hpp>
#include <pcpu/scope.hpp>

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace rtos_test {
/// rtos_flags - a foreign context type, as an RTOS would bring: may the allocation
/// wait, may reclaim start IO.
struct rtos_flags {
    std::uint8_t bits = 0;
};
inline constexpr std::uint8_t can_wait = 1, can_io = 2;
} // namespace rtos_test

template <>
struct pcpu::context_traits<rtos_test::rtos_flags> {
    using F = rtos_test::rtos_flags;
    using type = F;
    static constexpr F full() noexcept { return F{rtos_test::can_wait | rtos_test::can_io}; }
    static constexpr F noio() noexcept { return F{rtos_test::can_wait}; }
    static constexpr bool may_block(F c) noexcept { return (c.bits & rtos_test::can_wait) != 0; }
    static constexpr bool may_io(F c) noexcept { return (c.bits & rtos_test::can_io) != 0; }
    static constexpr bool may_fs(F c) noexcept { return may_io(c); }
    static constexpr bool nowarn(F) noexcept { return false; }
    static constexpr F narrow(F c, F by) noexcept { return F{static_cast<std::uint8_t>(c.bits & by.bits)}; }
    static constexpr bool within(F inner, F outer) noexcept { return (inner.bits & ~outer.bits) == 0; }
    static constexpr F scope_of(F c) noexcept { return c; }
    static constexpr F for_backing(F c) noexcept { return c; }
    static char* describe(F c, char* buf, std::size_t n) noexcept {
        const char* s = c.bits == 3 ? "wait|io" : c.bits == 1 ? "wait" : c.bits == 2 ? "io" : "nowait";
        std::snprintf(buf, n, "%s", s);
        return buf;
    }
};

namespace {

namespace ctx = pcpu::ctx;
using pcpu::gfp;
using pcpu::debug::callback;
using pcpu::debug::context_checker;
using pcpu::debug::platform_wrapper;
using sim = pcpu_test::sim_platform<>;
using checked = context_checker<sim>;
constexpr std::size_t page = sim::page_size;

/// has<P, Has> - what platform_traits would detect on P.
template <class P, template <class, class, class> class Has>
constexpr bool has = Has<P, typename pcpu::platform_traits<P>::context, void>::value;

template <class P, class = void>
struct has_scope_token : std::false_type {};
template <class P>
struct has_scope_token<P, pcpu::detail::void_t<typename P::scope_token>> : std::true_type {};

/// lock_only - the least a platform can be (static_only).
struct lock_only {
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
};

/// units_only - what the contiguous policy needs, nothing more.
struct units_only {
    static constexpr unsigned page_shift = 10;
    static constexpr std::size_t max_cpus = 2;
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
    void slow_lock() noexcept {}
    void slow_unlock() noexcept {}
    void* alloc_meta(std::size_t, std::size_t, gfp) noexcept { return nullptr; }
    void free_meta(void*, std::size_t) noexcept {}
    void* alloc_units(std::size_t, gfp) noexcept { return nullptr; }
    void free_units(void*, std::size_t) noexcept {}
};

/// rtos_platform - a platform with its own context type and no warn().
struct rtos_platform {
    using context = rtos_test::rtos_flags;
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
    void slow_lock() noexcept {}
    void slow_unlock() noexcept {}
    void* alloc_meta(std::size_t, std::size_t, context) noexcept { return block; }
    void free_meta(void*, std::size_t) noexcept {}
    alignas(16) unsigned char block[64];
};

/// recorder - a violation handler that keeps every message.
struct recorder {
    std::vector<std::string> msgs;
    static void handle(const char* msg, void* self) noexcept { static_cast<recorder*>(self)->msgs.emplace_back(msg); }
};

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

/// in_child(fn) - run fn in a forked child and return its wait status: for the
/// checks whose outcome is that the process dies.
template <class F>
int in_child(F fn) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        // The child dies by the signal itself, past doctest's and any sanitizer's
        // handlers, and silently.
        for (int sig : {SIGABRT, SIGSEGV, SIGBUS}) std::signal(sig, SIG_DFL);
        std::freopen("/dev/null", "w", stdout);
        std::freopen("/dev/null", "w", stderr);
        fn();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

/// mapping - one reserved, partly mapped region on a checked sim, for tests that
/// need a legal map() call. Make it inside an operation.
struct mapping {
    checked& chk;
    std::uintptr_t base;
    pcpu::page_ref frames[2] = {};
    mapping(checked& c, gfp g) : chk(c), base(c.reserve(4 * page, g)) {
        REQUIRE(base != 0);
        REQUIRE(chk.alloc_pages(0, frames, 2, g));
    }
    void undo(std::size_t mapped) {
        pcpu::page_ref back[2] = {};
        if (mapped != 0) chk.unmap(base, back, mapped);
        chk.free_pages(0, frames, 2);
        chk.release(base, 4 * page);
    }
};

} // namespace

TEST_SUITE("checker") {

// ---- platform_wrapper ------------------------------------------------------------------

// platform_wrapper forwards exactly the members the inner platform has. Checked at
// compile time: a failure is a build error, not a test case.
namespace wrapper_members {
    using namespace pcpu::detail;
    using w_lock = platform_wrapper<lock_only>;
    static_assert(has<w_lock, has_index_lock> && has<w_lock, has_index_unlock>);
    static_assert(!has<w_lock, has_alloc_units> && !has<w_lock, has_map> && !has<w_lock, has_alloc_meta>);
    static_assert(!has<w_lock, has_op_begin> && !has<w_lock, has_warn> && !has<w_lock, has_current_scope>);
    static_assert(!has<w_lock, has_request_balance> && !has<w_lock, has_flush_tlb>);
    static_assert(!has_scope_token<w_lock>::value);
    // Absent static members take platform_traits' defaults.
    static_assert(w_lock::page_shift == PCPU_DEFAULT_PAGE_SHIFT && w_lock::max_cpus == 64);
    static_assert(std::is_same<w_lock::context, gfp>::value);

    using w_units = platform_wrapper<units_only>;
    static_assert(has<w_units, has_alloc_units> && has<w_units, has_free_units> && has<w_units, has_alloc_meta>);
    static_assert(!has<w_units, has_map> && !has<w_units, has_reserve> && !has<w_units, has_scope_apply>);
    static_assert(w_units::page_shift == 10 && w_units::max_cpus == 2);
    static_assert(pcpu::contiguous::check_platform<w_units>());

    using w_sim = platform_wrapper<sim>;
    static_assert(has<w_sim, has_alloc_units> && has<w_sim, has_map> && has<w_sim, has_unmap>);
    static_assert(has<w_sim, has_reserve> && has<w_sim, has_release> && has<w_sim, has_alloc_pages>);
    static_assert(has<w_sim, has_free_pages> && has<w_sim, has_scope_apply> && has<w_sim, has_current_scope>);
    static_assert(has<w_sim, has_op_begin> && has<w_sim, has_op_end> && has<w_sim, has_warn>);
    static_assert(has<w_sim, has_this_cpu> && has<w_sim, has_request_balance> && has<w_sim, has_background_context>);
    static_assert(has<w_sim, has_flush_after_map> && has<w_sim, has_flush_before_unmap> && has<w_sim, has_flush_tlb>);
    static_assert(std::is_same<w_sim::scope_token, sim::scope_token>::value);
    static_assert(pcpu::lazy_mapped::check_platform<w_sim>() && pcpu::contiguous::check_platform<w_sim>());
    // The return types are the inner ones.
    static_assert(std::is_same<decltype(std::declval<w_sim&>().map(0, nullptr, 0, gfp{})), bool>::value);
    static_assert(std::is_same<decltype(std::declval<w_sim&>().scope_apply(gfp{})), sim::scope_token>::value);
} // namespace wrapper_members

// The checker keeps the inner platform's set of members. Checked at compile time, as
// above.
namespace checker_members {
    using namespace pcpu::detail;
    // A platform without alloc_units, checked, still has none: the contiguous policy's
    // static_assert would still name the missing member.
    using c_lock = context_checker<lock_only>;
    static_assert(!has<c_lock, has_alloc_units> && !has<c_lock, has_alloc_meta> && !has<c_lock, has_map>);
    static_assert(!has<c_lock, has_scope_apply> && !has<c_lock, has_slow_lock> && !has<c_lock, has_warn>);
    // The checker itself provides the operation brackets.
    static_assert(has<c_lock, has_op_begin> && has<c_lock, has_op_end> && has<c_lock, has_index_lock>);

    using c_units = context_checker<units_only>;
    static_assert(has<c_units, has_alloc_units> && has<c_units, has_free_units> && !has<c_units, has_map>);
    static_assert(!has<c_units, has_current_scope> && !has<c_units, has_reserve>);
    static_assert(pcpu::contiguous::check_platform<c_units>());

    static_assert(has<checked, has_alloc_units> && has<checked, has_map> && has<checked, has_current_scope>);
    static_assert(std::is_same<checked::scope_token, sim::scope_token>::value);
    static_assert(checked::page_shift == 12 && checked::max_cpus == 8);
    static_assert(pcpu::lazy_mapped::check_platform<checked>());

    using c_rtos = context_checker<rtos_platform>;
    static_assert(std::is_same<c_rtos::context, rtos_test::rtos_flags>::value);
    static_assert(has<c_rtos, has_alloc_meta> && !has<c_rtos, has_alloc_units>);
} // namespace checker_members

TEST_CASE("platform_wrapper builds the inner platform from its arguments and forwards calls") {
    platform_wrapper<sim> w(3u);
    CHECK(w.inner().nr_cpus() == 3);
    CHECK(w.nr_cpus() == 3);
    const platform_wrapper<sim>& cw = w;
    CHECK(cw.inner().nr_cpus() == 3);

    pcpu::page_ref f[2] = {};
    CHECK(w.alloc_pages(1, f, 2, ctx::noio));
    CHECK(w.inner().frames() == 2);
    CHECK(w.inner().calls(callback::alloc_pages) == 1);
    w.free_pages(1, f, 2);
    CHECK(w.background_context() == ctx::noio);
    w.request_balance();
    CHECK(w.inner().balance_requests() == 1);
    SIM_CHECK_CLEAN(w.inner());
}

TEST_CASE("a derived wrapper overrides one member by name hiding") {
    struct counting : platform_wrapper<sim> {
        using platform_wrapper<sim>::platform_wrapper;
        int metas = 0;
        void* alloc_meta(std::size_t bytes, std::size_t align, gfp c) noexcept {
            ++metas;
            return inner().alloc_meta(bytes, align, c);
        }
    };
    static_assert(has<counting, pcpu::detail::has_alloc_meta> && has<counting, pcpu::detail::has_map>);
    counting w(2u);
    void* p = w.alloc_meta(32, 8, ctx::noio);
    REQUIRE(p != nullptr);
    CHECK(w.metas == 1);
    CHECK(w.inner().meta_blocks() == 1);
    w.free_meta(p, 32);
    SIM_CHECK_CLEAN(w.inner());
}

// ---- context_checker: the context rules -------------------------------------------------

TEST_CASE("callbacks within the operation's context are clean") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::noio);
    CHECK(chk.op_depth() == 1);
    CHECK(chk.op_context() == ctx::noio);
    void* p = chk.alloc_meta(64, 8, ctx::noio);
    REQUIRE(p != nullptr);
    pcpu::page_ref f[1] = {};
    // Narrower is fine: fewer permissions, more restrictions.
    CHECK(chk.alloc_pages(0, f, 1, ctx::noio | gfp::nowarn | gfp::noretry));
    CHECK(chk.alloc_pages(0, f, 0, ctx::atomic));
    chk.free_pages(0, f, 1);
    chk.free_meta(p, 64);
    chk.op_end();
    CHECK(chk.op_depth() == 0);
    CHECK(chk.violations() == 0);
    CHECK(rec.msgs.empty());
    CHECK(chk.calls(callback::alloc_meta) == 1);
    CHECK(chk.calls(callback::alloc_meta, ctx::noio) == 1);
    CHECK(chk.calls(callback::alloc_pages) == 2);
    CHECK(chk.calls(callback::op_begin) == 1);
    CHECK(chk.calls(callback::op_end) == 1);
    // The checker forwards the brackets to an inner platform that has them.
    CHECK(chk.inner().calls(callback::op_begin) == 1);
    SIM_CHECK_CLEAN(chk.inner());
}

TEST_CASE("a callback given a wider context than the caller's is a violation naming both") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::noio);
    mapping m(chk, ctx::noio);
    {
        pcpu::scope_guard<checked> scope(chk, ctx::noio);
        CHECK(chk.map(m.base, m.frames, 1, ctx::full)); // the checker reports, it does not refuse
    }
    REQUIRE(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: map received block|io|fs, wider than the caller's block (noio)");
    REQUIRE(rec.msgs.size() == 1);
    CHECK(rec.msgs[0] == chk.last_violation());
    // The inner platform's warn() saw it too.
    const auto warnings = chk.inner().warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] == chk.last_violation());

    CHECK(chk.alloc_meta(8, 8, ctx::nofs) != nullptr);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: alloc_meta received block|io, wider than the caller's block (noio)");
    m.undo(1);
    chk.op_end();
    CHECK(chk.violations() == 2);
    CHECK(chk.widest(callback::map) == ctx::full);
    CHECK_FALSE(chk.all_within(callback::map, ctx::noio));
    CHECK(chk.inner().meta_blocks() == 1); // the nofs block, freed by the platform's destructor
}

TEST_CASE("losing a restriction widens the context too") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::noio | gfp::nowarn);
    pcpu::page_ref f[1] = {};
    CHECK(chk.alloc_pages(0, f, 1, ctx::noio));
    CHECK(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: alloc_pages received block, wider than the caller's block|nowarn");
    chk.free_pages(0, f, 1);
    chk.op_end();
}

TEST_CASE("map must run under the operation's implicit scope") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::noio);
    mapping m(chk, ctx::noio);

    // pcpu forgot the scope: the page tables a real MMU allocates in map() would be
    // GFP_KERNEL even though the argument was right.
    CHECK(chk.map(m.base, m.frames, 1, ctx::noio));
    REQUIRE(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: map ran under the implicit scope block|io|fs, wider than the caller's block "
          "(noio): the scope was not opened");

    {
        pcpu::scope_guard<checked> scope(chk, ctx::noio);
        CHECK(chk.map(m.base + page, m.frames + 1, 1, ctx::noio));
    }
    CHECK(chk.violations() == 1);
    // A scope narrower than the operation is fine.
    pcpu::page_ref back[2] = {};
    chk.unmap(m.base, back, 2);
    CHECK(back[0] == m.frames[0]);
    CHECK(back[1] == m.frames[1]);
    {
        pcpu::scope_guard<checked> scope(chk, ctx::atomic);
        CHECK(chk.map(m.base, m.frames, 2, ctx::noio));
    }
    CHECK(chk.violations() == 1);
    CHECK(chk.map_scope_calls(ctx::full) == 1);
    CHECK(chk.map_scope_calls(ctx::noio) == 1);
    CHECK(chk.map_scope_calls(ctx::atomic) == 1);
    CHECK(chk.widest_map_scope() == ctx::full);
    CHECK_FALSE(chk.map_scopes_within(ctx::noio));
    m.undo(2);
    chk.op_end();
    CHECK(chk.violations() == 1);
    SIM_CHECK_CLEAN(chk.inner());
}

TEST_CASE("an atomic operation calls nothing that can sleep") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::nowait);
    // The atomic path's own callbacks are fine.
    chk.index_lock();
    chk.index_unlock();
    chk.request_balance();
    CHECK(chk.violations() == 0);

    chk.slow_lock();
    REQUIRE(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: blocking callback slow_lock under an atomic context: the caller's "
          "atomic|nowarn (nowait)");
    chk.slow_unlock();
    pcpu::page_ref f[1] = {};
    CHECK(chk.alloc_pages(0, f, 1, ctx::nowait));
    CHECK(chk.violations() == 2);
    CHECK(contains(chk.last_violation(), "blocking callback alloc_pages under an atomic context"));
    chk.free_pages(0, f, 1);
    CHECK(chk.violations() == 3);
    CHECK(contains(chk.last_violation(), "blocking callback free_pages"));
    chk.op_end();

    chk.op_begin(ctx::atomic);
    void* p = chk.inner().alloc_meta(8, 8, ctx::noio); // behind the checker's back
    chk.free_meta(p, 8);
    CHECK(chk.violations() == 4);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: blocking callback free_meta under an atomic context: the caller's atomic (atomic)");
    chk.op_end();
    SIM_CHECK_CLEAN(chk.inner());
}

TEST_CASE("nothing that can sleep runs under the index lock") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::noio);
    chk.index_lock();
    CHECK(chk.index_lock_depth() == 1);
    void* p = chk.alloc_meta(16, 8, ctx::noio);
    REQUIRE(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: blocking callback alloc_meta under the index lock: it must be dropped before "
          "anything that can sleep");
    chk.slow_lock();
    CHECK(chk.violations() == 2);
    CHECK(contains(chk.last_violation(), "blocking callback slow_lock under the index lock"));
    // sim_platform notices the same on its own.
    CHECK(chk.inner().bugs() == 2);
    chk.inner().bug_messages(); // readable
    chk.slow_unlock();
    chk.index_unlock();
    CHECK(chk.index_lock_depth() == 0);
    chk.free_meta(p, 16);
    chk.slow_lock();
    chk.slow_unlock();
    chk.op_end();
    CHECK(chk.violations() == 2);
}

TEST_CASE("callbacks outside any operation are violations, except the lock and diagnostic ones") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    // free() and the computation of the effective context happen outside brackets.
    chk.index_lock();
    chk.index_unlock();
    chk.warn("pcpu: a warning");
    (void)chk.this_cpu();
    CHECK(chk.current_scope() == ctx::full);
    chk.request_balance();
    CHECK(chk.background_context() == ctx::noio);
    CHECK(chk.violations() == 0);

    void* p = chk.alloc_meta(8, 8, ctx::noio);
    REQUIRE(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: alloc_meta called outside an operation (received block)");
    chk.free_meta(p, 8);
    CHECK(chk.violations() == 2);
    CHECK(std::string(chk.last_violation()) == "pcpu context checker: free_meta called outside an operation");
    {
        pcpu::scope_guard<checked> scope(chk, ctx::noio);
    }
    CHECK(chk.violations() == 4); // scope_apply and scope_restore
    SIM_CHECK_CLEAN(chk.inner());
}

TEST_CASE("operations nest and the innermost one decides") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::noio);
    chk.op_begin(ctx::full); // e.g. an interrupt's operation on top of a task's
    CHECK(chk.op_depth() == 2);
    void* p = chk.alloc_meta(8, 8, ctx::full);
    CHECK(chk.violations() == 0);
    chk.op_end();
    CHECK(chk.op_context() == ctx::noio);
    void* q = chk.alloc_meta(8, 8, ctx::full);
    CHECK(chk.violations() == 1);
    CHECK(contains(chk.last_violation(), "alloc_meta received block|io|fs, wider than the caller's block (noio)"));
    chk.free_meta(p, 8);
    chk.free_meta(q, 8);
    chk.op_end();
    CHECK(chk.op_depth() == 0);
    CHECK(chk.op_context() == ctx::full);

    chk.op_end();
    CHECK(chk.violations() == 2);
    CHECK(std::string(chk.last_violation()) == "pcpu context checker: op_end without op_begin");

    // Deeper than the stack: reported, and the count still unwinds exactly.
    for (std::size_t i = 0; i <= checked::max_op_depth; ++i) chk.op_begin(ctx::noio);
    CHECK(chk.violations() == 3);
    CHECK(contains(chk.last_violation(), "operations nested deeper than 8"));
    for (std::size_t i = 0; i <= checked::max_op_depth; ++i) chk.op_end();
    CHECK(chk.op_depth() == 0);
    CHECK(chk.violations() == 3);
    SIM_CHECK_CLEAN(chk.inner());
}

TEST_CASE("an operation leaves the locks and the implicit scope as it found them") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::noio);
    chk.index_lock();
    chk.op_end();
    REQUIRE(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: op_end with the index lock still held (depth 1, 0 at op_begin)");
    chk.index_unlock();

    chk.op_begin(ctx::noio);
    chk.slow_lock();
    chk.op_end();
    CHECK(chk.violations() == 2);
    CHECK(contains(chk.last_violation(), "op_end with the sleeping lock still held"));
    chk.op_begin(ctx::noio);
    chk.slow_unlock();
    chk.op_end();
    CHECK(chk.violations() == 3);
    CHECK(contains(chk.last_violation(), "op_end with the sleeping lock released more than taken"));

    chk.op_begin(ctx::noio);
    (void)chk.scope_apply(ctx::noio);
    chk.op_end();
    CHECK(chk.violations() == 4);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: op_end with the implicit scope block, not restored to block|io|fs");
    sim::reset_scope();
}

TEST_CASE("locks taken twice by one thread are violations") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.index_lock();
    chk.index_lock(); // a spinlock would hang here; the sim counts depth instead
    CHECK(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: index_lock taken again by the thread that holds it");
    chk.index_unlock();
    chk.index_unlock();
    chk.index_unlock();
    CHECK(chk.violations() == 2);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: index_unlock by a thread that does not hold the index lock");

    chk.op_begin(ctx::noio);
    chk.slow_lock();
    chk.slow_lock();
    CHECK(chk.violations() == 3);
    CHECK(contains(chk.last_violation(), "slow_lock taken again"));
    chk.slow_unlock();
    chk.slow_unlock();
    chk.op_end();
    CHECK(chk.violations() == 3);
    CHECK(chk.inner().bugs() == 3); // the sim saw the same three
}

TEST_CASE("nofail never reaches a backing allocator") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::noio | gfp::nofail);
    pcpu::page_ref f[1] = {};
    CHECK(chk.alloc_pages(0, f, 1, ctx::noio | gfp::nofail));
    REQUIRE(chk.violations() == 1);
    CHECK(std::string(chk.last_violation()) ==
          "pcpu context checker: alloc_pages received block|nofail: nofail is never passed to a backing allocator");
    chk.free_pages(0, f, 1);
    CHECK(chk.alloc_pages(0, f, 1, ctx::noio));
    chk.free_pages(0, f, 1);
    chk.op_end();
    CHECK(chk.violations() == 1);
}

TEST_CASE("violations are counted, the last few kept, warned and handed to the handler") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    CHECK(std::string(chk.last_violation()).empty());
    CHECK(std::string(chk.violation(0)).empty());
    const std::size_t n = checked::kept_violations + 2;
    for (std::size_t i = 0; i < n; ++i) chk.slow_unlock(); // each: outside an operation, and not held
    CHECK(chk.violations() == 2 * n);
    CHECK(rec.msgs.size() == 2 * n);
    CHECK(chk.inner().warnings().size() == 2 * n);
    for (std::size_t i = 0; i < 2 * n - checked::kept_violations; ++i) CHECK(std::string(chk.violation(i)).empty());
    for (std::size_t i = 2 * n - checked::kept_violations; i < 2 * n; ++i) CHECK(chk.violation(i) == rec.msgs[i]);
    CHECK(std::string(chk.violation(2 * n)).empty());
    CHECK(chk.last_violation() == rec.msgs.back());

    chk.clear_violations();
    CHECK(chk.violations() == 0);
    CHECK(std::string(chk.last_violation()).empty());
    chk.slow_unlock();
    CHECK(chk.violations() == 2);
    CHECK(std::string(chk.violation(0)) == "pcpu context checker: slow_unlock called outside an operation");

    // record_only counts and keeps without calling anyone.
    chk.set_violation_handler(&checked::record_only);
    chk.slow_unlock();
    CHECK(chk.violations() == 4);
    CHECK(rec.msgs.size() == 2 * n + 2);
    CHECK(chk.lost_records() == 0);
    CHECK(chk.inner().bugs() == n + 2); // the sim calls an unlock of a free lock a bug too
}

TEST_CASE("the default handler prints the violation and aborts") {
    const int status = in_child([] {
        checked chk;
        chk.op_begin(ctx::noio);
        void* p = chk.alloc_meta(8, 8, ctx::full);
        (void)p;
    });
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);

    // A handler set to nullptr is the default again.
    const int status2 = in_child([] {
        checked chk;
        recorder rec;
        chk.set_violation_handler(&recorder::handle, &rec);
        chk.set_violation_handler(nullptr);
        chk.op_end();
    });
    CHECK(WIFSIGNALED(status2));
}

TEST_CASE("call statistics: how often each context arrived, and the widest") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(ctx::full);
    std::uintptr_t base = chk.reserve(4 * page, ctx::noio);
    pcpu::page_ref f[3] = {};
    REQUIRE(chk.alloc_pages(0, f, 3, ctx::noio));
    const gfp as[3] = {ctx::noio, ctx::noio | gfp::nowarn, ctx::noio | gfp::noretry};
    for (int i = 0; i < 3; ++i) {
        pcpu::scope_guard<checked> scope(chk, as[i]);
        CHECK(chk.map(base + static_cast<std::uintptr_t>(i) * page, f + i, 1, as[i]));
    }
    // "map was called three times, always within noio"
    CHECK(chk.calls(callback::map) == 3);
    CHECK(chk.all_within(callback::map, ctx::noio));
    CHECK(chk.widest(callback::map) == ctx::noio);
    CHECK(chk.calls(callback::map, ctx::noio) == 1);
    CHECK(chk.calls(callback::map, ctx::noio | gfp::nowarn) == 1);
    CHECK(chk.calls(callback::map, ctx::nofs) == 0);
    CHECK(chk.map_scopes_within(ctx::noio));
    CHECK(chk.calls(callback::scope_apply) == 3);
    CHECK(chk.calls(callback::scope_restore) == 3);
    // Members that take no context have no per-context counts.
    CHECK(chk.calls(callback::unmap, ctx::noio) == 0);
    CHECK(chk.all_within(callback::unmap, ctx::atomic));

    pcpu::page_ref back[3] = {};
    chk.unmap(base, back, 3);
    {
        pcpu::scope_guard<checked> scope(chk, ctx::nofs);
        CHECK(chk.map(base, back, 1, ctx::nofs | gfp::nowarn));
    }
    CHECK(chk.widest(callback::map) == ctx::nofs); // nowarn was not on every call
    CHECK_FALSE(chk.all_within(callback::map, ctx::noio));
    CHECK(chk.all_within(callback::map, ctx::nofs));
    chk.unmap(base, back, 1);
    chk.free_pages(0, f, 3);
    chk.release(base, 4 * page);
    chk.op_end();
    CHECK(chk.violations() == 0);
    CHECK(chk.calls(callback::unmap) == 2);

    chk.clear_calls();
    CHECK(chk.calls(callback::map) == 0);
    CHECK(chk.calls(callback::map, ctx::noio) == 0);
    CHECK(chk.all_within(callback::map, ctx::atomic));
    SIM_CHECK_CLEAN(chk.inner());
}

#if !defined(PCPU_NO_THREAD_LOCAL)
TEST_CASE("each thread has its own operation stack and lock depth") {
    checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    std::atomic<int> stage{0};
    std::thread atomic_user([&] {
        chk.op_begin(ctx::nowait);
        chk.index_lock();
        stage = 1;
        while (stage.load() != 2) std::this_thread::yield();
        chk.index_unlock();
        chk.op_end();
    });
    while (stage.load() != 1) std::this_thread::yield();
    // Another thread's atomic operation and index lock are not this thread's.
    CHECK(chk.op_depth() == 0);
    CHECK(chk.index_lock_depth() == 0);
    chk.op_begin(ctx::noio);
    pcpu::page_ref f[1] = {};
    CHECK(chk.alloc_pages(0, f, 1, ctx::noio));
    chk.free_pages(0, f, 1);
    chk.op_end();
    stage = 2;
    atomic_user.join();
    CHECK(chk.violations() == 0);
    CHECK(chk.calls(callback::op_begin) == 2);
    SIM_CHECK_CLEAN(chk.inner());
}

TEST_CASE("several checkers on one thread keep separate stacks") {
    checked a, b;
    recorder rec;
    a.set_violation_handler(&recorder::handle, &rec);
    b.set_violation_handler(&recorder::handle, &rec);
    a.op_begin(ctx::noio);
    CHECK(b.op_depth() == 0);
    b.op_begin(ctx::full);
    void* p = b.alloc_meta(8, 8, ctx::full);
    void* q = a.alloc_meta(8, 8, ctx::noio);
    CHECK(rec.msgs.empty());
    b.free_meta(p, 8);
    a.free_meta(q, 8);
    b.op_end();
    a.op_end();
    CHECK(rec.msgs.empty());
}
#endif

TEST_CASE("a foreign context type is checked through its traits") {
    using rtos_checked = context_checker<rtos_platform>;
    const rtos_test::rtos_flags wait{rtos_test::can_wait};
    const rtos_test::rtos_flags full{rtos_test::can_wait | rtos_test::can_io};
    rtos_checked chk;
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    chk.op_begin(wait);
    chk.slow_lock();
    CHECK(chk.alloc_meta(8, 8, wait) == static_cast<void*>(chk.inner().block));
    CHECK(rec.msgs.empty());
    (void)chk.alloc_meta(8, 8, full);
    REQUIRE(rec.msgs.size() == 1);
    CHECK(rec.msgs[0] == "pcpu context checker: alloc_meta received wait|io, wider than the caller's wait (noio)");
    chk.slow_unlock();
    chk.op_end();
    CHECK(chk.calls(callback::alloc_meta, wait) == 1);
    CHECK(chk.all_within(callback::alloc_meta, full));
    CHECK_FALSE(chk.all_within(callback::alloc_meta, wait));
}

TEST_CASE("a checked sim_platform runs lazy_mapped population and teardown cleanly") {
    checked chk(4u);
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    std::mutex fs_lock; // the caller holds a lock IO reclaim would need
    chk.inner().set_reclaim_lock(&fs_lock);
    std::lock_guard<std::mutex> holding(fs_lock);

    const pcpu::unit_layout u{4, 4 * page, 4, page};
    const gfp noio = ctx::noio;
    chk.op_begin(noio);
    chk.slow_lock();
    void* node = chk.alloc_meta(256, 64, noio);
    const std::uintptr_t base = pcpu::lazy_mapped::create(chk, u, noio);
    auto* pages = static_cast<pcpu::page_ref*>(chk.alloc_meta(sizeof(pcpu::page_ref) * 16, alignof(pcpu::page_ref), noio));
    REQUIRE(node != nullptr);
    REQUIRE(base != 0);
    REQUIRE(pages != nullptr);
    REQUIRE(pcpu::lazy_mapped::populate(chk, u, base, 1, 3, pages, noio));
    for (unsigned cpu = 0; cpu < 4; ++cpu) {
        auto* p = reinterpret_cast<unsigned char*>(u.page_addr(base, cpu, 1));
        CHECK(p[0] == sim::garbage); // fresh pages are not zeroed
        std::memset(p, static_cast<int>(cpu), 2 * page);
    }
    CHECK(chk.inner().mapped_pages() == 8);
    pcpu::lazy_mapped::depopulate(chk, u, base, 1, 3, pages, noio);
    pcpu::platform_traits<checked>::flush_tlb(chk, u.span_begin(base, 1), u.span_end(base, 3));
    pcpu::lazy_mapped::destroy(chk, u, base, noio);
    chk.free_meta(pages, sizeof(pcpu::page_ref) * 16);
    chk.free_meta(node, 256);
    chk.slow_unlock();
    chk.op_end();

    CHECK(rec.msgs.empty());
    CHECK(chk.violations() == 0);
    CHECK(chk.calls(callback::map) == 4);
    CHECK(chk.calls(callback::alloc_pages, noio) == 4);
    CHECK(chk.all_within(callback::map, noio));
    CHECK(chk.map_scopes_within(noio));
    CHECK(chk.calls(callback::flush_after_map) == 1);
    CHECK(chk.calls(callback::flush_before_unmap) == 1);
    CHECK(chk.inner().deadlocks() == 0);
    SIM_CHECK_CLEAN(chk.inner());
}

TEST_CASE("the GFP_NOIO bug: a forgotten scope is caught by the checker and deadlocks the sim") {
    checked chk(2u);
    recorder rec;
    chk.set_violation_handler(&recorder::handle, &rec);
    std::mutex fs_lock;
    chk.inner().set_reclaim_lock(&fs_lock);
    std::lock_guard<std::mutex> holding(fs_lock);
    chk.op_begin(ctx::noio);
    mapping m(chk, ctx::noio);
    CHECK_FALSE(chk.map(m.base, m.frames, 1, ctx::noio)); // no scope_guard
    CHECK(chk.violations() == 1);
    CHECK(contains(chk.last_violation(), "the scope was not opened"));
    REQUIRE(chk.inner().deadlocks() == 1);
    CHECK(chk.inner().deadlock_messages()[0] ==
          "sim_platform: map ran under the implicit scope block|io|fs and entered IO reclaim, which needs the "
          "reclaim lock the caller holds: deadlock");
    CHECK(chk.inner().mapped_pages() == 0);
    m.undo(0);
    chk.op_end();
    SIM_CHECK_CLEAN(chk.inner());
}

// ---- sim_platform ----------------------------------------------------------------------

TEST_CASE("sim_platform: reserve, map, unmap and release work on real memory") {
    sim p(2);
    const std::uintptr_t base = p.reserve(4 * page, ctx::noio);
    REQUIRE(base != 0);
    CHECK(base % page == 0);
    CHECK(p.reservations() == 1);
    pcpu::page_ref f[2] = {};
    REQUIRE(p.alloc_pages(1, f, 2, ctx::noio));
    CHECK(f[0] != 0);
    CHECK(f[0] != f[1]);
    CHECK(p.frames() == 2);
    {
        pcpu::scope_guard<sim> scope(p, ctx::noio);
        REQUIRE(p.map(base + page, f, 2, ctx::noio));
    }
    CHECK(p.mapped_pages() == 2);
    CHECK(p.is_mapped(base + page + 17));
    CHECK_FALSE(p.is_mapped(base));
    CHECK(p.frame_at(base + 2 * page) == f[1]);
    auto* mem = reinterpret_cast<unsigned char*>(base + page);
    CHECK(mem[0] == sim::garbage);
    std::memset(mem, 0x11, 2 * page);
    CHECK(mem[2 * page - 1] == 0x11);

    // The log names each call with its context and the scope in force.
    const auto& log = p.log();
    const auto it = std::find_if(log.begin(), log.end(), [](const pcpu_test::call_record& r) {
        return r.kind == callback::map;
    });
    REQUIRE(it != log.end());
    CHECK(std::string(it->name) == "map");
    CHECK(it->has_ctx);
    CHECK(it->ctx == ctx::noio);
    CHECK(it->scope == ctx::noio);
    CHECK(it->addr == base + page);
    CHECK(it->size == 2);
    CHECK_FALSE(it->failed);

    pcpu::page_ref back[2] = {};
    p.unmap(base + page, back, 2);
    CHECK(back[0] == f[0]);
    CHECK(back[1] == f[1]);
    CHECK(p.mapped_pages() == 0);
    CHECK(p.frames() == 2);
    p.free_pages(1, back, 2);
    p.release(base, 4 * page);
    CHECK(p.calls(callback::map) == 1);
    CHECK(p.calls(callback::scope_apply) == 1);
    SIM_CHECK_CLEAN(p);
}

TEST_CASE("sim_platform: touching memory that is not mapped faults") {
    const auto touch = [](bool map_then_unmap) {
        return in_child([map_then_unmap] {
            sim p(1);
            const std::uintptr_t base = p.reserve(2 * page, ctx::noio);
            if (map_then_unmap) {
                pcpu::page_ref f[1] = {};
                p.alloc_pages(0, f, 1, ctx::noio);
                p.map(base, f, 1, ctx::noio);
                *reinterpret_cast<volatile unsigned char*>(base) = 1;
                p.unmap(base, f, 1);
            }
            *reinterpret_cast<volatile unsigned char*>(base) = 1;
        });
    };
    const int reserved_only = touch(false);
    CHECK(WIFSIGNALED(reserved_only));
    CHECK(WTERMSIG(reserved_only) == SIGSEGV);
    const int after_unmap = touch(true);
    CHECK(WIFSIGNALED(after_unmap));
    CHECK(WTERMSIG(after_unmap) == SIGSEGV);
}

TEST_CASE("sim_platform: unmapped pages come back without their contents") {
    sim p(1);
    const std::uintptr_t base = p.reserve(page, ctx::noio);
    pcpu::page_ref f[1] = {};
    REQUIRE(p.alloc_pages(0, f, 1, ctx::noio));
    REQUIRE(p.map(base, f, 1, ctx::noio));
    *reinterpret_cast<unsigned char*>(base + 5) = 0x77;
    p.unmap(base, f, 1);
    REQUIRE(p.map(base, f, 1, ctx::noio));
    CHECK(*reinterpret_cast<unsigned char*>(base + 5) == sim::garbage);
    p.unmap(base, f, 1);
    p.free_pages(0, f, 1);
    p.release(base, page);
    SIM_CHECK_CLEAN(p);
}

TEST_CASE("sim_platform: fail_nth fails exactly the n-th call of a kind, leaving nothing behind") {
    sim p(2);
    p.fail_nth(pcpu_test::fault::pages, 2);
    pcpu::page_ref f[4] = {};
    CHECK(p.alloc_pages(0, f, 2, ctx::noio));
    CHECK_FALSE(p.alloc_pages(1, f + 2, 2, ctx::noio));
    CHECK(p.frames() == 2);
    CHECK(p.injected_failures() == 1);
    CHECK(p.alloc_pages(1, f + 2, 2, ctx::noio));
    CHECK(p.frames() == 4);
    CHECK(p.log()[1].failed);
    CHECK_FALSE(p.log()[2].failed);

    const std::uintptr_t base = p.reserve(4 * page, ctx::noio);
    p.fail_nth(pcpu_test::fault::map, 1);
    CHECK_FALSE(p.map(base, f, 4, ctx::noio));
    CHECK(p.mapped_pages() == 0);
    CHECK_FALSE(p.is_mapped(base));
    CHECK(p.map(base, f, 4, ctx::noio));
    pcpu::page_ref back[4] = {};
    p.unmap(base, back, 4);

    p.fail_always(pcpu_test::fault::meta);
    CHECK(p.alloc_meta(8, 8, ctx::noio) == nullptr);
    CHECK(p.alloc_meta(8, 8, ctx::noio) == nullptr);
    CHECK(p.meta_blocks() == 0);
    p.fail_always(pcpu_test::fault::meta, false);
    p.fail_nth(pcpu_test::fault::units, 1);
    CHECK(p.alloc_units(page, ctx::noio) == nullptr);
    CHECK(p.units_blocks() == 0);
    p.fail_nth(pcpu_test::fault::reserve, 1);
    CHECK(p.reserve(page, ctx::noio) == 0);
    CHECK(p.reservations() == 1);
    CHECK(p.injected_failures() == 6);
    // failable: 3 alloc_pages, 2 map, 2 alloc_meta, 1 alloc_units, 2 reserve.
    CHECK(p.failable_calls() == 10);

    p.fail_nth(pcpu_test::fault::meta, 5);
    p.clear_faults();
    void* m = p.alloc_meta(8, 8, ctx::noio);
    CHECK(m != nullptr);
    p.free_meta(m, 8);
    p.free_pages(0, f, 2);
    p.free_pages(1, f + 2, 2);
    p.release(base, 4 * page);
    SIM_CHECK_CLEAN(p);
}

TEST_CASE("sim_platform: fail_call sweeps every failure point of an operation") {
    // The operation: create a lazy_mapped chunk and populate two pages of every CPU,
    // rolling back on failure as the allocator does.
    const pcpu::unit_layout u{3, 4 * page, 4, page};
    const auto run = [&u](sim& p) {
        const std::uintptr_t base = pcpu::lazy_mapped::create(p, u, ctx::noio);
        if (base == 0) return false;
        void* arr = p.alloc_meta(sizeof(pcpu::page_ref) * 12, alignof(pcpu::page_ref), ctx::noio);
        if (arr == nullptr) {
            pcpu::lazy_mapped::destroy(p, u, base, ctx::noio);
            return false;
        }
        auto* pages = static_cast<pcpu::page_ref*>(arr);
        const bool ok = pcpu::lazy_mapped::populate(p, u, base, 0, 2, pages, ctx::noio);
        if (ok) pcpu::lazy_mapped::depopulate(p, u, base, 0, 2, pages, ctx::noio);
        p.free_meta(arr, sizeof(pcpu::page_ref) * 12);
        pcpu::lazy_mapped::destroy(p, u, base, ctx::noio);
        return ok;
    };
    std::size_t n = 0;
    {
        sim p(3);
        CHECK(run(p));
        n = p.failable_calls();
        SIM_CHECK_CLEAN(p);
    }
    CHECK(n == 8); // reserve, page array, 3 x alloc_pages, 3 x map
    for (std::size_t k = 1; k <= n; ++k) {
        CAPTURE(k);
        sim p(3);
        p.fail_call(k);
        CHECK_FALSE(run(p));
        CHECK(p.injected_failures() == 1);
        CHECK(p.failable_calls() == k); // nothing after the failure allocates again
        SIM_CHECK_CLEAN(p);
    }
    sim p(3);
    p.fail_call(n + 1);
    CHECK(run(p));
    CHECK(p.injected_failures() == 0);
}

TEST_CASE("sim_platform: counters of outstanding memory, and garbage-filled metadata") {
    sim p(2);
    CHECK_FALSE(p.leaks());
    void* a = p.alloc_meta(100, 64, ctx::noio);
    void* b = p.alloc_meta(28, 4, ctx::noio);
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(a) % 64 == 0);
    CHECK(static_cast<unsigned char*>(a)[99] == sim::garbage);
    CHECK(static_cast<unsigned char*>(b)[0] == sim::garbage);
    CHECK(p.meta_blocks() == 2);
    CHECK(p.meta_bytes() == 128);
    void* units = p.alloc_units(2 * page, ctx::noio);
    REQUIRE(units != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(units) % page == 0);
    CHECK(static_cast<unsigned char*>(units)[2 * page - 1] == sim::garbage);
    CHECK(p.units_blocks() == 1);
    CHECK(p.leaks());
    CHECK(p.describe_leaks() == "2 meta blocks (128 bytes), 1 unit blocks, 0 reservations, 0 frames, 0 mapped pages");
    p.free_meta(a, 100);
    p.free_meta(b, 28);
    p.free_meta(nullptr, 0); // like kvfree(NULL)
    p.free_units(units, 2 * page);
    CHECK(p.calls(callback::free_meta) == 3);
    CHECK(p.calls(callback::alloc_meta) == 2);
    SIM_CHECK_CLEAN(p);
    p.clear_counts();
    CHECK(p.calls(callback::alloc_meta) == 0);
    CHECK(p.failable_calls() == 0);
}

TEST_CASE("sim_platform: misuse is recorded as bugs, not crashes") {
    sim p(2);
    void* m = p.alloc_meta(16, 8, ctx::noio);
    p.free_meta(m, 8);
    CHECK(p.bugs() == 1); // wrong size
    p.free_meta(m, 16);
    CHECK(p.bugs() == 2); // double free
    pcpu::page_ref bogus[1] = {12345};
    p.free_pages(0, bogus, 1);
    CHECK(p.bugs() == 3);

    const std::uintptr_t base = p.reserve(2 * page, ctx::noio);
    pcpu::page_ref f[2] = {};
    REQUIRE(p.alloc_pages(1, f, 2, ctx::noio));
    REQUIRE(p.map(base, f, 1, ctx::noio));
    CHECK_FALSE(p.map(base, f + 1, 1, ctx::noio)); // over a mapping
    CHECK(p.bugs() == 4);
    CHECK_FALSE(p.map(base + page, f, 1, ctx::noio)); // a frame mapped twice
    CHECK(p.bugs() == 5);
    CHECK_FALSE(p.map(base + 2 * page, f + 1, 1, ctx::noio)); // outside the reservation
    CHECK(p.bugs() == 6);
    pcpu::page_ref back[1] = {};
    p.unmap(base + page, back, 1);
    CHECK(back[0] == 0);
    CHECK(p.bugs() == 7);
    p.free_pages(0, f, 1); // mapped, and allocated for cpu 1
    CHECK(p.bugs() == 9);
    p.release(base, 2 * page); // with a page still mapped
    CHECK(p.bugs() == 10);
    CHECK(p.mapped_pages() == 0);

    p.slow_lock();
    p.slow_lock(); // would deadlock on a real sleeping lock
    CHECK(p.bugs() == 11);
    p.slow_unlock();
    p.slow_unlock();
    p.slow_unlock();
    CHECK(p.bugs() == 12);

    p.index_lock();
    void* under = p.alloc_meta(8, 8, ctx::noio);
    CHECK(p.bugs() == 13);
    p.index_unlock();
    p.free_meta(under, 8);

    const auto t1 = p.scope_apply(ctx::nofs);
    const auto t2 = p.scope_apply(ctx::noio);
    p.scope_restore(t1); // out of order
    CHECK(p.bugs() == 14);
    (void)t2;
    sim::reset_scope();
    CHECK(p.current_scope() == ctx::full);
    const auto msgs = p.bug_messages();
    CHECK(msgs[1].rfind("sim_platform: free_meta of a block that is not allocated", 0) == 0);
    CHECK(contains(p.describe_bugs(), "scope_restore out of order"));
    p.free_pages(1, f + 1, 1);
    CHECK(p.frames() == 0);
}

TEST_CASE("sim_platform: IO reclaim under the caller's reclaim lock is a recorded deadlock") {
    sim p(2);
    std::mutex fs_lock;
    p.set_reclaim_lock(&fs_lock);
    pcpu::page_ref f[1] = {};
    // Nobody holds the lock: reclaim may start IO.
    CHECK(p.alloc_pages(0, f, 1, ctx::full));
    p.free_pages(0, f, 1);
    CHECK(p.deadlocks() == 0);

    fs_lock.lock();
    CHECK_FALSE(p.alloc_pages(0, f, 1, ctx::full));
    REQUIRE(p.deadlocks() == 1);
    CHECK(p.deadlock_messages()[0] ==
          "sim_platform: alloc_pages received block|io|fs and entered IO reclaim, which needs the reclaim lock the "
          "caller holds: deadlock");
    CHECK(p.frames() == 0);
    CHECK_FALSE(p.alloc_meta(8, 8, ctx::nofs)); // nofs still starts IO
    CHECK(p.deadlocks() == 2);
    void* m = p.alloc_meta(8, 8, ctx::noio);
    CHECK(m != nullptr);
    CHECK(p.alloc_pages(0, f, 1, ctx::noio));
    CHECK(p.deadlocks() == 2);

    const std::uintptr_t base = p.reserve(page, ctx::noio);
    CHECK_FALSE(p.map(base, f, 1, ctx::noio)); // right argument, no scope: page tables reclaim with IO
    CHECK(p.deadlocks() == 3);
    {
        pcpu::scope_guard<sim> scope(p, ctx::noio);
        CHECK(p.map(base, f, 1, ctx::noio));
    }
    CHECK(p.deadlocks() == 3);
    fs_lock.unlock();
    CHECK(p.injected_failures() == 0); // deadlocks are not injected faults
    pcpu::page_ref back[1] = {};
    p.unmap(base, back, 1);
    p.free_pages(0, back, 1);
    p.release(base, page);
    p.free_meta(m, 8);
    p.set_reclaim_lock(nullptr);
    SIM_CHECK_CLEAN(p);
}

TEST_CASE("sim_platform: scope, cpu, balance requests, background context, warnings, log") {
    sim p(3);
    {
        pcpu::scope_guard<sim> outer(p, ctx::nofs);
        pcpu::scope_guard<sim> inner(p, ctx::full); // narrowest wins
        CHECK(p.current_scope() == ctx::nofs);
        gfp other = ctx::atomic;
        std::thread([&] { other = p.current_scope(); }).join();
        CHECK(other == ctx::full); // the scope is the thread's
    }
    CHECK(p.current_scope() == ctx::full);

    sim::set_cpu(2);
    CHECK(p.this_cpu() == 2);
    sim::set_cpu(5);
    CHECK(p.this_cpu() == 2); // folded into nr_cpus
    unsigned a = 99, b = 99;
    std::thread([&] { a = p.this_cpu(); }).join();
    std::thread([&] { b = p.this_cpu(); }).join();
    CHECK(a < 3);
    CHECK(b < 3);
    sim::set_cpu(0);

    p.request_balance();
    p.request_balance();
    CHECK(p.balance_requests() == 2);
    CHECK(p.background_context() == ctx::noio);
    p.set_background_context(ctx::nofs);
    CHECK(p.background_context() == ctx::nofs);
    p.warn("pcpu: one");
    REQUIRE(p.warnings().size() == 1);
    CHECK(p.warnings()[0] == "pcpu: one");
    p.op_begin(ctx::noio);
    p.op_end();
    CHECK(p.calls(callback::op_begin) == 1);

    CHECK_FALSE(p.log().empty());
    p.clear_log();
    CHECK(p.log().empty());
    p.set_recording(false);
    p.request_balance();
    CHECK(p.log().empty());
    CHECK(p.calls(callback::request_balance) == 3);
    p.set_recording(true);
    p.flush_tlb(0x1000, 0x3000);
    REQUIRE(p.log().size() == 1);
    CHECK(p.log()[0].kind == callback::flush_tlb);
    CHECK(p.log()[0].addr == 0x1000);
    CHECK(p.log()[0].size == 0x3000);
    CHECK_FALSE(p.log()[0].has_ctx);
}

TEST_CASE("sim_platform: the locks exclude across threads") {
    sim p(4);
    long counter = 0;
    const auto work = [&] {
        for (int i = 0; i < 2000; ++i) {
            p.index_lock();
            ++counter;
            p.index_unlock();
            if (i % 100 == 0) {
                p.slow_lock();
                CHECK_FALSE(p.holds_index_lock());
                p.slow_unlock();
            }
        }
    };
    p.set_recording(false);
    std::thread t1(work), t2(work), t3(work);
    t1.join();
    t2.join();
    t3.join();
    CHECK(counter == 6000);
    CHECK(p.bugs() == 0);
    CHECK(p.calls(callback::index_lock) == 6000);
}

TEST_CASE("sim_platform: page sizes below and above the host's") {
    const auto exercise = [](auto& p) {
        using P = std::remove_reference_t<decltype(p)>;
        constexpr std::size_t ps = P::page_size;
        const std::uintptr_t base = p.reserve(8 * ps, ctx::noio);
        REQUIRE(base != 0);
        CHECK(base % ps == 0);
        pcpu::page_ref f[3] = {};
        REQUIRE(p.alloc_pages(0, f, 3, ctx::noio));
        REQUIRE(p.map(base + ps, f, 3, ctx::noio));
        std::memset(reinterpret_cast<void*>(base + ps), 1, 3 * ps);
        pcpu::page_ref back[3] = {};
        p.unmap(base + 2 * ps, back, 1);
        CHECK(back[0] == f[1]);
        CHECK(p.mapped_pages() == 2);
        // Its neighbours are still usable.
        std::memset(reinterpret_cast<void*>(base + ps), 2, ps);
        std::memset(reinterpret_cast<void*>(base + 3 * ps), 2, ps);
        p.unmap(base + ps, back, 1);
        p.unmap(base + 3 * ps, back + 1, 1);
        p.free_pages(0, f, 3);
        p.release(base, 8 * ps);
        void* units = p.alloc_units(2 * ps, ctx::noio);
        REQUIRE(units != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(units) % ps == 0);
        p.free_units(units, 2 * ps);
        SIM_CHECK_CLEAN(p);
    };
    pcpu_test::sim_platform<10, 4> small(2);
    exercise(small);
    pcpu_test::sim_platform<16, 4> large(2);
    exercise(large);
}

} // TEST_SUITE("checker")
