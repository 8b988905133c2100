// SPDX-License-Identifier: MIT
// examples/percpu_freelist.hpp - a lockless per-CPU freelist on this-CPU cmpxchg_double,
// the shape of SLUB's fast path: every CPU keeps its own list of free objects, and a
// push or pop is one compare-and-swap of that CPU's {first, tid} pair, with no lock and
// no shared cache line.
//
// Why a pair and not just the first pointer. A pop reads first, then first->next, then
// swaps first for next. Between the read and the swap an interrupt (or, on a host,
// another thread on the same CPU) may pop first, pop more, and push first back: the
// pointer compares equal but next is stale, and the list is corrupted (ABA). So every
// successful push or pop also advances the transaction id tid, and the swap compares
// both words: any operation in between makes it fail and retry.
//
// Why tid starts at the CPU number and steps by nr_cpus: a task may read this_cpu() = 2,
// read CPU 2's pair, move to CPU 3 and swap there. tids of different CPUs never meet
// (tid mod nr_cpus is the CPU), so that swap fails rather than splice CPU 2's list
// into CPU 3's. (A tid wraps after 2^bits / nr_cpus operations on one CPU: 2^62 on a
// 64-bit machine with 4 CPUs; a 32-bit machine with a long-running ISR loop should
// mind the 2^30.)
//
// Contexts. push() and pop() are safe from tasks and from interrupt handlers on a
// platform whose this-CPU operations are IRQ-safe: irq_save/irq_restore, or no guard at
// all (hosts: atomic instructions). With preempt_disable only, ISRs must not use it
// (percpu.hpp). The list of another CPU is never touched: a CPU whose list is empty
// gets nullptr even if others have objects (the caller refills, as SLUB does from its
// partial lists).
//
// Objects embed a fl_node and must stay readable memory for as long as the freelist
// exists (a pool, a slab, a static array): a pop may read next of an object that
// another context popped and is using a moment earlier. That read is atomic and its
// value is discarded when the swap fails.
#pragma once

#include <pcpu/percpu.hpp>

#include <cstdint>

namespace freelist_example {

/// fl_node - the link an object embeds. next is only accessed atomically.
struct fl_node {
    fl_node* next = nullptr;
};

/// fl_head - one CPU's list: its first object and its transaction id.
struct alignas(2 * sizeof(void*)) fl_head {
    fl_node* first;
    std::uintptr_t tid;
};

template <class Alloc>
class percpu_freelist {
public:
    /// init(a, ctx) - one fl_head per CPU from a, every list empty.
    pcpu::errc init(Alloc& a, typename Alloc::context ctx) noexcept {
        auto r = pcpu::alloc_percpu<fl_head>(a, ctx, fl_head{nullptr, 0});
        if (!r) return r.error();
        a_ = &a;
        heads_ = r.value();
        step_ = heads_.nr_cpus();
        for (unsigned cpu = 0; cpu < heads_.nr_cpus(); ++cpu) pcpu::per_cpu(heads_, cpu).tid = cpu;
        return pcpu::errc::ok;
    }
    /// destroy() - free the heads (the objects are the caller's). Not concurrent.
    pcpu::errc destroy() noexcept {
        if (a_ == nullptr) return pcpu::errc::ok;
        const pcpu::errc e = pcpu::free_percpu(*a_, heads_);
        a_ = nullptr;
        return e;
    }

    /// push(n) - put n on the running CPU's list.
    void push(fl_node* n) noexcept {
        fl_head cur = guess();
        do {
            __atomic_store_n(&n->next, cur.first, __ATOMIC_RELAXED);
            // The swap publishes n (acquire-release, or the guard's ordering).
        } while (!pcpu::this_cpu_try_cmpxchg_double(*a_, heads_, cur, fl_head{n, cur.tid + step_}));
    }

    /// pop() - take the first object of the running CPU's list, or nullptr if that
    /// list is empty.
    fl_node* pop() noexcept {
        fl_head cur = guess();
        for (;;) {
            if (cur.first == nullptr) return nullptr;
            fl_node* next = __atomic_load_n(&cur.first->next, __ATOMIC_RELAXED);
            if (pcpu::this_cpu_try_cmpxchg_double(*a_, heads_, cur, fl_head{next, cur.tid + step_}))
                return cur.first;
            // cur now holds the pair the swap found: try again from it.
        }
    }

    pcpu::percpu<fl_head> heads() const noexcept { return heads_; }

private:
    /// guess() - the running CPU's pair, read word by word (tid first, as SLUB
    /// does). It may be torn or stale; the swap that uses it checks both words.
    fl_head guess() noexcept {
        fl_head h;
        h.tid = pcpu::this_cpu_read(*a_, heads_.field(&fl_head::tid));
        h.first = pcpu::this_cpu_read(*a_, heads_.field(&fl_head::first));
        return h;
    }

    Alloc* a_ = nullptr;
    pcpu::percpu<fl_head> heads_;
    std::uintptr_t step_ = 1;
};

} // namespace freelist_example
