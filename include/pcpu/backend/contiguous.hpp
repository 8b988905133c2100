// SPDX-License-Identifier: MIT
// pcpu/backend/contiguous.hpp - the contiguous back end (mm/percpu-km.c): no MMU, so a
// new chunk gets all its units at once from alloc_units(), every page populated from
// creation; population is bookkeeping, and memory goes back only with a whole chunk.
#pragma once

#include "../platform.hpp"
#include "creating.hpp"
#include "resident.hpp"
#include "unit_layout.hpp"

#include <cstdint>

namespace pcpu {

template <class P>
class contiguous_backend;

/// contiguous - the populate policy without an MMU.
struct contiguous {
    static constexpr bool creates_chunks = true;
    static constexpr bool on_demand = false;

    template <class P>
    static constexpr bool check_platform() noexcept {
        using t = platform_traits<P>;
        static_assert(t::template has<detail::has_alloc_units> && t::template has<detail::has_free_units>,
                      "pcpu: the contiguous policy needs `void* alloc_units(std::size_t bytes, context "
                      "ctx) noexcept` and `void free_units(void*, std::size_t, context) noexcept`");
        return detail::check_creating_platform<P>();
    }
    template <class P>
    using backend = contiguous_backend<P>;

    /// create(p, u, ctx) - every unit of a new chunk in one block (percpu-km); 0 on failure.
    template <class P, class Ctx>
    static std::uintptr_t create(P& p, const unit_layout& u, Ctx ctx) noexcept {
        const auto start = reinterpret_cast<std::uintptr_t>(p.alloc_units(u.chunk_bytes(), ctx));
        return start == 0 ? 0 : u.chunk_base(start);
    }
    template <class P, class Ctx>
    static void destroy(P& p, const unit_layout& u, std::uintptr_t base, Ctx ctx) noexcept {
        platform_traits<P>::free_units(p, reinterpret_cast<void*>(u.span_start(base)), u.chunk_bytes(), ctx);
    }
};

/// contiguous_backend<P> - no state: a chunk is one block of units.
template <class P>
class contiguous_backend : public creating_backend<P>, public resident_pages<P> {
public:
    using context = typename platform_traits<P>::context;
    using creating_backend<P>::creates_chunks;

    static std::uintptr_t create(P& p, const unit_layout& u, context ctx) noexcept {
        return contiguous::create(p, u, ctx);
    }
    template <class Chunk>
    static void destroy(P& p, const unit_layout& u, Chunk&, std::uintptr_t base, context ctx) noexcept {
        contiguous::destroy(p, u, base, ctx);
    }
};

} // namespace pcpu
