// SPDX-License-Identifier: MIT
// tests/test_freelist_stress.cpp - the per-CPU freelist example (examples/
// percpu_freelist.hpp, built on this_cpu_try_cmpxchg_double) under concurrency, in the
// stress binary so that the TSan stage of scripts/test runs it: per simulated CPU a
// "task" and an "ISR" thread pop, own, write and push objects, task threads move
// between CPUs now and then; in every guard flavour. No object may be owned twice, no
// write to an owned object may race (TSan), and every object comes back exactly once.
//
// Bounded: PCPU_STRESS_OPS (default 600) times 20 pops per thread.
#include "../examples/percpu_freelist.hpp"
#include "support/cpu_platform.hpp"
#include "support/static_platform.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using pcpu_test::cpu_platform;
using pcpu_test::cpus;
using pcpu_test::guard_kind;
using pcpu_test::set_cpu;

template <guard_kind K>
struct flavour {
    static constexpr guard_kind kind = K;
};

struct object {
    freelist_example::fl_node link;
    std::atomic<int> owned{0};
    unsigned long scribble = 0;
};

std::size_t stress_ops() {
    const char* v = std::getenv("PCPU_STRESS_OPS");
    const long n = v != nullptr ? std::atol(v) : 0;
    return n > 0 ? static_cast<std::size_t>(n) : 600;
}

} // namespace

TEST_SUITE("stress") {

TEST_CASE_TEMPLATE("per-CPU freelist on this_cpu cmpxchg_double: task and ISR threads per CPU", F,
                   flavour<guard_kind::none>, flavour<guard_kind::preempt>, flavour<guard_kind::irq>) {
    using alloc_t = pcpu::allocator<cpu_platform<F::kind>>;
    // Few objects per CPU: a pop's read of first->next is then often overtaken by
    // another context's pop-pop-push, the ABA case the tid exists for.
    constexpr unsigned nr = 4, nr_objects = 12;
    cpus().reset(nr);
    set_cpu(0);
    pcpu_test::static_setup<alloc_t> s(nr, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    freelist_example::percpu_freelist<alloc_t> fl;
    REQUIRE(fl.init(s.alloc, pcpu::ctx::full) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    std::vector<object> pool(nr_objects);
    for (unsigned i = 0; i < nr_objects; ++i) {
        set_cpu(i % nr);
        fl.push(&pool[i].link);
    }
    const std::size_t rounds = stress_ops() * 20;
    std::atomic<long> owned_twice{0}, pops{0};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 2 * nr; ++t)
        threads.emplace_back([&, t] {
            const bool isr = t >= nr;
            unsigned cpu = t % nr;
            set_cpu(cpu);
            long mine = 0;
            for (std::size_t r = 0; r < rounds; ++r) {
                if (!isr && r % 257 == 256) set_cpu(cpu = (cpu + 1) % nr);
                freelist_example::fl_node* n = fl.pop();
                if (n == nullptr) continue;
                object* o = reinterpret_cast<object*>(n);
                if (o->owned.exchange(1, std::memory_order_relaxed) != 0) ++owned_twice;
                o->scribble = t + 1; // plain: TSan reports it if two threads own o
                if (o->scribble != t + 1) ++owned_twice;
                o->owned.store(0, std::memory_order_relaxed);
                fl.push(n);
                ++mine;
            }
            pops += mine;
        });
    for (auto& th : threads) th.join();
    CHECK(owned_twice.load() == 0);
    CHECK(pops.load() > 0);
    MESSAGE("freelist (guard " << static_cast<int>(F::kind) << "): " << pops.load() << " pops by " << 2 * nr
                               << " threads");

    std::vector<unsigned> seen(nr_objects, 0);
    unsigned drained = 0;
    for (unsigned cpu = 0; cpu < nr; ++cpu) {
        set_cpu(cpu);
        while (freelist_example::fl_node* n = fl.pop()) {
            const auto i = static_cast<std::size_t>(reinterpret_cast<object*>(n) - pool.data());
            REQUIRE(i < nr_objects);
            ++seen[i];
            REQUIRE(++drained <= nr_objects); // a corrupted list may hold a cycle
        }
    }
    CHECK(drained == nr_objects);
    for (unsigned i = 0; i < nr_objects; ++i) CHECK(seen[i] == 1);
    // Every tid still names its CPU: no swap ever landed on another CPU's pair.
    for (unsigned cpu = 0; cpu < nr; ++cpu) CHECK(pcpu::per_cpu(fl.heads(), cpu).tid % nr == cpu);
    CHECK(cpus().bugs == 0);
    CHECK(cpus().guards_entered == cpus().guards_left);
    CHECK(fl.destroy() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(s.alloc.stats().nr_cur_alloc == 0);
}

} // TEST_SUITE("stress")
