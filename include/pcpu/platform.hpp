// SPDX-License-Identifier: MIT
// pcpu/platform.hpp - the platform contract: what pcpu asks of the system it runs on.
//
// A platform is a plain class; pcpu calls its members directly (no virtual calls) and
// holds it by value inside the allocator. platform_traits<P> reads the members, fills
// defaults for the optional ones, and rejects a platform that lacks a required member
// with a static_assert that names it.
//
// Required of every platform:
//   void index_lock() noexcept;      IRQ-safe lock over all index state (bitmaps, hints,
//   void index_unlock() noexcept;    slot lists, counters): the kernel's pcpu_lock.
//                                    Single-core firmware may make them empty, or mask
//                                    interrupts if free() can run from an ISR.
// Optional (default in brackets):
//   using context = ...;             the allocation-context type [pcpu::gfp]; needs a
//                                    context_traits specialization
//   static constexpr unsigned page_shift;   [PCPU_DEFAULT_PAGE_SHIFT]
//   static constexpr std::size_t max_cpus;  size of the per-CPU offset table [64]
//   void warn(const char* msg) noexcept;    diagnostics; pcpu rate-limits and honours
//                                           nowarn [silent]
//   context current_scope() noexcept;       the calling task's implicit scope (the
//                                           memalloc scope); the effective context is
//                                           the caller's narrowed by it [full]
#pragma once

#include "config.hpp"
#include "context.hpp"

#include <type_traits>

namespace pcpu {

namespace detail {
template <class P, class = void>
struct platform_context { using type = gfp; };
template <class P>
struct platform_context<P, std::void_t<typename P::context>> { using type = typename P::context; };

template <class P, class = void>
struct platform_page_shift : std::integral_constant<unsigned, PCPU_DEFAULT_PAGE_SHIFT> {};
template <class P>
struct platform_page_shift<P, std::void_t<decltype(P::page_shift)>>
    : std::integral_constant<unsigned, P::page_shift> {};

template <class P, class = void>
struct platform_max_cpus : std::integral_constant<std::size_t, 64> {};
template <class P>
struct platform_max_cpus<P, std::void_t<decltype(P::max_cpus)>>
    : std::integral_constant<std::size_t, P::max_cpus> {};

template <class P, class = void>
struct has_index_lock : std::false_type {};
template <class P>
struct has_index_lock<P, std::void_t<decltype(std::declval<P&>().index_lock()),
                                     decltype(std::declval<P&>().index_unlock())>> : std::true_type {};

template <class P, class = void>
struct has_warn : std::false_type {};
template <class P>
struct has_warn<P, std::void_t<decltype(std::declval<P&>().warn(static_cast<const char*>(nullptr)))>>
    : std::true_type {};

template <class P, class Ctx, class = void>
struct has_current_scope : std::false_type {};
template <class P, class Ctx>
struct has_current_scope<P, Ctx, std::void_t<decltype(Ctx(std::declval<P&>().current_scope()))>>
    : std::true_type {};
} // namespace detail

/// platform_traits<P> - the one place pcpu reads a platform.
template <class P>
struct platform_traits {
    static_assert(detail::has_index_lock<P>::value,
                  "pcpu: the platform must provide `void index_lock() noexcept` and "
                  "`void index_unlock() noexcept` (the IRQ-safe lock over index state; "
                  "empty bodies are fine on single-core firmware)");

    using context = typename detail::platform_context<P>::type;
    using ctx_traits = context_traits<context>;
    static constexpr unsigned page_shift = detail::platform_page_shift<P>::value;
    static constexpr std::size_t max_cpus = detail::platform_max_cpus<P>::value;
    static_assert(max_cpus >= 1, "pcpu: platform max_cpus must be at least 1");

    static void warn(P& p, const char* msg) noexcept {
        if constexpr (detail::has_warn<P>::value) p.warn(msg);
        else (void)p, (void)msg;
    }
    static context current_scope(P& p) noexcept {
        if constexpr (detail::has_current_scope<P, context>::value) return context(p.current_scope());
        else return (void)p, ctx_traits::full();
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
