// SPDX-License-Identifier: MIT
// examples/percpu_freelist.cpp - per-CPU object freelists on this-CPU cmpxchg_double
// (percpu_freelist.hpp), used from task and interrupt-like contexts on a host.
//
// Four logical CPUs. Each has a "task" thread and an "ISR" thread that both run as
// that CPU (this_cpu() is the thread's CPU): they interleave on one CPU's list exactly
// where an interrupt would preempt a task on firmware. Every thread pops an object,
// claims it (a flag that must have been clear: two owners of one object would be a
// freelist bug), scribbles on it, releases it and pushes it back; the task threads
// also move to the next CPU now and then, so objects travel between lists. At the end
// every list is drained and each object must come back exactly once.
//
// The platform has no this-CPU guard, so the swaps are cmpxchg16b (x86-64, built with
// -mcx16) or the target's double-width CAS. Exit status 0 only if every check holds.
//
// Usage: percpu_freelist [--rounds N]   (pops per thread, default 200000)
#include "percpu_freelist.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/static_var.hpp>
#include <pcpu/percpu.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr unsigned nr_cpus = 4;
constexpr std::size_t unit_size = 16 * 1024;
constexpr unsigned nr_objects = 64;

thread_local unsigned thread_cpu = 0;

/// demo_platform - static-only, no guard; the running CPU is the thread's.
struct demo_platform {
    static constexpr unsigned page_shift = 12;
    static constexpr std::size_t max_cpus = nr_cpus;
    std::mutex* mu = nullptr;
    void index_lock() noexcept { mu->lock(); }
    void index_unlock() noexcept { mu->unlock(); }
    unsigned this_cpu() noexcept { return thread_cpu; }
};
using allocator = pcpu::allocator<demo_platform>;

alignas(allocator::page_size) unsigned char units[nr_cpus * unit_size];
alignas(allocator::meta_align) unsigned char meta[pcpu::static_meta_bytes_bound<allocator>(unit_size, 0)];

struct object {
    freelist_example::fl_node link; // first member: a node pointer is the object's
    std::atomic<int> owned{0};
    unsigned scribble = 0;
};
object pool[nr_objects];

object* to_object(freelist_example::fl_node* n) { return reinterpret_cast<object*>(n); }

} // namespace

int main(int argc, char** argv) {
    unsigned long rounds = 200000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = std::strtoul(argv[++i], nullptr, 10);
        } else {
            std::fprintf(stderr, "usage: %s [--rounds N]\n", argv[0]);
            return 2;
        }
    }
    std::mutex index_mu;
    allocator a;
    a.platform().mu = &index_mu;
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.units = units;
    cfg.unit_size = unit_size;
    cfg.meta = meta;
    cfg.meta_size = sizeof meta;
    if (a.init(cfg) != pcpu::errc::ok || !a.verify().ok) {
        std::puts("FAIL: allocator init");
        return 1;
    }
    freelist_example::percpu_freelist<allocator> fl;
    if (fl.init(a, pcpu::ctx::full) != pcpu::errc::ok) {
        std::puts("FAIL: freelist init");
        return 1;
    }
    for (unsigned i = 0; i < nr_objects; ++i) {
        thread_cpu = i % nr_cpus;
        fl.push(&pool[i].link);
    }

    std::atomic<unsigned long> pops{0}, empties{0}, double_owned{0};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 2 * nr_cpus; ++t)
        threads.emplace_back([&, t] {
            const bool isr = t >= nr_cpus;
            thread_cpu = t % nr_cpus;
            unsigned long mine = 0, empty = 0;
            for (unsigned long r = 0; r < rounds; ++r) {
                if (!isr && r % 1000 == 999) thread_cpu = (thread_cpu + 1) % nr_cpus; // migrate
                freelist_example::fl_node* n = fl.pop();
                if (n == nullptr) {
                    ++empty;
                    continue;
                }
                object* o = to_object(n);
                if (o->owned.exchange(1, std::memory_order_relaxed) != 0) ++double_owned;
                o->scribble = t; // plain write: the pop's swap made the object ours
                if (o->scribble != t) ++double_owned;
                o->owned.store(0, std::memory_order_relaxed);
                fl.push(n);
                ++mine;
            }
            pops += mine;
            empties += empty;
        });
    for (auto& th : threads) th.join();

    // Drain every CPU's list: each object exactly once.
    unsigned seen[nr_objects] = {};
    unsigned drained = 0, per_cpu[nr_cpus] = {};
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        thread_cpu = cpu;
        while (freelist_example::fl_node* n = fl.pop()) {
            const auto i = static_cast<std::size_t>(to_object(n) - pool);
            if (i < nr_objects) ++seen[i];
            ++drained;
            ++per_cpu[cpu];
        }
    }
    unsigned missing = 0, duplicated = 0;
    for (unsigned s : seen) {
        if (s == 0) ++missing;
        if (s > 1) ++duplicated;
    }
    std::printf("percpu_freelist: %u CPUs x (task + ISR) threads, %lu pops, %lu empty, drained %u objects "
                "(cpu0..3: %u %u %u %u)\n",
                nr_cpus, pops.load(), empties.load(), drained, per_cpu[0], per_cpu[1], per_cpu[2], per_cpu[3]);
    const bool ok = drained == nr_objects && missing == 0 && duplicated == 0 && double_owned == 0 &&
                    fl.destroy() == pcpu::errc::ok && a.verify().ok && a.stats().nr_cur_alloc == 0;
    std::printf("%s: missing %u, duplicated %u, owned twice %lu\n", ok ? "ok" : "FAIL", missing, duplicated,
                double_owned.load());
    return ok ? 0 : 1;
}
