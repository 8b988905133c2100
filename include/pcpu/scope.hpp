// SPDX-License-Identifier: MIT
// pcpu/scope.hpp - implicit allocation scopes (memalloc_apply_gfp_scope /
// memalloc_restore_scope, memalloc_noio_save / _restore).
//
// A scope narrows every allocation the current task makes while it is open, whoever
// makes it: that is how a context reaches allocations that cannot take one, such as
// the page tables a real MMU allocates inside map(). Opening a scope narrows the
// current one (so NOIO opened inside NOFS stays NOIO, and NOFS opened inside NOIO
// stays NOIO: the narrowest wins); closing restores exactly the previous one, so
// scopes nest as long as they close in LIFO order, which the guard enforces.
#pragma once

#include "context.hpp"
#include "platform.hpp"

#include <utility>

namespace pcpu {

/// scope_state<Ctx> - one task's implicit scope. A platform keeps one per task
/// (thread_local on a host, a TCB field on an RTOS, a single global on single-threaded
/// firmware) and implements its scope members with it:
///
///     scope_token scope_apply(context c) noexcept { return state().apply(c); }
///     void scope_restore(scope_token t) noexcept  { state().restore(t); }
///     context current_scope() noexcept            { return state().current(); }
template <class Ctx>
class scope_state {
public:
    using traits = context_traits<Ctx>;
    /// token - what apply() returns and restore() takes: the scope to go back to.
    using token = Ctx;

    Ctx current() const noexcept { return current_; }
    /// apply(c) - narrow the scope by c; returns the token that undoes it.
    token apply(Ctx c) noexcept {
        const token previous = current_;
        current_ = traits::narrow(current_, traits::scope_of(c));
        return previous;
    }
    void restore(token t) noexcept { current_ = t; }

private:
    Ctx current_ = traits::full();
};

/// scope_guard<P> - applies `ctx` as platform P's implicit scope for the lifetime of
/// the guard (memalloc_apply_gfp_scope ... memalloc_restore_scope).
template <class P>
class scope_guard {
public:
    using context = typename platform_traits<P>::context;
    scope_guard(P& p, context ctx) noexcept : p_(p), token_(p.scope_apply(ctx)) {}
    ~scope_guard() { p_.scope_restore(token_); }
    scope_guard(const scope_guard&) = delete;
    scope_guard& operator=(const scope_guard&) = delete;

private:
    P& p_;
    decltype(std::declval<P&>().scope_apply(std::declval<context>())) token_;
};

} // namespace pcpu
