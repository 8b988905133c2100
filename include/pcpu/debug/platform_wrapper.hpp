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
// So every forwarding member below is a template that exists exactly when Inner has
// that member, with the same return type; a blocking member that Inner declares
// without the context (platform.hpp allows it) is forwarded with it too, the context
// dropped on the way in, so a wrapper always presents the whole contract. The
// forwarders are generated from PCPU_PLATFORM_CONTRACT (platform.hpp), the one
// written copy of the contract. A derived wrapper overrides a member by declaring one
// of the same name (name hiding) and reaches the real one through this->inner().
//
// The wrapper is also where the names of the contract's members live, as the
// `callback` enumeration and its per-member facts (blocks, takes the context, backing
// allocation, called only inside an operation), all read from the same table, so
// every debugging and test platform counts and reports them with one vocabulary.
#pragma once

#include "../config.hpp"
#include "../context.hpp"
#include "../platform.hpp"

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

namespace pcpu::debug {

/// callback - every member of the platform contract that pcpu calls
/// (PCPU_PLATFORM_CONTRACT, in its order), then the operation brackets. Used to
/// index call counters.
enum class callback : std::uint8_t {
#define PCPU_DETAIL_ENUM(name, sig, ctx, blocks, backing, in_op, need) name,
    PCPU_PLATFORM_CONTRACT(PCPU_DETAIL_ENUM)
    PCPU_PLATFORM_BRACKETS(PCPU_DETAIL_ENUM)
#undef PCPU_DETAIL_ENUM
};

/// nr_callbacks - number of callback values: the size of a per-callback table.
inline constexpr std::size_t nr_callbacks = static_cast<std::size_t>(callback::op_end) + 1;

namespace detail {
/// callback_row - one row of PCPU_PLATFORM_CONTRACT, as values.
struct callback_row {
    const char* name;
    pcpu::detail::ctx_arg ctx;
    bool blocks;
    bool backing;
    bool in_op;
};
inline constexpr callback_row callback_rows[nr_callbacks] = {
#define PCPU_DETAIL_ROW(name, sig, ctx, blocks, backing, in_op, need) \
    {#name, pcpu::detail::ctx_arg::ctx, blocks != 0, backing != 0, in_op != 0},
    PCPU_PLATFORM_CONTRACT(PCPU_DETAIL_ROW)
    PCPU_PLATFORM_BRACKETS(PCPU_DETAIL_ROW)
#undef PCPU_DETAIL_ROW
};
} // namespace detail

/// callback_index(k) - k as an index into a table of nr_callbacks entries.
constexpr std::size_t callback_index(callback k) noexcept { return static_cast<std::size_t>(k); }

/// callback_blocks(k) - k may sleep: it is wrong under an atomic operation and under
/// the index lock. The freeing members count: vunmap and vfree sleep, and the kernel
/// frees chunks only after dropping pcpu_lock (pcpu_balance_free). Every such member
/// receives the context (the contract's rule, which the table states once).
constexpr bool callback_blocks(callback k) noexcept { return detail::callback_rows[callback_index(k)].blocks; }

/// callback_takes_context(k) - pcpu passes the allocation context to k.
constexpr bool callback_takes_context(callback k) noexcept {
    return detail::callback_rows[callback_index(k)].ctx != pcpu::detail::ctx_arg::none;
}

/// callback_backing(k) - k is a backing allocation: it never receives nofail.
constexpr bool callback_backing(callback k) noexcept { return detail::callback_rows[callback_index(k)].backing; }

/// callback_in_op(k) - pcpu calls k only inside an operation bracket. The others are
/// the index lock and the diagnostics (free() runs from interrupts and takes only
/// those, plus request_balance), current_scope (read to compute the effective
/// context before an operation can begin), background_context (read to compute
/// balance's context before its operation begins) and the brackets themselves.
constexpr bool callback_in_op(callback k) noexcept { return detail::callback_rows[callback_index(k)].in_op; }

/// callback_name(k) - the member's name, as it appears in the contract.
constexpr const char* callback_name(callback k) noexcept { return detail::callback_rows[callback_index(k)].name; }

// The rule the table keeps: whatever can sleep is told the context it may sleep in.
static_assert([] {
    for (const auto& row : detail::callback_rows)
        if (row.blocks && row.ctx == pcpu::detail::ctx_arg::none) return false;
    return true;
}(), "pcpu: a blocking member of PCPU_PLATFORM_CONTRACT without the context");

namespace detail {
template <class... A>
struct last_type {
    using type = void;
};
template <class A>
struct last_type<A> {
    using type = A;
};
template <class A, class B, class... R>
struct last_type<A, B, R...> : last_type<B, R...> {};

template <class L, class... A>
struct all_but_last;
template <class... D, class Last>
struct all_but_last<pcpu::detail::type_list<D...>, Last> {
    using type = pcpu::detail::type_list<D...>;
};
template <class... D, class H, class N, class... R>
struct all_but_last<pcpu::detail::type_list<D...>, H, N, R...> : all_but_last<pcpu::detail::type_list<D..., H>, N, R...> {};

/// dropping_context<Call, P, Ctx, A...> - Call takes a... but the last, a Ctx: the
/// form of an optional-context member on a platform written before it took one.
template <class Call, class P, class Ctx, class... A>
constexpr bool dropping_context() noexcept {
    if constexpr (sizeof...(A) == 0) return false;
    else if constexpr (!std::is_same<typename last_type<A...>::type, Ctx>::value) return false;
    else return pcpu::detail::callable<Call, P, typename all_but_last<pcpu::detail::type_list<>, A...>::type>::value;
}
/// accepts<Call, Form, P, Ctx, A...> - a forwarder of a member of that context form
/// over P takes a...: what P takes, and for an optional context, also a... with the
/// context last where P takes a... without it.
template <class Call, pcpu::detail::ctx_arg Form, class P, class Ctx, class... A>
constexpr bool accepts() noexcept {
    if constexpr (pcpu::detail::callable<Call, P, pcpu::detail::type_list<A...>>::value) return true;
    else if constexpr (Form != pcpu::detail::ctx_arg::optional) return false;
    else return dropping_context<Call, P, Ctx, A...>();
}
/// param_t<I, type_list<T...>, A> - the contract's type of parameter I (T... are its
/// parameters but the context), or A, the argument's own type, past them.
template <std::size_t I, class L, class A>
struct param;
template <std::size_t I, class... T, class A>
struct param<I, pcpu::detail::type_list<T...>, A> {
    using type = typename std::conditional_t<(I < sizeof...(T)), std::tuple_element<(I < sizeof...(T) ? I : 0),
                                                                                      std::tuple<T..., A>>,
                                             std::common_type<A>>::type;
};
/// call_as<Call, Params>(p, t, I...) - Call with the first sizeof...(I) arguments of
/// t, each converted to the contract's parameter type: the forwarders take any
/// argument types, and an int literal must reach an unsigned parameter as it would
/// without a wrapper in between.
template <class Call, class Params, class P, class... A, std::size_t... I>
decltype(auto) call_as(P& p, std::tuple<A...>& t, std::index_sequence<I...>) noexcept {
    return Call::call(p, static_cast<typename param<I, Params, std::tuple_element_t<I, std::tuple<A...>>>::type>(
                             std::get<I>(t))...);
}
/// forward<Call, Form, Params>(p, a...) - call Call over p as accepts<> allowed it.
template <class Call, pcpu::detail::ctx_arg Form, class Params, class P, class... A>
decltype(auto) forward(P& p, A... a) noexcept {
    std::tuple<A...> t(a...);
    if constexpr (pcpu::detail::callable<Call, P, pcpu::detail::type_list<A...>>::value)
        return call_as<Call, Params>(p, t, std::make_index_sequence<sizeof...(A)>{});
    else
        return call_as<Call, Params>(p, t, std::make_index_sequence<sizeof...(A) - 1>{});
}
/// context_of<Form, Ctx>(a...) - the context among a forwarder's arguments (the last
/// one, when the member takes one and it is there), or nullptr.
template <pcpu::detail::ctx_arg Form, class Ctx, class... A>
const Ctx* context_of(const A&... a) noexcept {
    if constexpr (Form == pcpu::detail::ctx_arg::none || sizeof...(A) == 0) {
        return ((void)a, ...), nullptr;
    } else if constexpr (!std::is_same<typename last_type<A...>::type, Ctx>::value) {
        return ((void)a, ...), nullptr;
    } else {
        const void* last = nullptr;
        ((last = &a), ...);
        return static_cast<const Ctx*>(last);
    }
}
} // namespace detail

/// PCPU_DEBUG_FORWARDER(name, sig, ctx, before) - the forwarder of one contract member for
/// a wrapper over Inner (see platform_wrapper): exists exactly when the inner platform
/// has the member in a form the contract allows, and then also with the context last
/// where that is optional. It first expands before(name, received): received is the
/// context passed (a const context*, nullptr if none).
#define PCPU_DEBUG_FORWARDER(name, sig, ctx, before)                                                        \
    template <class I = Inner, class... A,                                                                  \
              std::enable_if_t<::pcpu::debug::detail::accepts<::pcpu::detail::call_##name,                  \
                                                              ::pcpu::detail::ctx_arg::ctx, I, context, A...>(), \
                               int> = 0>                                                                    \
    decltype(auto) name(A... a) noexcept {                                                                  \
        before(name, (::pcpu::debug::detail::context_of<::pcpu::detail::ctx_arg::ctx, context>(a...)))      \
        return ::pcpu::debug::detail::forward<::pcpu::detail::call_##name, ::pcpu::detail::ctx_arg::ctx,     \
                                              typename ::pcpu::detail::params_##name<I, context>::type>(     \
            this->inner(), a...);                                                                           \
    }
/// PCPU_DEBUG_NO_HOOK - a `before` for PCPU_DEBUG_FORWARDER that does nothing.
#define PCPU_DEBUG_NO_HOOK(name, received)

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

    // ---- Every member of the contract, and the this-CPU guards: hiding those would
    // silently turn a guarded platform's this-CPU operations into the atomic host
    // default. ----
#define PCPU_DETAIL_FORWARD(name, sig, ctx, blocks, backing, in_op, need) \
    PCPU_DEBUG_FORWARDER(name, sig, ctx, PCPU_DEBUG_NO_HOOK)
    PCPU_PLATFORM_CONTRACT(PCPU_DETAIL_FORWARD)
    PCPU_PLATFORM_BRACKETS(PCPU_DETAIL_FORWARD)
    PCPU_PLATFORM_GUARDS(PCPU_DETAIL_FORWARD)
#undef PCPU_DETAIL_FORWARD

    // ---- Not in the contract: test platforms' topology, forwarded for convenience ----
    template <class I = Inner>
    auto nr_cpus() const noexcept -> decltype(std::declval<const I&>().nr_cpus()) {
        return inner_.nr_cpus();
    }

private:
    Inner inner_;
};

} // namespace pcpu::debug
