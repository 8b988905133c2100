// SPDX-License-Identifier: MIT
// tests/test_counter_ops.cpp - the counter functions of issue 15 (counter.hpp):
// init_many/destroy_many (one allocation behind several counters), limited_add against
// an exact model and under threads racing at the limit, sub_local.
#include "support/cpu_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/counter.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
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

struct lcg {
    std::uint64_t s;
    std::uint32_t next() {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<std::uint32_t>(s >> 33);
    }
};

} // namespace

TEST_SUITE("counter_ops") {

TEST_CASE_TEMPLATE("init_many backs n counters with one allocation; destroy_many frees it once", F, none_f, preempt_f,
                   irq_f) {
    cpus().reset(4);
    set_cpu(0);
    pcpu_test::static_setup<alloc_t<F::kind>> s(4, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    using C = counter_t<F::kind>;
    {
        C cs[3];
        CHECK(C::init_many(cs, 0, s.alloc, 0, full) == pcpu::errc::bad_config);
        CHECK(C::init_many(cs, 3, s.alloc, 0, full, -1) == pcpu::errc::bad_config);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(s.alloc.stats().nr_cur_alloc == 0);
        REQUIRE(C::init_many(cs, 3, s.alloc, 5, full, 8) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(s.alloc.stats().nr_cur_alloc == 1); // one allocation for three
        CHECK(C::init_many(cs + 1, 1, s.alloc, 0, full) == pcpu::errc::bad_config); // already initialised
        REQUIRE_VERIFIED(s.alloc);
        for (unsigned i = 0; i < 3; ++i) {
            CHECK(cs[i].initialized());
            CHECK(cs[i].batch() == 8);
            CHECK(cs[i].sum() == 5);
            // Adjacent deltas, so one cache line per CPU holds the group.
            for (unsigned cpu = 0; cpu < 4; ++cpu)
                CHECK(pcpu::per_cpu_ptr(cs[i].deltas(), cpu) == pcpu::per_cpu_ptr(cs[0].deltas(), cpu) + i);
        }
        // Independent counters on shared storage.
        for (unsigned cpu = 0; cpu < 4; ++cpu) {
            set_cpu(cpu);
            for (int k = 0; k < 20; ++k) {
                cs[0].add(1);
                cs[1].add(-3);
                cs[2].inc();
            }
        }
        CHECK(cs[0].sum() == 5 + 80);
        CHECK(cs[1].sum() == 5 - 240);
        CHECK(cs[2].sum() == 5 + 80);
        // One member cannot free the shared deltas; a wrong group is refused whole.
        CHECK(cs[1].destroy() == pcpu::errc::invalid_pointer);
        CHECK(cs[0].destroy() == pcpu::errc::invalid_pointer);
        CHECK(C::destroy_many(cs, 2) == pcpu::errc::invalid_pointer);
        CHECK(C::destroy_many(cs + 1, 2) == pcpu::errc::invalid_pointer);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(cs[1].sum() == 5 - 240);
        CHECK(s.alloc.stats().nr_cur_alloc == 1);
        CHECK(C::destroy_many(cs, 3) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(s.alloc.stats().nr_cur_alloc == 0);
        for (auto& c : cs) CHECK(!c.initialized());
        CHECK(C::destroy_many(cs, 3) == pcpu::errc::ok); // idempotent
        REQUIRE_VERIFIED(s.alloc);
        // Re-initialisable one by one; destroy_many(c, 1) is destroy().
        REQUIRE(cs[2].init(s.alloc, 1, full) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(C::destroy_many(cs, 3) == pcpu::errc::invalid_pointer); // not a group: cs[2] stays
        CHECK(cs[2].initialized());
        CHECK(C::destroy_many(cs + 2, 1) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        REQUIRE(C::init_many(cs, 1, s.alloc, 0, full) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(cs[0].destroy() == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
    }
    CHECK(s.alloc.stats().nr_cur_alloc == 0);
    CHECK(cpus().bugs == 0);
}

TEST_CASE("init_many reports the allocator's error and initialises nothing") {
    cpus().reset(2);
    set_cpu(0);
    pcpu_test::static_setup<alloc_t<guard_kind::none>> s(2, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    counter_t<guard_kind::none> cs[2];
    // More counters than a unit holds deltas for.
    std::vector<counter_t<guard_kind::none>> many(5000);
    CHECK(counter_t<guard_kind::none>::init_many(many.data(), many.size(), s.alloc, 0, full) ==
          pcpu::errc::size_too_large);
    REQUIRE_VERIFIED(s.alloc);
    for (auto& c : many) CHECK(!c.initialized());
    CHECK(s.alloc.stats().nr_cur_alloc == 0);
    (void)cs;
}

TEST_CASE_TEMPLATE("sub_local is add_local of the negation: only sum() sees it", F, none_f, preempt_f, irq_f) {
    cpus().reset(4);
    set_cpu(1);
    pcpu_test::static_setup<alloc_t<F::kind>> s(4, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    counter_t<F::kind> c;
    REQUIRE(c.init(s.alloc, 100, full, 4) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    c.sub_local(1000);
    CHECK(c.read() == 100); // far beyond the batch, still local
    CHECK(pcpu::per_cpu(c.deltas(), 1) == -1000);
    CHECK(c.sum() == -900);
    c.add_local(999);
    CHECK(c.sum() == 99);
    CHECK(c.destroy() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
}

TEST_CASE_TEMPLATE("limited_add adds exactly when the exact value stays within the limit", F, none_f, preempt_f,
                   irq_f) {
    constexpr unsigned nr = 4;
    cpus().reset(nr);
    pcpu_test::static_setup<alloc_t<F::kind>> s(nr, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    counter_t<F::kind> c;
    REQUIRE(c.init(s.alloc, 0, full, 8) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    std::int64_t model = 0;
    lcg rng{7};
    int accepted = 0, refused = 0;
    for (int i = 0; i < 20000; ++i) {
        set_cpu(rng.next() % nr);
        // Plain adds keep the deltas busy so that the bounds alone rarely decide.
        if (rng.next() % 3 == 0) {
            const std::int64_t d = static_cast<std::int64_t>(rng.next() % 15) - 7;
            c.add(d);
            model += d;
            continue;
        }
        const std::int64_t limit = static_cast<std::int64_t>(rng.next() % 200) - 100;
        const std::int64_t amount = static_cast<std::int64_t>(rng.next() % 41) - 20;
        const bool want = amount == 0 || (amount > 0 ? model + amount <= limit : model + amount >= limit);
        CAPTURE(model);
        CAPTURE(limit);
        CAPTURE(amount);
        CHECK(c.limited_add(limit, amount) == want);
        if (want) model += amount;
        (want ? accepted : refused) += 1;
        REQUIRE(c.sum() == model);
    }
    // Both answers happened often: the test decides nothing by accident.
    CHECK(accepted > 2000);
    CHECK(refused > 2000);
    // At the limit exactly: allowed; one past: refused. The same for the floor.
    c.set(50);
    CHECK(c.limited_add(60, 10));
    CHECK(!c.limited_add(60, 1));
    CHECK(c.sum() == 60);
    CHECK(c.limited_add(40, -20));
    CHECK(!c.limited_add(40, -1));
    CHECK(c.sum() == 40);
    CHECK(c.limited_add(-1000, 0));
    CHECK(c.destroy() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
}

TEST_CASE_TEMPLATE("limited_add before init, after destroy and at the ends of int64_t", F, none_f, preempt_f, irq_f) {
    constexpr unsigned nr = 2;
    cpus().reset(nr);
    set_cpu(0);
    pcpu_test::static_setup<alloc_t<F::kind>> s(nr, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    counter_t<F::kind> c;
    CHECK(!c.limited_add(100, 1)); // not initialised: nothing added, no call through null
    CHECK(c.sum() == 0);
    REQUIRE(c.init(s.alloc, INT64_MAX - 5, full, 8) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    // count + amount would leave int64_t: past any limit, refused (no overflow).
    CHECK(!c.limited_add(INT64_MAX, 10));
    CHECK(c.limited_add(INT64_MAX, 5));
    CHECK(c.sum() == INT64_MAX);
    c.set(INT64_MIN + 5);
    CHECK(!c.limited_add(INT64_MIN, -10));
    CHECK(c.limited_add(INT64_MIN, -5));
    CHECK(c.sum() == INT64_MIN);
    // A batch below 1 still bounds the error by one per CPU.
    c.set(0);
    CHECK(c.limited_add(3, 3, 0));
    CHECK(!c.limited_add(3, 1, -4));
    CHECK(c.sum() == 3);
    CHECK(c.destroy() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(!c.limited_add(100, 1)); // destroyed: nothing added
    CHECK(c.sum() == 0);
}

TEST_CASE_TEMPLATE("threads racing limited_add at the limit never carry the value past it", F, none_f, preempt_f,
                   irq_f) {
    constexpr unsigned nr = 4, nr_threads = 8;
    constexpr std::int64_t limit = 50000, start = 1000;
    cpus().reset(nr);
    set_cpu(0);
    pcpu_test::static_setup<alloc_t<F::kind>> s(nr, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    counter_t<F::kind> c;
    REQUIRE(c.init(s.alloc, start, full, 16) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    // Leave every delta non-zero, so the race starts with count != value.
    for (unsigned cpu = 0; cpu < nr; ++cpu) {
        set_cpu(cpu);
        c.add(static_cast<std::int64_t>(cpu) + 3);
    }
    const std::int64_t base = c.sum();
    std::atomic<bool> done{false};
    std::atomic<long> over{0};
    std::vector<std::int64_t> added(nr_threads, 0);
    std::vector<std::thread> threads;
    // A watcher: the exact value, sampled while they race, is never past the limit.
    std::thread watcher([&] {
        set_cpu(0);
        while (!done.load()) {
            if (c.sum() > limit) ++over;
        }
    });
    for (unsigned t = 0; t < nr_threads; ++t)
        threads.emplace_back([&, t] {
            set_cpu(t % nr);
            lcg rng{t + 1};
            std::int64_t mine = 0;
            int refusals = 0;
            while (refusals < 200) {
                const std::int64_t amount = 1 + rng.next() % 5;
                if (c.limited_add(limit, amount)) mine += amount;
                else ++refusals;
            }
            added[t] = mine;
        });
    for (auto& th : threads) th.join();
    done = true;
    watcher.join();
    std::int64_t total = base;
    for (auto a : added) total += a;
    CHECK(over.load() == 0);
    CHECK(c.sum() == total); // every accepted add is there, nothing else
    CHECK(total <= limit);
    CHECK(total > limit - 5); // and they got to the limit (each refused only above it)
    CHECK(cpus().guards_entered == cpus().guards_left);
    CHECK(cpus().bugs == 0);
    CHECK(c.destroy() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
}

} // TEST_SUITE("counter_ops")
