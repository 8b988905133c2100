// SPDX-License-Identifier: MIT
// pcpu/platform.hpp - the platform contract: what pcpu asks of the system it runs on.
//
// A platform is a plain class; pcpu calls its members directly (no virtual calls) and
// holds it by value inside the allocator. platform_traits<P> reads the members, fills
// defaults for the optional ones, and each populate policy static_asserts, with a
// sentence naming the member, that the platform has what that policy needs.
//
// Every member that can allocate or block receives the allocation context, as its
// last parameter. pcpu passes the caller's effective context (the caller's, narrowed
// by the task's scope), never a wider one; nofail is never passed on. The members that
// block without allocating (the sleeping lock, the freeing and unmapping ones) may
// also be declared without it, as before they took it: pcpu then calls that form.
// All members are noexcept; failure is a return value, and a member that fails
// part-way undoes its own partial work. PCPU_PLATFORM_CONTRACT below is the same
// contract as a table, the one the code is generated from.
//
// ---- Required of every platform ---------------------------------------------------
//   void index_lock() noexcept;      IRQ-safe lock over all index state (bitmaps, hints,
//   void index_unlock() noexcept;    slot lists, counters): the kernel's pcpu_lock.
//                                    Single-core firmware may make them empty, or mask
//                                    interrupts if free() can run from an ISR.
//
// ---- Optional for every platform (default in brackets) ----------------------------
//   using context = ...;             the allocation-context type [pcpu::gfp]; needs a
//                                    context_traits specialization
//   static constexpr unsigned page_shift;   [PCPU_DEFAULT_PAGE_SHIFT]
//   static constexpr std::size_t max_cpus;  size of the per-CPU offset table [64]
//   unsigned this_cpu() noexcept;           the running CPU (typed this-CPU access)
//   void warn(const char* msg) noexcept;    diagnostics; pcpu rate-limits and honours
//                                           nowarn [silent]
//   context current_scope() noexcept;       the calling task's implicit scope (the
//                                           memalloc scope): the effective context is
//                                           the caller's narrowed by it [full]
//   void request_balance() noexcept;        pcpu asks for balance work; the platform
//                                           later calls allocator::balance() from a work
//                                           queue, idle hook or timer [nothing: the
//                                           application calls balance() itself]
//   context background_context() noexcept;  context of balance and depopulation
//                                           [noio: see allocator.hpp]
//   context sleeping_lock_cap() noexcept;   the cap on every callback made under the
//                                           sleeping lock [background_context()]: full
//                                           passes callers' contexts through unchanged
//                                           while balance keeps its own
//   void op_begin(context effective) noexcept;  bracket every public allocator
//   void op_end() noexcept;                     operation that may call back into the
//                                               platform (debug/context_checker.hpp)
//   this-CPU guard (percpu.hpp, counter.hpp): what makes a this-CPU read-modify-write
//   safe against preemption and migration. With neither pair, this-CPU operations are
//   relaxed atomic RMWs on the running CPU's slot (hosts) [none]:
//   token irq_save() noexcept;              mask local interrupts, return what restores
//   void irq_restore(token t) noexcept;     them (also excludes ISRs updating the data)
//   void preempt_disable() noexcept;        keep the task on its CPU, unpreempted (ISRs
//   void preempt_enable() noexcept;         must then not update the same data)
//   Restartable this-CPU sections (hosts with Linux rseq, platform/detail/rseq.hpp):
//   a platform without a guard may also offer, for U = uint32_t and uint64_t,
//   rseq_result rseq_add(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr,
//                        U v, U& out) noexcept;
//   rseq_result rseq_cmpxchg(std::uintptr_t base, const std::uintptr_t* offsets,
//                            unsigned nr, U expect, U desired, U& seen) noexcept;
//                                           the read-modify-write of the copy at base +
//                                           offsets[running CPU] as a section the
//                                           system restarts on preemption or migration
//                                           (plain loads and stores, no locked
//                                           instruction); unusable where this thread
//                                           cannot (percpu.hpp then uses atomics) [none]
//   rseq_result rseq_add_within(std::uintptr_t base, const std::uintptr_t* offsets,
//       unsigned nr, int32_t v, int32_t lo, int32_t hi, int32_t& seen) noexcept;
//                                           with them: the copy += v if the sum lies
//                                           strictly inside (lo, hi), else changed and
//                                           seen = the copy (counter.hpp's delta) [the
//                                           compare-and-store rounds]
//
// ---- Required by policies that create chunks (contiguous, lazy_mapped) ------------
//   void slow_lock(context ctx) noexcept;  the sleeping lock (pcpu_alloc_mutex):
//   void slow_unlock() noexcept;     serialises chunk creation, destruction, population
//                                    (but see the population event below) and balance.
//                                    Never taken by an atomic allocation.
//   void* alloc_meta(std::size_t bytes, std::size_t align, context ctx) noexcept;
//                                    chunk structs, bitmaps and the temporary page array;
//                                    nullptr on failure; contents unspecified
//   void free_meta(void* p, std::size_t bytes, context ctx) noexcept;
//
// ---- Required by contiguous (no MMU: every page exists from chunk creation) -------
//   void* alloc_units(std::size_t bytes, context ctx) noexcept;
//                                    nr_cpus * unit_size bytes, page aligned, for all
//                                    units of one chunk; nullptr on failure. With
//                                    first_chunk_config::unit_addrs, bytes is the span
//                                    of that layout (lowest unit to end of highest,
//                                    gaps included: unit_layout in backend/unit_layout.hpp)
//   void free_units(void* p, std::size_t bytes, context ctx) noexcept;
//
// ---- Required by lazy_mapped (MMU: address space first, pages on demand) ----------
//   std::uintptr_t reserve(std::size_t bytes, context ctx) noexcept;
//                                    page-aligned address space for nr_cpus * unit_size
//                                    bytes (or the unit_addrs layout's span, as for
//                                    alloc_units), nothing mapped; 0 on failure
//   void release(std::uintptr_t addr, std::size_t bytes, context ctx) noexcept;
//                                    (all unmapped)
//   bool alloc_pages(unsigned cpu, page_ref* out, std::size_t nr, context ctx) noexcept;
//                                    nr pages for `cpu` (NUMA hint), all or nothing
//   void free_pages(unsigned cpu, const page_ref* pages, std::size_t nr, context ctx) noexcept;
//   bool map(std::uintptr_t addr, const page_ref* pages, std::size_t nr, context ctx) noexcept;
//                                    map nr pages at addr, all or nothing. pcpu calls it
//                                    under scope_apply(ctx): a real MMU's page-table
//                                    allocations do not take the context, the scope
//                                    reaches them.
//   void unmap(std::uintptr_t addr, page_ref* out, std::size_t nr, context ctx) noexcept;
//                                    unmap nr pages at addr, writing the pages that were
//                                    mapped there to out (pcpu frees them after)
//   scope_token scope_apply(context ctx) noexcept;   narrow the task's implicit scope by
//   void scope_restore(scope_token t) noexcept;      ctx; restore (LIFO) - see scope.hpp
//   Optional cache/TLB maintenance, one call per span covering every CPU [no-ops]:
//   void flush_after_map(std::uintptr_t begin, std::uintptr_t end) noexcept;
//   void flush_before_unmap(std::uintptr_t begin, std::uintptr_t end) noexcept;
//   void flush_tlb(std::uintptr_t begin, std::uintptr_t end) noexcept;
//   Optional population event: with it, allocations populate their pages outside the
//   sleeping lock, two tasks at once on different page ranges, so the page callbacks
//   above must then be safe to run concurrently for disjoint ranges (the flushes for
//   overlapping spans). An eventcount [none: population stays under the sleeping lock]:
//   std::uint32_t populate_ticket() noexcept;   the current event count (pcpu reads it
//                                    under the index lock before it sleeps)
//   void populate_wait(std::uint32_t ticket, context ctx) noexcept;
//                                    sleep until populate_wake() has been called since
//                                    the ticket was read (at once if it already has)
//   void populate_wake() noexcept;   advance the count and wake every waiter
#pragma once

#include "config.hpp"
#include "context.hpp"

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace pcpu {

/// rseq_result - what a restartable this-CPU section did (see the contract above):
/// done; changed (a compare-and-store found another value, nothing stored); unusable
/// (not for this thread or CPU: use the atomic path).
enum class rseq_result : unsigned char { done, changed, unusable };

/// page_ref - names one page frame. Opaque to pcpu: an address, a frame number or a
/// file offset, whatever the platform's alloc_pages/map/unmap agree on.
using page_ref = std::uintptr_t;

namespace detail {
template <class...>
using void_t = void;

template <class P, class = void>
struct platform_context { using type = gfp; };
template <class P>
struct platform_context<P, void_t<typename P::context>> { using type = typename P::context; };

template <class P, class = void>
struct platform_page_shift : std::integral_constant<unsigned, PCPU_DEFAULT_PAGE_SHIFT> {};
template <class P>
struct platform_page_shift<P, void_t<decltype(P::page_shift)>> : std::integral_constant<unsigned, P::page_shift> {};

template <class P, class = void>
struct platform_max_cpus : std::integral_constant<std::size_t, 64> {};
template <class P>
struct platform_max_cpus<P, void_t<decltype(P::max_cpus)>> : std::integral_constant<std::size_t, P::max_cpus> {};

template <class...>
struct type_list {};
/// args_of<void(A...)> - a signature's parameter types as a type_list.
template <class Sig>
struct args_of;
template <class... A>
struct args_of<void(A...)> { using type = type_list<A...>; };
template <class L, class T>
struct append;
template <class... A, class T>
struct append<type_list<A...>, T> { using type = type_list<A..., T>; };

/// callable<Call, P, type_list<A...>> - Call::call(p, a...) is well formed.
template <class Call, class P, class L, class = void>
struct callable : std::false_type {};
template <class Call, class P, class... A>
struct callable<Call, P, type_list<A...>, void_t<decltype(Call::call(std::declval<P&>(), std::declval<A>()...))>>
    : std::true_type {};

template <class P, class Ctx>
using scope_token_of = decltype(std::declval<P&>().scope_apply(std::declval<Ctx>()));
template <class P>
using irq_token_of = decltype(std::declval<P&>().irq_save());

/// ctx_arg - how a member receives the allocation context: not at all; always, as its
/// last parameter; or as its last parameter if the platform declares it so (pcpu then
/// passes it; a platform written before the member took it keeps compiling).
enum class ctx_arg : std::uint8_t { none, last, optional };
/// need - which platforms must have a member.
enum class need : std::uint8_t { every, optional, chunks, contiguous, lazy_mapped, guard };
} // namespace detail

/// PCPU_PLATFORM_CONTRACT(X) - the platform contract, one row per member pcpu calls:
///
///     X(name, (parameters but the context), ctx_arg, blocks, backing, in_op, need)
///
/// blocks: may sleep, so never called under an atomic context or the index lock.
/// backing: a backing allocation (never receives nofail). in_op: called only inside
/// an operation bracket (op_begin/op_end). need: see detail::need. Every member that
/// blocks receives the context (ctx_arg last or optional). The file comment above
/// says the same in prose; the detectors below, the callback names and tables of
/// debug/platform_wrapper.hpp and the forwarders of the debugging platforms are all
/// generated from this table.
// clang-format off
#define PCPU_PLATFORM_CONTRACT(X)                                                                               \
    X(index_lock,         (),                                                         none,     0, 0, 0, every)   \
    X(index_unlock,       (),                                                         none,     0, 0, 0, every)   \
    X(slow_lock,          (),                                                         optional, 1, 0, 1, chunks)  \
    X(slow_unlock,        (),                                                         none,     0, 0, 1, chunks)  \
    X(this_cpu,           (),                                                         none,     0, 0, 0, optional) \
    X(warn,               (const char*),                                              none,     0, 0, 0, optional) \
    X(current_scope,      (),                                                         none,     0, 0, 0, optional) \
    X(request_balance,    (),                                                         none,     0, 0, 0, optional) \
    X(background_context, (),                                                         none,     0, 0, 0, optional) \
    X(sleeping_lock_cap,  (),                                                         none,     0, 0, 0, optional) \
    X(alloc_meta,         (std::size_t, std::size_t),                                 last,     1, 1, 1, chunks)  \
    X(free_meta,          (void*, std::size_t),                                       optional, 1, 0, 1, chunks)  \
    X(alloc_units,        (std::size_t),                                              last,     1, 1, 1, contiguous) \
    X(free_units,         (void*, std::size_t),                                       optional, 1, 0, 1, contiguous) \
    X(reserve,            (std::size_t),                                              last,     1, 1, 1, lazy_mapped) \
    X(release,            (std::uintptr_t, std::size_t),                              optional, 1, 0, 1, lazy_mapped) \
    X(alloc_pages,        (unsigned, page_ref*, std::size_t),                         last,     1, 1, 1, lazy_mapped) \
    X(free_pages,         (unsigned, const page_ref*, std::size_t),                   optional, 1, 0, 1, lazy_mapped) \
    X(map,                (std::uintptr_t, const page_ref*, std::size_t),             last,     1, 1, 1, lazy_mapped) \
    X(unmap,              (std::uintptr_t, page_ref*, std::size_t),                   optional, 1, 0, 1, lazy_mapped) \
    X(scope_apply,        (),                                                         last,     0, 0, 1, lazy_mapped) \
    X(scope_restore,      (::pcpu::detail::scope_token_of<P, Ctx>),                           none,     0, 0, 1, lazy_mapped) \
    X(flush_after_map,    (std::uintptr_t, std::uintptr_t),                           none,     0, 0, 1, optional) \
    X(flush_before_unmap, (std::uintptr_t, std::uintptr_t),                           none,     0, 0, 1, optional) \
    X(flush_tlb,          (std::uintptr_t, std::uintptr_t),                           none,     0, 0, 1, optional) \
    X(populate_ticket,    (),                                                         none,     0, 0, 1, optional) \
    X(populate_wait,      (std::uint32_t),                                            last,     1, 0, 1, optional) \
    X(populate_wake,      (),                                                         none,     0, 0, 1, optional)
/// PCPU_PLATFORM_BRACKETS(X) - the operation brackets, same columns: pcpu calls them
/// around every public operation that may call back into the platform.
#define PCPU_PLATFORM_BRACKETS(X)                                                                               \
    X(op_begin,           (),                                                         last,     0, 0, 0, optional) \
    X(op_end,             (),                                                         none,     0, 0, 0, optional)
/// PCPU_PLATFORM_GUARDS(X) - the this-CPU guard members (percpu.hpp), same columns:
/// read by the typed layer, never called by the allocator, so not callbacks.
#define PCPU_PLATFORM_GUARDS(X)                                                                                 \
    X(irq_save,           (),                                                         none,     0, 0, 0, guard)   \
    X(irq_restore,        (::pcpu::detail::irq_token_of<P>),                          none,     0, 0, 0, guard)   \
    X(preempt_disable,    (),                                                         none,     0, 0, 0, guard)   \
    X(preempt_enable,     (),                                                         none,     0, 0, 0, guard)
// clang-format on
// The restartable sections (rseq_add, rseq_cmpxchg, rseq_add_within) have no rows. A
// row is one member with one signature and one detector, and rseq_add and
// rseq_cmpxchg are one member per word width (percpu.hpp detects them per width,
// has_rseq<P, U>). The three are also one set, all or nothing per width: a row for
// rseq_add_within alone would split it, and platform_wrapper, which forwards every
// row, would offer the bounded add without the sections it goes with. So they are
// detected together in percpu.hpp, and a wrapped platform takes the atomic path.

namespace detail {
// For each member: call_<name>::call(p, args...) calls it; params_<name><P, Ctx> are
// its parameter types but the context; has_<name><P, Ctx> is true if the platform has
// it in a form the table allows (with or without the context where that is optional).
#define PCPU_DETAIL_CONTRACT_MEMBER(name, sig, ctx, blocks, backing, in_op, need_)                        \
    struct call_##name {                                                                                \
        template <class P, class... A>                                                                  \
        static auto call(P& p, A&&... a) noexcept -> decltype(p.name(static_cast<A&&>(a)...)) {         \
            return p.name(static_cast<A&&>(a)...);                                                      \
        }                                                                                               \
    };                                                                                                  \
    template <class P, class Ctx>                                                                       \
    struct params_##name {                                                                              \
        using type = typename args_of<void sig>::type;                                                  \
    };                                                                                                  \
    template <class P, class Ctx, class = void>                                                         \
    struct has_##name##_plain : std::false_type {};                                                     \
    template <class P, class Ctx>                                                                       \
    struct has_##name##_plain<P, Ctx,                                                                   \
                              std::enable_if_t<callable<call_##name, P, typename args_of<void sig>::type>::value>> \
        : std::true_type {};                                                                            \
    template <class P, class Ctx, class = void>                                                         \
    struct has_##name##_ctx : std::false_type {};                                                       \
    template <class P, class Ctx>                                                                       \
    struct has_##name##_ctx<                                                                            \
        P, Ctx,                                                                                         \
        std::enable_if_t<callable<call_##name, P, typename append<typename args_of<void sig>::type, Ctx>::type>::value>> \
        : std::true_type {};                                                                            \
    template <class P, class Ctx, class = void>                                                          \
    struct has_##name                                                                                   \
        : std::integral_constant<bool, ctx_arg::ctx == ctx_arg::none   ? has_##name##_plain<P, Ctx>::value \
                                       : ctx_arg::ctx == ctx_arg::last ? has_##name##_ctx<P, Ctx>::value   \
                                                                       : has_##name##_plain<P, Ctx>::value || \
                                                                             has_##name##_ctx<P, Ctx>::value> {};
PCPU_PLATFORM_CONTRACT(PCPU_DETAIL_CONTRACT_MEMBER)
PCPU_PLATFORM_BRACKETS(PCPU_DETAIL_CONTRACT_MEMBER)
PCPU_PLATFORM_GUARDS(PCPU_DETAIL_CONTRACT_MEMBER)
#undef PCPU_DETAIL_CONTRACT_MEMBER

/// call_with_context<Call>(p, c, a...) - Call with a... and the context c last when
/// the platform takes it there, else with a... alone (a member whose context is
/// optional, on a platform written before it took one).
template <class Call, class P, class Ctx, class... A>
decltype(auto) call_with_context(P& p, Ctx c, A... a) noexcept {
    if constexpr (callable<Call, P, type_list<A..., Ctx>>::value) return Call::call(p, a..., c);
    else return (void)c, Call::call(p, a...);
}
} // namespace detail

/// platform_traits<P> - the one place pcpu reads a platform.
template <class P>
struct platform_traits {
    using context = typename detail::platform_context<P>::type;
    using ctx_traits = context_traits<context>;
    template <template <class, class, class> class Has>
    static constexpr bool has = Has<P, context, void>::value;

    static_assert(has<detail::has_index_lock> && has<detail::has_index_unlock>,
                  "pcpu: the platform must provide `void index_lock() noexcept` and "
                  "`void index_unlock() noexcept` (the IRQ-safe lock over index state; "
                  "empty bodies are fine on single-core firmware)");

    static constexpr unsigned page_shift = detail::platform_page_shift<P>::value;
    static constexpr std::size_t max_cpus = detail::platform_max_cpus<P>::value;
    static_assert(max_cpus >= 1, "pcpu: platform max_cpus must be at least 1");

    static void warn(P& p, const char* msg) noexcept {
        if constexpr (has<detail::has_warn>) p.warn(msg);
        else (void)p, (void)msg;
    }
    static context current_scope(P& p) noexcept {
        if constexpr (has<detail::has_current_scope>) return context(p.current_scope());
        else return (void)p, ctx_traits::full();
    }
    static void request_balance(P& p) noexcept {
        if constexpr (has<detail::has_request_balance>) p.request_balance();
        else (void)p;
    }
    /// background_context(p) - balance and depopulation run with it. Default noio: see
    /// allocator.hpp.
    static context background_context(P& p) noexcept {
        if constexpr (has<detail::has_background_context>) return context(p.background_context());
        else return (void)p, ctx_traits::noio();
    }
    /// sleeping_lock_cap(p) - caps every callback made under the sleeping lock. Default
    /// the background context (one setting for both, as before the two were separate).
    static context sleeping_lock_cap(P& p) noexcept {
        if constexpr (has<detail::has_sleeping_lock_cap>) return context(p.sleeping_lock_cap());
        else return background_context(p);
    }
    static void op_begin(P& p, context c) noexcept {
        if constexpr (has<detail::has_op_begin>) p.op_begin(c);
        else (void)p, (void)c;
    }
    static void op_end(P& p) noexcept {
        if constexpr (has<detail::has_op_end>) p.op_end();
        else (void)p;
    }
    static void flush_after_map(P& p, std::uintptr_t b, std::uintptr_t e) noexcept {
        if constexpr (has<detail::has_flush_after_map>) p.flush_after_map(b, e);
        else (void)p, (void)b, (void)e;
    }
    static void flush_before_unmap(P& p, std::uintptr_t b, std::uintptr_t e) noexcept {
        if constexpr (has<detail::has_flush_before_unmap>) p.flush_before_unmap(b, e);
        else (void)p, (void)b, (void)e;
    }
    static void flush_tlb(P& p, std::uintptr_t b, std::uintptr_t e) noexcept {
        if constexpr (has<detail::has_flush_tlb>) p.flush_tlb(b, e);
        else (void)p, (void)b, (void)e;
    }

    /// parallel_population - the platform has the population event (populate_ticket,
    /// populate_wait, populate_wake) and so declares that its page callbacks
    /// (alloc_pages, map, free_pages, unmap, flushes) may run for two page ranges at
    /// once: allocations then populate outside the sleeping lock (core/populating.hpp).
    static constexpr bool parallel_population =
        has<detail::has_populate_ticket> && has<detail::has_populate_wait> && has<detail::has_populate_wake>;
    static_assert(parallel_population || (!has<detail::has_populate_ticket> && !has<detail::has_populate_wait> &&
                                           !has<detail::has_populate_wake>),
                  "pcpu: the population event needs all three members: `std::uint32_t populate_ticket() "
                  "noexcept`, `void populate_wait(std::uint32_t ticket, context) noexcept` and "
                  "`void populate_wake() noexcept`");
    static std::uint32_t populate_ticket(P& p) noexcept {
        if constexpr (parallel_population) return p.populate_ticket();
        else return (void)p, 0;
    }
    static void populate_wait(P& p, std::uint32_t ticket, context c) noexcept {
        if constexpr (parallel_population) p.populate_wait(ticket, c);
        else (void)p, (void)ticket, (void)c;
    }
    static void populate_wake(P& p) noexcept {
        if constexpr (parallel_population) p.populate_wake();
        else (void)p;
    }

    // The blocking members whose context is optional (detail::ctx_arg::optional):
    // called with it where the platform takes it.
    static void slow_lock(P& p, context c) noexcept { detail::call_with_context<detail::call_slow_lock>(p, c); }
    static void free_meta(P& p, void* m, std::size_t bytes, context c) noexcept {
        detail::call_with_context<detail::call_free_meta>(p, c, m, bytes);
    }
    static void free_units(P& p, void* u, std::size_t bytes, context c) noexcept {
        detail::call_with_context<detail::call_free_units>(p, c, u, bytes);
    }
    static void release(P& p, std::uintptr_t addr, std::size_t bytes, context c) noexcept {
        detail::call_with_context<detail::call_release>(p, c, addr, bytes);
    }
    static void free_pages(P& p, unsigned cpu, const page_ref* pages, std::size_t nr, context c) noexcept {
        detail::call_with_context<detail::call_free_pages>(p, c, cpu, pages, nr);
    }
    static void unmap(P& p, std::uintptr_t addr, page_ref* out, std::size_t nr, context c) noexcept {
        detail::call_with_context<detail::call_unmap>(p, c, addr, out, nr);
    }
};

/// index_guard<P> - holds the platform's index lock for a scope.
template <class P>
class index_guard {
public:
    explicit index_guard(P& p) noexcept : p_(p) { p_.index_lock(); }
    ~index_guard() { p_.index_unlock(); }
    index_guard(const index_guard&) = delete;
    index_guard& operator=(const index_guard&) = delete;

private:
    P& p_;
};

} // namespace pcpu
