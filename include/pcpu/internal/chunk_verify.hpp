// SPDX-License-Identifier: MIT
// pcpu/internal/chunk_verify.hpp - basic_chunk::verify(): every block hint, the chunk
// hints, the free and empty-page counts and the run bounds recomputed from the bitmaps.
//
// Out-of-class member of pcpu::basic_chunk, which includes this header at the end of
// internal/chunk.hpp; it includes chunk.hpp back only so that it compiles on its own.
#pragma once

#include "chunk.hpp"

namespace pcpu {

template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
chunk_verify_report basic_chunk<PageShift, GranuleShift, BlockShift>::verify() const noexcept {
    // Block level: recount each block's runs from the bitmap.
    std::uint32_t empty_pages = 0;
    bool page_free = true; // every block of the current page so far entirely free
    std::size_t rs = 0, re = 0;
    for (std::uint32_t b = 0; b < nr_blocks_; ++b) {
        const block_md& md = md_blocks_[b];
        const std::uint32_t base = b * block_bits;
        if (md.nr_bits != block_bits) return mismatch("block nr_bits", b, block_bits, md.nr_bits);
        std::uint32_t contig = 0, left = 0, right = 0, first = block_bits, before_scan = 0, before_contig = 0,
                      after_contig = 0;
        for (std::size_t f = base; bitmap::next_clear_region(alloc_map_, base + block_bits, f, rs, re); f = re) {
            const std::uint32_t s = u32(rs) - base, e = u32(re) - base, len = e - s;
            if (first == block_bits) first = s;
            if (s == 0) left = len;
            if (e == block_bits) right = len;
            if (len > contig) contig = len;
            if (e <= md.scan_hint_start && len > before_scan) before_scan = len;
            if (e <= md.contig_hint_start && len > before_contig) before_contig = len;
            if (s >= md.contig_hint_start + md.contig_hint && len > after_contig) after_contig = len;
        }
        if (md.max_before < before_contig)
            return mismatch("block max_before: a longer run lies before contig_hint", b, before_contig, md.max_before);
        if (md.max_after < after_contig)
            return mismatch("block max_after: a longer run lies after contig_hint", b, after_contig, md.max_after);
        if (md.contig_hint != contig) return mismatch("block contig_hint", b, contig, md.contig_hint);
        if (contig != 0 && (md.contig_hint_start > block_bits - contig ||
                            !bitmap::all_clear(alloc_map_, base + md.contig_hint_start,
                                               base + md.contig_hint_start + contig)))
            return mismatch("block contig_hint_start: not a free run of contig_hint bits", b, contig,
                            md.contig_hint_start);
        if (md.left_free != left) return mismatch("block left_free", b, left, md.left_free);
        if (md.right_free != right) return mismatch("block right_free", b, right, md.right_free);
        if (md.first_free > first) return mismatch("block first_free above the first free bit", b, first, md.first_free);
        if (md.scan_hint != 0) {
            const std::uint32_t ss = md.scan_hint_start, se = ss + md.scan_hint;
            if (md.scan_hint > md.contig_hint) return mismatch("block scan_hint > contig_hint", b, md.contig_hint, md.scan_hint);
            if (ss > block_bits - md.scan_hint || !bitmap::all_clear(alloc_map_, base + ss, base + se) ||
                (ss != 0 && !bitmap::test(alloc_map_, base + ss - 1)) ||
                (se != block_bits && !bitmap::test(alloc_map_, base + se)))
                return mismatch("block scan_hint: not a free run", b, md.scan_hint, ss);
            if (md.scan_hint == md.contig_hint ? ss == md.contig_hint_start : se > md.contig_hint_start)
                return mismatch("block scan_hint: not before contig_hint", b, md.contig_hint_start, ss);
            if (before_scan > md.scan_hint)
                return mismatch("block scan_hint: a longer run lies before it", b, before_scan, md.scan_hint);
        }
        if (b % blocks_per_page == 0) page_free = true;
        page_free = page_free && contig == block_bits;
        if (b % blocks_per_page == blocks_per_page - 1 && page_free && bitmap::test(populated_, b / blocks_per_page))
            ++empty_pages;
    }

    // Chunk level: the same from the whole map.
    const block_md& cm = chunk_md_;
    if (cm.nr_bits != map_bits_) return mismatch("chunk nr_bits", 0, map_bits_, cm.nr_bits);
    std::uint32_t contig = 0, left = 0, right = 0, first = map_bits_, before_scan = 0, before_contig = 0, after_contig = 0,
                  nr_free = 0;
    for (std::size_t f = 0; bitmap::next_clear_region(alloc_map_, map_bits_, f, rs, re); f = re) {
        const std::uint32_t s = u32(rs), e = u32(re), len = e - s;
        if (first == map_bits_) first = s;
        if (s == 0) left = len;
        if (e == map_bits_) right = len;
        if (len > contig) contig = len;
        if (e <= cm.scan_hint_start && len > before_scan) before_scan = len;
        if (e <= cm.contig_hint_start && len > before_contig) before_contig = len;
        if (s >= cm.contig_hint_start + cm.contig_hint && len > after_contig) after_contig = len;
        nr_free += len;
    }
    if (cm.max_before < before_contig)
        return mismatch("chunk max_before: a longer run lies before contig_hint", 0, before_contig, cm.max_before);
    if (cm.max_after < after_contig)
        return mismatch("chunk max_after: a longer run lies after contig_hint", 0, after_contig, cm.max_after);
    if (cm.contig_hint != contig) return mismatch("chunk contig_hint", 0, contig, cm.contig_hint);
    if (contig != 0 &&
        (cm.contig_hint_start > map_bits_ - contig ||
         !bitmap::all_clear(alloc_map_, cm.contig_hint_start, std::size_t{cm.contig_hint_start} + contig)))
        return mismatch("chunk contig_hint_start: not a free run of contig_hint bits", 0, contig, cm.contig_hint_start);
    if (cm.first_free != first) return mismatch("chunk first_free", 0, first, cm.first_free);
    if (cm.left_free != left) return mismatch("chunk left_free", 0, left, cm.left_free);
    if (cm.right_free != right) return mismatch("chunk right_free", 0, right, cm.right_free);
    if (cm.scan_hint != 0) {
        const std::uint32_t ss = cm.scan_hint_start, se = ss + cm.scan_hint;
        if (cm.scan_hint > cm.contig_hint) return mismatch("chunk scan_hint > contig_hint", 0, cm.contig_hint, cm.scan_hint);
        if (ss > map_bits_ - cm.scan_hint || !bitmap::all_clear(alloc_map_, ss, se) ||
            (ss != 0 && !bitmap::test(alloc_map_, ss - 1)) || (se != map_bits_ && !bitmap::test(alloc_map_, se)))
            return mismatch("chunk scan_hint: not a free run", 0, cm.scan_hint, ss);
        if (cm.scan_hint == cm.contig_hint ? ss == cm.contig_hint_start : se > cm.contig_hint_start)
            return mismatch("chunk scan_hint: not before contig_hint", 0, cm.contig_hint_start, ss);
        if (before_scan > cm.scan_hint)
            return mismatch("chunk scan_hint: a longer run lies before it", 0, before_scan, cm.scan_hint);
    }

    // Counts.
    if (free_bits_ != nr_free) return mismatch("free_bits", 0, nr_free, free_bits_);
    const auto populated = u32(bitmap::count_set(populated_, 0, nr_pages_));
    if (nr_populated_ != populated) return mismatch("nr_populated", 0, populated, nr_populated_);
    if (nr_empty_pop_pages_ != empty_pages) return mismatch("nr_empty_pop_pages", 0, empty_pages, nr_empty_pop_pages_);

    // The maps themselves: hidden areas, bound bits, the allocation count.
    return maps().verify(nr_alloc_);
}

} // namespace pcpu
