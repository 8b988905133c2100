// SPDX-License-Identifier: MIT
// tests/test_counter.cpp - the per-core statistics counter (counter.hpp) against an exact
// model: folding at the batch, the documented error bound, compare() on both sides of
// the bound, set(), add_local(), sync(), and many threads adding known amounts.
#include "support/cpu_platform.hpp"
#include "support/racing_sums.hpp"
#include "support/static_platform.hpp"

#include <pcpu/counter.hpp>

#include <doctest/doctest.h>

#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using pcpu_test::cpu_platform;
using pcpu_test::cpus;
using pcpu_test::guard_kind;
using pcpu_test::set_cpu;

constexpr pcpu::gfp full = pcpu::ctx::full;

template <guard_kind K>
using alloc_t = pcpu::allocator<cpu_platform<K>>;
template <guard_kind K>
using counter_t = pcpu::counter<alloc_t<K>>;

template <guard_kind K>
struct flavour {
    static constexpr guard_kind kind = K;
};
using none_f = flavour<guard_kind::none>;
using preempt_f = flavour<guard_kind::preempt>;
using irq_f = flavour<guard_kind::irq>;

/// fixture<K> - nr CPUs, an initialised allocator, a counter on it.
template <guard_kind K>
struct fixture {
    pcpu_test::static_setup<alloc_t<K>> s;
    counter_t<K> c;
    unsigned nr;

    fixture(unsigned nr_cpus, std::int64_t initial, std::int32_t batch) : s(nr_cpus, 16 * 1024, 0, 0), nr(nr_cpus) {
        cpus().reset(nr_cpus);
        set_cpu(0); // this thread's CPU, left over from an earlier test
        REQUIRE(s.init() == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        REQUIRE(c.init(s.alloc, initial, full, batch) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
    }
    ~fixture() {
        CHECK(c.destroy() == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(s.alloc.stats().nr_cur_alloc == 0);
        CHECK(cpus().bugs == 0);
        CHECK(cpus().guards_entered == cpus().guards_left);
    }
    std::int32_t delta(unsigned cpu) const { return pcpu::per_cpu(c.deltas(), cpu); }
    bool deltas_within_batch() const {
        for (unsigned cpu = 0; cpu < nr; ++cpu)
            if (std::llabs(delta(cpu)) >= c.batch()) return false;
        return true;
    }
};

std::int64_t iabs(std::int64_t v) { return v < 0 ? -v : v; }

/// lcg - a small deterministic generator (the sequences must replay).
struct lcg {
    std::uint64_t s;
    std::uint32_t next() {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<std::uint32_t>(s >> 33);
    }
};

} // namespace

TEST_SUITE("counter") {

TEST_CASE("init, destroy and the default batch") {
    cpus().reset(4);
    pcpu_test::static_setup<alloc_t<guard_kind::none>> s(4, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    counter_t<guard_kind::none> c;
    CHECK(!c.initialized());
    CHECK(c.init(s.alloc, 0, full, -1) == pcpu::errc::bad_config);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(s.alloc.stats().nr_cur_alloc == 0);
    REQUIRE(c.init(s.alloc, 7, full) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(c.batch() == 32); // max(32, 2 * 4)
    CHECK(c.error_bound() == 32 * 4);
    CHECK(c.read() == 7);
    CHECK(c.sum() == 7);
    CHECK(c.init(s.alloc, 0, full) == pcpu::errc::bad_config); // twice
    REQUIRE_VERIFIED(s.alloc);
    CHECK(s.alloc.stats().nr_cur_alloc == 1);
    CHECK(c.destroy() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(s.alloc.stats().nr_cur_alloc == 0);
    CHECK(c.destroy() == pcpu::errc::ok); // idempotent
    REQUIRE_VERIFIED(s.alloc);

    CHECK(counter_t<guard_kind::none>::default_batch(1) == 32);
    CHECK(counter_t<guard_kind::none>::default_batch(16) == 32);
    CHECK(counter_t<guard_kind::none>::default_batch(17) == 34);
    CHECK(counter_t<guard_kind::none>::default_batch(64) == 128);
}

TEST_CASE_TEMPLATE("adds fold at the batch exactly as the model says; the bound holds after every add", F, none_f,
                   preempt_f, irq_f) {
    constexpr unsigned nr = 4;
    constexpr std::int32_t batch = 8;
    fixture<F::kind> f(nr, 1000, batch);
    std::int64_t model_count = 1000, model_delta[nr] = {};
    lcg rng{42};
    std::int64_t max_gap = 0;
    for (int i = 0; i < 4000; ++i) {
        const unsigned cpu = rng.next() % nr;
        // Mostly small steps, sometimes one beyond the batch on its own.
        const std::int64_t amount = rng.next() % 16 == 0 ? static_cast<std::int64_t>(rng.next() % 40) - 20
                                                          : static_cast<std::int64_t>(rng.next() % 7) - 3;
        set_cpu(cpu);
        f.c.add(amount);
        const std::int64_t n = model_delta[cpu] + amount;
        if (n < batch && n > -batch) {
            model_delta[cpu] = n;
        } else {
            model_count += n;
            model_delta[cpu] = 0;
        }
        const std::int64_t exact = model_count + model_delta[0] + model_delta[1] + model_delta[2] + model_delta[3];
        REQUIRE(f.c.read() == model_count);
        for (unsigned c = 0; c < nr; ++c) REQUIRE(f.delta(c) == model_delta[c]);
        REQUIRE(f.c.sum() == exact);
        // The documented bound: |approx - exact| <= nr * (batch - 1) < nr * batch.
        REQUIRE(iabs(f.c.read() - exact) <= std::int64_t{nr} * (batch - 1));
        REQUIRE(iabs(f.c.read() - exact) < f.c.error_bound());
        if (iabs(f.c.read() - exact) > max_gap) max_gap = iabs(f.c.read() - exact);
    }
    // The run actually got near the bound, so the check above had something to check.
    CHECK(max_gap >= 2 * (batch - 1));
}

TEST_CASE_TEMPLATE("inc, dec, sub and sync", F, none_f, preempt_f, irq_f) {
    fixture<F::kind> f(3, 0, 10);
    set_cpu(2);
    for (int i = 0; i < 9; ++i) f.c.inc();
    CHECK(f.delta(2) == 9);
    CHECK(f.c.read() == 0);
    f.c.inc(); // reaches the batch: folds 10
    CHECK(f.delta(2) == 0);
    CHECK(f.c.read() == 10);
    f.c.dec();
    f.c.sub(4);
    CHECK(f.delta(2) == -5);
    CHECK(f.c.sum() == 5);
    set_cpu(0);
    f.c.add(3);
    CHECK(f.delta(0) == 3);
    f.c.sync(); // folds CPU 0 only
    CHECK(f.delta(0) == 0);
    CHECK(f.delta(2) == -5);
    CHECK(f.c.read() == 13);
    CHECK(f.c.sum() == 8);
}

TEST_CASE_TEMPLATE("set() zeroes every delta and sets the count", F, none_f, preempt_f, irq_f) {
    fixture<F::kind> f(4, 0, 16);
    for (unsigned cpu = 0; cpu < 4; ++cpu) {
        set_cpu(cpu);
        f.c.add(static_cast<std::int64_t>(cpu) * 4 + 3);
    }
    CHECK(f.c.sum() == 3 + 7 + 11 + 15);
    f.c.set(-123456789012345ll);
    for (unsigned cpu = 0; cpu < 4; ++cpu) CHECK(f.delta(cpu) == 0);
    CHECK(f.c.read() == -123456789012345ll);
    CHECK(f.c.sum() == -123456789012345ll);
    CHECK(f.c.read_positive() == 0);
    CHECK(f.c.sum_positive() == 0);
    f.c.set(5);
    CHECK(f.c.read_positive() == 5);
}

TEST_CASE_TEMPLATE("add_local accumulates in the delta until int32_t would overflow", F, none_f, preempt_f, irq_f) {
    fixture<F::kind> f(2, 0, 8);
    set_cpu(1);
    f.c.add_local(1000000);
    f.c.add_local(-1);
    CHECK(f.c.read() == 0); // far beyond the batch, still local
    CHECK(f.delta(1) == 999999);
    CHECK(f.c.sum() == 999999);
    f.c.add_local(INT32_MAX - 999999 - 1); // delta INT32_MAX - 1: still local
    CHECK(f.c.read() == 0);
    CHECK(f.delta(1) == INT32_MAX - 1);
    f.c.add_local(5); // would pass INT32_MAX: folds
    CHECK(f.delta(1) == 0);
    CHECK(f.c.read() == std::int64_t{INT32_MAX} + 4);
    f.c.add_local(-std::int64_t{INT32_MAX} - 10); // one add below -INT32_MAX folds at once
    CHECK(f.delta(1) == 0);
    CHECK(f.c.sum() == -6);
    // A normal add after add_local folds against the counter's own batch.
    f.c.add_local(6);
    f.c.add(2);
    CHECK(f.delta(1) == 0);
    CHECK(f.c.read() == 2);
}

TEST_CASE_TEMPLATE("compare answers correctly on both sides of the error bound", F, none_f, preempt_f, irq_f) {
    constexpr unsigned nr = 4;
    constexpr std::int32_t batch = 16;
    for (const int sign : {1, -1}) {
        CAPTURE(sign);
        fixture<F::kind> f(nr, 500, batch);
        // Worst case: every delta at +-(batch - 1), none folded.
        for (unsigned cpu = 0; cpu < nr; ++cpu) {
            set_cpu(cpu);
            f.c.add(sign * (batch - 1));
        }
        const std::int64_t approx = f.c.read(), exact = f.c.sum();
        REQUIRE(approx == 500);
        REQUIRE(exact == 500 + sign * std::int64_t{nr} * (batch - 1));
        const std::int64_t bound = f.c.error_bound();
        int approx_would_lie = 0;
        for (std::int64_t rhs = exact - 3 * bound; rhs <= exact + 3 * bound; ++rhs) {
            CAPTURE(rhs);
            const int want = exact > rhs ? 1 : exact < rhs ? -1 : 0;
            const int naive = approx > rhs ? 1 : approx < rhs ? -1 : 0;
            approx_would_lie += naive != want;
            const long before = cpus().guards_entered;
            REQUIRE(f.c.compare(rhs) == want);
            // Far from the bound compare() answers from read() alone; within it, it takes
            // the exact sum (under the lock and, where there is one, the guard).
            if (F::kind != guard_kind::none && pcpu::detail::lock_free<std::int64_t>) {
                const bool far = iabs(approx - rhs) > bound;
                CHECK((cpus().guards_entered - before == 0) == far);
            }
        }
        // Trusting read() would answer wrongly for every rhs from approx to exact
        // inclusive: the sweep covers them all.
        CHECK(approx_would_lie == std::int64_t{nr} * (batch - 1) + 1);
        // An explicit, larger batch widens the exact zone but never changes the answer.
        CHECK(f.c.compare(exact, 1000) == 0);
        CHECK(f.c.compare(exact - 1, 1000) == 1);
        CHECK(f.c.compare(exact + 1, 1000) == -1);
    }
}

TEST_CASE_TEMPLATE("many threads adding known amounts: exact sum, approximate read within the bound", F, none_f,
                   preempt_f, irq_f) {
    constexpr unsigned nr = 4, nr_threads = 8;
    constexpr unsigned per_thread = 30000;
    for (const bool migrate : {false, true}) {
        CAPTURE(migrate);
        fixture<F::kind> f(nr, -5000, 24);
        cpus().migrate = migrate;
        std::vector<std::thread> threads;
        std::vector<std::int64_t> added(nr_threads, 0);
        for (unsigned t = 0; t < nr_threads; ++t)
            threads.emplace_back([&f, &added, t] {
                set_cpu(t % nr);
                lcg rng{t + 1};
                std::int64_t mine = 0;
                for (unsigned i = 0; i < per_thread; ++i) {
                    // Mostly +1, some larger steps either way, some beyond the batch.
                    const std::uint32_t r = rng.next() % 64;
                    const std::int64_t amount = r < 48 ? 1 : r < 62 ? static_cast<std::int64_t>(r) - 55 : 100;
                    f.c.add(amount);
                    mine += amount;
                }
                added[t] = mine;
            });
        for (auto& th : threads) th.join();
        cpus().migrate = false;
        std::int64_t expected = -5000;
        for (auto v : added) expected += v;
        CHECK(f.c.sum() == expected);
        CHECK(iabs(f.c.read() - expected) < f.c.error_bound());
        CHECK(f.deltas_within_batch());
        CHECK(f.c.compare(expected) == 0);
        CHECK(f.c.compare(expected - 1) == 1);
        CHECK(f.c.compare(expected + 1) == -1);
    }
}

TEST_CASE_TEMPLATE("threads racing on one CPU's delta lose nothing and never push it past the batch", F, none_f,
                   preempt_f, irq_f) {
    // One CPU, many threads, a small batch: without a guard every add races with the
    // others on the same delta, and a fold must take what the delta holds at the fold,
    // not what it held when the add looked at it.
    constexpr unsigned nr_threads = 4, per_thread = 400000;
    fixture<F::kind> f(1, 0, 4);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < nr_threads; ++t)
        threads.emplace_back([&f, t] {
            set_cpu(0);
            for (unsigned i = 0; i < per_thread; ++i) f.c.add(t % 2 == 0 ? 1 : 2);
        });
    for (auto& th : threads) th.join();
    const std::int64_t expected = std::int64_t{per_thread} * (1 + 2 + 1 + 2);
    CHECK(f.c.sum() == expected);
    CHECK(f.deltas_within_batch());
    CHECK(iabs(f.c.read() - expected) < f.c.error_bound());
}

TEST_CASE_TEMPLATE("sum() while threads add and fold: every finished add counted, no unstarted one; read() near",
                   F, none_f, preempt_f, irq_f) {
    // A fold moves a delta into the count. Were the two writes visible apart to sum(),
    // a sum taken between them would lose the delta (adds that finished before the sum
    // began) or count it twice. So sum() must lie between the adds finished before it
    // and the adds started before it returned.
    constexpr unsigned nr = 4, nr_threads = 4;
    constexpr std::int32_t batch = 4;
    constexpr std::int64_t per_thread = 200000;
    fixture<F::kind> f(nr, 1000, batch);
    pcpu_test::racing_sums race;
    std::atomic<unsigned> running{nr_threads};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < nr_threads; ++t)
        threads.emplace_back([&, t] {
            set_cpu(t % 2); // two threads on each of two CPUs: racing folds of one delta too
            for (std::int64_t i = 0; i < per_thread; ++i) race.add([&] { f.c.add(1); });
            running.fetch_sub(1);
        });
    // Adds in flight may have taken their delta and not yet stored the count: up to
    // nr_threads deltas below batch, beyond the bound of a counter at rest.
    const std::int64_t slack = std::int64_t{nr_threads} * batch;
    while (running.load() != 0) race.check(f.c, 1000, slack);
    for (auto& th : threads) th.join();
    MESSAGE(race.sums << " sums racing with the adds");
    CHECK(race.sums > 0);
    CHECK(race.bad_sums == 0);
    CHECK(race.bad_reads == 0);
    CHECK(f.c.sum() == 1000 + nr_threads * per_thread);
    CHECK(f.deltas_within_batch());
}

} // TEST_SUITE("counter")

namespace {
/// os_platform - the running CPU is the real one (sched_getcpu), folded into nr_cpus;
/// no guard. Threads are not pinned, so the scheduler migrates them whenever it likes.
struct os_platform {
    static constexpr std::size_t max_cpus = 8;
    void index_lock() noexcept { cpus().index_mu.lock(); }
    void index_unlock() noexcept { cpus().index_mu.unlock(); }
    unsigned this_cpu() noexcept {
        const int c = sched_getcpu();
        return c < 0 ? 0u : static_cast<unsigned>(c) % cpus().nr_cpus;
    }
};
} // namespace

TEST_SUITE("counter") {

TEST_CASE("threads on the real CPUs, unpinned: the exact sum is the expected total") {
    constexpr unsigned nr = 4, nr_threads = 6, per_thread = 50000;
    cpus().reset(nr);
    using alloc = pcpu::allocator<os_platform>;
    pcpu_test::static_setup<alloc> s(nr, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    {
        pcpu::counter<alloc> c;
        REQUIRE(c.init(s.alloc, 0, full) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < nr_threads; ++t)
            threads.emplace_back([&c, t] {
                for (unsigned i = 0; i < per_thread; ++i) c.add(t % 2 == 0 ? 3 : -1);
            });
        for (auto& th : threads) th.join();
        const std::int64_t expected = std::int64_t{per_thread} * (3 * 3 - 3);
        CHECK(c.sum() == expected);
        CHECK(iabs(c.read() - expected) < c.error_bound());
        CHECK(c.destroy() == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
    }
    CHECK(s.alloc.stats().nr_cur_alloc == 0);
}

} // TEST_SUITE("counter")
