// SPDX-License-Identifier: MIT
// pcpu/debug/platform_wrapper.hpp - a platform that forwards to another platform.
//
// Debugging platforms (the context checker, a tracer, a fault injector) sit between
// the allocator and the real platform. They must not change what the allocator sees:
// platform_traits detects optional members by expression, so a wrapper that declared
// alloc_units for a platform without one would turn a clean "the contiguous policy
// needs alloc_units" static_assert into a hard error deep inside a template, and a
// wrapper that hid request_balance would silently switch balance off.
//
// So every forwarding member below is a template whose return type is the inner
// call itself: it exists exactly when Inner has that member, with the same return
// type. A derived wrapper overrides a member by declaring one of the same name (name
// hiding), usually again as such a template, and reaches the real one through
// this->inner().
//
// The wrapper is also where the names of the contract's members live, as the
// `callback` enumeration, so every debugging and test platform counts and reports
// them with one vocabulary.
#pragma once

#include "../config.hpp"
#include "../context.hpp"
#include "../platform.hpp"

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace pcpu::debug {

/// callback - every member of the platform contract that pcpu calls, plus the
/// operation brackets. Used to index call counters.
enum class callback : std::uint8_t {
    index_lock,
    index_unlock,
    slow_lock,
    slow_unlock,
    this_cpu,
    warn,
    current_scope,
    request_balance,
    background_context,
    alloc_meta,
    free_meta,
    alloc_units,
    free_units,
    reserve,
    release,
    alloc_pages,
    free_pages,
    map,
    unmap,
    scope_apply,
    scope_restore,
    flush_after_map,
    flush_before_unmap,
    flush_tlb,
    op_begin,
    op_end,
};

/// nr_callbacks - number of callback values: the size of a per-callback table.
inline constexpr std::size_t nr_callbacks = static_cast<std::size_t>(callback::op_end) + 1;

/// callback_blocks(k) - k may sleep: it is wrong under an atomic operation and under
/// the index lock. The freeing members count: vunmap and vfree sleep, and the kernel
/// frees chunks only after dropping pcpu_lock (pcpu_balance_free).
constexpr bool callback_blocks(callback k) noexcept {
    switch (k) {
    case callback::slow_lock:
    case callback::alloc_meta:
    case callback::free_meta:
    case callback::alloc_units:
    case callback::free_units:
    case callback::reserve:
    case callback::release:
    case callback::alloc_pages:
    case callback::free_pages:
    case callback::map:
    case callback::unmap: return true;
    default: return false;
    }
}

/// callback_name(k) - the member's name, as it appears in the contract.
constexpr const char* callback_name(callback k) noexcept {
    switch (k) {
    case callback::index_lock: return "index_lock";
    case callback::index_unlock: return "index_unlock";
    case callback::slow_lock: return "slow_lock";
    case callback::slow_unlock: return "slow_unlock";
    case callback::this_cpu: return "this_cpu";
    case callback::warn: return "warn";
    case callback::current_scope: return "current_scope";
    case callback::request_balance: return "request_balance";
    case callback::background_context: return "background_context";
    case callback::alloc_meta: return "alloc_meta";
    case callback::free_meta: return "free_meta";
    case callback::alloc_units: return "alloc_units";
    case callback::free_units: return "free_units";
    case callback::reserve: return "reserve";
    case callback::release: return "release";
    case callback::alloc_pages: return "alloc_pages";
    case callback::free_pages: return "free_pages";
    case callback::map: return "map";
    case callback::unmap: return "unmap";
    case callback::scope_apply: return "scope_apply";
    case callback::scope_restore: return "scope_restore";
    case callback::flush_after_map: return "flush_after_map";
    case callback::flush_before_unmap: return "flush_before_unmap";
    case callback::flush_tlb: return "flush_tlb";
    case callback::op_begin: return "op_begin";
    case callback::op_end: return "op_end";
    }
    return "?";
}

/// callback_index(k) - k as an index into a table of nr_callbacks entries.
constexpr std::size_t callback_index(callback k) noexcept { return static_cast<std::size_t>(k); }

namespace detail {
// scope_token is a type, so it cannot be conditionally declared by SFINAE on a
// member: a base class carries it when, and only when, Inner has one.
template <class Inner, class = void>
struct wrapper_scope_token {};
template <class Inner>
struct wrapper_scope_token<Inner, pcpu::detail::void_t<typename Inner::scope_token>> {
    using scope_token = typename Inner::scope_token;
};
} // namespace detail

/// platform_wrapper<Inner> - holds an Inner by value and forwards every contract
/// member that Inner has; see the file comment.
///
/// The static members are always present, with Inner's values or platform_traits'
/// defaults, which is what the allocator would use for Inner itself.
template <class Inner>
class platform_wrapper : public detail::wrapper_scope_token<Inner> {
public:
    using inner_type = Inner;
    using context = typename platform_traits<Inner>::context;
    static constexpr unsigned page_shift = platform_traits<Inner>::page_shift;
    static constexpr std::size_t max_cpus = platform_traits<Inner>::max_cpus;

    /// platform_wrapper(args...) - constructs the inner platform from args. Only
    /// viable when Inner is, so copying a wrapper is never mistaken for building an
    /// Inner from one.
    template <class... Args,
              class = std::enable_if_t<std::is_constructible<Inner, Args&&...>::value>>
    explicit platform_wrapper(Args&&... args) noexcept(std::is_nothrow_constructible<Inner, Args&&...>::value)
        : inner_(std::forward<Args>(args)...) {}

    Inner& inner() noexcept { return inner_; }
    const Inner& inner() const noexcept { return inner_; }

    // ---- Required of every platform ----
    template <class I = Inner>
    auto index_lock() noexcept -> decltype(std::declval<I&>().index_lock()) {
        return inner_.index_lock();
    }
    template <class I = Inner>
    auto index_unlock() noexcept -> decltype(std::declval<I&>().index_unlock()) {
        return inner_.index_unlock();
    }

    // ---- Optional for every platform ----
    template <class I = Inner>
    auto this_cpu() noexcept -> decltype(std::declval<I&>().this_cpu()) {
        return inner_.this_cpu();
    }
    template <class I = Inner>
    auto warn(const char* msg) noexcept -> decltype(std::declval<I&>().warn(msg)) {
        return inner_.warn(msg);
    }
    template <class I = Inner>
    auto current_scope() noexcept -> decltype(std::declval<I&>().current_scope()) {
        return inner_.current_scope();
    }
    template <class I = Inner>
    auto request_balance() noexcept -> decltype(std::declval<I&>().request_balance()) {
        return inner_.request_balance();
    }
    template <class I = Inner>
    auto background_context() noexcept -> decltype(std::declval<I&>().background_context()) {
        return inner_.background_context();
    }
    template <class I = Inner>
    auto op_begin(context effective) noexcept -> decltype(std::declval<I&>().op_begin(effective)) {
        return inner_.op_begin(effective);
    }
    template <class I = Inner>
    auto op_end() noexcept -> decltype(std::declval<I&>().op_end()) {
        return inner_.op_end();
    }
    // this-CPU guards (percpu.hpp): hiding them would silently turn a guarded
    // platform's this-CPU operations into the atomic host default.
    template <class I = Inner>
    auto irq_save() noexcept -> decltype(std::declval<I&>().irq_save()) {
        return inner_.irq_save();
    }
    template <class I = Inner, class T>
    auto irq_restore(T t) noexcept -> decltype(std::declval<I&>().irq_restore(t)) {
        return inner_.irq_restore(t);
    }
    template <class I = Inner>
    auto preempt_disable() noexcept -> decltype(std::declval<I&>().preempt_disable()) {
        return inner_.preempt_disable();
    }
    template <class I = Inner>
    auto preempt_enable() noexcept -> decltype(std::declval<I&>().preempt_enable()) {
        return inner_.preempt_enable();
    }

    // ---- Policies that create chunks ----
    template <class I = Inner>
    auto slow_lock() noexcept -> decltype(std::declval<I&>().slow_lock()) {
        return inner_.slow_lock();
    }
    template <class I = Inner>
    auto slow_unlock() noexcept -> decltype(std::declval<I&>().slow_unlock()) {
        return inner_.slow_unlock();
    }
    template <class I = Inner>
    auto alloc_meta(std::size_t bytes, std::size_t align, context c) noexcept
        -> decltype(std::declval<I&>().alloc_meta(bytes, align, c)) {
        return inner_.alloc_meta(bytes, align, c);
    }
    template <class I = Inner>
    auto free_meta(void* p, std::size_t bytes) noexcept -> decltype(std::declval<I&>().free_meta(p, bytes)) {
        return inner_.free_meta(p, bytes);
    }

    // ---- contiguous ----
    template <class I = Inner>
    auto alloc_units(std::size_t bytes, context c) noexcept
        -> decltype(std::declval<I&>().alloc_units(bytes, c)) {
        return inner_.alloc_units(bytes, c);
    }
    template <class I = Inner>
    auto free_units(void* p, std::size_t bytes) noexcept -> decltype(std::declval<I&>().free_units(p, bytes)) {
        return inner_.free_units(p, bytes);
    }

    // ---- lazy_mapped ----
    template <class I = Inner>
    auto reserve(std::size_t bytes, context c) noexcept -> decltype(std::declval<I&>().reserve(bytes, c)) {
        return inner_.reserve(bytes, c);
    }
    template <class I = Inner>
    auto release(std::uintptr_t addr, std::size_t bytes) noexcept
        -> decltype(std::declval<I&>().release(addr, bytes)) {
        return inner_.release(addr, bytes);
    }
    template <class I = Inner>
    auto alloc_pages(unsigned cpu, page_ref* out, std::size_t nr, context c) noexcept
        -> decltype(std::declval<I&>().alloc_pages(cpu, out, nr, c)) {
        return inner_.alloc_pages(cpu, out, nr, c);
    }
    template <class I = Inner>
    auto free_pages(unsigned cpu, const page_ref* pages, std::size_t nr) noexcept
        -> decltype(std::declval<I&>().free_pages(cpu, pages, nr)) {
        return inner_.free_pages(cpu, pages, nr);
    }
    template <class I = Inner>
    auto map(std::uintptr_t addr, const page_ref* pages, std::size_t nr, context c) noexcept
        -> decltype(std::declval<I&>().map(addr, pages, nr, c)) {
        return inner_.map(addr, pages, nr, c);
    }
    template <class I = Inner>
    auto unmap(std::uintptr_t addr, page_ref* out, std::size_t nr) noexcept
        -> decltype(std::declval<I&>().unmap(addr, out, nr)) {
        return inner_.unmap(addr, out, nr);
    }
    template <class I = Inner>
    auto scope_apply(context c) noexcept -> decltype(std::declval<I&>().scope_apply(c)) {
        return inner_.scope_apply(c);
    }
    /// scope_restore(t) - takes whatever Inner's scope_apply returned.
    template <class Token, class I = Inner>
    auto scope_restore(Token t) noexcept -> decltype(std::declval<I&>().scope_restore(t)) {
        return inner_.scope_restore(t);
    }
    template <class I = Inner>
    auto flush_after_map(std::uintptr_t begin, std::uintptr_t end) noexcept
        -> decltype(std::declval<I&>().flush_after_map(begin, end)) {
        return inner_.flush_after_map(begin, end);
    }
    template <class I = Inner>
    auto flush_before_unmap(std::uintptr_t begin, std::uintptr_t end) noexcept
        -> decltype(std::declval<I&>().flush_before_unmap(begin, end)) {
        return inner_.flush_before_unmap(begin, end);
    }
    template <class I = Inner>
    auto flush_tlb(std::uintptr_t begin, std::uintptr_t end) noexcept
        -> decltype(std::declval<I&>().flush_tlb(begin, end)) {
        return inner_.flush_tlb(begin, end);
    }

    // ---- Not in the contract: test platforms' topology, forwarded for convenience ----
    template <class I = Inner>
    auto nr_cpus() const noexcept -> decltype(std::declval<const I&>().nr_cpus()) {
        return inner_.nr_cpus();
    }

private:
    Inner inner_;
};

} // namespace pcpu::debug
