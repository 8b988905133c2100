// SPDX-License-Identifier: MIT
// pcpu/backend/static_only.hpp - the static_only back end: the first chunk is all
// there is. It never allocates, never blocks and has no sleeping lock; the members
// the core calls for chunk creation exist only so that the core reads the same for
// every back end, and are never reached (creates_chunks is false).
#pragma once

#include "../platform.hpp"
#include "resident.hpp"
#include "unit_layout.hpp"

#include <cstddef>
#include <cstdint>

namespace pcpu {

template <class P>
class static_only_backend;

/// static_only - the populate policy of a fixed allocator (no MMU, no heap).
struct static_only {
    static constexpr bool creates_chunks = false;
    static constexpr bool on_demand = false;
    template <class P>
    static constexpr bool check_platform() noexcept { return true; }
    template <class P>
    using backend = static_only_backend<P>;
};

/// static_only_backend<P> - no state, no work.
template <class P>
class static_only_backend : public resident_pages<P> {
public:
    using context = typename platform_traits<P>::context;
    /// The core never asks for a chunk, so no sleeping lock, no metadata heap.
    static constexpr bool creates_chunks = false;

    static void slow_lock(P&, context) noexcept {}
    static void slow_unlock(P&) noexcept {}
    /// The first chunk's metadata is the caller's (first_chunk_config::meta).
    static void* alloc_meta(P&, std::size_t, std::size_t, context) noexcept { return nullptr; }
    static void free_meta(P&, void*, std::size_t, context) noexcept {}
    static std::uintptr_t create(P&, const unit_layout&, context) noexcept { return 0; }
    template <class Chunk>
    static void destroy(P&, const unit_layout&, Chunk&, std::uintptr_t, context) noexcept {}
};

} // namespace pcpu
