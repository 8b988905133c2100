// SPDX-License-Identifier: MIT
// pcpu/internal/scan_chunk.hpp - a chunk without block hints: every search is a scan
// of the allocation map. The firmware chunk policy (chunk_layout.hpp, scan_layout).
//
// basic_chunk keeps a block_md per block and a chunk_md so that a request can be
// placed, or rejected, without reading the map; that summary is most of its code.
// A firmware image with one small first chunk does not need it: its map is a few
// hundred words at most, and flash is the scarcer resource. This chunk keeps the
// maps (internal/chunk_maps.hpp), the populated bitmap and three exact summaries:
//
//  - contig_: the longest free run. An allocation can shorten only the run it took
//    from, so the map is rescanned only when that run was a longest one; a free
//    merges its run with its neighbours and contig_ takes the longer.
//  - first_free_: the first clear bit, where every search begins.
//  - nr_empty_pop_pages_: populated pages entirely free, counted on the pages an
//    allocation or a free touches.
//
// The answers are those of an exact first fit, stronger than the hinted chunk's: a
// request fails (find_fit() returns -1) only if no aligned free run holds it, for any
// alignment up to the page.
//
// Cost, for a chunk of M = map_bits() bits, W = bits per bitmap word (64, or 32 on
// 32-bit targets), h free runs (holes) and a request of `bits`:
//  - find_fit(): O(1) when contig_ < bits; else the scan from first_free_ to the first
//    aligned fit: at most M / W words and h runs (each two word searches).
//  - alloc_area(): the same scan from find_fit()'s result, which finds it at once;
//    the claim, O(bits / W); the free run around it, O(M / W) at worst; and when that
//    run was a longest one, a rescan of the map: M / W words and h runs.
//  - free (area_size() + free_area()): the bound-map search, bits / W + 1 words; the
//    merged run, O(M / W) words at worst; the pages touched, page_bits / W words each.
// So an operation costs O(M / W + h): linear in the map, bounded by the chunk, and
// independent of anything else the allocator holds.
#pragma once

#include "bitmap.hpp"
#include "block.hpp"
#include "chunk_maps.hpp"
#include "../config.hpp"

namespace pcpu {

/// basic_scan_chunk<PageShift, GranuleShift> - pages of 1 << PageShift bytes, one
/// bitmap bit per granule of 1 << GranuleShift bytes. The same interface as
/// basic_chunk, which the allocator uses through chunk_layout.
template <unsigned PageShift = PCPU_DEFAULT_PAGE_SHIFT, unsigned GranuleShift = min_alloc_shift>
class basic_scan_chunk {
public:
    using geometry = page_geometry<PageShift>;
    static_assert(GranuleShift >= min_alloc_shift,
                  "pcpu: scan_layout: the granule must be a power of two of at least 4 bytes");
    static_assert(PageShift >= GranuleShift + 5, "pcpu: scan_layout: a page must hold at least 32 granules");
    static constexpr unsigned granule_shift = GranuleShift;
    static constexpr std::size_t granule_size = std::size_t{1} << GranuleShift;
    static constexpr std::uint32_t page_bits = static_cast<std::uint32_t>(geometry::page_size >> GranuleShift);
    /// max_align - the largest alignment (bytes) find_fit() takes: the page.
    static constexpr std::size_t max_align = geometry::page_size;
    /// max_pages - largest chunk: bit offsets (and find_fit's result) fit an int32_t.
    static constexpr std::uint32_t max_pages = (0x7fffffffu - page_bits) / page_bits;

    /// meta_bytes(nr_pages) - bytes of metadata (alloc_map, bound_map of map_bits + 1
    /// bits, populated bitmap) for a chunk of nr_pages pages.
    static constexpr std::size_t meta_bytes(std::uint32_t nr_pages) noexcept {
        return words::all(nr_pages) * sizeof(bitmap::word);
    }
    /// meta_align - required alignment of that storage.
    static constexpr std::size_t meta_align = alignof(bitmap::word);

    /// init(meta, nr_pages) - as basic_chunk::init().
    void init(void* meta, std::uint32_t nr_pages) noexcept {
        PCPU_ASSERT(meta != nullptr);
        PCPU_ASSERT(reinterpret_cast<std::uintptr_t>(meta) % meta_align == 0);
        PCPU_ASSERT(nr_pages > 0 && nr_pages <= max_pages);
        words::lay_out(meta, nr_pages, alloc_map_, bound_map_, populated_);
        nr_pages_ = nr_pages;
        map_bits_ = nr_pages * page_bits;
        free_bits_ = contig_ = usable_end_ = map_bits_;
        first_free_ = usable_begin_ = 0;
        nr_populated_ = nr_empty_pop_pages_ = nr_alloc_ = max_alloc_bits_ = 0;
    }

    /// hide(begin, end) - as basic_chunk::hide(): [0, begin) and [end, map_bits())
    /// allocated for good, not counted and not freeable.
    void hide(std::uint32_t begin, std::uint32_t end) noexcept {
        PCPU_ASSERT(begin <= end && end <= map_bits_);
        PCPU_ASSERT(is_empty() && usable_begin_ == 0 && usable_end_ == map_bits_);
        if (begin > 0) mark_allocated(0, begin);
        if (end < map_bits_) mark_allocated(end, map_bits_);
        usable_begin_ = begin;
        usable_end_ = end;
        refresh_contig();
    }

    /// set_populated/set_depopulated(page_begin, page_end) - as basic_chunk's.
    void set_populated(std::uint32_t page_begin, std::uint32_t page_end) noexcept {
        PCPU_ASSERT(page_begin <= page_end && page_end <= nr_pages_);
        PCPU_ASSERT(bitmap::all_clear(populated_, page_begin, page_end));
        bitmap::set_range(populated_, page_begin, page_end);
        nr_populated_ += page_end - page_begin;
        nr_empty_pop_pages_ += free_pop_pages(page_begin, page_end);
    }
    void set_depopulated(std::uint32_t page_begin, std::uint32_t page_end) noexcept {
        PCPU_ASSERT(page_begin <= page_end && page_end <= nr_pages_);
        PCPU_ASSERT(bitmap::all_set(populated_, page_begin, page_end));
        nr_empty_pop_pages_ -= free_pop_pages(page_begin, page_end);
        bitmap::clear_range(populated_, page_begin, page_end);
        nr_populated_ -= page_end - page_begin;
    }
    bool is_populated(std::uint32_t page) const noexcept {
        PCPU_ASSERT(page < nr_pages_);
        return bitmap::test(populated_, page);
    }
    const bitmap::word* populated_map() const noexcept { return populated_; }
    /// page_is_free(page) - no bit of the page is allocated.
    bool page_is_free(std::uint32_t page) const noexcept {
        PCPU_ASSERT(page < nr_pages_);
        return bitmap::all_clear(alloc_map_, std::size_t{page} * page_bits, std::size_t{page + 1} * page_bits);
    }

    /// find_fit(bits, align, pop_only) - the first `align`-aligned offset (align in bits,
    /// a power of two <= page_bits) of `bits` free bits, on populated pages only with
    /// pop_only; -1 if there is none. alloc_area(bits, align, result) claims exactly it.
    std::int32_t find_fit(std::uint32_t bits, std::uint32_t align, bool pop_only) const noexcept {
        return find_fit_in<true>(bits, align, pop_only);
    }
    /// find_fit_in<MayCheckPopulation>(...) - as basic_chunk's: with MayCheckPopulation
    /// false (every page known populated) the population check is not compiled.
    template <bool MayCheckPopulation>
    std::int32_t find_fit_in(std::uint32_t bits, std::uint32_t align, bool pop_only) const noexcept {
        PCPU_ASSERT(MayCheckPopulation || !pop_only || nr_populated_ == nr_pages_);
        PCPU_ASSERT(bits > 0 && align > 0 && (align & (align - 1)) == 0 && align <= page_bits);
        if (bits > contig_) return -1;
        return first_fit(first_free_, bits, align, MayCheckPopulation && pop_only);
    }

    /// alloc_area(bits, align, start) - claim the first `align`-aligned run of `bits`
    /// free bits at or after `start`. Returns the bit offset, or -1 if there is none.
    std::int32_t alloc_area(std::uint32_t bits, std::uint32_t align, std::uint32_t start) noexcept {
        PCPU_ASSERT(bits > 0 && align > 0 && (align & (align - 1)) == 0 && align <= page_bits);
        const std::int32_t at = first_fit(start, bits, align, false);
        if (at < 0) return -1;
        const auto s = static_cast<std::uint32_t>(at);
        // Only the run this takes from gets shorter: the longest run changes only if
        // this was one.
        const bool was_longest = run_length(s) == contig_;
        mark_allocated(s, s + bits);
        if (was_longest) refresh_contig();
        ++nr_alloc_;
        if (bits > max_alloc_bits_) max_alloc_bits_ = bits;
        return at;
    }

    /// area_size(off) - see detail::area_size() (internal/chunk_maps.hpp).
    std::uint32_t area_size(std::uint32_t off) const noexcept {
        return detail::area_size(alloc_map_, bound_map_, map_bits_, usable_begin_, usable_end_, off);
    }

    /// free_area(off[, bits]) - free the live allocation starting at `off`
    /// (bits == area_size(off) != 0). Returns the freed size in bits.
    std::uint32_t free_area(std::uint32_t off) noexcept { return free_area(off, area_size(off)); }
    std::uint32_t free_area(std::uint32_t off, std::uint32_t bits) noexcept {
        PCPU_ASSERT(bits != 0 && bits == area_size(off));
        bitmap::clear_range(alloc_map_, off, off + bits);
        free_bits_ += bits;
        --nr_alloc_;
        if (off < first_free_) first_free_ = off;
        nr_empty_pop_pages_ += free_pop_pages(off / page_bits, (off + bits - 1) / page_bits + 1);
        // The freed bits join their neighbours into one run; every other run is as it was.
        const std::uint32_t len = run_length(off);
        if (len > contig_) contig_ = len;
        return bits;
    }

    // --- state, all exact at every return from a public member --------------------
    std::uint32_t nr_pages() const noexcept { return nr_pages_; }
    std::uint32_t map_bits() const noexcept { return map_bits_; }
    std::uint32_t free_bits() const noexcept { return free_bits_; }
    std::uint32_t contig_bits() const noexcept { return contig_; }
    std::uint32_t first_free() const noexcept { return first_free_; }
    std::uint32_t nr_populated() const noexcept { return nr_populated_; }
    std::uint32_t nr_empty_pop_pages() const noexcept { return nr_empty_pop_pages_; }
    std::uint32_t nr_alloc() const noexcept { return nr_alloc_; }
    std::uint32_t max_alloc_bits() const noexcept { return max_alloc_bits_; }
    bool is_empty() const noexcept { return free_bits_ == map_bits_; }
    const bitmap::word* alloc_map() const noexcept { return alloc_map_; }
    const bitmap::word* bound_map() const noexcept { return bound_map_; }
    std::uint32_t usable_begin() const noexcept { return usable_begin_; }
    std::uint32_t usable_end() const noexcept { return usable_end_; }

    /// verify() - recompute the longest run, the first free bit, the free, populated and
    /// empty-page counts from the bitmaps, check the maps, and report the first
    /// mismatch. O(map_bits).
    chunk_verify_report verify() const noexcept {
        std::uint32_t longest = 0, first = map_bits_, nr_free = 0;
        std::size_t rs = 0, re = 0;
        for (std::size_t f = 0; bitmap::next_clear_region(alloc_map_, map_bits_, f, rs, re); f = re) {
            if (first == map_bits_) first = u32(rs);
            if (re - rs > longest) longest = u32(re - rs);
            nr_free += u32(re - rs);
        }
        if (contig_ != longest) return detail::chunk_mismatch("contig: not the longest free run", 0, longest, contig_);
        if (first_free_ != first) return detail::chunk_mismatch("first_free", 0, first, first_free_);
        if (free_bits_ != nr_free) return detail::chunk_mismatch("free_bits", 0, nr_free, free_bits_);
        const auto populated = u32(bitmap::count_set(populated_, 0, nr_pages_));
        if (nr_populated_ != populated) return detail::chunk_mismatch("nr_populated", 0, populated, nr_populated_);
        const std::uint32_t empty = free_pop_pages(0, nr_pages_);
        if (nr_empty_pop_pages_ != empty)
            return detail::chunk_mismatch("nr_empty_pop_pages", 0, empty, nr_empty_pop_pages_);
        return maps().verify(nr_alloc_);
    }

private:
    using words = detail::map_words<page_bits>;
    static constexpr std::uint32_t u32(std::size_t v) noexcept { return static_cast<std::uint32_t>(v); }
    detail::chunk_maps maps() const noexcept { return {alloc_map_, bound_map_, map_bits_, usable_begin_, usable_end_}; }

    /// first_fit(from, bits, align, pop_only) - the first `align`-aligned p >= from with
    /// [p, p + bits) free (and on populated pages with pop_only), or -1.
    std::int32_t first_fit(std::uint32_t from, std::uint32_t bits, std::uint32_t align, bool pop_only) const noexcept {
        std::size_t rs = 0, re = 0;
        for (std::size_t f = from; bitmap::next_clear_region(alloc_map_, map_bits_, f, rs, re); f = re) {
            // Positions and sizes are below 2^31 (max_pages), so p + bits cannot wrap.
            for (std::uint32_t p = align_up(u32(rs), align); p + bits <= re;) {
                if (!pop_only) return static_cast<std::int32_t>(p);
                const std::uint32_t page_end = (p + bits - 1) / page_bits + 1;
                const auto hole = u32(bitmap::find_next_clear(populated_, page_end, p / page_bits));
                if (hole == page_end) return static_cast<std::int32_t>(p);
                // Nothing that uses the unpopulated page can be taken: go on after it.
                p = align_up((hole + 1) * page_bits, align);
            }
        }
        return -1;
    }

    /// run_length(bit) - length of the free run holding free bit `bit`.
    std::uint32_t run_length(std::uint32_t bit) const noexcept {
        const auto before = u32(bitmap::find_last_set(alloc_map_, 0, bit));
        const std::uint32_t rs = before == bit ? 0 : before + 1;
        return u32(bitmap::find_next_set(alloc_map_, map_bits_, bit)) - rs;
    }

    /// refresh_contig() - the longest free run, from the map (every run at or after
    /// first_free_).
    void refresh_contig() noexcept {
        contig_ = 0;
        std::size_t rs = 0, re = 0;
        for (std::size_t f = first_free_; bitmap::next_clear_region(alloc_map_, map_bits_, f, rs, re); f = re)
            if (re - rs > contig_) contig_ = u32(re - rs);
    }

    /// mark_allocated(s, e) - [s, e) allocated, the counts and first_free_ with it
    /// (contig_ is the caller's).
    void mark_allocated(std::uint32_t s, std::uint32_t e) noexcept {
        nr_empty_pop_pages_ -= free_pop_pages(s / page_bits, (e - 1) / page_bits + 1);
        detail::mark_area(alloc_map_, bound_map_, s, e);
        free_bits_ -= e - s;
        if (s == first_free_) first_free_ = u32(bitmap::find_next_clear(alloc_map_, map_bits_, e));
    }

    /// free_pop_pages(page_begin, page_end) - pages of the range populated and
    /// entirely free.
    std::uint32_t free_pop_pages(std::uint32_t page_begin, std::uint32_t page_end) const noexcept {
        std::uint32_t n = 0;
        for (std::uint32_t p = page_begin; p < page_end; ++p)
            if (bitmap::test(populated_, p) && page_is_free(p)) ++n;
        return n;
    }

    bitmap::word* alloc_map_ = nullptr;
    bitmap::word* bound_map_ = nullptr;
    bitmap::word* populated_ = nullptr;
    std::uint32_t nr_pages_ = 0;
    std::uint32_t map_bits_ = 0;
    std::uint32_t free_bits_ = 0;
    std::uint32_t contig_ = 0;
    std::uint32_t first_free_ = 0;
    std::uint32_t nr_populated_ = 0;
    std::uint32_t nr_empty_pop_pages_ = 0;
    std::uint32_t nr_alloc_ = 0;
    std::uint32_t max_alloc_bits_ = 0;
    std::uint32_t usable_begin_ = 0; ///< [usable_begin_, usable_end_) is usable; the rest is hidden
    std::uint32_t usable_end_ = 0;
};

} // namespace pcpu
