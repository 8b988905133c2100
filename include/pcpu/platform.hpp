// SPDX-License-Identifier: MIT
// pcpu/platform.hpp - the platform contract: what pcpu asks of the system it runs on.
//
// A platform is a plain class; pcpu calls its members directly (no virtual calls) and
// holds it by value inside the allocator. platform_traits<P> reads the members, fills
// defaults for the optional ones, and each populate policy static_asserts, with a
// sentence naming the member, that the platform has what that policy needs.
//
// Every member that can allocate or block takes the allocation context. pcpu passes
// the caller's effective context (the caller's, narrowed by the task's scope), never
// a wider one; nofail is never passed on. All members are noexcept; failure is a
// return value, and a member that fails part-way undoes its own partial work.
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
//   context background_context() noexcept;  context of balance and depopulation, and the
//                                           cap on everything done under the sleeping
//                                           lock [noio: see allocator.hpp]
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
//
// ---- Required by policies that create chunks (contiguous, lazy_mapped) ------------
//   void slow_lock() noexcept;       the sleeping lock (pcpu_alloc_mutex): serialises
//   void slow_unlock() noexcept;     chunk creation, destruction, population and
//                                    balance. Never taken by an atomic allocation.
//   void* alloc_meta(std::size_t bytes, std::size_t align, context ctx) noexcept;
//                                    chunk structs, bitmaps and the temporary page array;
//                                    nullptr on failure; contents unspecified
//   void free_meta(void* p, std::size_t bytes) noexcept;
//
// ---- Required by contiguous (no MMU: every page exists from chunk creation) -------
//   void* alloc_units(std::size_t bytes, context ctx) noexcept;
//                                    nr_cpus * unit_size bytes, page aligned, for all
//                                    units of one chunk; nullptr on failure. With
//                                    first_chunk_config::unit_addrs, bytes is the span
//                                    of that layout (lowest unit to end of highest,
//                                    gaps included: unit_layout in populate.hpp)
//   void free_units(void* p, std::size_t bytes) noexcept;
//
// ---- Required by lazy_mapped (MMU: address space first, pages on demand) ----------
//   std::uintptr_t reserve(std::size_t bytes, context ctx) noexcept;
//                                    page-aligned address space for nr_cpus * unit_size
//                                    bytes (or the unit_addrs layout's span, as for
//                                    alloc_units), nothing mapped; 0 on failure
//   void release(std::uintptr_t addr, std::size_t bytes) noexcept;   (all unmapped)
//   bool alloc_pages(unsigned cpu, page_ref* out, std::size_t nr, context ctx) noexcept;
//                                    nr pages for `cpu` (NUMA hint), all or nothing
//   void free_pages(unsigned cpu, const page_ref* pages, std::size_t nr) noexcept;
//   bool map(std::uintptr_t addr, const page_ref* pages, std::size_t nr, context ctx) noexcept;
//                                    map nr pages at addr, all or nothing. pcpu calls it
//                                    under scope_apply(ctx): a real MMU's page-table
//                                    allocations do not take the context, the scope
//                                    reaches them.
//   void unmap(std::uintptr_t addr, page_ref* out, std::size_t nr) noexcept;
//                                    unmap nr pages at addr, writing the pages that were
//                                    mapped there to out (pcpu frees them after)
//   scope_token scope_apply(context ctx) noexcept;   narrow the task's implicit scope by
//   void scope_restore(scope_token t) noexcept;      ctx; restore (LIFO) - see scope.hpp
//   Optional cache/TLB maintenance, one call per span covering every CPU [no-ops]:
//   void flush_after_map(std::uintptr_t begin, std::uintptr_t end) noexcept;
//   void flush_before_unmap(std::uintptr_t begin, std::uintptr_t end) noexcept;
//   void flush_tlb(std::uintptr_t begin, std::uintptr_t end) noexcept;
#pragma once

#include "config.hpp"
#include "context.hpp"

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

// One detector per member: true if `p.member(args...)` is well formed.
#define PCPU_DETAIL_HAS_MEMBER(name, args)                                                          \
    template <class P, class Ctx, class = void>                                                    \
    struct has_##name : std::false_type {};                                                        \
    template <class P, class Ctx>                                                                  \
    struct has_##name<P, Ctx, void_t<decltype(std::declval<P&>().name args)>> : std::true_type {};

PCPU_DETAIL_HAS_MEMBER(index_lock, ())
PCPU_DETAIL_HAS_MEMBER(index_unlock, ())
PCPU_DETAIL_HAS_MEMBER(slow_lock, ())
PCPU_DETAIL_HAS_MEMBER(slow_unlock, ())
PCPU_DETAIL_HAS_MEMBER(this_cpu, ())
PCPU_DETAIL_HAS_MEMBER(warn, (static_cast<const char*>(nullptr)))
PCPU_DETAIL_HAS_MEMBER(current_scope, ())
PCPU_DETAIL_HAS_MEMBER(request_balance, ())
PCPU_DETAIL_HAS_MEMBER(background_context, ())
PCPU_DETAIL_HAS_MEMBER(op_begin, (std::declval<Ctx>()))
PCPU_DETAIL_HAS_MEMBER(op_end, ())
PCPU_DETAIL_HAS_MEMBER(irq_save, ())
PCPU_DETAIL_HAS_MEMBER(irq_restore, (std::declval<P&>().irq_save()))
PCPU_DETAIL_HAS_MEMBER(preempt_disable, ())
PCPU_DETAIL_HAS_MEMBER(preempt_enable, ())
PCPU_DETAIL_HAS_MEMBER(alloc_meta, (std::size_t{}, std::size_t{}, std::declval<Ctx>()))
PCPU_DETAIL_HAS_MEMBER(free_meta, (static_cast<void*>(nullptr), std::size_t{}))
PCPU_DETAIL_HAS_MEMBER(alloc_units, (std::size_t{}, std::declval<Ctx>()))
PCPU_DETAIL_HAS_MEMBER(free_units, (static_cast<void*>(nullptr), std::size_t{}))
PCPU_DETAIL_HAS_MEMBER(reserve, (std::size_t{}, std::declval<Ctx>()))
PCPU_DETAIL_HAS_MEMBER(release, (std::uintptr_t{}, std::size_t{}))
PCPU_DETAIL_HAS_MEMBER(alloc_pages, (0u, static_cast<page_ref*>(nullptr), std::size_t{}, std::declval<Ctx>()))
PCPU_DETAIL_HAS_MEMBER(free_pages, (0u, static_cast<const page_ref*>(nullptr), std::size_t{}))
PCPU_DETAIL_HAS_MEMBER(map, (std::uintptr_t{}, static_cast<const page_ref*>(nullptr), std::size_t{},
                       std::declval<Ctx>()))
PCPU_DETAIL_HAS_MEMBER(unmap, (std::uintptr_t{}, static_cast<page_ref*>(nullptr), std::size_t{}))
PCPU_DETAIL_HAS_MEMBER(scope_apply, (std::declval<Ctx>()))
PCPU_DETAIL_HAS_MEMBER(flush_after_map, (std::uintptr_t{}, std::uintptr_t{}))
PCPU_DETAIL_HAS_MEMBER(flush_before_unmap, (std::uintptr_t{}, std::uintptr_t{}))
PCPU_DETAIL_HAS_MEMBER(flush_tlb, (std::uintptr_t{}, std::uintptr_t{}))
#undef PCPU_DETAIL_HAS_MEMBER
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
    /// background_context(p) - balance and depopulation run with it, and it caps every
    /// callback made under the sleeping lock. Default noio: see allocator.hpp.
    static context background_context(P& p) noexcept {
        if constexpr (has<detail::has_background_context>) return context(p.background_context());
        else return (void)p, ctx_traits::noio();
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
