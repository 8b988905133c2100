// SPDX-License-Identifier: MIT
// examples/rtos_port.cpp - a pcpu platform written against a generic RTOS API, as
// docs/porting.md describes, and run: two "cores", each with a task and an interrupt
// handler, counting through this-CPU operations, allocating and freeing per-CPU objects
// (the ISR frees and makes atomic allocations), and a balance task woken by
// request_balance().
//
// The RTOS is modelled on the host (namespace rtos): its calls have the shapes real
// kernels give them - a mutex, a spinlock whose lock call returns a key, local interrupt
// masking that returns the state to restore, a task notification with a separate
// from-ISR form, a heap that aligns to 8 bytes, a core-ID query. The model enforces the
// rules a real kernel would punish: the task-only notification from an ISR, a mutex
// taken in an ISR, and an alignment the heap cannot give abort the program.
#include <pcpu.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

// ---- the RTOS API (host model) ----------------------------------------------------------
namespace rtos {
constexpr unsigned nr_cores = 2;
constexpr std::size_t heap_alignment = 8; // like FreeRTOS portBYTE_ALIGNMENT

[[noreturn]] void panic(const char* why) {
    std::fprintf(stderr, "rtos: %s\n", why);
    std::abort();
}

// Each thread of the model runs on one core, as a task or as that core's ISR.
thread_local unsigned current_core = 0;
thread_local bool in_isr_flag = false;
thread_local unsigned irq_depth = 0;
// A core's interrupt line: an ISR runs only while it holds it, and masking interrupts
// on that core holds it too, so a masked task and its core's ISR never interleave.
std::mutex core_irq[nr_cores];

unsigned core_id() { return current_core; }
bool in_isr() { return in_isr_flag; }

using irq_state = unsigned;
irq_state irq_mask() {
    if (!in_isr_flag && irq_depth == 0) core_irq[current_core].lock();
    return irq_depth++;
}
void irq_unmask(irq_state s) {
    irq_depth = s;
    if (!in_isr_flag && irq_depth == 0) core_irq[current_core].unlock();
}

struct spinlock {
    std::atomic_flag taken = ATOMIC_FLAG_INIT;
};
using spin_key = irq_state;
spin_key spin_lock_irqsave(spinlock& l) {
    const spin_key k = irq_mask();
    while (l.taken.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
    return k;
}
void spin_unlock_irqrestore(spinlock& l, spin_key k) {
    l.taken.clear(std::memory_order_release);
    irq_unmask(k);
}

struct mutex {
    std::mutex m;
};
void mutex_take(mutex& m) {
    if (in_isr()) panic("mutex taken from an ISR");
    m.m.lock();
}
void mutex_give(mutex& m) { m.m.unlock(); }

struct task_notification {
    std::mutex m;
    std::condition_variable cv;
    unsigned pending = 0;
    bool stop = false;
    unsigned from_task = 0, from_isr = 0;
};
void notify_give(task_notification& n) {
    if (in_isr()) panic("notify_give from an ISR: use notify_give_from_isr");
    std::lock_guard<std::mutex> g(n.m);
    ++n.pending;
    ++n.from_task;
    n.cv.notify_one();
}
void notify_give_from_isr(task_notification& n) {
    if (!in_isr()) panic("notify_give_from_isr from a task");
    std::lock_guard<std::mutex> g(n.m);
    ++n.pending;
    ++n.from_isr;
    n.cv.notify_one();
}
/// notify_take(n) - wait for a notification; false once stopped.
bool notify_take(task_notification& n) {
    std::unique_lock<std::mutex> g(n.m);
    n.cv.wait(g, [&] { return n.pending != 0 || n.stop; });
    if (n.pending == 0) return false;
    n.pending = 0;
    return true;
}

void* heap_alloc(std::size_t n) { return std::aligned_alloc(heap_alignment, (n + 7) / 8 * 8); }
void heap_free(void* p) { std::free(p); }
} // namespace rtos

// ---- the pcpu platform (docs/porting.md) ------------------------------------------------
struct rtos_platform {
    using context = pcpu::gfp;
    static constexpr std::size_t max_cpus = rtos::nr_cores;
    static constexpr unsigned page_shift = 10; // 1 KiB pages: small units for small RAM

    // Index lock: the spinlock with this core's interrupts masked. The RTOS hands back a
    // key and index_lock() returns nothing, so the key lives here: only the holder
    // writes it (after acquiring) and reads it (before releasing), and pcpu never nests
    // the index lock.
    void index_lock() noexcept { key_ = rtos::spin_lock_irqsave(spin_); }
    void index_unlock() noexcept { rtos::spin_unlock_irqrestore(spin_, key_); }
    // Sleeping lock: a mutex; pcpu never takes it from an atomic operation (an ISR).
    void slow_lock() noexcept { rtos::mutex_take(mutex_); }
    void slow_unlock() noexcept { rtos::mutex_give(mutex_); }

    // This-CPU operations: the core ID, guarded by masking this core's interrupts, so
    // the core's ISR may count into the same variables as its tasks.
    unsigned this_cpu() noexcept { return rtos::core_id(); }
    rtos::irq_state irq_save() noexcept { return rtos::irq_mask(); }
    void irq_restore(rtos::irq_state s) noexcept { rtos::irq_unmask(s); }

    // The heap never reclaims, so the context is accepted and not used (porting.md §5):
    // a context that may not block never gets here.
    void* alloc_meta(std::size_t bytes, std::size_t align, context) noexcept {
        if (align > rtos::heap_alignment) rtos::panic("alloc_meta: alignment above the heap's");
        ++meta_calls_;
        return rtos::heap_alloc(bytes);
    }
    void free_meta(void* p, std::size_t) noexcept { rtos::heap_free(p); }
    // Units must be page aligned, which the heap does not give: a page-aligned pool.
    void* alloc_units(std::size_t bytes, context) noexcept {
        return std::aligned_alloc(std::size_t{1} << page_shift, bytes);
    }
    void free_units(void* p, std::size_t) noexcept { std::free(p); }

    // Called from free() and atomic allocations too, so from ISRs: pick the ISR form.
    void request_balance() noexcept {
        if (rtos::in_isr()) rtos::notify_give_from_isr(*balance_);
        else rtos::notify_give(*balance_);
    }
    void warn(const char* msg) noexcept { std::fprintf(stderr, "%s\n", msg); }

    rtos::spinlock spin_;
    rtos::spin_key key_ = 0;
    rtos::mutex mutex_;
    rtos::task_notification* balance_ = nullptr;
    unsigned meta_calls_ = 0;
};

using allocator = pcpu::allocator<rtos_platform, pcpu::contiguous>;
static_assert(allocator::max_meta_align() <= rtos::heap_alignment,
              "pcpu asks alloc_meta for more alignment than this heap gives");

namespace {
constexpr std::size_t unit_size = 8 * 1024;
constexpr unsigned rounds = 2000;

bool verified(allocator& a, const char* phase) {
    const pcpu::verify_report r = a.verify();
    char buf[200];
    std::printf("verify after %-24s %s\n", phase, r.describe(buf, sizeof buf));
    return r.ok;
}
} // namespace

int main() {
    static rtos::task_notification balance_work;
    static allocator a;
    a.platform().balance_ = &balance_work;

    alignas(1024) static unsigned char units[rtos::nr_cores * unit_size];
    alignas(allocator::meta_align) static unsigned char meta[allocator::first_chunk_meta_bytes(unit_size, 0, 0)];
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = rtos::nr_cores;
    cfg.units = units;
    cfg.unit_size = unit_size;
    cfg.meta = meta;
    cfg.meta_size = sizeof meta;
    if (a.init(cfg) != pcpu::errc::ok) return 1;

    auto events = pcpu::alloc_percpu<std::uint64_t>(a, pcpu::ctx::full).value();
    auto irqs = pcpu::alloc_percpu<std::uint64_t>(a, pcpu::ctx::full).value();
    bool ok = verified(a, "set-up");

    // The balance task: woken by request_balance(), runs balance() in task context.
    unsigned balances = 0;
    std::thread balance_task([&] {
        while (rtos::notify_take(balance_work))
            if (a.balance() == pcpu::errc::ok) ++balances;
    });

    std::atomic<unsigned> isr_allocs{0}, isr_alloc_would_block{0};
    std::vector<std::thread> threads;
    for (unsigned core = 0; core < rtos::nr_cores; ++core) {
        // The task on this core: counts, allocates and frees per-CPU objects (each
        // allocation may create a chunk: a sleeping allocation with ctx::full).
        threads.emplace_back([&, core] {
            rtos::current_core = core;
            // Up to 400 live objects of 48 bytes per task: more than the first chunk
            // holds, so chunks are created, and freed again in bursts for balance.
            std::vector<pcpu::handle> mine;
            for (unsigned i = 0; i < rounds; ++i) {
                pcpu::this_cpu_inc(a, events);
                auto h = a.alloc(48, 8, pcpu::ctx::full);
                if (h) mine.push_back(h.value());
                if (mine.size() == 400) {
                    for (pcpu::handle m : mine) a.free(m);
                    mine.clear();
                }
            }
            for (pcpu::handle m : mine) a.free(m);
        });
        // The core's interrupt handler: counts, makes atomic allocations (which never
        // sleep and fail rather than create a chunk) and frees them.
        threads.emplace_back([&, core] {
            rtos::current_core = core;
            for (unsigned i = 0; i < rounds; ++i) {
                std::lock_guard<std::mutex> irq(rtos::core_irq[core]); // the interrupt fires
                rtos::in_isr_flag = true;
                pcpu::this_cpu_inc(a, irqs);
                pcpu::this_cpu_inc(a, events);
                auto h = a.alloc(64, 8, pcpu::ctx::nowait); // atomic, and silent on failure
                if (h) {
                    ++isr_allocs;
                    a.free(h.value());
                } else {
                    ++isr_alloc_would_block;
                }
                rtos::in_isr_flag = false;
            }
        });
    }
    for (auto& t : threads) t.join();
    ok &= verified(a, "tasks and ISRs");

    {
        std::lock_guard<std::mutex> g(balance_work.m);
        balance_work.stop = true;
        balance_work.cv.notify_one();
    }
    balance_task.join();
    ok &= a.balance() == pcpu::errc::ok;
    ok &= verified(a, "final balance");

    std::printf("%-6s %12s %12s\n", "core", "events", "irq events");
    std::uint64_t total = 0;
    for (unsigned c = 0; c < rtos::nr_cores; ++c) {
        const std::uint64_t e = pcpu::per_cpu(events, c), i = pcpu::per_cpu(irqs, c);
        std::printf("%-6u %12llu %12llu\n", c, static_cast<unsigned long long>(e), static_cast<unsigned long long>(i));
        ok &= e == 2ull * rounds && i == rounds; // exact: each core counted only its own
        total += e;
    }
    std::printf("total events %llu (expected %llu)\n", static_cast<unsigned long long>(total),
                2ull * rounds * rtos::nr_cores);
    std::printf("ISR atomic allocations: %u served, %u would block (no populated space; balance refills)\n",
                isr_allocs.load(), isr_alloc_would_block.load());
    std::printf("request_balance: %u from tasks (notify_give), %u from ISRs (notify_give_from_isr); "
                "balance ran %u times\n",
                balance_work.from_task, balance_work.from_isr, balances);
    std::printf("alloc_meta: %u calls, largest alignment pcpu asks for: %zu (heap gives %zu)\n",
                a.platform().meta_calls_, allocator::max_meta_align(), rtos::heap_alignment);
    ok &= total == 2ull * rounds * rtos::nr_cores;

    pcpu::free_percpu(a, events);
    pcpu::free_percpu(a, irqs);
    ok &= verified(a, "free");
    a.shutdown();
    std::printf("rtos_port: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
