// SPDX-License-Identifier: MIT
// pcpu/chunk_layout.hpp - the chunk / bitmap-allocator policy: how many bytes one bitmap
// bit stands for (the granule) and how many bytes one block summary covers (the block).
//
// The kernel's layout, the default, is a 4-byte granule and one block per page. The two
// trade metadata against search cost:
//  - a larger granule (8, 16, ... bytes: for users who never allocate less) halves or
//    quarters both bitmaps and every scan over them, and makes every allocation a
//    multiple of it (sizes and alignments below it round up to it);
//  - a smaller block (a power-of-two fraction of the page) bounds each in-block scan
//    and hint refresh by a shorter block, for one more block_md (40 bytes) per block.
//    Population stays per page. The largest alignment an allocation can ask for is
//    one block (allocator::max_align).
#pragma once

#include "config.hpp"
#include "internal/chunk.hpp"

#include <cstddef>

namespace pcpu {

namespace detail {
constexpr unsigned log2_exact(std::size_t v) noexcept {
    unsigned s = 0;
    while ((std::size_t{1} << s) < v) ++s;
    return s;
}
constexpr bool is_pow2(std::size_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }
} // namespace detail

/// chunk_layout<GranuleBytes, BlockBytes> - the bitmap allocator's geometry, the third
/// template parameter of allocator. GranuleBytes: a power of two, at least 4. BlockBytes:
/// a power of two dividing the page and holding at least 32 granules, or 0 for one
/// block per page. Both are checked when the chunk type is made for a page size.
template <std::size_t GranuleBytes = min_alloc_size, std::size_t BlockBytes = 0>
struct chunk_layout {
    static_assert(detail::is_pow2(GranuleBytes) && GranuleBytes >= min_alloc_size,
                  "pcpu: chunk_layout: the granule must be a power of two of at least 4 bytes");
    static_assert(BlockBytes == 0 || detail::is_pow2(BlockBytes),
                  "pcpu: chunk_layout: the block must be a power of two (or 0: one block per page)");
    static constexpr std::size_t granule_bytes = GranuleBytes;
    static constexpr std::size_t block_bytes = BlockBytes; ///< 0: one block per page

    /// chunk<PageShift> - the chunk type for pages of 1 << PageShift bytes.
    template <unsigned PageShift>
    using chunk = basic_chunk<PageShift, detail::log2_exact(GranuleBytes),
                              BlockBytes == 0 ? PageShift : detail::log2_exact(BlockBytes)>;
};

/// kernel_layout - the kernel's: 4-byte granule, one block per page.
using kernel_layout = chunk_layout<>;

} // namespace pcpu
