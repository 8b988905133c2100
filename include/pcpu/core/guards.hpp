// SPDX-License-Identifier: MIT
// pcpu/core/guards.hpp - the guards one allocator operation holds: the bracket that
// tells a context checker the operation's effective context, the sleeping lock (the
// kernel's pcpu_alloc_mutex, the back end's), and the context's implicit scope.
#pragma once

#include "../platform.hpp"
#include "../scope.hpp"

#include <type_traits>

namespace pcpu::detail {

/// op_bracket - tells the platform (a context checker) which effective context the
/// callbacks of this public operation must stay within.
template <class Platform>
struct op_bracket {
    using traits = platform_traits<Platform>;
    using context = typename traits::context;
    op_bracket(Platform& p, context c) noexcept : p_(p) { traits::op_begin(p_, c); }
    ~op_bracket() { traits::op_end(p_); }
    op_bracket(const op_bracket&) = delete;
    op_bracket& operator=(const op_bracket&) = delete;
    Platform& p_;
};

/// slow_guard - the sleeping lock, taken only when `take` (atomic allocations
/// never take it; back ends that never create chunks have none). An allocation that
/// populates outside it (core/populating.hpp) lets it go early and may take it again.
template <class Platform, class Backend>
struct slow_guard {
    using context = typename platform_traits<Platform>::context;
    slow_guard(Platform& p, bool take, context ctx) noexcept : p_(p), ctx_(ctx), held_(take) {
        if (held_) Backend::slow_lock(p_, ctx_);
    }
    ~slow_guard() { release(); }
    void release() noexcept {
        if (held_) Backend::slow_unlock(p_);
        held_ = false;
    }
    void retake() noexcept {
        if (!held_) Backend::slow_lock(p_, ctx_);
        held_ = true;
    }
    slow_guard(const slow_guard&) = delete;
    slow_guard& operator=(const slow_guard&) = delete;
    Platform& p_;
    context ctx_;
    bool held_;
};

/// no_slow_guard - slow_guard for an allocation that can never block.
template <class Platform>
struct no_slow_guard {
    using context = typename platform_traits<Platform>::context;
    no_slow_guard(Platform&, bool, context) noexcept {}
    void release() noexcept {}
    void retake() noexcept {}
};

/// optional_scope - the context's implicit scope, where the platform has scopes.
template <class Platform>
struct optional_scope {
    using context = typename platform_traits<Platform>::context;
    static constexpr bool has = platform_traits<Platform>::template has<has_scope_apply>;
    struct none {
        none(Platform&, context) noexcept {}
    };
    std::conditional_t<has, scope_guard<Platform>, none> guard_;
    optional_scope(Platform& p, context c) noexcept : guard_(p, c) {}
};

} // namespace pcpu::detail
