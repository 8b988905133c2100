// SPDX-License-Identifier: MIT
// pcpu/platform/host.hpp - a real platform for Linux processes (and, minus
// sched_getcpu, other POSIX systems): every member of the contract, for all three
// populate policies.
//
// Host-only. It needs POSIX mmap, pthreads and the C++ thread library, so it is not
// part of <pcpu.hpp> (the set that also builds for arm-none-eabi); include it
// explicitly. Like every pcpu header it builds with -fno-exceptions -fno-rtti and
// reports failure as values.
//
//     using platform  = pcpu::host_platform;
//     using allocator = pcpu::allocator<platform, pcpu::lazy_mapped>;
//     allocator a;                           // or allocator<debug::context_checker<platform>, ...>
//     a.init(cfg);                           // cfg.nr_cpus = a.platform().nr_cpus()
//     pcpu::balance_worker<allocator> w(a);  // optional: balance on request, in a thread
//     w.start();
//
// How each member is built, and why:
//
//   index lock    std::mutex. In a process the holder of a spinlock can be preempted
//                 and its waiters would spin through their time slices; a futex-based
//                 mutex costs one atomic when uncontended, as a spinlock does. What the
//                 kernel gets from pcpu_lock being a spinlock - nothing that sleeps is
//                 called under it - pcpu guarantees itself (debug/context_checker.hpp
//                 checks it).
//   sleeping lock std::mutex (pcpu_alloc_mutex).
//   population event  an atomic count with a mutex and condition variable: with it,
//                 allocations populate outside the sleeping lock, several threads at
//                 once (the page members below are safe to run concurrently: mprotect
//                 and madvise on disjoint ranges, the budget an atomic count). Only an
//                 allocation that needs a page another thread is populating sleeps.
//   this_cpu()    the cpu_id of the thread's rseq area where glibc registered one (a
//                 load), else sched_getcpu(); folded into [0, nr_cpus()). A thread can
//                 migrate right after asking, and two threads can share a CPU, so
//                 per-CPU data in a process is only ever "probably this CPU's": update
//                 it with atomics or restartable sequences, never a plain
//                 read-modify-write.
//   rseq_add(), rseq_cmpxchg()  restartable sections (detail/rseq.hpp) where
//                 PCPU_HOST_RSEQ is 1 (Linux, glibc >= 2.35, x86-64 or AArch64, not
//                 TSan), the process has rseq areas, and nr_cpus() covers every CPU the
//                 system has configured (a folded CPU would share its copy with
//                 another CPU, and two CPUs' sections do not exclude each other).
//                 percpu.hpp and counter.hpp then update copies with plain loads and
//                 stores. set_rseq(false) turns them off (for comparisons).
//   scope         one pcpu::scope_state per thread, shared by every host platform in
//                 the process: a scope belongs to the task, as PF_MEMALLOC_NOIO does.
//   reserve()     a private anonymous PROT_NONE mapping, aligned to the page size:
//                 address space, no memory; any stray touch faults.
//   map()         mprotect read/write over the range, then (by default) prefault it
//                 with MADV_POPULATE_WRITE so the pages are resident when population
//                 returns and a shortage shows as a failed map(), not as a fault on
//                 first touch.
//   unmap()       MADV_DONTNEED (the kernel frees the pages at once) then PROT_NONE:
//                 the range stays reserved, so nothing else can be mapped into a chunk.
//   guard pages   the PROT_NONE above, by default: a stray touch of an unpopulated page
//                 faults. Its price is an mprotect per population and per reclaim, which
//                 takes the process's mmap lock for writing, so populations on two
//                 threads serialise inside the kernel. set_guard_pages(false) reserves
//                 read/write address space (MAP_NORESERVE) instead: map() is the
//                 prefault alone and unmap() the MADV_DONTNEED alone (both take it for
//                 reading), and a stray touch quietly gets a zero page.
//   release()     munmap.
//
// Frames: anonymous memory, not memfd frames. pcpu never maps one frame at two
// addresses nor moves a frame, so naming frames buys nothing, and anonymous private
// memory is what a process's other heap memory is: copied on write by fork() (memfd
// frames are MAP_SHARED - a forked child's per-CPU counters would write into the
// parent's), no file descriptor to leak or run out of, and neighbouring ranges of
// equal protection merge into one kernel mapping instead of one per mapped run. The
// price is that a frame exists only as "the page behind an accessible address":
// alloc_pages() cannot name one. It is the budget instead - it counts pages against
// set_page_limit() and fails past it - and every page_ref is the marker
// host_page_marker. The memory itself is committed by map() (where strict overcommit
// refuses it, as a failed map()) and returned by unmap().
//
// Contexts. User space has no gfp: the kernel's page allocator cannot be told "no IO"
// per call, so every member accepts the context pcpu passes and has nothing to pass it
// on to. What the host does honour: a context never makes it block where pcpu would
// not, and a process that must keep all its own allocations out of IO reclaim (an IO
// flusher, like the iscsid of the 2025 Linux report) sets prctl(PR_SET_IO_FLUSHER) on
// its threads: the kernel then narrows every allocation they make, page faults in
// pcpu's memory included. The contexts are still worth passing: a context_checker
// wrapped around this platform proves pcpu never widened one, which is what a port to
// a kernel that does take them relies on.
//
// Deferred work. request_balance() sets a flag and wakes waiters. The application
// either polls it (take_balance_request(), then allocator::balance(), e.g. from an
// event loop or a timer) or runs a balance_worker, a thread that waits for requests
// and calls balance(). Either way balance runs with background_context() (noio by
// default) and never inside a pcpu call.
//
// Warnings go to stderr, or to the handler set with set_warn_handler().
#pragma once

#include "../config.hpp"
#include "../context.hpp"
#include "../error.hpp"
#include "../platform.hpp"
#include "../scope.hpp"
#include "detail/host_memory.hpp"
#include "detail/rseq.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <type_traits>

namespace pcpu {

/// host_page_marker - the page_ref every host platform hands out (see the file comment:
/// an anonymous page has no name in user space).
inline constexpr page_ref host_page_marker = 1;

/// host_counters - what a host platform has handed out and not yet got back, and
/// how often it was asked for balance. Read with counters(); exact when no other
/// thread is calling in.
struct host_counters {
    std::size_t reservations = 0;   ///< address-space reservations (lazy_mapped chunks)
    std::size_t reserved_bytes = 0;
    std::size_t pages = 0;          ///< pages allocated (the budget in use; units included)
    std::size_t mapped_pages = 0;   ///< pages currently accessible in reservations
    std::size_t meta_blocks = 0;    ///< alloc_meta blocks
    std::size_t meta_bytes = 0;
    std::size_t units_blocks = 0;   ///< alloc_units blocks (contiguous chunks)
    std::size_t units_bytes = 0;
    std::uint64_t balance_requests = 0; ///< request_balance() calls (monotone)
    std::uint64_t warnings = 0;         ///< warn() calls (monotone)

    /// nothing_outstanding() - every block, page and reservation was given back.
    bool nothing_outstanding() const noexcept {
        return reservations == 0 && pages == 0 && mapped_pages == 0 && meta_blocks == 0 && units_blocks == 0;
    }
};

namespace detail {
/// host_thread_scope() - the calling thread's implicit scope, one per thread for the
/// whole process (not one per platform: the scope is the task's).
inline scope_state<gfp>& host_thread_scope() noexcept {
    static thread_local scope_state<gfp> scope;
    return scope;
}
} // namespace detail

/// basic_host_platform<MaxCpus, PageShift> - see the file comment. The order is
/// static_arena's: CPUs first, then the page shift.
///
/// PageShift must be at least the host's page shift (12 on x86-64; arm64 kernels with
/// 16 KiB or 64 KiB pages need 14 or 16): reserve() refuses, with a warning, to build
/// chunks whose pages it cannot protect one by one. contiguous and static_only work
/// with any page size.
template <std::size_t MaxCpus = 64, unsigned PageShift = PCPU_DEFAULT_PAGE_SHIFT>
class basic_host_platform {
    // Pages below 1 KiB buy nothing on a host; the bound also catches most code
    // written for the old <PageShift, MaxCpus> order (basic_host_platform<12, 8>).
    static_assert(PageShift >= 10 && PageShift <= 30,
                  "pcpu: basic_host_platform<MaxCpus, PageShift>: PageShift must be in [10, 30] "
                  "(CPUs come first, as in static_arena)");
    static_assert(MaxCpus >= 1, "pcpu: basic_host_platform<MaxCpus, PageShift>: MaxCpus must be at least 1");

public:
    using context = gfp;
    using scope_token = scope_state<gfp>::token;
    static constexpr unsigned page_shift = PageShift;
    static constexpr std::size_t max_cpus = MaxCpus;
    static constexpr std::size_t page_size = std::size_t{1} << PageShift;
    using warn_handler = void (*)(const char* msg, void* user);

    /// basic_host_platform(nr_cpus) - nr_cpus 0: the CPUs the system has configured
    /// (_SC_NPROCESSORS_CONF), at most max_cpus.
    explicit basic_host_platform(unsigned nr_cpus = 0) noexcept
        : nr_cpus_(pick_cpus(nr_cpus)), rseq_(rseq_possible(nr_cpus_)) {}
    basic_host_platform(const basic_host_platform&) = delete;
    basic_host_platform& operator=(const basic_host_platform&) = delete;

    /// nr_cpus() - the CPU count to give allocator::init() (first_chunk_config::nr_cpus).
    unsigned nr_cpus() const noexcept { return nr_cpus_; }

    // ---- Locks ----------------------------------------------------------------------

    void index_lock() noexcept { index_mu_.lock(); }
    void index_unlock() noexcept { index_mu_.unlock(); }
    void slow_lock() noexcept { slow_mu_.lock(); }
    void slow_unlock() noexcept { slow_mu_.unlock(); }

    // ---- Population event (see the file comment) -------------------------------------

    std::uint32_t populate_ticket() noexcept { return populate_events_.load(std::memory_order_acquire); }
    void populate_wait(std::uint32_t ticket, context ctx) noexcept {
        (void)ctx; // sleeping allocates nothing
        std::unique_lock<std::mutex> g(populate_mu_);
        populate_cv_.wait(g, [&] { return populate_events_.load(std::memory_order_acquire) != ticket; });
    }
    void populate_wake() noexcept {
        {
            // Under the mutex: a waiter between its predicate check and its sleep
            // would otherwise miss the notification.
            std::lock_guard<std::mutex> g(populate_mu_);
            populate_events_.fetch_add(1, std::memory_order_release);
        }
        populate_cv_.notify_all();
    }

    // ---- Topology, diagnostics -------------------------------------------------------

    /// this_cpu() - the CPU the calling thread ran on when it asked (see the file
    /// comment: it may have moved since). CPU ids at or above nr_cpus() fold onto
    /// the configured ones; 0 where sched_getcpu() is missing or fails.
    unsigned this_cpu() noexcept {
#if PCPU_HOST_RSEQ
        if (rseq_) {
            const unsigned cpu = detail::rseq_cpu();
            if (cpu < nr_cpus_) return cpu;
        }
#endif
#if defined(__linux__)
        const int cpu = ::sched_getcpu();
        if (cpu >= 0) return static_cast<unsigned>(cpu) % nr_cpus_;
#endif
        return 0;
    }

    // ---- Restartable this-CPU sections (see the file comment) ------------------------

    /// rseq_enabled() - this platform's this-CPU operations use restartable sections.
    bool rseq_enabled() const noexcept { return rseq_; }
    /// set_rseq(on) - use them (where possible: returns whether they are now on) or not.
    /// Only while no other thread uses per-CPU data of this platform: a copy updated by
    /// a section and by an atomic from another CPU at once can lose an update.
    bool set_rseq(bool on) noexcept {
        rseq_ = on && rseq_possible(nr_cpus_);
        return rseq_;
    }
#if PCPU_HOST_RSEQ
    template <class U, std::enable_if_t<detail::rseq_word<U>, int> = 0>
    rseq_result rseq_add(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr, U v, U& out) noexcept {
        return rseq_ ? detail::rseq_add(base, offsets, nr, v, out) : rseq_result::unusable;
    }
    rseq_result rseq_add_within(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr, std::int32_t v,
                                std::int32_t lo, std::int32_t hi, std::int32_t& seen) noexcept {
        return rseq_ ? detail::rseq_add_within(base, offsets, nr, v, lo, hi, seen) : rseq_result::unusable;
    }
    template <class U, std::enable_if_t<detail::rseq_word<U>, int> = 0>
    rseq_result rseq_cmpxchg(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr, U expect, U desired,
                             U& seen) noexcept {
        return rseq_ ? detail::rseq_cmpxchg(base, offsets, nr, expect, desired, seen) : rseq_result::unusable;
    }
#endif

    void warn(const char* msg) noexcept {
        counters_.warnings.fetch_add(1, std::memory_order_relaxed);
        const warn_handler h = warn_handler_.load(std::memory_order_acquire);
        if (h != nullptr) {
            h(msg, warn_user_.load(std::memory_order_acquire));
            return;
        }
        std::fprintf(stderr, "%s\n", msg);
    }
    /// set_warn_handler(h, user) - h(msg, user) receives every warning instead of
    /// stderr; nullptr restores stderr. Set it before other threads use the platform.
    void set_warn_handler(warn_handler h, void* user = nullptr) noexcept {
        warn_user_.store(user, std::memory_order_release);
        warn_handler_.store(h, std::memory_order_release);
    }

    // ---- Implicit scope ----------------------------------------------------------------

    scope_token scope_apply(context c) noexcept { return detail::host_thread_scope().apply(c); }
    void scope_restore(scope_token t) noexcept { detail::host_thread_scope().restore(t); }
    context current_scope() noexcept { return detail::host_thread_scope().current(); }

    // ---- Contexts of pcpu's own work ----------------------------------------------------

    /// background_context() - balance and depopulation run with it, and it caps every
    /// callback made under the sleeping lock (allocator.hpp, locked_context()). noio
    /// unless set_background_context() said otherwise.
    context background_context() noexcept { return context{background_.load(std::memory_order_relaxed)}; }
    void set_background_context(context c) noexcept { background_.store(c.bits, std::memory_order_relaxed); }

    // ---- Deferred work -----------------------------------------------------------------

    /// request_balance() - pcpu asks for allocator::balance(). Sets the flag that
    /// take_balance_request() polls and wakes wait_balance_request().
    /// Context: called by alloc() and free() outside the index lock; takes a mutex for
    /// an instant (so a waiter between its check and its sleep cannot miss the wake).
    void request_balance() noexcept {
        counters_.balance_requests.fetch_add(1, std::memory_order_relaxed);
        pending_.store(true, std::memory_order_release);
        { std::lock_guard<std::mutex> g(balance_mu_); }
        balance_cv_.notify_all();
    }
    /// balance_requested() - a request is pending.
    bool balance_requested() const noexcept { return pending_.load(std::memory_order_acquire); }
    /// take_balance_request() - consume the pending request: true if there was one,
    /// and the caller should now call allocator::balance().
    bool take_balance_request() noexcept { return pending_.exchange(false, std::memory_order_acq_rel); }
    /// wait_balance_request(stop) - sleep until a request is pending (consume it and
    /// return true) or stop is set and wake_balance_waiters() was called (false).
    bool wait_balance_request(const std::atomic<bool>& stop) noexcept {
        std::unique_lock<std::mutex> g(balance_mu_);
        balance_cv_.wait(g, [&] { return stop.load(std::memory_order_acquire) || balance_requested(); });
        if (stop.load(std::memory_order_acquire)) return false;
        return take_balance_request();
    }
    void wake_balance_waiters() noexcept {
        { std::lock_guard<std::mutex> g(balance_mu_); }
        balance_cv_.notify_all();
    }

    // ---- Metadata ----------------------------------------------------------------------

    /// alloc_meta(bytes, align, ctx) - from the C heap (posix_memalign: free() needs no
    /// alignment back, and it cannot throw). Contents unspecified.
    void* alloc_meta(std::size_t bytes, std::size_t align, context ctx) noexcept {
        (void)ctx;
        if (align < sizeof(void*)) align = sizeof(void*);
        void* p = nullptr;
        if (::posix_memalign(&p, align, bytes == 0 ? 1 : bytes) != 0) return nullptr;
        counters_.meta_blocks.fetch_add(1, std::memory_order_relaxed);
        counters_.meta_bytes.fetch_add(bytes, std::memory_order_relaxed);
        return p;
    }
    void free_meta(void* p, std::size_t bytes) noexcept {
        if (p == nullptr) return;
        std::free(p);
        counters_.meta_blocks.fetch_sub(1, std::memory_order_relaxed);
        counters_.meta_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    }

    // ---- contiguous ----------------------------------------------------------------------

    /// alloc_units(bytes, ctx) - one page-aligned read/write anonymous mapping for all
    /// units of a chunk; its pages count against the page limit.
    void* alloc_units(std::size_t bytes, context ctx) noexcept {
        (void)ctx;
        const std::size_t pages = (bytes + page_size - 1) / page_size;
        if (!take_pages(pages)) return nullptr;
        void* p = detail::host_map_aligned(bytes, page_size, PROT_READ | PROT_WRITE);
        if (p == nullptr) {
            give_pages(pages);
            return nullptr;
        }
        counters_.units_blocks.fetch_add(1, std::memory_order_relaxed);
        counters_.units_bytes.fetch_add(bytes, std::memory_order_relaxed);
        return p;
    }
    void free_units(void* p, std::size_t bytes) noexcept {
        if (p == nullptr) return;
        detail::host_unmap(reinterpret_cast<std::uintptr_t>(p), bytes);
        give_pages((bytes + page_size - 1) / page_size);
        counters_.units_blocks.fetch_sub(1, std::memory_order_relaxed);
        counters_.units_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    }

    // ---- lazy_mapped ---------------------------------------------------------------------

    /// reserve(bytes, ctx) - PROT_NONE address space aligned to page_size; 0 on failure,
    /// or (warned once) if page_size is smaller than the host's page.
    std::uintptr_t reserve(std::size_t bytes, context ctx) noexcept {
        (void)ctx;
        const std::size_t h = detail::host_page_size();
        if (page_size < h || page_size % h != 0) {
            if (!page_warned_.exchange(true))
                warn("pcpu host platform: page_shift is below the host page size; lazy_mapped chunks "
                     "cannot be reserved (use a larger PageShift)");
            return 0;
        }
        const bool guard = guard_.load(std::memory_order_relaxed);
        void* p = detail::host_map_aligned(bytes, page_size, guard ? PROT_NONE : PROT_READ | PROT_WRITE,
                                           guard ? 0 : MAP_NORESERVE);
        if (p == nullptr) return 0;
        counters_.reservations.fetch_add(1, std::memory_order_relaxed);
        counters_.reserved_bytes.fetch_add(bytes, std::memory_order_relaxed);
        return reinterpret_cast<std::uintptr_t>(p);
    }
    void release(std::uintptr_t addr, std::size_t bytes) noexcept {
        detail::host_unmap(addr, bytes);
        counters_.reservations.fetch_sub(1, std::memory_order_relaxed);
        counters_.reserved_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    }
    /// alloc_pages(cpu, out, nr, ctx) - take nr pages from the budget (see the file
    /// comment); false, with nothing taken, past set_page_limit().
    bool alloc_pages(unsigned cpu, page_ref* out, std::size_t nr, context ctx) noexcept {
        (void)cpu, (void)ctx;
        if (!take_pages(nr)) return false;
        for (std::size_t i = 0; i < nr; ++i) out[i] = host_page_marker;
        return true;
    }
    void free_pages(unsigned cpu, const page_ref* pages, std::size_t nr) noexcept {
        (void)cpu, (void)pages;
        give_pages(nr);
    }
    /// map(addr, pages, nr, ctx) - make [addr, addr + nr pages) accessible (and
    /// resident, with prefault). All or nothing: on failure the range is dropped again.
    /// No flush hooks are needed: mprotect and madvise shoot down stale translations
    /// on every CPU before they return.
    bool map(std::uintptr_t addr, const page_ref* pages, std::size_t nr, context ctx) noexcept {
        (void)pages, (void)ctx;
        const std::size_t bytes = nr * page_size;
        const bool guard = guard_.load(std::memory_order_relaxed);
        if ((guard && !detail::host_make_accessible(addr, bytes)) ||
            (prefault_.load(std::memory_order_relaxed) && !detail::host_prefault(addr, bytes))) {
            detail::host_discard(addr, bytes, !guard);
            return false;
        }
        counters_.mapped_pages.fetch_add(nr, std::memory_order_relaxed);
        return true;
    }
    void unmap(std::uintptr_t addr, page_ref* out, std::size_t nr) noexcept {
        detail::host_discard(addr, nr * page_size, !guard_.load(std::memory_order_relaxed));
        for (std::size_t i = 0; i < nr; ++i) out[i] = host_page_marker;
        counters_.mapped_pages.fetch_sub(nr, std::memory_order_relaxed);
    }

    // ---- Knobs and counters ------------------------------------------------------------

    /// set_page_limit(pages) - the most pages alloc_pages() and alloc_units() hand out
    /// at once (dynamic chunks only; the first chunk is the caller's). Past it they
    /// fail, and pcpu reports out_of_memory. Default: no limit.
    void set_page_limit(std::size_t pages) noexcept { page_limit_.store(pages, std::memory_order_relaxed); }
    /// set_prefault(on) - map() makes pages resident at once (default) or leaves that
    /// to the first touch.
    void set_prefault(bool on) noexcept { prefault_.store(on, std::memory_order_relaxed); }
    /// set_guard_pages(on) - unpopulated pages of lazy_mapped chunks fault on touch
    /// (default) or not (see the file comment). Only while no address space is
    /// reserved: false, nothing changed, otherwise.
    bool set_guard_pages(bool on) noexcept {
        if (counters_.reservations.load(std::memory_order_relaxed) != 0) return false;
        guard_.store(on, std::memory_order_relaxed);
        return true;
    }

    host_counters counters() const noexcept {
        host_counters c;
        c.reservations = counters_.reservations.load(std::memory_order_relaxed);
        c.reserved_bytes = counters_.reserved_bytes.load(std::memory_order_relaxed);
        c.pages = counters_.pages.load(std::memory_order_relaxed);
        c.mapped_pages = counters_.mapped_pages.load(std::memory_order_relaxed);
        c.meta_blocks = counters_.meta_blocks.load(std::memory_order_relaxed);
        c.meta_bytes = counters_.meta_bytes.load(std::memory_order_relaxed);
        c.units_blocks = counters_.units_blocks.load(std::memory_order_relaxed);
        c.units_bytes = counters_.units_bytes.load(std::memory_order_relaxed);
        c.balance_requests = counters_.balance_requests.load(std::memory_order_relaxed);
        c.warnings = counters_.warnings.load(std::memory_order_relaxed);
        return c;
    }

private:
    static unsigned pick_cpus(unsigned asked) noexcept {
        long n = asked != 0 ? static_cast<long>(asked) : ::sysconf(_SC_NPROCESSORS_CONF);
        if (n < 1) n = 1;
        if (static_cast<unsigned long>(n) > max_cpus) n = static_cast<long>(max_cpus);
        return static_cast<unsigned>(n);
    }
    static bool rseq_possible(unsigned nr) noexcept {
#if PCPU_HOST_RSEQ
        const long conf = ::sysconf(_SC_NPROCESSORS_CONF);
        return detail::rseq_registered() && conf >= 1 && static_cast<unsigned long>(conf) <= nr;
#else
        (void)nr;
        return false;
#endif
    }
    bool take_pages(std::size_t n) noexcept {
        const std::size_t limit = page_limit_.load(std::memory_order_relaxed);
        std::size_t used = counters_.pages.load(std::memory_order_relaxed);
        do {
            if (n > limit || used > limit - n) return false;
        } while (!counters_.pages.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
        return true;
    }
    void give_pages(std::size_t n) noexcept { counters_.pages.fetch_sub(n, std::memory_order_relaxed); }

    struct atomic_counters {
        std::atomic<std::size_t> reservations{0}, reserved_bytes{0}, pages{0}, mapped_pages{0};
        std::atomic<std::size_t> meta_blocks{0}, meta_bytes{0}, units_blocks{0}, units_bytes{0};
        std::atomic<std::uint64_t> balance_requests{0}, warnings{0};
    };

    const unsigned nr_cpus_;
    bool rseq_;
    std::mutex index_mu_;
    std::mutex slow_mu_;
    std::atomic<std::uint32_t> populate_events_{0};
    std::mutex populate_mu_;
    std::condition_variable populate_cv_;
    std::atomic<std::uint8_t> background_{ctx::noio.bits};
    std::atomic<bool> pending_{false};
    std::mutex balance_mu_; ///< only orders request_balance() against a waiter going to sleep
    std::condition_variable balance_cv_;
    std::atomic<warn_handler> warn_handler_{nullptr};
    std::atomic<void*> warn_user_{nullptr};
    std::atomic<std::size_t> page_limit_{static_cast<std::size_t>(-1)};
    std::atomic<bool> prefault_{true};
    std::atomic<bool> guard_{true};
    std::atomic<bool> page_warned_{false};
    atomic_counters counters_;
};

/// host_platform - the host platform with pcpu's default page size and up to 64 CPUs.
using host_platform = basic_host_platform<>;

namespace detail {
/// host_unwrap<P>::get(p) - the host platform inside p, through any number of
/// debugging wrappers (each has inner()): a balance_worker must wait on the host's
/// requests even when the allocator's platform is a context_checker around it.
template <class P, class = void>
struct host_unwrap {
    static auto& get(P& p) noexcept {
        using inner = std::remove_reference_t<decltype(p.inner())>;
        return host_unwrap<inner>::get(p.inner());
    }
};
template <class P>
struct host_unwrap<P, void_t<decltype(std::declval<P&>().wait_balance_request(std::declval<const std::atomic<bool>&>()))>> {
    static P& get(P& p) noexcept { return p; }
};
} // namespace detail

/// balance_worker<Allocator> - a thread that runs allocator::balance() whenever the
/// host platform (under any wrappers) receives request_balance(): the work queue of
/// Linux's pcpu_balance_workfn.
///
/// Lifetime: start() after init(); stop() (or destroy the worker) before the
/// allocator's shutdown() or destruction - declare the worker after the allocator.
/// balance() runs in the worker with the background context, never inside a pcpu call.
template <class Allocator>
class balance_worker {
public:
    explicit balance_worker(Allocator& a) noexcept
        : alloc_(a), host_(detail::host_unwrap<typename Allocator::platform_type>::get(a.platform())) {}
    ~balance_worker() { stop(); }
    balance_worker(const balance_worker&) = delete;
    balance_worker& operator=(const balance_worker&) = delete;

    /// start() - start the thread. Returns ok (also if already running), or
    /// out_of_memory if the system would not create a thread.
    errc start() noexcept {
        if (running_) return errc::ok;
        stop_.store(false, std::memory_order_release);
        if (::pthread_create(&thread_, nullptr, &balance_worker::run, this) != 0) return errc::out_of_memory;
        running_ = true;
        return errc::ok;
    }
    /// stop() - finish the balance pass in progress, if any, and join the thread. A
    /// request still pending stays pending (take_balance_request() sees it).
    void stop() noexcept {
        if (!running_) return;
        stop_.store(true, std::memory_order_release);
        host_.wake_balance_waiters();
        ::pthread_join(thread_, nullptr);
        running_ = false;
    }
    bool running() const noexcept { return running_; }
    /// runs() - balance passes completed (monotone). failures() - those that did not
    /// return ok (the reserve could not be refilled).
    std::uint64_t runs() const noexcept { return runs_.load(std::memory_order_acquire); }
    std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_acquire); }

private:
    static void* run(void* self) noexcept {
        static_cast<balance_worker*>(self)->loop();
        return nullptr;
    }
    void loop() noexcept {
        while (host_.wait_balance_request(stop_)) {
            if (alloc_.balance() != errc::ok) failures_.fetch_add(1, std::memory_order_release);
            runs_.fetch_add(1, std::memory_order_release);
        }
    }

    Allocator& alloc_;
    decltype(detail::host_unwrap<typename Allocator::platform_type>::get(std::declval<Allocator&>().platform())) host_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> runs_{0};
    std::atomic<std::uint64_t> failures_{0};
    pthread_t thread_{};
    bool running_ = false;
};

} // namespace pcpu
