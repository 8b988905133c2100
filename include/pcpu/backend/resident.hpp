// SPDX-License-Identifier: MIT
// pcpu/backend/resident.hpp - population for a back end whose chunks are backed in
// full from the moment they exist (static_only's first chunk, contiguous's units).
//
// Every page is populated at creation and stays so until the chunk is destroyed, so
// the core never finds an unpopulated page to fill and there is nothing to give back
// short of destroying the chunk: the members below answer so at compile time, and the
// core's population and reclaim code folds away for these back ends.
#pragma once

#include "../platform.hpp"
#include "unit_layout.hpp"

#include <cstddef>
#include <cstdint>

namespace pcpu {

/// resident_pages<P> - the population members of a back end without demand paging.
template <class P>
struct resident_pages {
    using context = typename platform_traits<P>::context;

    /// A new chunk comes with every page populated (percpu-km: pcpu_create_chunk marks
    /// them so itself); the core records them when it adopts the chunk.
    static constexpr bool populated_on_create = true;
    /// Pages cannot be given back one by one (pcpu_should_reclaim_chunk is false).
    static constexpr bool depopulates = false;
    /// Nothing to populate, so nothing populates outside the sleeping lock.
    static constexpr unsigned populate_slots = 0;

    template <class Chunk>
    static constexpr bool is_populated(const Chunk&, std::uint32_t, std::uint32_t) noexcept {
        return true;
    }
    template <class Chunk>
    static constexpr bool fully_populated(const Chunk&) noexcept {
        return true;
    }
    static bool populate(P&, const unit_layout&, std::uintptr_t, std::uint32_t, std::uint32_t, context,
                         unsigned = 0) noexcept {
        return true;
    }
    static bool prepare(P&, const unit_layout&, context, unsigned) noexcept { return true; }
    /// should_reclaim(c, nr_empty, high) - never: see depopulates.
    template <class Node>
    static constexpr bool should_reclaim(const Node&, std::size_t, std::size_t) noexcept {
        return false;
    }
    static void depopulate(P&, const unit_layout&, std::uintptr_t, std::uint32_t, std::uint32_t, context) noexcept {}
    static void flush(P&, const unit_layout&, std::uintptr_t, std::uint32_t, std::uint32_t) noexcept {}
    /// release(p, u, ctx) - what the back end keeps besides its chunks: nothing.
    static void release(P&, const unit_layout&, context) noexcept {}
};

} // namespace pcpu
