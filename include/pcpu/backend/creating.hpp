// SPDX-License-Identifier: MIT
// pcpu/backend/creating.hpp - what every back end that creates chunks shares: the
// sleeping lock (pcpu_alloc_mutex), which serialises creation and population, and
// the platform's metadata heap, which holds each chunk's struct and bitmaps.
#pragma once

#include "../platform.hpp"

#include <cstddef>

namespace pcpu {

namespace detail {
template <class P>
constexpr bool check_creating_platform() noexcept {
    using t = platform_traits<P>;
    static_assert(t::template has<has_slow_lock> && t::template has<has_slow_unlock>,
                  "pcpu: a policy that creates chunks needs `void slow_lock(context) noexcept` and "
                  "`void slow_unlock() noexcept` (the sleeping lock, pcpu_alloc_mutex)");
    static_assert(t::template has<has_alloc_meta> && t::template has<has_free_meta>,
                  "pcpu: a policy that creates chunks needs `void* alloc_meta(std::size_t bytes, "
                  "std::size_t align, context ctx) noexcept` and `void free_meta(void*, std::size_t, "
                  "context) noexcept`");
    return true;
}
} // namespace detail

/// creating_backend<P> - the sleeping lock and the metadata heap of platform P. Every
/// call takes the context it is made under, as the platform contract asks.
template <class P>
struct creating_backend {
    using traits = platform_traits<P>;
    using context = typename traits::context;
    static constexpr bool creates_chunks = true;

    static void slow_lock(P& p, context ctx) noexcept { traits::slow_lock(p, ctx); }
    static void slow_unlock(P& p) noexcept { p.slow_unlock(); }
    static void* alloc_meta(P& p, std::size_t bytes, std::size_t align, context ctx) noexcept {
        return p.alloc_meta(bytes, align, ctx);
    }
    static void free_meta(P& p, void* m, std::size_t bytes, context ctx) noexcept {
        traits::free_meta(p, m, bytes, ctx);
    }
};

} // namespace pcpu
