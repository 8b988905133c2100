// SPDX-License-Identifier: MIT
// pcpu/this_cpu_ops.hpp - the rest of the kernel's this-CPU operation set
// (include/linux/percpu-defs.h): exchange, compare-and-exchange (single and double
// width), and/or, and the raw forms for code that already holds the guard.
// Included by percpu.hpp; the operation table is in docs/architecture.md.
//
// Every operation here goes through one dispatch, this_cpu_apply(), which reads the
// platform's guard exactly as the add/read/write of percpu.hpp do:
//
//   pinning guard (irq_save, else preempt_disable)   the guard around a plain load and
//                                                    store of the running CPU's copy
//   no guard (hosts)                                 one atomic instruction on the copy
//                                                    of the CPU the task ran on when it
//                                                    asked
//   no guard, restartable sections (Linux rseq,      next(old) as a compare-and-store
//   T of 4 or 8 bytes: percpu.hpp)                   section on the running CPU's copy
//                                                    (add: a load, add, store section)
//
// Ordering. The arithmetic operations are relaxed (statistics publish nothing). The
// exchanges are not: on a host, "the same CPU" is several threads, and a freelist
// publishes the object it pushes through the pointer it swaps in. So without a guard
// xchg and cmpxchg are acquire-release (free on x86, where a locked instruction is a
// full barrier anyway); under a guard, whatever the guard's entry and exit order is
// enough, as on one real CPU. A restartable section is the guarded case: only sections
// on the copy's own CPU write it, and a context switch orders everything a task did
// before it against the next task on that CPU.
//
// Double width. this_cpu_cmpxchg_double() compares and swaps a T two machine words
// wide (a pointer and a tag, the kernel's cmpxchg_double/cmpxchg128 use). Under a guard
// any target has it (the guard makes load-compare-store one step). Without one it needs
// a hardware compare-and-swap of that width: cmpxchg16b on x86-64 (build with -mcx16),
// LDREXD/STREXD on ARMv7-A, CASP on AArch64; a Cortex-M has none, and the call is a
// compile error naming the cause rather than a silent lock.
//
// Raw forms. raw_this_cpu_op(g, h, ...) is the kernel's __this_cpu_op(): the caller
// already holds the guard g (a this_cpu_guard), so no guard is taken; the copy is
// g.cpu()'s. The guard object is the proof that one is held; in checked builds
// (PCPU_ASSERT enabled) the raw form also asserts that the running CPU is still
// g.cpu(), which catches a guard object handed to another task. On a platform without
// a guard "held" pins nothing: a this_cpu_guard there only names the CPU the task ran
// on when it was taken, and the raw forms are the same atomic instructions as the
// plain ones, on that CPU's copy (sums stay exact; locality is a hint) - or, where the
// platform has restartable sections, the same sections as the plain forms, on the
// running CPU's copy (an atomic on g.cpu()'s copy after a migration would race with
// that CPU's plain stores).
//
// Operands are converted to T explicitly, as the kernel converts silently: adding the
// constant 300 to a u8 adds 44 and does not warn with -Woverflow or -Wconversion.
#pragma once

#include "percpu.hpp"

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace pcpu {

namespace detail {

/// this_cpu_word<T> - what xchg and cmpxchg take by value: integers and pointers.
template <class T>
inline constexpr bool this_cpu_word =
    (std::is_integral<T>::value && !std::is_same<T, bool>::value) || std::is_pointer<T>::value;

/// this_cpu_cas_type<T> - a T compare-and-swap can take: bytes compared exactly (no
/// padding), a size some machine swaps in one step, aligned to that size.
template <class T>
inline constexpr bool this_cpu_cas_type =
    this_cpu_word<T> || (std::is_trivially_copyable<T>::value && std::has_unique_object_representations<T>::value &&
                         (sizeof(T) & (sizeof(T) - 1)) == 0 && sizeof(T) <= 2 * sizeof(std::uintptr_t) &&
                         alignof(T) >= sizeof(T));

#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 cas_u128 __attribute__((may_alias));
#endif
typedef std::uint64_t cas_u64 __attribute__((may_alias));

/// cas_native<T> - the target compares and swaps sizeof(T) bytes in one instruction.
template <class T>
inline constexpr bool cas_native = lock_free<T>
#if defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16) && defined(__SIZEOF_INT128__)
                                   || sizeof(T) == 16
#endif
#if defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_8)
                                   || sizeof(T) == 8
#endif
    ;

template <class T>
bool same_value(const T& a, const T& b) noexcept {
    if constexpr (this_cpu_word<T>) return a == b;
    else return __builtin_memcmp(&a, &b, sizeof(T)) == 0;
}

/// cas_value(p, expected, desired) - one compare-and-swap; returns what *p held.
template <class T>
T cas_value(T* p, T expected, T desired) noexcept {
    if constexpr (lock_free<T>) {
        __atomic_compare_exchange(p, &expected, &desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        return expected;
#if defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16) && defined(__SIZEOF_INT128__)
    } else if constexpr (sizeof(T) == 16) {
        // GCC sends 16-byte __atomic calls to libatomic; the __sync form is the
        // instruction itself (a full barrier).
        cas_u128 e, d;
        std::memcpy(&e, &expected, sizeof e);
        std::memcpy(&d, &desired, sizeof d);
        const cas_u128 r = __sync_val_compare_and_swap(reinterpret_cast<cas_u128*>(p), e, d);
        std::memcpy(&expected, &r, sizeof r);
        return expected;
#endif
#if defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_8)
    } else if constexpr (sizeof(T) == 8) {
        cas_u64 e, d;
        std::memcpy(&e, &expected, sizeof e);
        std::memcpy(&d, &desired, sizeof d);
        const cas_u64 r = __sync_val_compare_and_swap(reinterpret_cast<cas_u64*>(p), e, d);
        std::memcpy(&expected, &r, sizeof r);
        return expected;
#endif
    } else {
        static_assert(sizeof(T) == 0, "pcpu: unreachable: cas_value on a type without a native CAS");
        return expected;
    }
}

/// convert<T>(v) - the operand as T: integers explicitly (wrapping, as the kernel's
/// typeof cast does), anything else only where it converts implicitly.
template <class T, class V>
constexpr T convert(V v) noexcept {
    if constexpr (std::is_integral<T>::value && (std::is_integral<V>::value || std::is_enum<V>::value))
        return static_cast<T>(v);
    else
        return v;
}

#define PCPU_NO_GUARD_MSG                                                                                      \
    "pcpu: without a platform this-CPU guard (irq_save/irq_restore or preempt_disable/preempt_enable), "     \
    "this-CPU operations need T to be lock-free atomic on this machine"
#define PCPU_NO_DWCAS_MSG                                                                                      \
    "pcpu: this target has no compare-and-swap as wide as T and the platform has no this-CPU guard "         \
    "(irq_save/irq_restore or preempt_disable/preempt_enable) to make one: give the platform a guard, or on " \
    "x86-64 build with -mcx16 (Cortex-M has no double-width CAS)"

// The operations, each once: guarded() runs with the guard held (plain load and
// store), atomic() without one (a single atomic instruction).
template <class T>
struct op_read {
    T guarded(T* p) const noexcept { return load_relaxed(p); }
    T atomic(T* p) const noexcept {
        static_assert(lock_free<T>, PCPU_NO_GUARD_MSG);
        return load_relaxed(p);
    }
};
template <class T>
struct op_write {
    T v;
    bool next(const T&, T& n) const noexcept { return n = v, true; }
    void result(const T&) const noexcept {}
    void guarded(T* p) const noexcept { store_relaxed(p, v); }
    void atomic(T* p) const noexcept {
        static_assert(lock_free<T>, PCPU_NO_GUARD_MSG);
        store_relaxed(p, v);
    }
};
template <class T>
struct op_add_return {
    T v;
    bool next(const T& old, T& n) const noexcept { return n = wrap_add(old, v), true; }
    T result(const T& old) const noexcept { return wrap_add(old, v); }
    T guarded(T* p) const noexcept {
        const T n = wrap_add(load_relaxed(p), v);
        store_relaxed(p, n);
        return n;
    }
    T atomic(T* p) const noexcept {
        static_assert(lock_free<T>, PCPU_NO_GUARD_MSG);
        return __atomic_add_fetch(p, v, __ATOMIC_RELAXED);
    }
};
template <class T>
struct op_and {
    T v;
    bool next(const T& old, T& n) const noexcept { return n = static_cast<T>(old & v), true; }
    void result(const T&) const noexcept {}
    void guarded(T* p) const noexcept { store_relaxed(p, static_cast<T>(load_relaxed(p) & v)); }
    void atomic(T* p) const noexcept {
        static_assert(lock_free<T>, PCPU_NO_GUARD_MSG);
        __atomic_and_fetch(p, v, __ATOMIC_RELAXED);
    }
};
template <class T>
struct op_or {
    T v;
    bool next(const T& old, T& n) const noexcept { return n = static_cast<T>(old | v), true; }
    void result(const T&) const noexcept {}
    void guarded(T* p) const noexcept { store_relaxed(p, static_cast<T>(load_relaxed(p) | v)); }
    void atomic(T* p) const noexcept {
        static_assert(lock_free<T>, PCPU_NO_GUARD_MSG);
        __atomic_or_fetch(p, v, __ATOMIC_RELAXED);
    }
};
template <class T>
struct op_xchg {
    T v;
    bool next(const T&, T& n) const noexcept { return n = v, true; }
    T result(const T& old) const noexcept { return old; }
    T guarded(T* p) const noexcept {
        const T old = load_relaxed(p);
        store_relaxed(p, v);
        return old;
    }
    T atomic(T* p) const noexcept {
        static_assert(cas_native<T>, PCPU_NO_DWCAS_MSG);
        if constexpr (lock_free<T>) {
            T nv = v, old;
            __atomic_exchange(p, &nv, &old, __ATOMIC_ACQ_REL);
            return old;
        } else {
            // No wide exchange instruction: a CAS loop, whose first round reads.
            T cur{};
            for (;;) {
                const T seen = cas_value(p, cur, v);
                if (same_value(seen, cur)) return seen;
                cur = seen;
            }
        }
    }
};
/// op_cmpxchg - the kernel's cmpxchg: store n if the copy equals o; return the old
/// value either way (the caller compares it with o).
template <class T>
struct op_cmpxchg {
    T o, n;
    bool next(const T& old, T& nv) const noexcept {
        if (!same_value(old, o)) return false;
        nv = n;
        return true;
    }
    T result(const T& old) const noexcept { return old; }
    T guarded(T* p) const noexcept {
        const T old = load_relaxed(p);
        if (same_value(old, o)) store_relaxed(p, n);
        return old;
    }
    T atomic(T* p) const noexcept {
        static_assert(cas_native<T>, PCPU_NO_DWCAS_MSG);
        return cas_value(p, o, n);
    }
};

#undef PCPU_NO_GUARD_MSG
#undef PCPU_NO_DWCAS_MSG

template <class Op, class T, class = void>
struct op_writes : std::false_type {};
template <class Op, class T>
struct op_writes<Op, T, void_t<decltype(std::declval<const Op&>().next(std::declval<const T&>(), std::declval<T&>()))>>
    : std::true_type {};

/// unguarded_apply(p, h, op, cpu) - op on the running CPU's copy in a restartable section
/// where P offers them for T (percpu.hpp: then every write of T must take one), else
/// op.atomic() on cpu's copy.
template <class P, class T, class Op>
auto unguarded_apply(P& p, percpu<T> h, const Op& op, unsigned cpu) noexcept {
    if constexpr (rseq_capable<P, T> && op_writes<Op, T>::value) {
        if constexpr (std::is_same<Op, op_add_return<T>>::value) {
            T n;
            if (rseq_add(p, h, op.v, n)) return n;
        } else {
            T old;
            const auto f = [&op](const T& o, T& n) { return op.next(o, n); };
            if (rseq_rmw(p, h, f, old) != rseq_result::unusable) return op.result(old);
        }
    }
    return op.atomic(h.ptr(cpu));
}

/// this_cpu_apply(x, h, op) - op on the running CPU's copy, under the platform's guard
/// when it has one. The one place the guard styles are told apart for this header.
template <class X, class T, class Op>
auto this_cpu_apply(X& x, percpu<T> h, const Op& op) noexcept {
    using P = std::remove_reference_t<decltype(platform_of(x))>;
    P& p = platform_of(x);
    if constexpr (this_cpu_guard<P>::pins) {
        this_cpu_guard<P> g(p);
        return op.guarded(h.ptr(g.cpu()));
    } else {
        return unguarded_apply(p, h, op, static_cast<unsigned>(p.this_cpu()));
    }
}

/// raw_apply(g, h, op) - op on g.cpu()'s copy; the caller holds g. (With restartable
/// sections the running CPU's: g pins nothing there, and only a section on a copy's
/// own CPU may write it.)
template <class P, class T, class Op>
auto raw_apply(const this_cpu_guard<P>& g, percpu<T> h, const Op& op) noexcept {
    if constexpr (this_cpu_guard<P>::pins) {
        // Held means: still on the CPU the guard pinned (a guard handed to another
        // task, or used after its scope was left by a copy of the reference, is not).
        PCPU_ASSERT(static_cast<unsigned>(g.platform().this_cpu()) == g.cpu());
        return op.guarded(h.ptr(g.cpu()));
    } else {
        return unguarded_apply(g.platform(), h, op, g.cpu());
    }
}

/// try_from(old, expected) - try_cmpxchg's answer from cmpxchg's: true if it swapped,
/// else false with expected updated to what the copy held.
template <class T>
bool try_from(const T& old, T& expected) noexcept {
    if (same_value(old, expected)) return true;
    expected = old;
    return false;
}

template <class T>
void check_cas_type() noexcept {
    static_assert(this_cpu_cas_type<T>, "pcpu: this-CPU xchg/cmpxchg need an integer, a pointer, or a trivially "
                                        "copyable T without padding of 1, 2, 4, 8 or 16 bytes aligned to its size");
}
template <class T>
void check_dword_type() noexcept {
    check_cas_type<T>();
    static_assert(sizeof(T) == 2 * sizeof(std::uintptr_t),
                  "pcpu: this_cpu_cmpxchg_double needs a T two machine words wide (e.g. a pointer and a tag), "
                  "aligned to its size");
}
template <class T>
void check_bits_type() noexcept {
    static_assert(this_cpu_arith<T>, "pcpu: this-CPU and/or need an integral T (not bool)");
}

/// converts_silently<T, V> - an integer operand of another type than T: take it and
/// convert it explicitly (see the file comment) instead of letting the compiler warn.
template <class T, class V>
inline constexpr bool converts_silently =
    this_cpu_arith<T> && (std::is_integral<V>::value || std::is_enum<V>::value) && !std::is_same<T, V>::value;

} // namespace detail

// ---- Converting forms of percpu.hpp's operations (the operand as T, explicitly) ----

template <class X, class T, class V, std::enable_if_t<detail::converts_silently<T, V>, int> = 0>
void this_cpu_write(X& x, percpu<T> h, V v) noexcept {
    this_cpu_write(x, h, static_cast<T>(v));
}
template <class X, class T, class V, std::enable_if_t<detail::converts_silently<T, V>, int> = 0>
T this_cpu_add_return(X& x, percpu<T> h, V v) noexcept {
    return this_cpu_add_return(x, h, static_cast<T>(v));
}
template <class X, class T, class V, std::enable_if_t<detail::converts_silently<T, V>, int> = 0>
void this_cpu_add(X& x, percpu<T> h, V v) noexcept {
    this_cpu_add(x, h, static_cast<T>(v));
}
template <class X, class T, class V, std::enable_if_t<detail::converts_silently<T, V>, int> = 0>
void this_cpu_sub(X& x, percpu<T> h, V v) noexcept {
    this_cpu_sub(x, h, static_cast<T>(v));
}
template <class X, class T, class V, std::enable_if_t<detail::converts_silently<T, V>, int> = 0>
T this_cpu_sub_return(X& x, percpu<T> h, V v) noexcept {
    return this_cpu_sub_return(x, h, static_cast<T>(v));
}

// ---- New operations -------------------------------------------------------------------

/// this_cpu_and(x, h, v) / this_cpu_or(x, h, v) - the running CPU's copy &= v / |= v.
template <class X, class T, class V>
void this_cpu_and(X& x, percpu<T> h, V v) noexcept {
    detail::check_bits_type<T>();
    detail::this_cpu_apply(x, h, detail::op_and<T>{detail::convert<T>(v)});
}
template <class X, class T, class V>
void this_cpu_or(X& x, percpu<T> h, V v) noexcept {
    detail::check_bits_type<T>();
    detail::this_cpu_apply(x, h, detail::op_or<T>{detail::convert<T>(v)});
}

/// this_cpu_xchg(x, h, v) - store v in the running CPU's copy; returns the old value.
template <class X, class T, class V>
T this_cpu_xchg(X& x, percpu<T> h, V v) noexcept {
    detail::check_cas_type<T>();
    return detail::this_cpu_apply(x, h, detail::op_xchg<T>{detail::convert<T>(v)});
}

/// this_cpu_cmpxchg(x, h, o, n) - if the running CPU's copy equals o, store n. Returns
/// the value the copy held: o exactly when it swapped.
template <class X, class T, class O, class N>
T this_cpu_cmpxchg(X& x, percpu<T> h, O o, N n) noexcept {
    detail::check_cas_type<T>();
    return detail::this_cpu_apply(x, h, detail::op_cmpxchg<T>{detail::convert<T>(o), detail::convert<T>(n)});
}

/// this_cpu_try_cmpxchg(x, h, expected, n) - if the running CPU's copy equals expected,
/// store n and return true; else return false and set expected to the copy's value
/// (ready for the next round of a retry loop).
template <class X, class T, class N>
bool this_cpu_try_cmpxchg(X& x, percpu<T> h, T& expected, N n) noexcept {
    detail::check_cas_type<T>();
    return detail::try_from(this_cpu_cmpxchg(x, h, expected, n), expected);
}

/// this_cpu_cmpxchg_double(x, h, o, n) / this_cpu_try_cmpxchg_double(x, h, expected, n)
/// - the same on a T two machine words wide (the kernel's this_cpu_cmpxchg_double,
/// this_cpu_cmpxchg128 on 64-bit, this_cpu_cmpxchg64 on 32-bit). See the file comment
/// for where it compiles.
template <class X, class T>
T this_cpu_cmpxchg_double(X& x, percpu<T> h, const T& o, const T& n) noexcept {
    detail::check_dword_type<T>();
    return this_cpu_cmpxchg(x, h, o, n);
}
template <class X, class T>
bool this_cpu_try_cmpxchg_double(X& x, percpu<T> h, T& expected, const T& n) noexcept {
    detail::check_dword_type<T>();
    return this_cpu_try_cmpxchg(x, h, expected, n);
}

// ---- Raw forms: the caller holds g (the kernel's __this_cpu_*) ------------------------

template <class P, class T>
T raw_this_cpu_read(const this_cpu_guard<P>& g, percpu<T> h) noexcept {
    return detail::raw_apply(g, h, detail::op_read<T>{});
}
template <class P, class T, class V>
void raw_this_cpu_write(const this_cpu_guard<P>& g, percpu<T> h, V v) noexcept {
    detail::raw_apply(g, h, detail::op_write<T>{detail::convert<T>(v)});
}
template <class P, class T, class V>
T raw_this_cpu_add_return(const this_cpu_guard<P>& g, percpu<T> h, V v) noexcept {
    static_assert(detail::this_cpu_arith<T>, "pcpu: this-CPU arithmetic needs an integral T (not bool)");
    return detail::raw_apply(g, h, detail::op_add_return<T>{detail::convert<T>(v)});
}
template <class P, class T, class V>
void raw_this_cpu_add(const this_cpu_guard<P>& g, percpu<T> h, V v) noexcept {
    (void)raw_this_cpu_add_return(g, h, v);
}
template <class P, class T, class V>
T raw_this_cpu_sub_return(const this_cpu_guard<P>& g, percpu<T> h, V v) noexcept {
    return raw_this_cpu_add_return(g, h, detail::wrap_neg<T>(detail::convert<T>(v)));
}
template <class P, class T, class V>
void raw_this_cpu_sub(const this_cpu_guard<P>& g, percpu<T> h, V v) noexcept {
    (void)raw_this_cpu_sub_return(g, h, v);
}
template <class P, class T>
T raw_this_cpu_inc_return(const this_cpu_guard<P>& g, percpu<T> h) noexcept {
    return raw_this_cpu_add_return(g, h, T{1});
}
template <class P, class T>
T raw_this_cpu_dec_return(const this_cpu_guard<P>& g, percpu<T> h) noexcept {
    return raw_this_cpu_sub_return(g, h, T{1});
}
template <class P, class T>
void raw_this_cpu_inc(const this_cpu_guard<P>& g, percpu<T> h) noexcept {
    (void)raw_this_cpu_add_return(g, h, T{1});
}
template <class P, class T>
void raw_this_cpu_dec(const this_cpu_guard<P>& g, percpu<T> h) noexcept {
    (void)raw_this_cpu_sub_return(g, h, T{1});
}
template <class P, class T, class V>
void raw_this_cpu_and(const this_cpu_guard<P>& g, percpu<T> h, V v) noexcept {
    detail::check_bits_type<T>();
    detail::raw_apply(g, h, detail::op_and<T>{detail::convert<T>(v)});
}
template <class P, class T, class V>
void raw_this_cpu_or(const this_cpu_guard<P>& g, percpu<T> h, V v) noexcept {
    detail::check_bits_type<T>();
    detail::raw_apply(g, h, detail::op_or<T>{detail::convert<T>(v)});
}
template <class P, class T, class V>
T raw_this_cpu_xchg(const this_cpu_guard<P>& g, percpu<T> h, V v) noexcept {
    detail::check_cas_type<T>();
    return detail::raw_apply(g, h, detail::op_xchg<T>{detail::convert<T>(v)});
}
template <class P, class T, class O, class N>
T raw_this_cpu_cmpxchg(const this_cpu_guard<P>& g, percpu<T> h, O o, N n) noexcept {
    detail::check_cas_type<T>();
    return detail::raw_apply(g, h, detail::op_cmpxchg<T>{detail::convert<T>(o), detail::convert<T>(n)});
}
template <class P, class T, class N>
bool raw_this_cpu_try_cmpxchg(const this_cpu_guard<P>& g, percpu<T> h, T& expected, N n) noexcept {
    return detail::try_from(raw_this_cpu_cmpxchg(g, h, expected, n), expected);
}
template <class P, class T>
T raw_this_cpu_cmpxchg_double(const this_cpu_guard<P>& g, percpu<T> h, const T& o, const T& n) noexcept {
    detail::check_dword_type<T>();
    return raw_this_cpu_cmpxchg(g, h, o, n);
}
template <class P, class T>
bool raw_this_cpu_try_cmpxchg_double(const this_cpu_guard<P>& g, percpu<T> h, T& expected, const T& n) noexcept {
    detail::check_dword_type<T>();
    return raw_this_cpu_try_cmpxchg(g, h, expected, n);
}

} // namespace pcpu
