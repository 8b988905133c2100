// SPDX-License-Identifier: MIT
// pcpu/config.hpp - build configuration, compile-time geometry and the assertion hook.
//
// Everything that sizes an array is decided here at compile time (page size, minimum
// allocation); everything the platform decides (CPU count, unit size, first-chunk
// sizes) is a run-time value handed to allocator::init().
#pragma once

#include <cstddef>
#include <cstdint>

/// PCPU_ASSERT(cond) - contract checks inside pcpu. Bad *input* never reaches an
/// assertion: it is reported as an error value. Assertions guard internal invariants
/// only. Override before including any pcpu header (e.g. to a firmware trap).
#ifndef PCPU_ASSERT
#include <cassert>
#define PCPU_ASSERT(cond) assert(cond)
#endif

/// PCPU_DEFAULT_PAGE_SHIFT - log2 of the page (= bitmap block) size used when a
/// platform does not name one. 12 (4 KiB) matches Linux; firmware with little RAM may
/// choose 10 (1 KiB pages, 256-bit blocks).
#ifndef PCPU_DEFAULT_PAGE_SHIFT
#define PCPU_DEFAULT_PAGE_SHIFT 12
#endif

namespace pcpu {

/// One bitmap bit stands for this many bytes: the minimum size and alignment.
inline constexpr unsigned min_alloc_shift = 2;
inline constexpr std::size_t min_alloc_size = std::size_t{1} << min_alloc_shift;

/// page_geometry<PageShift> - sizes derived from the page size. A bitmap block is one
/// page, as in Linux since 2019, so "block entirely free" means "page empty": that is
/// what lets population and the empty-page counts work page by page.
template <unsigned PageShift>
struct page_geometry {
    static_assert(PageShift >= 7 && PageShift <= 16,
                  "pcpu: page shift must be in [7, 16] (block of 32 to 16384 bits)");
    static constexpr unsigned page_shift = PageShift;
    static constexpr std::size_t page_size = std::size_t{1} << PageShift;
    /// bits per block (one block per page)
    static constexpr std::uint32_t block_bits =
        static_cast<std::uint32_t>(page_size >> min_alloc_shift);
};

} // namespace pcpu
