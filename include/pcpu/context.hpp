// SPDX-License-Identifier: MIT
// pcpu/context.hpp - the allocation context: what the caller allows an allocation to do.
//
// This is pcpu's gfp_t. It is a small value passed by the caller and carried, narrowed
// but never widened, through every internal step and every platform callback that can
// allocate or block. "Narrower" means: fewer permissions (block, IO, FS) and at least
// the same restrictions (nowarn, noretry). Contexts form a meet-semilattice:
// narrow(a, b) is the widest context within both a and b, and
// within(a, b) <=> narrow(a, b) == a.
#pragma once

#include "config.hpp"

namespace pcpu {

/// gfp - the default context type.
///
/// Permissions (clearing one narrows the context):
///   may_block - may sleep: take the sleeping lock, create and populate chunks
///               (gfpflags_allow_blocking; without it the atomic path is taken)
///   may_io    - reclaim may start IO (GFP_NOIO clears it)
///   may_fs    - reclaim may call into file systems (GFP_NOFS clears it)
/// Restrictions (setting one narrows the context):
///   nowarn    - do not report failures
///   noretry   - backing allocators should fail fast rather than retry hard
/// Demand:
///   nofail    - the caller cannot handle failure. Kept only for the caller's own
///               wait; pcpu never forwards it to a backing allocator (Linux rule), and
///               narrowing drops it.
struct gfp {
    enum flag : std::uint8_t {
        may_block = 1u << 0,
        may_io = 1u << 1,
        may_fs = 1u << 2,
        nowarn = 1u << 3,
        noretry = 1u << 4,
        nofail = 1u << 5,
    };
    static constexpr std::uint8_t permission_bits = may_block | may_io | may_fs | nofail;
    static constexpr std::uint8_t restriction_bits = nowarn | noretry;

    std::uint8_t bits = 0;

    constexpr bool has(flag f) const noexcept { return (bits & f) != 0; }
    constexpr gfp operator|(flag f) const noexcept { return gfp{static_cast<std::uint8_t>(bits | f)}; }
    constexpr gfp without(flag f) const noexcept {
        return gfp{static_cast<std::uint8_t>(bits & ~static_cast<unsigned>(f))};
    }
    friend constexpr bool operator==(gfp a, gfp b) noexcept { return a.bits == b.bits; }
    friend constexpr bool operator!=(gfp a, gfp b) noexcept { return a.bits != b.bits; }
};

namespace ctx {
/// GFP_KERNEL: may block, start IO and enter file systems.
inline constexpr gfp full{gfp::may_block | gfp::may_io | gfp::may_fs};
/// GFP_NOFS: may block and start IO, must not re-enter file systems.
inline constexpr gfp nofs{gfp::may_block | gfp::may_io};
/// GFP_NOIO: may block, but reclaim must neither start IO nor enter file systems.
inline constexpr gfp noio{gfp::may_block};
/// GFP_NOWAIT: may not block; failure is expected and silent.
inline constexpr gfp nowait{gfp::nowarn};
/// GFP_ATOMIC: may not block; failure is reported.
inline constexpr gfp atomic{0};

/// preset_name(c) - "full", "nofs", "noio", "nowait" or "atomic" when c is exactly that
/// preset; nullptr otherwise (context_traits<gfp>::describe() names any context).
constexpr const char* preset_name(gfp c) noexcept {
    return c == full ? "full" : c == nofs ? "nofs" : c == noio ? "noio" : c == nowait ? "nowait"
         : c == atomic ? "atomic" : nullptr;
}
} // namespace ctx

/// context_traits<Ctx> - the customization point that lets a platform bring its own
/// context type (an RTOS's allocation flags). A specialization provides exactly the
/// members of the gfp specialization below; pcpu uses nothing else.
template <class Ctx>
struct context_traits; // intentionally undefined: specialize it for your context type

template <>
struct context_traits<gfp> {
    using type = gfp;
    static constexpr gfp full() noexcept { return ctx::full; }
    static constexpr gfp noio() noexcept { return ctx::noio; }
    static constexpr gfp atomic() noexcept { return ctx::atomic; }
    static constexpr bool may_block(gfp c) noexcept { return c.has(gfp::may_block); }
    static constexpr bool may_io(gfp c) noexcept { return c.has(gfp::may_io); }
    static constexpr bool may_fs(gfp c) noexcept { return c.has(gfp::may_fs); }
    static constexpr bool nowarn(gfp c) noexcept { return c.has(gfp::nowarn); }

    /// narrow(c, by) - the widest context within both: permissions of both, restrictions
    /// of either. nofail survives only if both demand it.
    static constexpr gfp narrow(gfp c, gfp by) noexcept {
        const unsigned perm = (c.bits & by.bits) & gfp::permission_bits;
        const unsigned restr = (c.bits | by.bits) & gfp::restriction_bits;
        return gfp{static_cast<std::uint8_t>(perm | restr)};
    }
    /// within(inner, outer) - inner allows nothing that outer forbids.
    static constexpr bool within(gfp inner, gfp outer) noexcept {
        return narrow(inner, outer) == inner;
    }
    /// scope_of(c) - the implicit scope a context asks for: its permissions only. A
    /// scope restricts how memory may be found (block, IO, FS); nowarn, noretry and
    /// nofail describe one request and stay with it. A context that may not block
    /// gives a no-reclaim scope, as memalloc_apply_gfp_scope does.
    static constexpr gfp scope_of(gfp c) noexcept {
        return gfp{static_cast<std::uint8_t>(c.bits & (gfp::may_block | gfp::may_io | gfp::may_fs))};
    }
    /// for_backing(c) - what a backing allocator may be asked for: nofail stripped.
    static constexpr gfp for_backing(gfp c) noexcept { return c.without(gfp::nofail); }

    /// describe(c, buf, n) - "block|io|fs|nowarn|noretry|nofail" or "atomic"; returns buf.
    static char* describe(gfp c, char* buf, std::size_t n) noexcept {
        static constexpr struct { gfp::flag f; const char* name; } names[] = {
            {gfp::may_block, "block"}, {gfp::may_io, "io"},       {gfp::may_fs, "fs"},
            {gfp::nowarn, "nowarn"},   {gfp::noretry, "noretry"}, {gfp::nofail, "nofail"},
        };
        std::size_t len = 0;
        auto put = [&](const char* s) {
            for (; *s != '\0' && len + 1 < n; ++s) buf[len++] = *s;
        };
        if (!c.has(gfp::may_block)) put("atomic");
        for (const auto& e : names) {
            if (!c.has(e.f)) continue;
            if (len != 0) put("|");
            put(e.name);
        }
        if (n != 0) buf[len < n ? len : n - 1] = '\0';
        return buf;
    }
};

/// within(inner, outer) / narrow(c, by) for any context type with traits.
template <class Ctx>
constexpr bool within(Ctx inner, Ctx outer) noexcept { return context_traits<Ctx>::within(inner, outer); }
template <class Ctx>
constexpr Ctx narrow(Ctx c, Ctx by) noexcept { return context_traits<Ctx>::narrow(c, by); }

} // namespace pcpu
