// SPDX-License-Identifier: MIT
// pcpu/chunk.hpp - one chunk's bitmap allocator (struct pcpu_chunk, pcpu_find_block_fit,
// pcpu_alloc_area, pcpu_free_area).
//
// INTERFACE CONTRACT (used by allocator.hpp). The chunk knows nothing about CPUs,
// addresses, locks or contexts: it manages offsets inside one unit. All positions and
// sizes are in bits (1 bit = min_alloc_size = 4 bytes) unless a name says _bytes or
// _pages. Metadata storage is supplied by the caller (static storage for the first
// chunk, platform alloc_meta for dynamic chunks), so the chunk itself never allocates.
#pragma once

#include "bitmap.hpp"
#include "block.hpp"
#include "config.hpp"

namespace pcpu {

/// chunk_verify_report - first mismatch found by basic_chunk::verify(); ok == true when
/// none. `what` is a static string naming the invariant, `index` the block (or bit, or
/// page, as `what` says), expected/actual the recomputed and stored values.
struct chunk_verify_report {
    bool ok = true;
    const char* what = nullptr;
    std::uint32_t index = 0;
    std::uint32_t expected = 0;
    std::uint32_t actual = 0;
};

template <unsigned PageShift = PCPU_DEFAULT_PAGE_SHIFT>
class basic_chunk {
public:
    using geometry = page_geometry<PageShift>;
    static constexpr std::uint32_t block_bits = geometry::block_bits;

    /// meta_bytes(nr_pages) - bytes of metadata (alloc_map, bound_map of map_bits + 1
    /// bits, one block_md per page, populated bitmap) for a chunk of nr_pages pages.
    static constexpr std::size_t meta_bytes(std::uint32_t nr_pages) noexcept;
    /// meta_align - required alignment of that storage.
    static constexpr std::size_t meta_align = alignof(bitmap::word) > alignof(block_md)
                                                  ? alignof(bitmap::word)
                                                  : alignof(block_md);

    /// init(meta, nr_pages) - lay the metadata out in `meta` (meta_bytes(nr_pages)
    /// bytes, meta_align aligned, contents arbitrary) and make the chunk entirely free
    /// and entirely unpopulated. map_bits() == nr_pages * block_bits.
    void init(void* meta, std::uint32_t nr_pages) noexcept;

    /// hide(begin, end) - mark [0, begin) and [end, map_bits()) permanently allocated:
    /// the first chunk's head (static area, reserved area, alignment) and tail. Done
    /// once, right after init() and set_populated(), through the normal hint update.
    /// These bits are never freeable: area_size() reports 0 for them.
    void hide(std::uint32_t begin, std::uint32_t end) noexcept;

    /// set_populated/set_depopulated(page_begin, page_end) - population bookkeeping for
    /// pages [page_begin, page_end); every page in the range must currently be
    /// unpopulated (populated). Keeps nr_populated() and nr_empty_pop_pages() exact.
    void set_populated(std::uint32_t page_begin, std::uint32_t page_end) noexcept;
    void set_depopulated(std::uint32_t page_begin, std::uint32_t page_end) noexcept;
    bool is_populated(std::uint32_t page) const noexcept;
    const bitmap::word* populated_map() const noexcept;

    /// find_fit(bits, align, pop_only) - a bit offset where alloc_area() should start
    /// looking (pcpu_find_block_fit), or -1 if the hints say nothing fits. `align` is
    /// in bits, a power of two <= block_bits. With pop_only, only regions whose pages are
    /// all populated are accepted (the atomic path).
    std::int32_t find_fit(std::uint32_t bits, std::uint32_t align, bool pop_only) const noexcept;

    /// alloc_area(bits, align, start) - claim the first `align`-aligned run of `bits`
    /// free bits in [start, min(start + bits + block_bits, map_bits())), updating every
    /// hint incrementally. Returns the bit offset, or -1 if none in the window.
    std::int32_t alloc_area(std::uint32_t bits, std::uint32_t align, std::uint32_t start) noexcept;

    /// area_size(off) - size in bits of the live allocation that starts at bit `off`, or
    /// 0 if `off` is not the start of a live allocation (free bit, interior bit, hidden
    /// region, out of range). Used to reject bad frees before touching anything.
    std::uint32_t area_size(std::uint32_t off) const noexcept;

    /// free_area(off) - free the live allocation starting at `off` (precondition:
    /// area_size(off) != 0). Returns the freed size in bits.
    std::uint32_t free_area(std::uint32_t off) noexcept;

    // --- state, all exact at every return from a public member --------------------
    std::uint32_t nr_pages() const noexcept;
    std::uint32_t map_bits() const noexcept;
    std::uint32_t free_bits() const noexcept;          ///< clear alloc_map bits
    std::uint32_t contig_bits() const noexcept;        ///< largest free run (chunk_md contig hint)
    std::uint32_t first_free() const noexcept;         ///< first clear bit (map_bits() if none)
    std::uint32_t nr_populated() const noexcept;       ///< popcount of populated bitmap
    std::uint32_t nr_empty_pop_pages() const noexcept; ///< populated pages whose block is entirely free
    std::uint32_t nr_alloc() const noexcept;           ///< live allocations (hidden regions excluded)
    std::uint32_t max_alloc_bits() const noexcept;     ///< largest allocation ever made here
    bool is_empty() const noexcept;                    ///< no live allocation and nothing hidden
    const block_md& chunk_md() const noexcept;
    const block_md& block(std::uint32_t i) const noexcept;
    const bitmap::word* alloc_map() const noexcept;
    const bitmap::word* bound_map() const noexcept;

    /// verify() - recompute every block hint, the chunk hints, the free and empty-page
    /// counts from the bitmaps and report the first mismatch (see the invariants listed
    /// with the members that maintain them). O(map_bits).
    chunk_verify_report verify() const noexcept;
};

using chunk = basic_chunk<>;

} // namespace pcpu
