// SPDX-License-Identifier: MIT
// pcpu/counter.hpp - per-core statistics counter (lib/percpu_counter.c).
//
// A counter is a shared 64-bit count plus one 32-bit delta per CPU. An add touches only
// the running CPU's delta while that stays below the batch in magnitude; the add that
// would bring it to the batch or beyond folds delta + amount into the shared count under
// the counter's lock and zeroes the delta. So the hot path is a this-CPU operation on a
// cache line no other CPU writes, and the lock is taken about once per `batch` events.
//
// The error bound. Every delta stays in (-batch, batch), so at any moment when no add is
// half done
//
//     exact = count + sum of the deltas,    |read() - exact| <= nr_cpus * (batch - 1)
//                                                           <  nr_cpus * batch
//
// which error_bound() returns (nr_cpus * batch). The bound holds for the largest batch
// any add used: add_local() uses INT32_MAX, so after add_local() only sum() is
// meaningful. compare() uses the bound to answer from read() when it can and falls back
// to the exact sum only when the value is within it.
//
// Concurrency. The this-CPU part follows percpu.hpp: on a platform with a this-CPU guard
// (irq_save/irq_restore, or preempt_disable/preempt_enable) the delta update is a plain
// load and store under the guard; without one (hosts) it is a compare-and-swap loop on
// the delta of the CPU the task ran on, and a fold takes that delta with an atomic
// exchange, so a task that migrated between choosing the delta and updating it can
// neither lose an update nor push a delta past the batch. Where the platform has
// restartable sections (Linux rseq) both are sections on the running CPU's delta
// instead - a compare-and-store with plain instructions, restarted on preemption or
// migration - so every write of a delta happens on the delta's own CPU. set() still
// writes every CPU's delta from one CPU: an add racing with it may then keep its
// delta's value from before the set(), as the kernel's non-atomic this_cpu_add can on
// x86. The shared count is guarded
// by a tiny per-counter spinlock (test-and-test-and-set), taken inside the this-CPU
// guard: with irq_save an ISR can add too (the kernel's raw_spin_lock_irqsave). On a
// preemptive single-core RTOS give the platform a guard: without one, a task preempted
// while holding the spinlock would leave a higher-priority spinner spinning forever.
//
// Why a fold takes the lock. A fold is two writes to two places: the delta goes to 0
// and the count grows by what the delta held. Done apart (an atomic add on the count
// after taking the delta), a sum() between them would miss the delta - adds that
// finished before the sum began - or, the other way round, count it twice. The lock
// makes the pair one step for sum(), limited_add() and set(): the invariant, as seen
// by a holder of the lock, is that every finished add is in exactly one place, the
// count or one delta. So sum() is exact when no add is in flight and counts each racing add whole
// or not at all, as the kernel's percpu_counter_sum. Only the count and the lock are
// written by folds; they share a cache line (a fold takes both), and what every add
// reads (the allocator, the deltas' handle, the batch) is on another line, so that a
// fold on one CPU does not take that line from the adds on the others.
//
// Every call has an answer in every state. Before init() and after destroy() the
// counter reads as 0 (read, sum, compare against 0) and the writes (add and its
// variants, set, sync) do nothing; destroy() is then a no-op too, and init() starts it
// again. The count wraps modulo 2^64 like the this-CPU operations (add(INT64_MAX)
// twice gives -2; sub(INT64_MIN) adds INT64_MIN): the arithmetic is unsigned, never
// signed overflow. A counter whose allocator was shut down owns nothing any more: its
// destroy() frees nothing (even if the allocator was initialised again and handed the
// same address to someone else) and reports not_initialized; any other use is a
// precondition violation (PCPU_CHECKS: PCPU_TRAP).
//
// 32-bit clean: deltas are int32_t; the count is int64_t and is read without the lock
// only where 64-bit loads are single instructions (not on a Cortex-M, where read()
// takes the lock). No heap beyond the allocator, no <mutex>, no <thread>.
#pragma once

#include "config.hpp"
#include "error.hpp"
#include "percpu.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pcpu {

namespace detail {
/// counter_line - the alignment of a counter's shared part: PCPU_CACHE_LINE, at least
/// what the 64-bit count needs.
inline constexpr std::size_t counter_line = PCPU_CACHE_LINE > alignof(std::int64_t) ? PCPU_CACHE_LINE : alignof(std::int64_t);

/// spinlock - a test-and-test-and-set lock for a few instructions of critical section.
/// A waiter spins on plain loads, which share the line, and tries the exchange only when
/// it reads the lock free: an exchange in the loop would take the line from the holder
/// on every turn, and the holder needs it back to store the count and to unlock.
class spinlock {
public:
    void lock() noexcept {
        while (flag_.exchange(true, std::memory_order_acquire)) {
            while (flag_.load(std::memory_order_relaxed)) relax();
        }
    }
    void unlock() noexcept { flag_.store(false, std::memory_order_release); }

private:
    static void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
    }
    std::atomic<bool> flag_{false};
};
} // namespace detail

/// counter<Alloc> - see the file comment. Not copyable; init() before use.
template <class Alloc>
class counter {
public:
    using allocator_type = Alloc;
    using platform_type = typename Alloc::platform_type;
    using context = typename Alloc::context;
    static constexpr std::int32_t max_batch = INT32_MAX;

    /// default_batch(nr_cpus) - the kernel's percpu_counter_batch: max(32, 2 * CPUs).
    static constexpr std::int32_t default_batch(unsigned nr_cpus) noexcept {
        return nr_cpus > 16 ? static_cast<std::int32_t>(2 * nr_cpus) : 32;
    }

    counter() noexcept = default;
    counter(const counter&) = delete;
    counter& operator=(const counter&) = delete;
    ~counter() { (void)destroy(); }

    /// init(a, initial, ctx, batch) - allocate the per-CPU deltas from a (with ctx) and
    /// start at `initial`. batch 0 means default_batch(a.nr_cpus()).
    /// Returns ok, or: bad_config (already initialised, batch negative); the error of
    /// the allocation.
    [[nodiscard]] errc init(Alloc& a, std::int64_t initial, context ctx, std::int32_t batch = 0) noexcept {
        return init_with(a, initial, ctx, batch);
    }
    /// init(a, initial, ctx_t<Bits>, batch) - the same with a compile-time context
    /// (ctx_type.hpp): an atomic one compiles no sleeping path.
    template <ctx_bits Bits>
    [[nodiscard]] errc init(Alloc& a, std::int64_t initial, ctx_t<Bits> ctx, std::int32_t batch = 0) noexcept {
        return init_with(a, initial, ctx, batch);
    }

    /// destroy() - free the deltas; the counter can be init()ed again. Not concurrent
    /// with any other use. ok (a no-op) if not initialised; not_initialized, nothing
    /// freed, if the allocator was shut down since init() (see the file comment).
    errc destroy() noexcept {
        if (a_ == nullptr) return errc::ok;
        if (group_ > 1) return errc::invalid_pointer; // shared deltas: destroy_many() frees them
        // Sized: a handle whose area changed owner since is refused, not freed.
        const errc e = alive() ? a_->free(deltas_.raw(), sizeof(std::int32_t)) : errc::not_initialized;
        a_ = nullptr;
        deltas_ = percpu<std::int32_t>();
        count_ = 0;
        return e;
    }

    /// init_many(cs, n, a, initial, ctx, batch) - __percpu_counter_init_many: init the n
    /// counters cs[0..n) from ONE per-CPU allocation of n adjacent deltas (one
    /// allocation, and on each CPU one cache line, for counters updated together). Each
    /// starts at `initial`. The deltas are shared: free them with destroy_many(cs, n);
    /// destroy() of one member refuses (invalid_pointer), and so does the destructor, so
    /// a group never destroy_many()ed stays allocated rather than freed under its
    /// other members.
    /// Returns ok, or: bad_config (cs null, n 0, any cs[i] already initialised, batch
    /// negative); the error of the allocation. On error no counter is initialised.
    static errc init_many(counter* cs, std::size_t n, Alloc& a, std::int64_t initial, context ctx,
                          std::int32_t batch = 0) noexcept {
        return init_many_with(cs, n, a, initial, ctx, batch);
    }
    /// init_many(cs, n, a, initial, ctx_t<Bits>, batch) - the same with a compile-time
    /// context.
    template <ctx_bits Bits>
    static errc init_many(counter* cs, std::size_t n, Alloc& a, std::int64_t initial, ctx_t<Bits> ctx,
                          std::int32_t batch = 0) noexcept {
        return init_many_with(cs, n, a, initial, ctx, batch);
    }

    /// destroy_many(cs, n) - percpu_counter_destroy_many: free what init_many(cs, n)
    /// allocated; every cs[i] can be init()ed again. Not concurrent with any other use.
    /// n == 1 also destroys a counter of init(). Returns ok (also when none of cs[0..n)
    /// is initialised), or invalid_pointer, changing nothing, when cs[0..n) is not
    /// exactly one group of init_many in order; bad_config for cs null or n 0.
    static errc destroy_many(counter* cs, std::size_t n) noexcept {
        if (cs == nullptr || n == 0) return errc::bad_config;
        if (cs[0].a_ == nullptr) {
            for (std::size_t i = 1; i < n; ++i)
                if (cs[i].a_ != nullptr) return errc::invalid_pointer;
            return errc::ok;
        }
        const bool single = n == 1 && cs[0].group_ <= 1;
        for (std::size_t i = 0; i < n && !single; ++i) {
            const counter& c = cs[i];
            if (c.a_ != cs[0].a_ || c.group_ != n || c.group_index_ != i ||
                c.deltas_.raw().addr() != cs[0].deltas_.raw().addr() + i * sizeof(std::int32_t))
                return errc::invalid_pointer;
        }
        // Sized, and only in the allocator's life init_many() allocated in (see destroy()).
        const errc e = cs[0].alive() ? cs[0].a_->free(cs[0].deltas_.raw(), n * sizeof(std::int32_t))
                                     : errc::not_initialized;
        for (std::size_t i = 0; i < n; ++i) {
            cs[i].a_ = nullptr;
            cs[i].deltas_ = percpu<std::int32_t>();
            cs[i].count_ = 0;
            cs[i].group_ = 0;
            cs[i].group_index_ = 0;
        }
        return e;
    }

    bool initialized() const noexcept { return a_ != nullptr; }
    std::int32_t batch() const noexcept { return batch_; }
    /// error_bound() - |read() - sum()| < error_bound() while every add uses batch().
    std::int64_t error_bound() const noexcept { return std::int64_t{batch_} * deltas_.nr_cpus(); }
    /// deltas() - the per-CPU deltas (for tables; read them with sum() semantics).
    percpu<std::int32_t> deltas() const noexcept { return deltas_; }

    /// add_batch(amount, batch) - percpu_counter_add_batch. Context: any, ISRs included
    /// with an irq_save platform; takes the spinlock about once per batch. A batch below
    /// 1 folds every add. A no-op when not initialised.
    void add_batch(std::int64_t amount, std::int32_t batch) noexcept {
        if (a_ == nullptr) return;
        PCPU_CHECK(alive(), "pcpu: counter used after its allocator was shut down");
        // The delta d stays in (-batch, batch), so d + amount stays there exactly when
        // amount lies in (-batch - d, batch - d): bounds that fit an int64_t, where
        // d + amount itself could overflow.
        const std::int64_t b = batch > 0 ? batch : 1;
        auto& p = a_->platform();
        using guard = this_cpu_guard<platform_type>;
        if constexpr (guard::pins) {
            guard g(p);
            std::int32_t* slot = deltas_.ptr(g.cpu());
            const std::int32_t d = detail::load_relaxed(slot);
            if (amount < b - d && amount > -b - d) {
                detail::store_relaxed(slot, static_cast<std::int32_t>(d + amount));
                return;
            }
            lock_.lock();
            store_count(detail::wrap_add(detail::wrap_add(count_, std::int64_t{d}), amount));
            detail::store_relaxed(slot, std::int32_t{0});
            lock_.unlock();
        } else {
            if constexpr (detail::rseq_capable<platform_type, std::int32_t> &&
                          detail::has_rseq_add_within<platform_type>::value) {
                // One section, no compare-and-store round: the add stays inside
                // (-b, b) or nothing is stored and the delta is folded. An amount
                // outside (-b, b) always folds, through the rounds below.
                if (amount > -b && amount < b) {
                    std::int32_t seen;
                    const auto n = static_cast<std::int32_t>(amount), bound = static_cast<std::int32_t>(b);
                    const rseq_result r = p.rseq_add_within(deltas_.raw().addr(), deltas_.cpu_offsets(),
                                                            deltas_.nr_cpus(), n, -bound, bound, seen);
                    if (r == rseq_result::done) return;
                    if (r == rseq_result::changed) return fold_running(p, amount);
                }
            }
            if constexpr (detail::rseq_capable<platform_type, std::int32_t>) {
                std::int32_t seen;
                const auto within = [amount, b](std::int32_t d, std::int32_t& n) {
                    if (amount >= b - d || amount <= -b - d) return false;
                    n = static_cast<std::int32_t>(d + amount);
                    return true;
                };
                const rseq_result r = detail::rseq_rmw(p, deltas_, within, seen);
                if (r == rseq_result::done) return;
                if (r == rseq_result::changed) return fold_running(p, amount);
            }
            const unsigned cpu = static_cast<unsigned>(p.this_cpu());
            std::int32_t* slot = deltas_.ptr(cpu);
            std::int32_t old = __atomic_load_n(slot, __ATOMIC_RELAXED);
            for (;;) {
                if (amount >= b - old || amount <= -b - old) break;
                if (__atomic_compare_exchange_n(slot, &old, static_cast<std::int32_t>(old + amount), true,
                                                __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                    return;
            }
            // Fold whatever the delta holds *now*, not the value tested above: another
            // task may have changed it meanwhile (it migrated here, or we migrated).
            lock_.lock();
            const std::int32_t taken = take_delta(p, cpu);
            store_count(detail::wrap_add(detail::wrap_add(count_, std::int64_t{taken}), amount));
            lock_.unlock();
        }
    }
    void add(std::int64_t amount) noexcept { add_batch(amount, batch_); }
    void sub(std::int64_t amount) noexcept { add_batch(detail::wrap_neg(amount), batch_); }
    void inc() noexcept { add_batch(1, batch_); }
    void dec() noexcept { add_batch(-1, batch_); }
    /// add_local(amount) - accumulate in this CPU's delta, folding only when it would
    /// overflow int32_t. Cheapest add; read the result with sum(), not read().
    void add_local(std::int64_t amount) noexcept { add_batch(amount, max_batch); }
    /// sub_local(amount) - percpu_counter_sub_local: add_local(-amount).
    void sub_local(std::int64_t amount) noexcept { add_batch(-amount, max_batch); }

    /// limited_add(limit, amount, batch) - percpu_counter_limited_add: add amount only if
    /// the exact value stays within limit: at most limit for amount > 0, at least limit
    /// for amount < 0 (a floor). Returns whether it added (amount 0: true).
    ///
    /// Exact at the limit: the decision and the add happen under the counter's lock,
    /// so limited_add()s racing each other never carry the value past the limit. The
    /// kernel takes a lockless path when the shared count is far from the limit, but it
    /// reads the count and then writes the local delta, so a fold on another CPU can
    /// come between the two and the value can pass the limit by up to a batch per CPU;
    /// pcpu gives that up for exactness. Under the lock the deltas of limited_add()
    /// callers cannot move, so the exact sum is taken only when read() within the
    /// error bound (nr_cpus * batch, batch the largest any add used) cannot settle it.
    /// Plain add()s racing with it are counted or not, as in sum().
    /// Context: as add_batch(); takes the lock every time.
    /// Before init() and after destroy() nothing is added (false). The decision is taken
    /// in saturating arithmetic: a value that would leave int64_t is past any limit.
    bool limited_add(std::int64_t limit, std::int64_t amount, std::int32_t batch) noexcept {
        if (a_ == nullptr) return false;
        PCPU_CHECK(alive(), "pcpu: counter used after its allocator was shut down");
        if (amount == 0) return true;
        locked l(*this);
        const std::int64_t bound = std::int64_t{batch < 1 ? 1 : batch} * deltas_.nr_cpus();
        std::int64_t next; // the value after, up to the deltas
        if (__builtin_add_overflow(count_, amount, &next)) return false;
        // Above the limit (amount > 0) or below it (amount < 0) even in the best case:
        // refuse; within it even in the worst case: add; else ask the exact sum.
        const bool up = amount > 0;
        if (up ? sat_add(next, -bound) > limit : sat_add(next, bound) < limit) return false;
        if (up ? sat_add(next, bound) > limit : sat_add(next, -bound) < limit) {
            std::int64_t exact = next;
            for (unsigned cpu = 0; cpu < deltas_.nr_cpus(); ++cpu)
                exact = sat_add(exact, std::int64_t{detail::load_relaxed(deltas_.ptr(cpu))});
            if (up ? exact > limit : exact < limit) return false;
        }
        store_count(next);
        return true;
    }
    bool limited_add(std::int64_t limit, std::int64_t amount) noexcept { return limited_add(limit, amount, batch_); }

    /// read() - the shared count alone: approximate (see error_bound()), may be
    /// negative while the exact value is not. Lock-free where 64-bit loads are.
    std::int64_t read() const noexcept {
        if (a_ == nullptr) return 0;
        if constexpr (detail::lock_free<std::int64_t>) {
            return __atomic_load_n(&count_, __ATOMIC_RELAXED);
        } else {
            locked l(*this);
            return count_;
        }
    }
    /// read_positive() - read() clamped at 0.
    std::int64_t read_positive() const noexcept {
        const std::int64_t v = read();
        return v < 0 ? 0 : v;
    }

    /// sum() - count plus every CPU's delta, under the lock: exact when no add is in
    /// flight (an add racing with it is counted or not, never half).
    std::int64_t sum() const noexcept {
        if (a_ == nullptr) return 0;
        PCPU_CHECK(alive(), "pcpu: counter used after its allocator was shut down");
        locked l(*this);
        std::int64_t s = count_;
        for (unsigned cpu = 0; cpu < deltas_.nr_cpus(); ++cpu)
            s = detail::wrap_add(s, std::int64_t{detail::load_relaxed(deltas_.ptr(cpu))});
        return s;
    }
    std::int64_t sum_positive() const noexcept {
        const std::int64_t v = sum();
        return v < 0 ? 0 : v;
    }

    /// set(value) - percpu_counter_set: every delta to 0 and the count to value. Adds
    /// racing with it may survive it, as in the kernel.
    void set(std::int64_t value) noexcept {
        if (a_ == nullptr) return;
        PCPU_CHECK(alive(), "pcpu: counter used after its allocator was shut down");
        locked l(*this);
        for (unsigned cpu = 0; cpu < deltas_.nr_cpus(); ++cpu)
            detail::store_relaxed(deltas_.ptr(cpu), std::int32_t{0});
        store_count(value);
    }

    /// sync() - fold the running CPU's delta into the count (percpu_counter_sync).
    void sync() noexcept {
        if (a_ == nullptr) return;
        PCPU_CHECK(alive(), "pcpu: counter used after its allocator was shut down");
        auto& p = a_->platform();
        using guard = this_cpu_guard<platform_type>;
        guard g(p);
        lock_.lock();
        std::int32_t* slot = deltas_.ptr(g.cpu());
        std::int32_t taken;
        if constexpr (guard::pins) {
            taken = detail::load_relaxed(slot);
            detail::store_relaxed(slot, std::int32_t{0});
        } else {
            (void)slot;
            taken = take_delta(p, g.cpu());
        }
        store_count(detail::wrap_add(count_, std::int64_t{taken}));
        lock_.unlock();
    }

    /// compare(rhs, batch) - __percpu_counter_compare: 1 if the exact value is above
    /// rhs, -1 if below, 0 if equal. Answers from read() when |read() - rhs| exceeds
    /// nr_cpus * batch (the exact value is then on the same side), else from sum().
    /// batch must be at least the largest batch any add used. The distances are taken
    /// in unsigned arithmetic, so values far apart (INT64_MIN against INT64_MAX) compare
    /// without overflow.
    int compare(std::int64_t rhs, std::int32_t batch) const noexcept {
        const std::int64_t approx = read();
        const std::uint64_t bound = std::uint64_t(batch > 0 ? batch : 0) * deltas_.nr_cpus();
        const auto distance = [](std::int64_t hi, std::int64_t lo) {
            return static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
        };
        if (approx > rhs && distance(approx, rhs) > bound) return 1;
        if (rhs > approx && distance(rhs, approx) > bound) return -1;
        const std::int64_t exact = sum();
        return exact > rhs ? 1 : exact < rhs ? -1 : 0;
    }
    int compare(std::int64_t rhs) const noexcept { return compare(rhs, batch_); }

private:
    /// init_with()/init_many_with() - init() and init_many() for either kind of context.
    template <class Ctx>
    errc init_with(Alloc& a, std::int64_t initial, Ctx ctx, std::int32_t batch) noexcept {
        if (a_ != nullptr || batch < 0) return errc::bad_config;
        result<percpu<std::int32_t>> d = detail::alloc_percpu_with<std::int32_t>(a, ctx);
        if (!d) return d.error();
        a_ = &a;
        generation_ = a.generation();
        deltas_ = d.value();
        batch_ = batch != 0 ? batch : default_batch(a.nr_cpus());
        count_ = initial;
        return errc::ok;
    }

    template <class Ctx>
    static errc init_many_with(counter* cs, std::size_t n, Alloc& a, std::int64_t initial, Ctx ctx,
                               std::int32_t batch) noexcept {
        if (cs == nullptr || n == 0 || n > UINT32_MAX || n > SIZE_MAX / sizeof(std::int32_t) || batch < 0)
            return errc::bad_config;
        for (std::size_t i = 0; i < n; ++i)
            if (cs[i].a_ != nullptr) return errc::bad_config;
        const result<handle> r = a.alloc(n * sizeof(std::int32_t), alignof(std::int32_t), ctx);
        if (!r) return r.error();
        const percpu<std::int32_t> base = typed<std::int32_t>(a, r.value());
        for (std::size_t i = 0; i < n; ++i) {
            counter& c = cs[i];
            c.a_ = &a;
            c.generation_ = a.generation();
            c.deltas_ = percpu<std::int32_t>(handle(base.raw().addr() + i * sizeof(std::int32_t)), base.cpu_offsets(),
                                             base.nr_cpus());
            for (unsigned cpu = 0; cpu < base.nr_cpus(); ++cpu) *c.deltas_.ptr(cpu) = 0;
            c.batch_ = batch != 0 ? batch : default_batch(a.nr_cpus());
            c.count_ = initial;
            c.group_ = static_cast<std::uint32_t>(n);
            c.group_index_ = static_cast<std::uint32_t>(i);
        }
        return errc::ok;
    }


    /// locked - the this-CPU guard (so that an ISR adding on this CPU cannot spin on a
    /// lock its own CPU holds), then the spinlock.
    class locked {
    public:
        explicit locked(const counter& c) noexcept : g_(c.a_->platform()), c_(c) { c_.lock_.lock(); }
        ~locked() { c_.lock_.unlock(); }
        locked(const locked&) = delete;
        locked& operator=(const locked&) = delete;

    private:
        this_cpu_guard<platform_type> g_;
        const counter& c_;
    };

    /// sat_add(a, b) - a + b clamped to int64_t, for limited_add()'s comparisons.
    static std::int64_t sat_add(std::int64_t a, std::int64_t b) noexcept {
        std::int64_t r;
        if (!__builtin_add_overflow(a, b, &r)) return r;
        return b > 0 ? INT64_MAX : INT64_MIN;
    }

    /// fold_running(p, amount) - count += the running CPU's delta (taken, leaving 0) +
    /// amount, under the lock; a platform without a guard, after a section declined.
    void fold_running(platform_type& p, std::int64_t amount) noexcept {
        lock_.lock();
        const std::int32_t taken = take_delta(p, static_cast<unsigned>(p.this_cpu()));
        store_count(detail::wrap_add(detail::wrap_add(count_, std::int64_t{taken}), amount));
        lock_.unlock();
    }

    /// take_delta(p, cpu) - the running CPU's delta, replaced by 0, on a platform without
    /// a guard: in a restartable section where the platform has them (then every write
    /// of a delta must be one: percpu.hpp), else an atomic exchange on cpu's delta.
    std::int32_t take_delta(platform_type& p, unsigned cpu) noexcept {
        if constexpr (detail::rseq_capable<platform_type, std::int32_t>) {
            std::int32_t taken;
            const auto zero = [](std::int32_t, std::int32_t& n) { return n = 0, true; };
            if (detail::rseq_rmw(p, deltas_, zero, taken) != rseq_result::unusable) return taken;
        }
        return __atomic_exchange_n(deltas_.ptr(cpu), std::int32_t{0}, __ATOMIC_RELAXED);
    }

    /// alive() - the allocator is still in the life init() took the deltas from.
    bool alive() const noexcept { return a_->initialized() && a_->generation() == generation_; }

    /// store_count(v) - under the lock; atomic where read() reads without it.
    void store_count(std::int64_t v) noexcept {
        if constexpr (detail::lock_free<std::int64_t>) __atomic_store_n(&count_, v, __ATOMIC_RELAXED);
        else count_ = v;
    }

    // What every add reads and only init() and destroy() write, on a cache line of its
    // own: were it on the line of the count and lock below, each fold on one CPU would
    // take the line away from the adds on every other CPU.
    Alloc* a_ = nullptr;
    percpu<std::int32_t> deltas_;
    std::int32_t batch_ = 0;
    std::uint32_t generation_ = 0;  // a_->generation() at init()
    std::uint32_t group_ = 0;       ///< init_many group size (0: init())
    std::uint32_t group_index_ = 0; ///< this counter's place in its group
    // What folds write: the count and its lock, together (a fold takes both) and apart
    // from the line above. The class is aligned to the line, so no other object shares
    // either line.
    alignas(detail::counter_line) std::int64_t count_ = 0;
    mutable detail::spinlock lock_;
};

} // namespace pcpu
