// SPDX-License-Identifier: MIT
// pcpu/internal/chunk_hints.hpp - a chunk's hints kept up to date: after an allocation
// (pcpu_block_update_hint_alloc, the split proofs), after a free
// (pcpu_block_update_hint_free), and the refresh walks of a block and of the chunk
// (pcpu_block_refresh_hint, pcpu_chunk_refresh_hint).
//
// Out-of-class members of pcpu::basic_chunk, which includes this header at the end of
// internal/chunk.hpp; it includes chunk.hpp back only so that it compiles on its own.
#pragma once

#include "chunk.hpp"

namespace pcpu {

/// block_update_hint_alloc(s, e) - pcpu_block_update_hint_alloc: hints after
/// [s, e) became allocated. O(1) per block touched unless the allocation breaks a
/// block's contig hint (rescan of that block) or the chunk's (metadata walk).
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline void basic_chunk<PageShift, GranuleShift, BlockShift>::block_update_hint_alloc(
    std::uint32_t s, std::uint32_t e) noexcept {
    const std::uint32_t s_block = s / block_bits;
    const std::uint32_t e_block = (e - 1) / block_bits;
    const std::uint32_t s_off = s - s_block * block_bits;
    const std::uint32_t e_off = e - e_block * block_bits; // in (0, block_bits]

    // Every page that was entirely free is an empty page no more; count only the
    // populated ones, so nr_empty_pop_pages stays exact (middle pages were
    // necessarily entirely free).
    nr_empty_pop_pages_ -= free_pop_pages(s, e);

    // First block, then the last one if the allocation ends in another; blocks in
    // between are wholly covered by it.
    block_alloc_edge(s_block, s_off, s_block == e_block ? e_off : block_bits, s_block == e_block);
    if (e_block != s_block) {
        for (std::uint32_t b = s_block + 1; b < e_block; ++b) block_set_full(md_blocks_[b]);
        if (e_off == block_bits)
            block_set_full(md_blocks_[e_block]);
        else
            block_alloc_edge(e_block, 0, e_off, true); // [0, e_off) was free: first_free was 0
    }

    // Chunk level: runs only shrank, so the contig hint stays exact unless the
    // allocation took from it.
    block_md& cm = chunk_md_;
    if (cm.scan_hint != 0 && overlaps(cm.scan_hint_start, cm.scan_hint_start + cm.scan_hint, s, e))
        cm.scan_hint = 0;
    cm.left_free = min_u32(cm.left_free, s);
    cm.right_free = min_u32(cm.right_free, map_bits_ - e);
    if (overlaps(cm.contig_hint_start, cm.contig_hint_start + cm.contig_hint, s, e) && !chunk_split_contig(s, e))
        chunk_refresh_hint(false);
}

/// block_alloc_edge(b, s_off, e_off, ends_here) - block b's hints after [s_off, e_off)
/// (block relative) of it became allocated, the allocation ending in b if ends_here
/// (else it goes on into the next block, and e_off is block_bits).
/// left_free/right_free shrink exactly: the allocation lies in free space, so if it
/// starts inside the left run that run now ends at s_off, and if it ends inside the
/// right run that run now starts at e_off.
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
PCPU_HOT_INLINE void basic_chunk<PageShift, GranuleShift, BlockShift>::block_alloc_edge(
    std::uint32_t b, std::uint32_t s_off, std::uint32_t e_off, bool ends_here) noexcept {
    block_md& md = md_blocks_[b];
    if (s_off == md.first_free) {
        const std::uint32_t base = b * block_bits;
        md.first_free = u32(bitmap::find_next_clear(alloc_map_, base + block_bits, base + e_off)) - base;
    }
    if (md.scan_hint != 0 && overlaps(md.scan_hint_start, md.scan_hint_start + md.scan_hint, s_off, e_off))
        md.scan_hint = 0;
    md.left_free = min_u32(md.left_free, s_off);
    md.right_free = ends_here ? min_u32(md.right_free, block_bits - e_off) : 0;
    if (overlaps(md.contig_hint_start, md.contig_hint_start + md.contig_hint, s_off, e_off) &&
        !block_split_contig(b, s_off, e_off))
        block_refresh_hint(b, run_bound(md, s_off, e_off));
}

/// block_split_contig(b, s, e) - block b's contig hint after an allocation took
/// [s, e) (block relative) from it, in O(1) words of bitmap when that can be
/// proved, else false (the caller rescans the block). The block's first_free,
/// left_free, right_free and scan hint are already up to date.
///
/// Why it is exact: as chunk_split_contig() below, with the block's free bits
/// outside the old contig run [cs, ce) counted from the bitmap instead of kept:
/// none lies before first_free, so they are the clear bits of [first_free, cs)
/// and [ce, block_bits), usually a few words or none (a block filled from its
/// start has first_free inside the piece left over, and its contig run reaches
/// the block's end). When the longer piece beats them all, it is the largest run.
/// This replaces a rescan of the block's runs after the scan hint, which costs
/// most where the block has a fragmented prefix (the worst single allocations of
/// the trace, and aligned requests that split the contig run at an offset).
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline bool basic_chunk<PageShift, GranuleShift, BlockShift>::block_split_contig(
    std::uint32_t b, std::uint32_t s, std::uint32_t e) noexcept {
    block_md& md = md_blocks_[b];
    const std::uint32_t cs = md.contig_hint_start, ce = cs + md.contig_hint;
    PCPU_ASSERT(cs <= s && e <= ce);
    const std::uint32_t left = s - cs, right = ce - e;
    const bool take_right = right > left;
    const std::uint32_t p = take_right ? right : left;
    std::uint32_t other = take_right ? left : right;
    const std::size_t base = std::size_t{b} * block_bits;
    // Free or not, the bits outside the old run may be too few to reach p: then
    // nothing needs counting (an aligned request that split a long run at an
    // offset, beside a short fragmented prefix).
    const std::uint32_t outside = (md.first_free < cs ? cs - md.first_free : 0) + (block_bits - ce);
    if (other + outside >= p) {
        if (other < p && md.first_free < cs)
            other += cs - md.first_free - u32(bitmap::count_set(alloc_map_, base + md.first_free, base + cs));
        if (other < p && ce < block_bits)
            other += block_bits - ce - u32(bitmap::count_set(alloc_map_, base + ce, base + block_bits));
        if (other >= p) return false;
    }
    block_keep_longer_piece(md, s, e);
    return true;
}

/// chunk_split_contig(s, e) - the chunk contig hint after an allocation [s, e) took
/// from it, in O(1) when that can be proved, else false (the caller walks the
/// block metadata). free_bits_ already excludes [s, e).
///
/// Why it is exact. [s, e) was free and overlaps the contig run [cs, ce), a maximal
/// free run, so it lies inside it and leaves two maximal runs, [cs, s) and [e, ce).
/// Let P be the longer. Every other free run is made of the free bits outside P,
/// so none is longer than free_bits_ - P; when P > free_bits_ - P, P is the largest
/// run and the contig hint is exact again (strictly: on a tie the merge rule would
/// pick the better aligned of the equal runs, which aligned requests rely on, and
/// only a walk can see the other). This is the common case: small requests
/// carved, first fit, from a chunk's long free tail, where the walk would otherwise
/// visit every block on each of them.
/// The scan hint, if it survived the overlap test above, is another maximal run
/// whose length counts among those free bits (so it is at most P), and it lay
/// before cs unless it was as long as the old contig hint, which is impossible now
/// that it is at most P < ce - cs: it stays valid, before the new contig hint or,
/// if equal in length, on a different run.
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline bool basic_chunk<PageShift, GranuleShift, BlockShift>::chunk_split_contig(
    std::uint32_t s, std::uint32_t e) noexcept {
    block_md& cm = chunk_md_;
    const std::uint32_t cs = cm.contig_hint_start, ce = cs + cm.contig_hint;
    PCPU_ASSERT(cs <= s && e <= ce);
    const std::uint32_t left = s - cs, right = ce - e;
    const std::uint32_t p = right > left ? right : left;
    if (p <= free_bits_ - p) return false;
    block_keep_longer_piece(cm, s, e);
    return true;
}


template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
[[gnu::noinline]] void basic_chunk<PageShift, GranuleShift, BlockShift>::block_refresh_hint(
    std::uint32_t b, std::uint32_t bound) noexcept {
    block_md& md = md_blocks_[b];
    const std::uint32_t base = b * block_bits;
    const std::uint32_t from = block_refresh_begin(md, true);
    std::size_t rs = 0, re = 0;
    std::uint32_t runs = 0;
    for (std::size_t f = base + from; bitmap::next_clear_region(alloc_map_, base + block_bits, f, rs, re); f = re) {
        PCPU_FIND_FIT_COUNT(++detail::fit_counts.refresh_runs);
        const std::uint32_t s = u32(rs) - base, len = u32(re - rs);
        block_update(md, s, s + len);
        if (len == bound && naturally_aligned(s, len)) {
            md.max_after = bound;
            return;
        }
        if (PCPU_FIT_WORD_SEARCH && ++runs >= scan_runs && md.contig_hint == bound) {
            // A largest run is known: only an equally long, naturally aligned one
            // can still end the walk, and it begins an aligned fit of `bound` bits,
            // which a word search finds without visiting the holes. Runs passed
            // are no longer than the bound, which max_before (if the hint moves
            // past them) and max_after say.
            const std::size_t p = find_aligned_fit(re, base + block_bits, bound, natural_align(bound));
            PCPU_FIND_FIT_COUNT(++detail::fit_counts.word_searches);
            if (p < base + block_bits) block_update(md, u32(p) - base, u32(p) - base + bound);
            md.max_after = bound;
            return;
        }
    }
}

/// chunk_refresh_hint(full_scan) - pcpu_chunk_refresh_hint: recompute chunk_md's
/// contig and scan hints from the block metadata (never the bitmap). Candidates, in
/// ascending order, are runs carried across block edges (right_free of one block,
/// left_free of the next ones) and each block's contig run when it touches neither
/// edge; every other run is no longer than its block's contig run. Unless
/// full_scan, a chunk scan hint is promoted and only what follows it is walked.
/// The walk does not offer every run, so max_before plays no part in it (a short
/// run it never offers may lie before a scan hint it would set) and ends as the
/// contig hint, a bound that always holds.
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline void basic_chunk<PageShift, GranuleShift, BlockShift>::chunk_refresh_hint(bool full_scan) noexcept {
    block_md& cm = chunk_md_;
    const std::uint32_t from = block_refresh_begin(cm, !full_scan);
    if (from >= map_bits_) {
        cm.max_before = cm.max_after = cm.contig_hint;
        return;
    }

    const std::uint32_t first_block = from / block_bits;
    bool carrying = from % block_bits == 0;
    std::uint32_t run_start = from;
    for (std::uint32_t b = first_block; b < nr_blocks_; ++b) {
        PCPU_FIND_FIT_COUNT(++detail::fit_counts.refresh_blocks);
        const block_md& md = md_blocks_[b];
        const std::uint32_t base = b * block_bits;
        if (carrying) {
            if (md.left_free == block_bits) continue;
            if (base + md.left_free > run_start) walk_merge(run_start, base + md.left_free);
            carrying = false;
        }
        const std::uint32_t rel = b == first_block ? from - base : 0;
        if (md.contig_hint != 0 && md.contig_hint_start > 0 &&
            md.contig_hint_start + md.contig_hint < block_bits && md.contig_hint_start >= rel)
            walk_merge(base + md.contig_hint_start, base + md.contig_hint_start + md.contig_hint);
        run_start = base + block_bits - md.right_free;
        if (run_start < from) run_start = from;
        carrying = true;
    }
    if (carrying && map_bits_ > run_start) walk_merge(run_start, map_bits_);
    cm.max_before = cm.max_after = cm.contig_hint;
}

/// block_update_hint_free(s, e) - pcpu_block_update_hint_free: hints after [s, e)
/// became free. The new run is found at block granularity (from the hints when it
/// meets one, else by a scan bounded by the block), merged into the first and last
/// blocks; blocks in between become entirely free. At chunk level the run is
/// extended over the neighbouring blocks' edges and merged, chunk absolute at both
/// ends, which keeps the chunk contig hint exact; a free spanning blocks, or a run
/// that covers a whole block, takes the full metadata walk instead.
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline void basic_chunk<PageShift, GranuleShift, BlockShift>::block_update_hint_free(
    std::uint32_t s, std::uint32_t e) noexcept {
    const std::uint32_t s_block = s / block_bits;
    const std::uint32_t e_block = (e - 1) / block_bits;
    const std::uint32_t s_off = s - s_block * block_bits;
    const std::uint32_t e_off = e - e_block * block_bits; // in (0, block_bits]
    const std::uint32_t s_base = s_block * block_bits;
    const std::uint32_t e_base = e_block * block_bits;
    block_md& first = md_blocks_[s_block];
    block_md& last = md_blocks_[e_block];

    // Where the new run begins in the first block: at a hinted run ending exactly
    // at s, or after the last allocated bit before s.
    std::uint32_t start;
    if (first.contig_hint != 0 && s_off == first.contig_hint_start + first.contig_hint) {
        start = first.contig_hint_start;
    } else if (first.scan_hint != 0 && s_off == first.scan_hint_start + first.scan_hint) {
        start = first.scan_hint_start;
    } else if (s_off == first.left_free) {
        start = 0;
    } else {
        const auto prev = u32(bitmap::find_last_set(alloc_map_, s_base, s));
        start = prev == s ? 0 : prev + 1 - s_base;
    }
    // Where it ends in the last block: at a hinted run beginning exactly at e, or
    // at the next allocated bit.
    std::uint32_t end;
    if (e_off == block_bits || e_off == block_bits - last.right_free) {
        end = block_bits;
    } else if (last.contig_hint != 0 && e_off == last.contig_hint_start) {
        end = last.contig_hint_start + last.contig_hint;
    } else if (last.scan_hint != 0 && e_off == last.scan_hint_start) {
        end = last.scan_hint_start + last.scan_hint;
    } else {
        end = u32(bitmap::find_next_set(alloc_map_, e_base + block_bits, e)) - e_base;
    }

    if (s_block == e_block) {
        block_update(first, start, end);
    } else {
        block_update(first, start, block_bits);
        for (std::uint32_t b = s_block + 1; b < e_block; ++b) block_init(md_blocks_[b], block_bits);
        block_update(last, 0, end);
    }
    // Pages that became entirely free are empty pages again if populated.
    nr_empty_pop_pages_ += free_pop_pages(s, e);

    // Chunk level: the new run is [s_base + start, e_base + end), extended over the
    // neighbouring blocks' edge runs. Every other run is unchanged and the old
    // contig run can only have been swallowed by a longer one, so merging this one
    // run keeps the contig hint exact. Where the run reaches an entirely free
    // neighbour it goes on through it: to the chunk's edge if the chunk's edge run
    // (left_free/right_free, exact before this free, which cannot have touched
    // them) begins within reach, else through each free block to the first one
    // that is not (the kernel walks every block's metadata here instead).
    const block_md& cm = chunk_md_;
    std::uint32_t run_s = s_base + start;
    std::uint32_t run_e = e_base + end;
    if (start == 0 && run_s != 0) {
        if (cm.left_free >= run_s) {
            run_s = 0;
        } else {
            std::uint32_t b = s_block;
            while (b > 0 && md_blocks_[b - 1].right_free == block_bits) --b;
            run_s = b * block_bits - (b > 0 ? md_blocks_[b - 1].right_free : 0);
        }
    }
    if (end == block_bits && run_e != map_bits_) {
        if (map_bits_ - cm.right_free <= run_e) {
            run_e = map_bits_;
        } else {
            std::uint32_t b = e_block + 1;
            while (b < nr_blocks_ && md_blocks_[b].left_free == block_bits) ++b;
            run_e = b * block_bits + (b < nr_blocks_ ? md_blocks_[b].left_free : 0);
        }
    }
    block_update(chunk_md_, run_s, run_e);
}

} // namespace pcpu

