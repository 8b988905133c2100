// SPDX-License-Identifier: MIT
// bench/bench_platform.hpp - a lean, real Linux platform for timing pcpu's dynamic
// (lazy_mapped) configuration.
//
// tests/support/sim_platform.hpp is built to catch bugs: it fills memory with patterns,
// logs every call and keeps maps of frames. That is exactly what a benchmark must not
// measure. This platform does what a production host platform does and nothing more:
//
//   - reserve() is a PROT_NONE mapping; map() makes pages readable and writable
//     (mprotect) and touches each so the host backs it now, as a kernel maps pages it
//     has already allocated;
//     unmap() drops the contents (MADV_DONTNEED) and the access. Page "frames" are
//     just numbers: the host kernel owns the real frames.
//   - the index lock is a test-and-set spin lock (the kernel's pcpu_lock is a
//     spinlock); the sleeping lock is a std::mutex (pcpu_alloc_mutex).
//   - request_balance() only sets a flag: the benchmark runs balance() when it is set,
//     as a work queue would, and says whether that time is counted.
//   - a thread-local implicit scope, as a task's memalloc flags.
//   - this_cpu() is sched_getcpu() folded into [0, cpus), as platform/host.hpp does;
//     no this-CPU guard, so this-CPU operations are relaxed atomic RMWs (percpu.hpp).
//     With `rseq` set (set_rseq(), where platform/detail/rseq.hpp is compiled and glibc
//     registered areas) they are restartable sections and this_cpu() reads the rseq
//     area, as on the host platform: the benchmark runs both in one process.
// Counters (pages mapped, metadata bytes) are plain integers read by the benchmark.
#pragma once

#include <pcpu/context.hpp>
#include <pcpu/platform.hpp>
#include <pcpu/scope.hpp>
#include <pcpu/platform/detail/rseq.hpp>

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <type_traits>

namespace pcpu_bench {

/// spin_lock - test-and-test-and-set; uncontended cost is one atomic exchange.
class spin_lock {
public:
    void lock() noexcept {
        if (!flag_.exchange(true, std::memory_order_acquire)) return;
        lock_contended();
    }
    void unlock() noexcept { flag_.store(false, std::memory_order_release); }

private:
    // Kept out of line so that the uncontended path above inlines into its callers.
    __attribute__((noinline)) void lock_contended() noexcept {
        do {
            while (flag_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
        } while (flag_.exchange(true, std::memory_order_acquire));
    }

    std::atomic<bool> flag_{false};
};

template <std::size_t MaxCpus = 8>
class bench_platform {
public:
    using context = pcpu::gfp;
    using scope_token = pcpu::scope_state<pcpu::gfp>::token;
    static constexpr unsigned page_shift = 12;
    static constexpr std::size_t page_size = std::size_t{1} << page_shift;
    static constexpr std::size_t max_cpus = MaxCpus;

    void index_lock() noexcept { index_.lock(); }
    void index_unlock() noexcept { index_.unlock(); }
    void slow_lock() noexcept { slow_.lock(); }
    void slow_unlock() noexcept { slow_.unlock(); }

    void request_balance() noexcept { balance_requested = true; }

    /// set_rseq(on) - this-CPU operations in restartable sections (before other threads
    /// use the platform); returns whether they are on.
    bool set_rseq(bool on) noexcept {
#if PCPU_HOST_RSEQ
        const long conf = ::sysconf(_SC_NPROCESSORS_CONF);
        rseq = on && pcpu::detail::rseq_registered() && conf >= 1 && static_cast<unsigned long>(conf) <= cpus;
#else
        rseq = false && on;
#endif
        return rseq;
    }
#if PCPU_HOST_RSEQ
    template <class U, std::enable_if_t<pcpu::detail::rseq_word<U>, int> = 0>
    pcpu::rseq_result rseq_add(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr, U v, U& out) noexcept {
        return rseq ? pcpu::detail::rseq_add(base, offsets, nr, v, out) : pcpu::rseq_result::unusable;
    }
    template <class U, std::enable_if_t<pcpu::detail::rseq_word<U>, int> = 0>
    pcpu::rseq_result rseq_cmpxchg(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr, U expect,
                                   U desired, U& seen) noexcept {
        return rseq ? pcpu::detail::rseq_cmpxchg(base, offsets, nr, expect, desired, seen)
                    : pcpu::rseq_result::unusable;
    }
    pcpu::rseq_result rseq_add_within(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr,
                                      std::int32_t v, std::int32_t lo, std::int32_t hi, std::int32_t& seen) noexcept {
        return rseq_within && rseq ? pcpu::detail::rseq_add_within(base, offsets, nr, v, lo, hi, seen)
                                   : pcpu::rseq_result::unusable;
    }
#endif

    unsigned this_cpu() noexcept {
#if PCPU_HOST_RSEQ
        if (rseq) {
            const unsigned c = pcpu::detail::rseq_cpu();
            if (c < cpus) return c;
        }
#endif
        const int cpu = ::sched_getcpu();
        return cpu >= 0 ? static_cast<unsigned>(cpu) % cpus : 0;
    }

    scope_token scope_apply(context c) noexcept { return scope().apply(c); }
    void scope_restore(scope_token t) noexcept { scope().restore(t); }
    context current_scope() noexcept { return scope().current(); }

    void* alloc_meta(std::size_t bytes, std::size_t align, context) noexcept {
        // posix_memalign, so that free_meta needs neither the size nor the alignment.
        void* p = nullptr;
        const std::size_t a = align < sizeof(void*) ? sizeof(void*) : align;
        if (::posix_memalign(&p, a, bytes == 0 ? 1 : bytes) != 0) return nullptr;
        meta_bytes += bytes;
        return p;
    }
    void free_meta(void* p, std::size_t bytes) noexcept {
        if (p == nullptr) return;
        meta_bytes -= bytes;
        std::free(p);
    }

    std::uintptr_t reserve(std::size_t bytes, context) noexcept {
        void* p = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return p == MAP_FAILED ? 0 : reinterpret_cast<std::uintptr_t>(p);
    }
    void release(std::uintptr_t addr, std::size_t bytes) noexcept { ::munmap(reinterpret_cast<void*>(addr), bytes); }
    bool alloc_pages(unsigned, pcpu::page_ref* out, std::size_t nr, context) noexcept {
        for (std::size_t i = 0; i < nr; ++i) out[i] = ++next_frame_;
        return true;
    }
    void free_pages(unsigned, const pcpu::page_ref*, std::size_t) noexcept {}
    bool map(std::uintptr_t addr, const pcpu::page_ref*, std::size_t nr, context) noexcept {
        if (::mprotect(reinterpret_cast<void*>(addr), nr * page_size, PROT_READ | PROT_WRITE) != 0) return false;
        // Back the pages now, as a kernel's map does with pages it already allocated:
        // otherwise the first allocation to touch a page pays the page fault, which is
        // population cost showing up in the wrong place.
        for (std::size_t i = 0; i < nr; ++i) *reinterpret_cast<volatile char*>(addr + i * page_size) = 0;
        mapped_pages += nr;
        if (mapped_pages > peak_mapped_pages) peak_mapped_pages = mapped_pages;
        return true;
    }
    void unmap(std::uintptr_t addr, pcpu::page_ref* out, std::size_t nr) noexcept {
        ::madvise(reinterpret_cast<void*>(addr), nr * page_size, MADV_DONTNEED);
        ::mprotect(reinterpret_cast<void*>(addr), nr * page_size, PROT_NONE);
        for (std::size_t i = 0; i < nr; ++i) out[i] = 0;
        mapped_pages -= nr;
    }

    bool balance_requested = false;
    unsigned cpus = 1;                 ///< CPUs this_cpu() folds onto (set with init)
    bool rseq = false;                 ///< restartable sections (set_rseq)
    bool rseq_within = true;           ///< with them, the bounded-add section too
    std::size_t mapped_pages = 0;      ///< pages mapped now, all CPUs
    std::size_t peak_mapped_pages = 0; ///< high-water mark of mapped_pages
    std::size_t meta_bytes = 0;        ///< metadata bytes outstanding

private:
    static pcpu::scope_state<pcpu::gfp>& scope() noexcept {
        thread_local pcpu::scope_state<pcpu::gfp> s;
        return s;
    }
    spin_lock index_;
    std::mutex slow_;
    pcpu::page_ref next_frame_ = 0;
};

} // namespace pcpu_bench
