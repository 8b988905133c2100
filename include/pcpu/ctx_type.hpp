// SPDX-License-Identifier: MIT
// pcpu/ctx_type.hpp - compile-time contexts: a gfp context whose permissions are part
// of its type.
//
// ctx_t<Bits> is an empty object standing for the gfp value Bits (context.hpp); what it
// allows is known to the compiler, so an allocation made with it instantiates only
// the paths that context can take: allocator::alloc(size, align, ctx_t<atomic>)
// compiles no sleeping lock, no chunk creation and no population, and a platform used
// only that way never has its sleeping members instantiated.
//
// The rule of context.hpp - narrowed but never widened - becomes a rule of the type
// system here:
//   - ctx_t<X> converts implicitly to ctx_t<Y> when Y is within X (a narrowing: the
//     callee may do less than the caller allows), and to the run-time gfp always
//     (the same value, nothing widened);
//   - every other conversion is a compile error whose diagnostic names both contexts:
//     ctx_t<X> to a ctx_t<Y> that allows something X forbids, and a run-time gfp to any
//     compile-time context (its value, unknown here, may be narrower), except the
//     narrowest context of all, which every run-time context contains;
//   - narrow(ctx_t<X>, ctx_t<Y>) is ctx_t<the meet of X and Y>, computed by the same
//     context_traits<gfp>::narrow as at run time.
// A compile-time context is a gfp context: it works with platforms whose context type
// is pcpu::gfp (the default).
#pragma once

#include "context.hpp"

#include <type_traits>

namespace pcpu {

/// ctx_bits - the gfp bits of a compile-time context, with the presets of ctx:: named
/// so that diagnostics print them (pcpu::ctx_bits::noio); other combinations are the
/// presets or'ed with noretry or nofail, or any gfp bits cast to ctx_bits.
enum class ctx_bits : std::uint8_t {
    atomic = ctx::atomic.bits,
    noio = ctx::noio.bits,
    nofs = ctx::nofs.bits,
    full = ctx::full.bits,
    nowait = ctx::nowait.bits,
    noretry = gfp::noretry,
    nofail = gfp::nofail,
};
constexpr ctx_bits operator|(ctx_bits a, ctx_bits b) noexcept {
    return static_cast<ctx_bits>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}

/// narrows_to<From, To> - converting the context From to To widens nothing: To is
/// within From. Named so that a failed conversion's diagnostic prints both contexts.
template <ctx_bits From, ctx_bits To>
struct narrows_to {
    static constexpr bool value = context_traits<gfp>::within(gfp{static_cast<std::uint8_t>(To)},
                                                              gfp{static_cast<std::uint8_t>(From)});
};

/// runtime_narrows_to<To> - a run-time context of unknown value may become To: only
/// when To is within every gfp, i.e. To is the narrowest context (no permission, every
/// restriction). Named for the diagnostic, as narrows_to.
template <ctx_bits To>
struct runtime_narrows_to {
    static constexpr bool value = context_traits<gfp>::within(gfp{static_cast<std::uint8_t>(To)},
                                                              gfp{gfp::restriction_bits});
};

/// ctx_t<Bits> - the compile-time context Bits.
template <ctx_bits Bits>
struct ctx_t {
    static constexpr gfp value{static_cast<std::uint8_t>(Bits)};
    using traits = context_traits<gfp>;
    static constexpr bool may_block = traits::may_block(value);
    static constexpr bool may_io = traits::may_io(value);
    static constexpr bool may_fs = traits::may_fs(value);
    static constexpr bool nowarn = traits::nowarn(value);

    constexpr ctx_t() noexcept = default;

    /// From another compile-time context: allowed only when it narrows.
    template <ctx_bits From>
    constexpr ctx_t(ctx_t<From>) noexcept { // NOLINT(google-explicit-constructor)
        static_assert(narrows_to<From, Bits>::value,
                      "pcpu: this conversion would widen a compile-time context: the target context "
                      "allows something the source context forbids (the compiler names both, "
                      "as narrows_to<source, target>); pass the source on, or narrow it");
    }
    /// From a run-time context: its value is not known here and may be narrower than Bits.
    template <class G, std::enable_if_t<std::is_same<G, gfp>::value, int> = 0>
    constexpr ctx_t(G) noexcept { // NOLINT(google-explicit-constructor)
        static_assert(runtime_narrows_to<Bits>::value,
                      "pcpu: a run-time context (pcpu::gfp) cannot become a compile-time context "
                      "(the compiler names it, as runtime_narrows_to<target>): the run-time "
                      "value may be narrower than the target; keep passing the run-time context");
    }

    /// To the run-time context: the same value, always safe.
    constexpr operator gfp() const noexcept { return value; } // NOLINT(google-explicit-constructor)
};

namespace ctx {
/// The presets as compile-time contexts: alloc(size, align, ctx::atomic_t{}).
using full_t = ctx_t<ctx_bits::full>;
using nofs_t = ctx_t<ctx_bits::nofs>;
using noio_t = ctx_t<ctx_bits::noio>;
using nowait_t = ctx_t<ctx_bits::nowait>;
using atomic_t = ctx_t<ctx_bits::atomic>;
} // namespace ctx

/// is_ctx_t<T> - T is a compile-time context.
template <class T>
struct is_ctx_t : std::false_type {};
template <ctx_bits Bits>
struct is_ctx_t<ctx_t<Bits>> : std::true_type {};

/// narrow(ctx_t<X>, ctx_t<Y>) - the meet, at compile time.
template <ctx_bits X, ctx_bits Y>
constexpr auto narrow(ctx_t<X>, ctx_t<Y>) noexcept {
    return ctx_t<static_cast<ctx_bits>(context_traits<gfp>::narrow(ctx_t<X>::value, ctx_t<Y>::value).bits)>{};
}
/// (the same context twice: more specialized than both the above and context.hpp's
/// narrow(Ctx, Ctx), which would otherwise be equally good)
template <ctx_bits X>
constexpr ctx_t<X> narrow(ctx_t<X>, ctx_t<X>) noexcept { return {}; }
/// narrow with a run-time context - a run-time context.
template <ctx_bits X>
constexpr gfp narrow(ctx_t<X> c, gfp by) noexcept { return context_traits<gfp>::narrow(c, by); }
template <ctx_bits X>
constexpr gfp narrow(gfp c, ctx_t<X> by) noexcept { return context_traits<gfp>::narrow(c, by); }

/// within(ctx_t<X>, ctx_t<Y>) - X allows nothing that Y forbids.
template <ctx_bits X, ctx_bits Y>
constexpr bool within(ctx_t<X>, ctx_t<Y>) noexcept { return narrows_to<Y, X>::value; }
template <ctx_bits X>
constexpr bool within(ctx_t<X>, ctx_t<X>) noexcept { return true; }

} // namespace pcpu
