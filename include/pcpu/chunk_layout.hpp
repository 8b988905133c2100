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
#include "internal/scan_chunk.hpp"

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
    /// sorts_single_chunk - a static_only allocator keeps its one chunk on the slot
    /// lists by contig hint, as the kernel keeps every chunk (chunk_stats::slot shows it).
    static constexpr bool sorts_single_chunk = true;

    /// chunk<PageShift> - the chunk type for pages of 1 << PageShift bytes.
    template <unsigned PageShift>
    using chunk = basic_chunk<PageShift, detail::log2_exact(GranuleBytes),
                              BlockBytes == 0 ? PageShift : detail::log2_exact(BlockBytes)>;
};

/// kernel_layout - the kernel's: 4-byte granule, one block per page.
using kernel_layout = chunk_layout<>;

/// scan_layout<GranuleBytes> - the firmware chunk policy: the same maps without block
/// hints (internal/scan_chunk.hpp). Every search scans the allocation map, O(map bits /
/// word bits + free runs) per operation, and finds the exact first fit for any
/// alignment up to the page; the hints' code (most of the hinted chunk's) is not
/// compiled, and a chunk's metadata is its bitmaps alone. For a small first chunk
/// (static_only firmware) and wherever flash matters more than a search that does not
/// read the map.
template <std::size_t GranuleBytes = min_alloc_size>
struct scan_layout {
    static_assert(detail::is_pow2(GranuleBytes) && GranuleBytes >= min_alloc_size,
                  "pcpu: scan_layout: the granule must be a power of two of at least 4 bytes");
    static constexpr std::size_t granule_bytes = GranuleBytes;
    /// sorts_single_chunk - false: a static_only allocator searches its one chunk
    /// directly and keeps no slot lists in order (it sits on slot 0); with a back end
    /// that creates chunks the slot index sorts them as with any layout.
    static constexpr bool sorts_single_chunk = false;

    template <unsigned PageShift>
    using chunk = basic_scan_chunk<PageShift, detail::log2_exact(GranuleBytes)>;
};

} // namespace pcpu
