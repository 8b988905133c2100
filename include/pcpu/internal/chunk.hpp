// SPDX-License-Identifier: MIT
// pcpu/internal/chunk.hpp - one chunk's bitmap allocator (struct pcpu_chunk, pcpu_find_block_fit,
// pcpu_alloc_area, pcpu_free_area).
//
// The chunk knows nothing about CPUs, addresses, locks or contexts: it manages
// offsets inside one unit. All positions and sizes are in bits (1 bit = one
// granule, granule_size bytes: 4 in the kernel's layout) unless a name says _bytes or
// _pages. Metadata storage is
// supplied by the caller (static storage for the first chunk, platform alloc_meta for
// dynamic chunks), so the chunk itself never allocates.
//
// The allocation map is the ground truth; everything else summarises it so that a
// request can be placed, or rejected, without reading it:
//
//  - alloc_map and bound_map, as every chunk policy keeps them
//    (internal/chunk_maps.hpp).
//  - one block_md per block, block relative. A block is a page in the kernel's
//    layout, or a power-of-two fraction of one (blocks_per_page of them): smaller
//    blocks cost more metadata and bound every scan by a shorter block. Population
//    stays per page, so "page empty" means "every block of the page entirely free"
//    (page_is_free()).
//  - chunk_md: the same summary for the whole chunk, chunk absolute.
//
// Exactness. Block contig hints, left_free and right_free are exact after every
// public call, and so is the chunk contig hint (the kernel lets the latter fall
// behind after frees; here a free merges the run it creates into chunk_md, chunk
// absolute at both ends and extended over the neighbouring blocks' edges). With
// align == 1 a request therefore fails only if no free run is long enough. Scan
// hints are heuristics, but kept safe: no run wholly before a scan hint is longer
// than it, so a search that skips to its end skips nothing that fits. max_before and
// max_after (block.hpp) are upper bounds, never too low.
//
// Cost, for a chunk of P blocks (pages) of B = block_bits bits, W = bits per bitmap
// word (64, or 32 on 32-bit targets), R = scan_runs (4), and a request of `bits` at
// alignment A (both in bits, A <= B). A "run" is a free run read from the bitmap, a
// "word" a bitmap word, a "block" a block_md read. The search does not depend on how
// many holes there are or how they are aligned; one hint refresh can (below).
//
//  alloc (find_fit() + alloc_area()):
//  - find_fit(): O(1) when the chunk's contig hint rejects the request (aligned: its
//    contig run cannot hold the request at its aligned start), else at most P blocks,
//    from the chunk's hint; never a bitmap word but the populated map's.
//  - alloc_area(): the window is [start, start + bits + B). R runs examined one by
//    one (each a couple of word searches; the scan learns the longest, a scan hint),
//    then the rest of the window a word at a time, each word read at most twice:
//    at most (bits + B) / W + 2 words, O(1) work per word when bits >= W and
//    O(log2 bits) shifts when shorter (find_aligned_fit()). One run when the request
//    is longer than the block's max_before (the search starts on the contig run).
//  - the hint updates of the claim: O(1) per block touched (a claim spans
//    bits / B + 2 blocks); in the at most two edge blocks whose contig run it breaks,
//    a split proof of O(1) or O(B / W) words, else a refresh: R runs, then, once a
//    run as long as the bound the caller passes (max_before, max_after, the pieces)
//    is the contig hint, one word search of the block (B / W + 1 words). Those
//    bounds are upper bounds, exact after a walk; where one is loose the refresh
//    goes on run by run, at most B / 2 runs. At chunk level an O(1) split proof,
//    else a walk of at most P blocks.
//  With PCPU_FIT_WORD_SEARCH 0 (config.hpp; the default under -Os) both walks go on
//  run by run to the end of their window: up to (bits + B) / 2 runs in alloc_area()
//  and B / 2 per refresh, the same first fit.
//  So an allocation costs at most 2P blocks, 2R runs and (bits + 3B) / W + 8 words,
//  O(P + R + (bits + B) / W) word operations (times log2 W for requests shorter
//  than a word), plus up to B / 2 runs per edge block whose refresh bound is loose.
//  tests/test_fragmentation.cpp counts it on adversarial
//  layouts (1-bit holes, runs one bit too short, a decoy run one bit too short for
//  the aligned request before a block of 1-bit holes; every free order, three fit
//  locations) and bench/bench_frag.cpp times them (frag/alloc, frag/decoy).
//
//  free (area_size() + free_area()): the bound-map search, bits / W + 1 words; at
//  most one block's words backwards and one forwards to find the run (2B / W + 2);
//  O(1) hint merges; and P blocks at most when the run reaches an entirely free
//  neighbouring block. O(P + (bits + B) / W).
#pragma once

#include "bitmap.hpp"
#include "block.hpp"
#include "chunk_maps.hpp"
#include "../config.hpp"
#include "fit_counters.hpp"

#include <new>

namespace pcpu {

/// basic_chunk<PageShift, GranuleShift, BlockShift> - pages of 1 << PageShift bytes,
/// one bitmap bit per granule of 1 << GranuleShift bytes (the minimum allocation size
/// and alignment), one block_md per block of 1 << BlockShift bytes. The public face of
/// the last two is chunk_layout (chunk_layout.hpp).
template <unsigned PageShift = PCPU_DEFAULT_PAGE_SHIFT, unsigned GranuleShift = min_alloc_shift,
          unsigned BlockShift = PageShift>
class basic_chunk {
public:
    using geometry = page_geometry<PageShift>;
    static_assert(GranuleShift >= min_alloc_shift,
                  "pcpu: chunk_layout: the granule must be a power of two of at least 4 bytes");
    static_assert(BlockShift <= PageShift,
                  "pcpu: chunk_layout: a block must be a power of two no larger than the page");
    static_assert(BlockShift >= GranuleShift + 5,
                  "pcpu: chunk_layout: a block must hold at least 32 granules (block bytes >= 32 x granule bytes)");
    static constexpr unsigned granule_shift = GranuleShift;
    static constexpr std::size_t granule_size = std::size_t{1} << GranuleShift;
    static constexpr std::uint32_t page_bits = static_cast<std::uint32_t>(geometry::page_size >> GranuleShift);
    static constexpr std::uint32_t block_bits = std::uint32_t{1} << (BlockShift - GranuleShift);
    static constexpr std::uint32_t blocks_per_page = page_bits / block_bits;
    /// max_align - the largest alignment (bytes) find_fit() takes: one block.
    static constexpr std::size_t max_align = std::size_t{block_bits} << GranuleShift;
    /// max_pages - largest chunk: bit offsets (and find_fit's result) must fit an
    /// int32_t, and a window end (offset + bits + block_bits) a uint32_t.
    static constexpr std::uint32_t max_pages = (0x7fffffffu - block_bits) / page_bits;

    /// scan_runs - how many free runs alloc_area() (and a block refresh that knows a
    /// bound) examines one by one before it searches the rest a word at a time. Run by
    /// run, the scan learns the longest run it passes (a scan hint for the next
    /// search); word by word, the cost is bounded by the words, whatever the holes.
    static constexpr std::uint32_t scan_runs = 4;

    /// meta_bytes(nr_pages) - bytes of metadata (alloc_map, bound_map of map_bits + 1
    /// bits, one block_md per block, populated bitmap) for a chunk of nr_pages pages.
    static constexpr std::size_t meta_bytes(std::uint32_t nr_pages) noexcept {
        return words::all(nr_pages) * sizeof(bitmap::word) + std::size_t{nr_pages} * blocks_per_page * sizeof(block_md);
    }
    /// meta_align - required alignment of that storage.
    static constexpr std::size_t meta_align = alignof(bitmap::word) > alignof(block_md)
                                                  ? alignof(bitmap::word)
                                                  : alignof(block_md);

    /// init(meta, nr_pages) - lay the metadata out in `meta` (meta_bytes(nr_pages)
    /// bytes, meta_align aligned, contents arbitrary) and make the chunk entirely free
    /// and entirely unpopulated. map_bits() == nr_pages * page_bits.
    void init(void* meta, std::uint32_t nr_pages) noexcept {
        PCPU_ASSERT(meta != nullptr);
        PCPU_ASSERT(reinterpret_cast<std::uintptr_t>(meta) % meta_align == 0);
        PCPU_ASSERT(nr_pages > 0 && nr_pages <= max_pages);
        // Layout: the three maps, then md_blocks. The word arrays come first so the
        // block array needs no padding (static_assert below).
        md_blocks_ = static_cast<block_md*>(
            static_cast<void*>(words::lay_out(meta, nr_pages, alloc_map_, bound_map_, populated_)));

        nr_pages_ = nr_pages;
        nr_blocks_ = nr_pages * blocks_per_page;
        map_bits_ = nr_pages * page_bits;
        for (std::uint32_t b = 0; b < nr_blocks_; ++b) block_init(*new (&md_blocks_[b]) block_md{}, block_bits);
        block_init(chunk_md_, map_bits_);
        free_bits_ = map_bits_;
        nr_populated_ = 0;
        nr_empty_pop_pages_ = 0;
        nr_alloc_ = 0;
        max_alloc_bits_ = 0;
        usable_begin_ = 0;
        usable_end_ = map_bits_;
    }

    /// hide(begin, end) - mark [0, begin) and [end, map_bits()) permanently allocated:
    /// the first chunk's head (static area, reserved area, alignment) and tail. Done
    /// once, right after init() and set_populated(), through the normal hint update.
    /// These bits are never freeable: area_size() reports 0 for them.
    void hide(std::uint32_t begin, std::uint32_t end) noexcept {
        PCPU_ASSERT(begin <= end && end <= map_bits_);
        PCPU_ASSERT(is_empty() && usable_begin_ == 0 && usable_end_ == map_bits_);
        // Hidden areas are claimed like allocations (bound bits included) so every
        // hint sees them; they are simply not counted and not freeable.
        if (begin > 0) mark_allocated(0, begin);
        if (end < map_bits_) mark_allocated(end, map_bits_);
        usable_begin_ = begin;
        usable_end_ = end;
    }

    /// set_populated/set_depopulated(page_begin, page_end) - population bookkeeping for
    /// pages [page_begin, page_end); every page in the range must currently be
    /// unpopulated (populated). Keeps nr_populated() and nr_empty_pop_pages() exact.
    void set_populated(std::uint32_t page_begin, std::uint32_t page_end) noexcept {
        PCPU_ASSERT(page_begin <= page_end && page_end <= nr_pages_);
        PCPU_ASSERT(bitmap::all_clear(populated_, page_begin, page_end));
        bitmap::set_range(populated_, page_begin, page_end);
        nr_populated_ += page_end - page_begin;
        // A page counts as an empty populated page exactly while both hold; the
        // allocation paths keep the other half of that bargain.
        for (std::uint32_t p = page_begin; p < page_end; ++p)
            if (page_is_free(p)) ++nr_empty_pop_pages_;
    }
    void set_depopulated(std::uint32_t page_begin, std::uint32_t page_end) noexcept {
        PCPU_ASSERT(page_begin <= page_end && page_end <= nr_pages_);
        PCPU_ASSERT(bitmap::all_set(populated_, page_begin, page_end));
        bitmap::clear_range(populated_, page_begin, page_end);
        nr_populated_ -= page_end - page_begin;
        for (std::uint32_t p = page_begin; p < page_end; ++p)
            if (page_is_free(p)) --nr_empty_pop_pages_;
    }
    bool is_populated(std::uint32_t page) const noexcept {
        PCPU_ASSERT(page < nr_pages_);
        return bitmap::test(populated_, page);
    }
    const bitmap::word* populated_map() const noexcept { return populated_; }
    /// page_is_free(page) - every block of the page is entirely free.
    bool page_is_free(std::uint32_t page) const noexcept {
        PCPU_ASSERT(page < nr_pages_);
        if constexpr (blocks_per_page == 1) {
            return block_is_free(md_blocks_[page]);
        } else {
            for (std::uint32_t b = page * blocks_per_page; b < (page + 1) * blocks_per_page; ++b)
                if (!block_is_free(md_blocks_[b])) return false;
            return true;
        }
    }

    /// find_fit(bits, align, pop_only) - a bit offset where alloc_area() should start
    /// looking (pcpu_find_block_fit), or -1 if the hints say nothing fits. `align` is
    /// in bits, a power of two <= block_bits. With pop_only, only regions whose pages are
    /// all populated are accepted (the atomic path).
    ///
    /// A non-negative result guarantees that alloc_area(bits, align, result) succeeds
    /// (its window always holds the fit the hints promised, and its first fit lies no
    /// later than that one), and with pop_only that the area it claims lies on
    /// populated pages. The result may be below an earlier position the search
    /// skipped to; it is where the bitmap scan should begin, not the area's offset.
    /// -1 is certain when align == 1 and nothing fits. With align > 1 the search trusts
    /// the hints as the kernel does: it rejects the chunk when the chunk's contig run
    /// cannot hold the aligned request, and inside a block it looks only at the
    /// block's contig run and at runs touching the block's edges, so an aligned fit in
    /// a shorter run in the middle of a block can be missed.
    /// O(blocks); reads no bitmap but the populated one.
    std::int32_t find_fit(std::uint32_t bits, std::uint32_t align, bool pop_only) const noexcept {
        return find_fit_in<true>(bits, align, pop_only);
    }
    /// find_fit_in<MayCheckPopulation>(bits, align, pop_only) - find_fit(); with
    /// MayCheckPopulation false, for a caller that knows at compile time that every page
    /// of the chunk is populated (an allocator that never creates chunks: its first and
    /// reserved chunks are populated throughout), so pop_only cannot change the result
    /// and the population walk is not compiled.
    template <bool MayCheckPopulation>
    std::int32_t find_fit_in(std::uint32_t bits, std::uint32_t align, bool pop_only) const noexcept {
        PCPU_ASSERT(MayCheckPopulation || !pop_only || nr_populated_ == nr_pages_);
        PCPU_ASSERT(bits > 0 && align > 0 && (align & (align - 1)) == 0 && align <= block_bits);
        PCPU_FIND_FIT_COUNT(++detail::fit_counts.find_fit_calls);
        if (!block_check_hint(chunk_md_, bits, align)) {
            PCPU_FIND_FIT_COUNT(++detail::fit_counts.chunk_rejects);
            return -1;
        }
        std::uint32_t pos = block_next_hint(chunk_md_, bits);
        std::uint32_t off = 0, len = 0;
        while (next_fit_region(bits, align, pos, off, len)) {
            if (!MayCheckPopulation || !pop_only) return static_cast<std::int32_t>(off);
            const std::uint32_t page_begin = off / page_bits;
            const std::uint32_t page_end = (off + len - 1) / page_bits + 1;
            const auto hole = u32(bitmap::find_next_clear(populated_, page_end, page_begin));
            if (hole == page_end) return static_cast<std::int32_t>(off);
            // Nothing that fits can use an unpopulated page: go on after the run of
            // them. The region lies at or after pos's block, so this makes progress.
            const auto next = u32(bitmap::find_next_set(populated_, nr_pages_, hole));
            if (next >= nr_pages_) return -1;
            pos = next * page_bits;
        }
        return -1;
    }

    /// alloc_area(bits, align, start) - claim the first `align`-aligned run of `bits`
    /// free bits in [start, min(start + bits + block_bits, map_bits())), updating every
    /// hint incrementally. Returns the bit offset, or -1 if none in the window.
    std::int32_t alloc_area(std::uint32_t bits, std::uint32_t align, std::uint32_t start) noexcept {
        PCPU_ASSERT(bits > 0 && align > 0 && (align & (align - 1)) == 0 && align <= block_bits);
        if (start >= map_bits_) return -1;
        const std::uint64_t limit = std::uint64_t{start} + bits + block_bits;
        const std::uint32_t end = limit < map_bits_ ? static_cast<std::uint32_t>(limit) : map_bits_;

        // pcpu_find_zero_area, run by run: the first aligned fit wins; remember the
        // longest run passed over on the way (see below for ties), which may
        // become a scan hint so the next search of this size skips this prefix.
        std::uint32_t at = 0, skip_s = 0, skip_e = 0;
        bool found = false;
        std::size_t rs = 0, re = 0;
        std::uint32_t runs = 0;
        PCPU_FIND_FIT_COUNT(++detail::fit_counts.scans);
#if PCPU_FIND_FIT_STATS
        std::uint32_t last_hopeless = ~0u;
        std::size_t scan_end = end;
#endif
        for (std::size_t from = start;; from = re) {
            if (PCPU_FIT_WORD_SEARCH && runs++ == scan_runs) {
                // The rest of the window word by word: the same first fit, at a cost
                // that does not grow with the number of holes. Runs it passes lie
                // after every run offered below, so the scan hint stays valid.
                const std::size_t p = find_aligned_fit(from, end, bits, align);
#if PCPU_FIND_FIT_STATS
                ++detail::fit_counts.word_searches;
                scan_end = p < end ? p + bits : end;
#endif
                if (p < end) {
                    at = u32(p);
                    found = true;
                    offer_last_run(u32(from), at, bits, align, skip_s, skip_e);
                }
                break;
            }
            rs = bitmap::find_next_clear(alloc_map_, end, from);
            if (rs >= end) break;
            // Read the run only as far as the request needs: a run that holds the
            // aligned request is taken without finding where it ends (a fresh chunk's
            // free tail is thousands of bits long). re is the run's true end whenever
            // it is below the bound, and the bound is at most the window's end.
            const std::uint32_t a = align_up(u32(rs), align);
            const std::size_t need = std::uint64_t{a} + bits < end ? std::size_t{a} + bits : end;
            re = bitmap::find_next_set(alloc_map_, need, rs + 1);
#if PCPU_FIND_FIT_STATS
            count_scanned_run(u32(rs), u32(re), bits, align, last_hopeless);
            scan_end = re;
#endif
            if (std::uint64_t{a} + bits <= re) {
                at = a;
                found = true;
                break;
            }
            // A run cut by the window's end is not a whole run; nothing follows it.
            if (re == end) break;
            const std::uint32_t len = u32(re - rs);
            // On a tie the later run, unless the earlier is better aligned: as a scan
            // hint the later one skips more (the block is often not rescanned after
            // the claim, see block_split_contig()); as a contig candidate alignment
            // decides.
            if (len > skip_e - skip_s || (len == skip_e - skip_s && !better_aligned(skip_s, u32(rs)))) {
                skip_s = u32(rs);
                skip_e = u32(re);
            }
        }
#if PCPU_FIND_FIT_STATS
        // Words read: from start's word up to the word holding the last bit looked at.
        detail::fit_counts.words_scanned +=
            (scan_end > start ? (scan_end - 1) / bitmap::word_bits : start / bitmap::word_bits) -
            start / bitmap::word_bits + 1;
        if (!found) ++detail::fit_counts.failed_scans;
#endif
        if (!found) return -1;
        if (skip_e != 0) block_update_scan_area(start, skip_s, skip_e);

        mark_allocated(at, at + bits);
        ++nr_alloc_;
        if (bits > max_alloc_bits_) max_alloc_bits_ = bits;
        return static_cast<std::int32_t>(at);
    }

    /// area_size(off) - size in bits of the live allocation that starts at bit `off`, or
    /// 0 if `off` is not the start of a live allocation (free bit, interior bit, hidden
    /// region, out of range). Used to reject bad frees before touching anything.
    std::uint32_t area_size(std::uint32_t off) const noexcept {
        return detail::area_size(alloc_map_, bound_map_, map_bits_, usable_begin_, usable_end_, off);
    }

    /// free_area(off) - free the live allocation starting at `off` (precondition:
    /// area_size(off) != 0). Returns the freed size in bits.
    std::uint32_t free_area(std::uint32_t off) noexcept { return free_area(off, area_size(off)); }
    /// free_area(off, bits) - the same when the caller has just read bits =
    /// area_size(off) to validate the free: the bound-map search is not repeated.
    std::uint32_t free_area(std::uint32_t off, std::uint32_t bits) noexcept {
        PCPU_ASSERT(bits != 0 && bits == area_size(off));
        const std::uint32_t end = off + bits;
        bitmap::clear_range(alloc_map_, off, end);
        free_bits_ += bits;
        --nr_alloc_;
        if (off < chunk_md_.first_free) chunk_md_.first_free = off;
        block_update_hint_free(off, end);
        return bits;
    }

    // --- state, all exact at every return from a public member --------------------
    std::uint32_t nr_pages() const noexcept { return nr_pages_; }
    std::uint32_t nr_blocks() const noexcept { return nr_blocks_; }
    std::uint32_t map_bits() const noexcept { return map_bits_; }
    std::uint32_t free_bits() const noexcept { return free_bits_; }            ///< clear alloc_map bits
    std::uint32_t contig_bits() const noexcept { return chunk_md_.contig_hint; } ///< largest free run (chunk_md contig hint)
    std::uint32_t first_free() const noexcept { return chunk_md_.first_free; }  ///< first clear bit (map_bits() if none)
    std::uint32_t nr_populated() const noexcept { return nr_populated_; }      ///< popcount of populated bitmap
    std::uint32_t nr_empty_pop_pages() const noexcept { return nr_empty_pop_pages_; } ///< populated pages entirely free
    std::uint32_t nr_alloc() const noexcept { return nr_alloc_; }              ///< live allocations (hidden regions excluded)
    std::uint32_t max_alloc_bits() const noexcept { return max_alloc_bits_; }  ///< largest allocation ever made here
    bool is_empty() const noexcept { return free_bits_ == map_bits_; }         ///< no live allocation and nothing hidden
    const block_md& chunk_md() const noexcept { return chunk_md_; }
    const block_md& block(std::uint32_t i) const noexcept {
        PCPU_ASSERT(i < nr_blocks_);
        return md_blocks_[i];
    }
    const bitmap::word* alloc_map() const noexcept { return alloc_map_; }
    const bitmap::word* bound_map() const noexcept { return bound_map_; }
    /// usable_begin/usable_end - the bounds given to hide(), in bits: [usable_begin,
    /// usable_end) is the part of the map that allocations can use (0 and map_bits()
    /// when nothing is hidden).
    std::uint32_t usable_begin() const noexcept { return usable_begin_; }
    std::uint32_t usable_end() const noexcept { return usable_end_; }

    /// verify() - recompute every block hint, the chunk hints, the free and empty-page
    /// counts from the bitmaps and report the first mismatch (see the invariants listed
    /// with the members that maintain them). O(map_bits).
    chunk_verify_report verify() const noexcept;

private:
    static_assert(sizeof(bitmap::word) % alignof(block_md) == 0, "pcpu: block_md array would be misaligned");

    using words = detail::map_words<page_bits>;
    /// u32(v) - a bitmap position back in the chunk's 32-bit domain (map_bits fits).
    static constexpr std::uint32_t u32(std::size_t v) noexcept { return static_cast<std::uint32_t>(v); }
    static constexpr bool overlaps(std::uint32_t s1, std::uint32_t e1, std::uint32_t s2, std::uint32_t e2) noexcept {
        return s1 < e2 && s2 < e1;
    }
    static constexpr std::uint32_t min_u32(std::uint32_t a, std::uint32_t b) noexcept { return a < b ? a : b; }

    static chunk_verify_report mismatch(const char* what, std::uint32_t index, std::uint32_t expected,
                                        std::uint32_t actual) noexcept {
        return detail::chunk_mismatch(what, index, expected, actual);
    }
    detail::chunk_maps maps() const noexcept { return {alloc_map_, bound_map_, map_bits_, usable_begin_, usable_end_}; }

    // ---- searches in a window: internal/chunk_fit.hpp ---------------------------------
    bool next_fit_region(std::uint32_t bits, std::uint32_t align, std::uint32_t pos, std::uint32_t& off,
                         std::uint32_t& len) const noexcept;
    /// find_aligned_fit(from, end, bits, align) - the first `align`-aligned p >= from
    /// with [p, p + bits) clear and p + bits <= end, or `end` if there is none: the
    /// first fit the run-by-run scan would find, without visiting the holes one by
    /// one. Each word of [from, end) is read at most twice (once more as the next
    /// word's carry) and costs O(1) for bits >= word_bits (only a word's trailing
    /// free run can begin a run that long; a run is checked when a set bit ends it)
    /// and O(log2 bits) shifts otherwise (a mask of the positions that begin `bits`
    /// clear bits, by doubling, intersected with the aligned positions).
    // Inline: out of line, the first word search after a stretch without one runs cold
    // (docs/performance.md, "Bounded find-fit").
    std::size_t find_aligned_fit(std::size_t from, std::size_t end, std::uint32_t bits,
                                 std::uint32_t align) const noexcept;
    void offer_last_run(std::uint32_t from, std::uint32_t at, std::uint32_t bits, std::uint32_t align,
                        std::uint32_t& s, std::uint32_t& e) const noexcept;
#if PCPU_FIND_FIT_STATS
    void count_scanned_run(std::uint32_t rs, std::uint32_t re, std::uint32_t bits, std::uint32_t align,
                           std::uint32_t& last) const noexcept;
#endif

    /// block_update_scan_area(start, s, e) - pcpu_block_update_scan: offer the longest
    /// run [s, e) an allocation's scan from `start` passed over to its block as a
    /// scan hint. Only a run inside one block qualifies, and only if the scan began no
    /// later than where the block's knowledge ends (its scan hint's end, or first_free):
    /// then every run before s in the block is known to be no longer than this one.
    void block_update_scan_area(std::uint32_t start, std::uint32_t s, std::uint32_t e) noexcept {
        const std::uint32_t b = s / block_bits;
        if ((e - 1) / block_bits != b) return;
        const std::uint32_t base = b * block_bits;
        block_md& md = md_blocks_[b];
        const std::uint32_t known = md.scan_hint != 0 ? md.scan_hint_start + md.scan_hint : md.first_free;
        if (start > base + known) return;
        // The scan may have begun inside the run; the hint must name the whole run.
        if (s == start && s > base) {
            const auto last = u32(bitmap::find_last_set(alloc_map_, base, s));
            s = last == s ? base : last + 1;
        }
        block_update_scan(md, s - base, e - base);
    }

    /// mark_allocated(s, e) - mark [s, e) allocated and bring every hint up to date (the
    /// tail of pcpu_alloc_area, shared with hide()). "Claim" is the allocator's word for
    /// find-fit plus this.
    void mark_allocated(std::uint32_t s, std::uint32_t e) noexcept {
        // detail::mark_area() written out: on the claim, the hottest path, the call
        // made GCC inline the rest of it worse.
        bitmap::set_range(alloc_map_, s, e);
        bitmap::set(bound_map_, s);
        bitmap::clear_range(bound_map_, std::size_t{s} + 1, e);
        bitmap::set(bound_map_, e);
        free_bits_ -= e - s;
        // chunk first_free is exact: if the allocation began there, the next free bit
        // is the first one after it.
        if (s == chunk_md_.first_free) chunk_md_.first_free = u32(bitmap::find_next_clear(alloc_map_, map_bits_, e));
        block_update_hint_alloc(s, e);
    }

    /// free_pop_pages(s, e) - populated pages touched by [s, e) that are entirely free:
    /// read before an allocation of [s, e), the empty pages it consumes, and after a
    /// free of [s, e), those it gives back. Pages strictly inside [s, e) are entirely
    /// free at both moments; only the edge pages need their blocks read.
    std::uint32_t free_pop_pages(std::uint32_t s, std::uint32_t e) const noexcept {
        const std::uint32_t s_page = s / page_bits, e_page = (e - 1) / page_bits;
        std::uint32_t n = 0;
        if (page_is_free(s_page) && bitmap::test(populated_, s_page)) ++n;
        if (e_page != s_page) {
            if (page_is_free(e_page) && bitmap::test(populated_, e_page)) ++n;
            if (e_page > s_page + 1) n += u32(bitmap::count_set(populated_, s_page + 1, e_page));
        }
        return n;
    }

    // ---- hint maintenance: internal/chunk_hints.hpp ----------------------------------
    void block_update_hint_alloc(std::uint32_t s, std::uint32_t e) noexcept;
    void block_alloc_edge(std::uint32_t b, std::uint32_t s_off, std::uint32_t e_off, bool ends_here) noexcept;
    bool block_split_contig(std::uint32_t b, std::uint32_t s, std::uint32_t e) noexcept;
    bool chunk_split_contig(std::uint32_t s, std::uint32_t e) noexcept;
    /// block_refresh_hint(b, bound) - pcpu_block_refresh_hint: recompute block b's
    /// contig and scan hints from its bitmap. A scan hint, if any, becomes the contig
    /// hint and only what follows it is scanned: nothing before it is longer.
    /// Otherwise the scan starts at first_free. `bound`, if not 0, is an upper bound on
    /// every run of the block: the walk stops at the first run that long (it is the
    /// largest) whose start is naturally aligned for its length (so the alignment
    /// tie-break, which aligned requests rely on, loses nothing that cheaply matters),
    /// and every run after it is known to be no longer.
    // Out of line: the slow path, kept out of the claim it would otherwise bloat.
    [[gnu::noinline]] void block_refresh_hint(std::uint32_t b, std::uint32_t bound = 0) noexcept;
    /// natural_align(len) - the largest power of two <= len.
    static constexpr std::uint32_t natural_align(std::uint32_t len) noexcept {
        std::uint32_t p = 1;
        while (p <= len / 2) p <<= 1;
        return p;
    }
    /// naturally_aligned(s, len) - s is a multiple of the largest power of two <= len.
    static constexpr bool naturally_aligned(std::uint32_t s, std::uint32_t len) noexcept {
        return (s & (natural_align(len) - 1)) == 0;
    }
    /// run_bound(md, s, e) - an upper bound on every run of a block after an
    /// allocation [s, e) took from its contig run: the two pieces left of it, and
    /// the runs on either side, bounded by max_before and max_after.
    static constexpr std::uint32_t run_bound(const block_md& md, std::uint32_t s, std::uint32_t e) noexcept {
        const std::uint32_t left = s - md.contig_hint_start, right = md.contig_hint_start + md.contig_hint - e;
        std::uint32_t u = md.max_before > md.max_after ? md.max_before : md.max_after;
        if (left > u) u = left;
        if (right > u) u = right;
        return u;
    }

    void chunk_refresh_hint(bool full_scan) noexcept;
    /// walk_merge(s, e) - one candidate of chunk_refresh_hint()'s walk, max_before unused.
    void walk_merge(std::uint32_t s, std::uint32_t e) noexcept { detail::block_merge(chunk_md_, s, e, false, false); }
    void block_update_hint_free(std::uint32_t s, std::uint32_t e) noexcept;

    bitmap::word* alloc_map_ = nullptr;
    bitmap::word* bound_map_ = nullptr;
    bitmap::word* populated_ = nullptr;
    block_md* md_blocks_ = nullptr;
    block_md chunk_md_{};
    std::uint32_t nr_pages_ = 0;
    std::uint32_t nr_blocks_ = 0; ///< nr_pages_ * blocks_per_page
    std::uint32_t map_bits_ = 0;
    std::uint32_t free_bits_ = 0;
    std::uint32_t nr_populated_ = 0;
    std::uint32_t nr_empty_pop_pages_ = 0;
    std::uint32_t nr_alloc_ = 0;
    std::uint32_t max_alloc_bits_ = 0;
    std::uint32_t usable_begin_ = 0; ///< [usable_begin_, usable_end_) is usable; the rest is hidden
    std::uint32_t usable_end_ = 0;
};

using chunk = basic_chunk<>;

} // namespace pcpu

#include "chunk_fit.hpp"
#include "chunk_hints.hpp"
#include "chunk_verify.hpp"
