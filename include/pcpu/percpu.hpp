// SPDX-License-Identifier: MIT
// pcpu/percpu.hpp - typed per-CPU handles and this-CPU operations
// (include/linux/percpu.h, include/linux/percpu-defs.h).
//
// percpu<T> is the typed counterpart of a handle: the address of CPU 0's copy plus a
// reference to the allocator's offset table, so that
//
//     per_cpu_ptr(h, cpu) = h.addr + cpu_offsets[cpu]      (one table load plus one add)
//
// needs no allocator at hand and costs what allocator::ptr() costs. It is trivially
// copyable and two or three words long: pass it by value, keep it in structures.
//
// alloc_percpu<T>(a, ctx, args...) allocates sizeof(T) on every CPU and constructs T
// from args on every CPU; free_percpu(a, h) destroys every copy, then frees. Static
// per-CPU variables (static_var.hpp) give handles of the same type.
//
// this-CPU operations. this_cpu_add(a, h, v) and friends update the running CPU's copy.
// The read-modify-write must not be torn by the task being preempted by another task
// that updates the same copy, nor by the task migrating to another CPU between choosing
// the copy and writing it. How that is achieved is the platform's choice, read by
// this_cpu_guard below, strongest first:
//
//   irq_save()/irq_restore(t)        local interrupts off: neither tasks nor ISRs of this
//                                    CPU can interleave; plain load and store
//   preempt_disable()/preempt_enable()  no other task on this CPU, no migration; ISRs
//                                    must not update the same variable
//   neither (hosts)                  a relaxed atomic RMW on the copy of the CPU the task
//                                    was running on when it asked; or, where the
//                                    platform offers restartable sections (Linux rseq),
//                                    a plain load and store the system restarts if the
//                                    task is preempted or migrated before the store
//
// Why the host default is enough against migration: the task may read this_cpu() = 2,
// move to CPU 3 and then update CPU 2's copy, racing with whatever now runs on CPU 2.
// The update is a single atomic RMW, so neither side loses its increment; the only
// cost is locality (a cache line shared for a moment). Every copy still holds exactly
// the sum of the updates made to it, so for_each_cpu sums stay exact, which is all a
// per-CPU statistic promises. What the default cannot give is "this value belongs to
// the CPU I run on" for a compound sequence: take a this_cpu_guard (get_cpu()) for that
// on a platform that has a guard.
//
// The arithmetic is the kernel's: the operand is converted to T first, then added
// modulo 2^bits, so adding a negated unsigned int to a long adds 4294967295 on LP64
// (lib/percpu_test.c checks exactly these traps; see tests/test_percpu.cpp). Signed
// types wrap instead of overflowing into undefined behaviour.
//
// Needs the GNU __atomic builtins (GCC, Clang, arm-none-eabi-gcc). No heap, no
// <thread>/<mutex>: usable from firmware.
#pragma once

#include "allocator.hpp"
#include "config.hpp"
#include "ctx_type.hpp"
#include "error.hpp"
#include "platform.hpp"

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#if !defined(__GNUC__)
#error "pcpu/percpu.hpp needs the GNU __atomic builtins (GCC or Clang)"
#endif

namespace pcpu {

/// percpu<T> - a typed per-CPU pointer. A default constructed one is null.
template <class T>
class percpu {
public:
    using value_type = T;

    constexpr percpu() noexcept = default;
    /// percpu(h, offsets, nr_cpus) - type an untyped handle; offsets is the allocator's
    /// cpu_offsets() table (see typed()).
    constexpr percpu(handle h, const std::uintptr_t* offsets, unsigned nr_cpus) noexcept
        : addr_(h.addr()), offsets_(offsets), nr_cpus_(nr_cpus) {}

    /// ptr(cpu) - CPU cpu's copy: one table load plus one add. Every per-CPU access of
    /// this file (per_cpu, the this-CPU operations, sum) goes through here, so this is
    /// where the CPU index is checked. Precondition: cpu < nr_cpus() (PCPU_CHECKS: else
    /// PCPU_TRAP; without, an index up to max_cpus reads CPU 0's copy and a larger one
    /// reads past the offset table).
    T* ptr(unsigned cpu) const noexcept {
        PCPU_CHECK(cpu < nr_cpus_, "pcpu: per-CPU access with a cpu index not below nr_cpus");
        return reinterpret_cast<T*>(addr_ + offsets_[cpu]);
    }
    handle raw() const noexcept { return handle(addr_); }
    unsigned nr_cpus() const noexcept { return nr_cpus_; }
    const std::uintptr_t* cpu_offsets() const noexcept { return offsets_; }
    constexpr explicit operator bool() const noexcept { return addr_ != 0; }

    /// field(&T::m) - handle of member m of every CPU's copy. Handles are CPU 0
    /// addresses, so the member's CPU 0 address is its handle.
    template <class M, class U = T>
    percpu<M> field(M U::*m) const noexcept {
        auto* cpu0 = reinterpret_cast<U*>(addr_);
        return percpu<M>(handle(reinterpret_cast<std::uintptr_t>(&(cpu0->*m))), offsets_, nr_cpus_);
    }
    /// at(i) - handle of element i of an array T (every CPU's element i).
    template <class U = T, class E = std::remove_extent_t<U>>
    percpu<E> at(std::size_t i) const noexcept {
        static_assert(std::is_array<U>::value, "pcpu: percpu<T>::at() needs an array T");
        PCPU_CHECK(i < std::extent<U>::value, "pcpu: percpu<T[n]>::at(i) with i not below n");
        return percpu<E>(handle(addr_ + i * sizeof(E)), offsets_, nr_cpus_);
    }

    friend constexpr bool operator==(const percpu& a, const percpu& b) noexcept { return a.addr_ == b.addr_; }
    friend constexpr bool operator!=(const percpu& a, const percpu& b) noexcept { return a.addr_ != b.addr_; }

private:
    std::uintptr_t addr_ = 0;
    const std::uintptr_t* offsets_ = nullptr;
    unsigned nr_cpus_ = 0;
};

/// per_cpu_ptr(h, cpu) / per_cpu(h, cpu) - CPU cpu's copy (pointer / reference).
template <class T>
T* per_cpu_ptr(percpu<T> h, unsigned cpu) noexcept {
    return h.ptr(cpu);
}
template <class T>
T& per_cpu(percpu<T> h, unsigned cpu) noexcept {
    return *h.ptr(cpu);
}

/// typed<T>(a, h) - the typed handle of an allocation h of allocator a.
template <class T, class Alloc>
percpu<T> typed(const Alloc& a, handle h) noexcept {
    return percpu<T>(h, a.cpu_offsets(), a.nr_cpus());
}

namespace detail {
/// alloc_percpu_with<T>(a, ctx, args...) - alloc_percpu() for either kind of context.
template <class T, class Alloc, class Ctx, class... Args>
result<percpu<T>> alloc_percpu_with(Alloc& a, Ctx ctx, const Args&... args) noexcept {
    // No exceptions: a constructor that could throw half way through the CPUs would
    // leave copies nobody can destroy.
    static_assert(std::is_nothrow_constructible<T, const Args&...>::value,
                  "pcpu: alloc_percpu<T> needs T(args...) to be noexcept");
    static_assert(std::is_nothrow_destructible<T>::value, "pcpu: alloc_percpu<T> needs a noexcept ~T()");
    const result<handle> r = a.alloc(sizeof(T), alignof(T), ctx);
    if (!r) return r.error();
    const percpu<T> h = typed<T>(a, r.value());
    for (unsigned cpu = 0; cpu < h.nr_cpus(); ++cpu) ::new (static_cast<void*>(h.ptr(cpu))) T(args...);
    return h;
}
} // namespace detail

/// alloc_percpu<T>(a, ctx, args...) - allocate a T on every CPU and construct each copy
/// as T(args...) (the same arguments, by const reference, for every CPU).
/// Context: as allocator::alloc(size, align, ctx).
/// Returns the handle, or alloc()'s error (size_too_large if sizeof(T) exceeds the
/// unit); on error no T was constructed.
template <class T, class Alloc, class... Args>
result<percpu<T>> alloc_percpu(Alloc& a, typename Alloc::context ctx, const Args&... args) noexcept {
    return detail::alloc_percpu_with<T>(a, ctx, args...);
}
/// alloc_percpu<T>(a, ctx_t<Bits>, args...) - the same with a compile-time context
/// (ctx_type.hpp): allocator::alloc()'s compile-time overload, so an atomic one
/// compiles no sleeping path.
template <class T, class Alloc, ctx_bits Bits, class... Args>
result<percpu<T>> alloc_percpu(Alloc& a, ctx_t<Bits> ctx, const Args&... args) noexcept {
    return detail::alloc_percpu_with<T>(a, ctx, args...);
}

/// free_percpu(a, h) - destroy every CPU's copy, then free the allocation. A null
/// handle is a no-op. The destructors run first: h must come from alloc_percpu() on a,
/// or be typed() from an allocation of at least sizeof(T) (anything else is a contract
/// violation, not a reported error, unless T is trivially destructible: then
/// allocator::free() reports it). With PCPU_CHECKS that is checked before any
/// destructor runs (allocator::allocation_size(), one more lookup): a handle that does
/// not start a live allocation of at least sizeof(T) bytes is returned as
/// invalid_pointer or double_free, nothing destroyed, nothing freed. Where the size is
/// known exactly, allocator::free(h, size) checks it for free.
template <class T, class Alloc>
errc free_percpu(Alloc& a, percpu<T> h) noexcept {
    if (!h) return errc::ok;
#if PCPU_CHECKS
    const result<std::size_t> n = a.allocation_size(h.raw());
    if (!n) return n.error();
    if (n.value() < sizeof(T)) return errc::invalid_pointer;
#endif
    if constexpr (!std::is_trivially_destructible<T>::value)
        for (unsigned cpu = 0; cpu < h.nr_cpus(); ++cpu) h.ptr(cpu)->~T();
    return a.free(h.raw());
}

/// for_each_cpu(h, f) - f(cpu, T&) for every CPU's copy, in CPU order.
template <class T, class F>
void for_each_cpu(percpu<T> h, F&& f) noexcept {
    for (unsigned cpu = 0; cpu < h.nr_cpus(); ++cpu) f(cpu, *h.ptr(cpu));
}

namespace detail {

template <class T>
struct type_identity { using type = T; };
template <class T>
using identity_t = typename type_identity<T>::type;

/// lock_free<T> - loads and stores of T are single instructions here. 64-bit values
/// on a Cortex-M are not: there a guard, not an atomic, protects them.
template <class T>
inline constexpr bool lock_free = __atomic_always_lock_free(sizeof(T), nullptr);

// Relaxed accesses where the machine has them, so that a copy read from another CPU
// while its owner writes it is a race on a value, not undefined behaviour.
// (The generic __atomic_load/__atomic_store forms take any trivially copyable T.)
template <class T>
T load_relaxed(const T* p) noexcept {
    if constexpr (lock_free<T>) {
        std::remove_cv_t<T> v;
        __atomic_load(p, &v, __ATOMIC_RELAXED);
        return v;
    } else {
        return *p;
    }
}
template <class T>
void store_relaxed(T* p, T v) noexcept {
    if constexpr (lock_free<T>) __atomic_store(p, &v, __ATOMIC_RELAXED);
    else *p = v;
}

/// wrap_add(a, b) - a + b modulo 2^bits, for signed T too.
template <class T>
constexpr T wrap_add(T a, T b) noexcept {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <class T>
constexpr T wrap_neg(T a) noexcept {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(U{0} - static_cast<U>(a)));
}

template <class T>
inline constexpr bool this_cpu_arith = std::is_integral<T>::value && !std::is_same<T, bool>::value;

/// platform_of(x) - x's platform if x is an allocator (has platform()), else x.
template <class X, class = void>
struct has_platform_accessor : std::false_type {};
template <class X>
struct has_platform_accessor<X, void_t<decltype(std::declval<X&>().platform())>> : std::true_type {};
template <class X>
decltype(auto) platform_of(X& x) noexcept {
    if constexpr (has_platform_accessor<X>::value) return (x.platform());
    else return (x);
}

template <class P, class = void>
struct irq_token { using type = unsigned char; };
template <class P>
struct irq_token<P, void_t<decltype(std::declval<P&>().irq_save())>> {
    using type = decltype(std::declval<P&>().irq_save());
};

// ---- Restartable sections (platform.hpp: rseq_add, rseq_cmpxchg) ----------------------
//
// A platform without a guard may offer sections that the system restarts when the task
// is preempted or migrated before their one store (Linux rseq; platform/detail/rseq.hpp).
// Where it does, for a T of 4 or 8 bytes every write of a this-CPU operation goes
// through one, on the running CPU's copy: add as a load, add and store; everything else
// (write, and, or, xchg, cmpxchg, the counter's fold) as compare-and-store rounds,
// rseq_rmw below. All or nothing per width, because a section excludes only its own
// CPU: an atomic RMW from a task that migrated off the copy's CPU would interleave with
// that CPU's plain load and store and one update would be lost. A thread for which the
// platform answers unusable (no rseq area) takes the atomic path.

/// rseq_u<T> - the word a section stores a T as.
template <class T>
using rseq_u = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;

template <class P, class U, class = void>
struct has_rseq : std::false_type {};
template <class P, class U>
struct has_rseq<P, U,
                void_t<decltype(std::declval<P&>().rseq_add(std::uintptr_t{}, static_cast<const std::uintptr_t*>(nullptr),
                                                             0u, U{}, std::declval<U&>())),
                       decltype(std::declval<P&>().rseq_cmpxchg(std::uintptr_t{},
                                                                static_cast<const std::uintptr_t*>(nullptr), 0u, U{},
                                                                U{}, std::declval<U&>()))>> : std::true_type {};

/// has_rseq_add_within<P> - P offers the bounded add section (a counter's delta).
template <class P, class = void>
struct has_rseq_add_within : std::false_type {};
template <class P>
struct has_rseq_add_within<P, void_t<decltype(std::declval<P&>().rseq_add_within(
                                  std::uintptr_t{}, static_cast<const std::uintptr_t*>(nullptr), 0u, std::int32_t{},
                                  std::int32_t{}, std::int32_t{}, std::declval<std::int32_t&>()))>> : std::true_type {};

/// rseq_capable<P, T> - this-CPU writes of T on P go through restartable sections.
template <class P, class T>
inline constexpr bool rseq_capable = (sizeof(T) == 4 || sizeof(T) == 8) && std::is_trivially_copyable<T>::value &&
                                     has_rseq<P, rseq_u<T>>::value;

template <class U, class T>
U to_word(const T& v) noexcept {
    U u;
    __builtin_memcpy(&u, &v, sizeof u);
    return u;
}
template <class T, class U>
T from_word(U u) noexcept {
    T v;
    __builtin_memcpy(&v, &u, sizeof v);
    return v;
}

/// rseq_add(p, h, v, out) - the running CPU's copy += v (wrapping), out = the new value,
/// in one section; false where the platform says unusable.
template <class P, class T>
bool rseq_add(P& p, percpu<T> h, T v, T& out) noexcept {
    using U = rseq_u<T>;
    U n;
    if (p.rseq_add(h.raw().addr(), h.cpu_offsets(), h.nr_cpus(), to_word<U>(v), n) != rseq_result::done) return false;
    out = from_word<T>(n);
    return true;
}

/// rseq_rmw(p, h, f, old) - f(old, next) on the running CPU's copy as one step: f sees
/// the copy's value and returns whether to store next. Compare-and-store rounds: a guess
/// of the value, then a section that stores only if the copy (of the CPU it runs on)
/// still holds the guess, else returns what it holds for the next round. A declined f
/// is confirmed the same way (storing the value back), so `old` is always a value the
/// running CPU's copy held. Returns done (stored), changed (f declined), or unusable.
template <class P, class T, class F>
rseq_result rseq_rmw(P& p, percpu<T> h, F&& f, T& old) noexcept {
    using U = rseq_u<T>;
    U expect = to_word<U>(load_relaxed(h.ptr(static_cast<unsigned>(p.this_cpu()))));
    for (;;) {
        const T o = from_word<T>(expect);
        T n = o;
        const bool store = f(o, n);
        U seen;
        const rseq_result r = p.rseq_cmpxchg(h.raw().addr(), h.cpu_offsets(), h.nr_cpus(), expect,
                                             store ? to_word<U>(n) : expect, seen);
        if (r == rseq_result::unusable) return r;
        if (r == rseq_result::done) {
            old = o;
            return store ? rseq_result::done : rseq_result::changed;
        }
        expect = seen;
    }
}

} // namespace detail

/// this_cpu_guard<P> - get_cpu()/put_cpu(): enters the platform's this-CPU guard
/// (irq_save, else preempt_disable, else nothing) and reads the running CPU. While a
/// guarding platform's guard is held the task stays on cpu() and nothing else on that
/// CPU touches its copies (with preempt only: nothing but ISRs). Keep it short: it is
/// a critical section. Without a guard (pins == false) cpu() is only a hint.
template <class P>
class this_cpu_guard {
    using traits = platform_traits<P>;

public:
    static constexpr bool irq = traits::template has<detail::has_irq_save> &&
                                traits::template has<detail::has_irq_restore>;
    static constexpr bool preempt = traits::template has<detail::has_preempt_disable> &&
                                    traits::template has<detail::has_preempt_enable>;
    /// pins - holding the guard keeps the task on its CPU.
    static constexpr bool pins = irq || preempt;

    static_assert(traits::template has<detail::has_this_cpu>,
                  "pcpu: this-CPU operations need the platform member `unsigned this_cpu() noexcept` "
                  "(the running CPU, in [0, nr_cpus))");

    explicit this_cpu_guard(P& p) noexcept : p_(p) {
        if constexpr (irq) token_ = p_.irq_save();
        else if constexpr (preempt) p_.preempt_disable();
        // Read after entering: before, the task could still migrate.
        cpu_ = static_cast<unsigned>(p_.this_cpu());
    }
    ~this_cpu_guard() {
        if constexpr (irq) p_.irq_restore(token_);
        else if constexpr (preempt) p_.preempt_enable();
    }
    this_cpu_guard(const this_cpu_guard&) = delete;
    this_cpu_guard& operator=(const this_cpu_guard&) = delete;

    unsigned cpu() const noexcept { return cpu_; }
    /// platform() - the platform whose guard this is (the raw forms check with it).
    P& platform() const noexcept { return p_; }

private:
    P& p_;
    typename detail::irq_token<P>::type token_{};
    unsigned cpu_ = 0;
};

/// this_cpu_ptr(x, h) - the running CPU's copy, where x is the allocator or its
/// platform. Only meaningful while a pinning this_cpu_guard is held (or on a
/// single-CPU system); otherwise the task may already run elsewhere.
template <class X, class T>
T* this_cpu_ptr(X& x, percpu<T> h) noexcept {
    return h.ptr(static_cast<unsigned>(detail::platform_of(x).this_cpu()));
}

/// this_cpu_read(x, h) / this_cpu_write(x, h, v) - the running CPU's copy, read or
/// written whole (never torn). x is the allocator or its platform.
template <class X, class T>
T this_cpu_read(X& x, percpu<T> h) noexcept {
    using P = std::remove_reference_t<decltype(detail::platform_of(x))>;
    P& p = detail::platform_of(x);
    if constexpr (this_cpu_guard<P>::pins) {
        this_cpu_guard<P> g(p);
        return detail::load_relaxed(h.ptr(g.cpu()));
    } else {
        static_assert(detail::lock_free<T>, "pcpu: without a platform this-CPU guard (irq_save/irq_restore or "
                                            "preempt_disable/preempt_enable), this-CPU operations need T to "
                                            "be lock-free atomic on this machine");
        return detail::load_relaxed(h.ptr(static_cast<unsigned>(p.this_cpu())));
    }
}
template <class X, class T>
void this_cpu_write(X& x, percpu<T> h, detail::identity_t<T> v) noexcept {
    using P = std::remove_reference_t<decltype(detail::platform_of(x))>;
    P& p = detail::platform_of(x);
    if constexpr (this_cpu_guard<P>::pins) {
        this_cpu_guard<P> g(p);
        detail::store_relaxed(h.ptr(g.cpu()), v);
    } else {
        static_assert(detail::lock_free<T>, "pcpu: without a platform this-CPU guard (irq_save/irq_restore or "
                                            "preempt_disable/preempt_enable), this-CPU operations need T to "
                                            "be lock-free atomic on this machine");
        if constexpr (detail::rseq_capable<P, T>) {
            T old;
            const auto put = [&v](const T&, T& n) {
                n = v;
                return true;
            };
            if (detail::rseq_rmw(p, h, put, old) != rseq_result::unusable) return;
        }
        detail::store_relaxed(h.ptr(static_cast<unsigned>(p.this_cpu())), v);
    }
}

/// this_cpu_add_return(x, h, v) - add v (converted to T) to the running CPU's copy,
/// modulo 2^bits; returns the new value of that copy.
template <class X, class T>
T this_cpu_add_return(X& x, percpu<T> h, detail::identity_t<T> v) noexcept {
    static_assert(detail::this_cpu_arith<T>, "pcpu: this-CPU arithmetic needs an integral T (not bool)");
    using P = std::remove_reference_t<decltype(detail::platform_of(x))>;
    P& p = detail::platform_of(x);
    if constexpr (this_cpu_guard<P>::pins) {
        this_cpu_guard<P> g(p);
        T* slot = h.ptr(g.cpu());
        const T n = detail::wrap_add(detail::load_relaxed(slot), v);
        detail::store_relaxed(slot, n);
        return n;
    } else {
        static_assert(detail::lock_free<T>, "pcpu: without a platform this-CPU guard (irq_save/irq_restore or "
                                            "preempt_disable/preempt_enable), this-CPU operations need T to "
                                            "be lock-free atomic on this machine");
        if constexpr (detail::rseq_capable<P, T>) {
            T n;
            if (detail::rseq_add(p, h, v, n)) return n;
        }
        // Relaxed: the copy is a statistic, nothing is published through it.
        return __atomic_add_fetch(h.ptr(static_cast<unsigned>(p.this_cpu())), v, __ATOMIC_RELAXED);
    }
}
template <class X, class T>
void this_cpu_add(X& x, percpu<T> h, detail::identity_t<T> v) noexcept {
    (void)this_cpu_add_return(x, h, v);
}
/// this_cpu_sub(x, h, v) - adds -(T)v: the negation happens in T, as in the kernel, so
/// subtracting an unsigned int 1 from a long subtracts 1.
template <class X, class T>
void this_cpu_sub(X& x, percpu<T> h, detail::identity_t<T> v) noexcept {
    (void)this_cpu_add_return(x, h, detail::wrap_neg<T>(v));
}
template <class X, class T>
T this_cpu_sub_return(X& x, percpu<T> h, detail::identity_t<T> v) noexcept {
    return this_cpu_add_return(x, h, detail::wrap_neg<T>(v));
}
template <class X, class T>
void this_cpu_inc(X& x, percpu<T> h) noexcept {
    (void)this_cpu_add_return(x, h, T{1});
}
template <class X, class T>
void this_cpu_dec(X& x, percpu<T> h) noexcept {
    (void)this_cpu_add_return(x, h, detail::wrap_neg<T>(T{1}));
}
template <class X, class T>
T this_cpu_inc_return(X& x, percpu<T> h) noexcept {
    return this_cpu_add_return(x, h, T{1});
}
template <class X, class T>
T this_cpu_dec_return(X& x, percpu<T> h) noexcept {
    return this_cpu_add_return(x, h, detail::wrap_neg<T>(T{1}));
}

/// sum_type<T> - what sum(h) adds in by default: integral T widened to 64 bits.
template <class T>
using sum_type = std::conditional_t<
    detail::this_cpu_arith<T> && sizeof(T) < sizeof(std::uint64_t),
    std::conditional_t<std::is_signed<T>::value, std::int64_t, std::uint64_t>, T>;

/// sum<R>(h) - the sum over every CPU's copy, accumulated in R (integral R wraps).
/// R defaults to sum_type<T>: a 64-bit integer of T's signedness for integral T (four
/// u8 copies of 200 sum to 800, not 32), T otherwise. Name R to sum in T. Lock-free: each copy is read whole (relaxed), but copies updated meanwhile
/// may be seen before or after the update, as with the kernel's for_each_possible_cpu
/// sums. A T wider than the machine's atomics (64 bits on a Cortex-M) can be read torn
/// while another CPU writes it.
template <class R = void, class T>
auto sum(percpu<T> h) noexcept {
    using acc_t = std::conditional_t<std::is_void<R>::value, sum_type<T>, R>;
    static_assert(std::is_arithmetic<T>::value && std::is_arithmetic<acc_t>::value, "pcpu: sum() needs arithmetic types");
    acc_t acc{};
    for (unsigned cpu = 0; cpu < h.nr_cpus(); ++cpu) {
        const acc_t v = static_cast<acc_t>(detail::load_relaxed(h.ptr(cpu)));
        if constexpr (std::is_integral<acc_t>::value && !std::is_same<acc_t, bool>::value)
            acc = detail::wrap_add(acc, v);
        else
            acc = static_cast<acc_t>(acc + v);
    }
    return acc;
}

} // namespace pcpu

// The rest of the kernel's this-CPU operations (xchg, cmpxchg, and/or, raw forms).
#include "this_cpu_ops.hpp"
