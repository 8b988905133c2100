// SPDX-License-Identifier: MIT
// pcpu/internal/block.hpp - bitmap block metadata and its update rules (struct pcpu_block_md,
// pcpu_block_update, pcpu_check_block_hint, pcpu_next_hint).
//
// Each bitmap block (one page in the kernel's layout) carries a small summary of its
// free space so that the allocator can decide where, and whether, a request fits
// without reading the bitmap.
// The same structure summarises a whole chunk (chunk_md); there every position is
// chunk absolute and nr_bits is the chunk's map size.
//
// All values are in bits (1 bit = one granule). A "run" below is a maximal
// run of free bits, clipped to the block.
#pragma once

#include "../config.hpp"

#include <cstdint>

namespace pcpu {

/// block_md - free-space summary of one bitmap block (or of a whole chunk).
///
/// contig_hint is the length of the largest run and contig_hint_start where one such
/// run begins. scan_hint describes a run that lies before the contig hint (or, when
/// it is as long as the contig hint, anywhere but on it); it lets a search for more
/// than scan_hint bits skip everything up to its end, because no run wholly before
/// scan_hint_start is longer than scan_hint. 0 means "no scan hint". left_free and
/// right_free are the free bits at the block's start and end, which is all a
/// neighbouring block needs to know to find runs that cross the boundary.
/// first_free is never above the first free bit (it may lag behind it).
///
/// max_before bounds the runs before the contig hint: no free run lying wholly before
/// contig_hint_start is longer than max_before (an upper bound, kept in O(1) by every
/// update; exact after a walk from first_free). It is the second-level summary that
/// makes two things safe without reading the bitmap: a request longer than max_before
/// can begin its search at the contig hint itself, and a run as long as max_before
/// may become the scan hint wherever it lies before the contig hint (the later, the
/// more a search skips), which is what keeps the scan hint following equal runs.
/// max_after is the same bound for the runs lying wholly after the contig run: with
/// both, a refresh after an allocation took the contig run knows the longest run
/// there can be, and stops at the first one that long.
struct block_md {
    std::uint32_t scan_hint = 0;
    std::uint32_t scan_hint_start = 0;
    std::uint32_t contig_hint = 0;
    std::uint32_t contig_hint_start = 0;
    std::uint32_t left_free = 0;
    std::uint32_t right_free = 0;
    std::uint32_t first_free = 0;
    std::uint32_t nr_bits = 0;
    std::uint32_t max_before = 0;
    std::uint32_t max_after = 0;
};

/// align_up(v, align) - v rounded up to a multiple of `align` (a power of two).
constexpr std::uint32_t align_up(std::uint32_t v, std::uint32_t align) noexcept {
    return (v + align - 1) & ~(align - 1);
}

/// better_aligned(a, b) - true if offset a is more naturally aligned than b: a is 0
/// and b is not, or a's lowest set bit is higher than b's. Equal runs are told apart
/// this way so that the hint points at the run most likely to satisfy an aligned
/// request.
constexpr bool better_aligned(std::uint32_t a, std::uint32_t b) noexcept {
    if (b == 0) return false;
    if (a == 0) return true;
    return (a & (0u - a)) > (b & (0u - b));
}

/// block_init(md, nr_bits) - make md describe an entirely free area of nr_bits bits.
constexpr void block_init(block_md& md, std::uint32_t nr_bits) noexcept {
    md.scan_hint = 0;
    md.scan_hint_start = 0;
    md.contig_hint = nr_bits;
    md.contig_hint_start = 0;
    md.left_free = nr_bits;
    md.right_free = nr_bits;
    md.first_free = 0;
    md.nr_bits = nr_bits;
    md.max_before = 0;
    md.max_after = 0;
}

/// block_set_full(md) - make md describe an area without a free bit (a block wholly
/// covered by one allocation).
constexpr void block_set_full(block_md& md) noexcept {
    md.scan_hint = 0;
    md.scan_hint_start = 0;
    md.contig_hint = 0;
    md.contig_hint_start = 0;
    md.left_free = 0;
    md.right_free = 0;
    md.first_free = md.nr_bits;
    md.max_before = 0;
    md.max_after = 0;
}

/// block_is_free(md) - true if the whole area is free (for a block: the page is empty).
constexpr bool block_is_free(const block_md& md) noexcept { return md.contig_hint == md.nr_bits; }

namespace detail {

/// block_merge(md, s, e, prefix_bounded, use_bound) - the merge rule behind
/// block_update() and block_update_scan(). `prefix_bounded` says the caller knows
/// that no run wholly before s is longer than e - s; only then, or when max_before
/// says so (unless !use_bound: a walk that does not offer every run), may a run that
/// lies beyond the current scan hint (or beyond first_free when there is none) become
/// the scan hint.
constexpr void block_merge(block_md& md, std::uint32_t s, std::uint32_t e, bool prefix_bounded,
                           bool use_bound = true) noexcept {
    PCPU_ASSERT(s < e && e <= md.nr_bits);
    const std::uint32_t contig = e - s;
    const std::uint32_t old_first_free = md.first_free;

    if (s < md.first_free) md.first_free = s;
    if (s == 0) md.left_free = contig;
    if (e == md.nr_bits) md.right_free = contig;

    // max_before/max_after: the other runs are unchanged or swallowed by [s, e), so
    // a bound only grows by what now lies on its side of the (possibly moved) contig
    // hint. A new or moved contig run leaves the old one, and runs no longer than it,
    // on one side, and a subset of what was on the other side on the other.
    if (contig > md.contig_hint) {
        // A new largest run. The old contig hint, if it lies before the new one and
        // beats the scan hint, is now the best run known before the contig hint.
        if (s > md.contig_hint_start) {
            md.max_before = md.contig_hint;
            if (md.contig_hint > md.scan_hint) {
                md.scan_hint_start = md.contig_hint_start;
                md.scan_hint = md.contig_hint;
            } else if (s <= md.scan_hint_start) {
                // The scan hint is as long as the old contig and either lies after
                // the new run or was swallowed by it: it would no longer be before a
                // longer contig hint.
                md.scan_hint = 0;
            }
        } else {
            md.max_after = md.contig_hint;
            // The new run begins at or before the old contig hint, and a scan hint
            // that does not lie before it now lies after the contig hint or inside it.
            if (s <= md.scan_hint_start) md.scan_hint = 0;
        }
        // Otherwise the scan hint lies wholly before the new run and stays valid (the
        // kernel drops it here, which makes the next search and the next refresh walk
        // the fragmented prefix again). [s, e) is a maximal free run and the scan hint
        // a maximal free run (or one that [s, e) swallowed, which would put its start
        // at or after s), so scan_hint_start < s means it ends before s; nothing
        // before it changed, and it is shorter than the old contig hint, hence than
        // the new one.
        md.contig_hint_start = s;
        md.contig_hint = contig;
    } else if (contig == md.contig_hint) {
        if (s == md.contig_hint_start) return; // the contig run itself, seen again
        if (better_aligned(s, md.contig_hint_start)) {
            // Same length, better aligned: prefer it, so aligned requests fit the hint.
            // A shorter scan hint must stay before the contig hint.
            const std::uint32_t old_start = md.contig_hint_start;
            if (s > old_start)
                md.max_before = contig;
            else
                md.max_after = contig;
            if (s <= md.scan_hint_start && (md.contig_hint > md.scan_hint || s == md.scan_hint_start))
                md.scan_hint = 0;
            md.contig_hint_start = s;
            // The old contig run is as long as the new one and a different maximal run
            // (one of equal length containing it would be it, and s differs), so it is a
            // valid scan hint wherever it lies. Keep it unless a shorter scan hint is
            // there (that one lets searches skip a prefix): then the next refresh of
            // this area promotes it instead of rescanning from first_free. Without
            // this, a block of equal one-bit holes lost its scan hint on every free at
            // its start and was rescanned, run by run, on every other allocation.
            if (md.scan_hint == 0 || (md.scan_hint == contig && old_start > md.scan_hint_start)) {
                md.scan_hint_start = old_start;
                md.scan_hint = contig;
            }
        } else {
            if (s < md.contig_hint_start)
                md.max_before = contig;
            else
                md.max_after = contig;
            if (s > md.scan_hint_start || md.contig_hint > md.scan_hint) {
                // An equally long run: nothing before it is longer, so it is a valid
                // scan hint wherever it lies.
                md.scan_hint_start = s;
                md.scan_hint = contig;
            }
        }
    } else if (s > md.contig_hint_start) {
        if (contig > md.max_after) md.max_after = contig;
    } else {
        // [s, e) is a maximal run shorter than the contig run, so it lies wholly
        // before it (s < contig_hint_start).
        if (contig > md.max_before) md.max_before = contig;
        if (contig > md.scan_hint || (contig == md.scan_hint && s > md.scan_hint_start)) {
            // A shorter run before the contig hint may become the scan hint, but only
            // if nothing before it is longer, or searches would skip a fit. Runs
            // before the scan hint are known to be no longer than it; runs between
            // the scan hint (or first_free) and s are unknown unless the caller
            // scanned them or max_before bounds them.
            const bool safe = prefix_bounded || (use_bound && md.max_before <= contig) ||
                              (md.scan_hint != 0 ? s <= md.scan_hint_start : s <= old_first_free);
            if (safe) {
                md.scan_hint_start = s;
                md.scan_hint = contig;
            }
        }
    }
}

} // namespace detail

/// block_update(md, s, e) - pcpu_block_update: account for the run [s, e) (maximal,
/// clipped to the area) that just became free, or that a refresh walk meets in
/// ascending order. Keeps contig_hint the largest run, left_free/right_free exact
/// when the run touches an edge, and the scan hint valid. A run that swallows the
/// old contig or scan hint (a free next to it) is handled here too.
constexpr void block_update(block_md& md, std::uint32_t s, std::uint32_t e) noexcept {
    detail::block_merge(md, s, e, false);
}

/// block_update_scan(md, s, e) - pcpu_block_update_scan: like block_update() for a
/// run [s, e) that an allocation's bitmap scan skipped, when the caller knows that no
/// run wholly before s is longer (it scanned everything from first_free or from the
/// scan hint's end, and [s, e) was the longest run it met). This is what moves the
/// scan hint forward over a fragmented prefix.
constexpr void block_update_scan(block_md& md, std::uint32_t s, std::uint32_t e) noexcept {
    detail::block_merge(md, s, e, true);
}

/// block_keep_longer_piece(md, s, e) - [s, e) was taken from inside md's contig run and
/// the longer of the two pieces left is known to be the largest run (the callers in
/// chunk_hints.hpp prove it): that piece becomes the contig hint, and the other, which
/// lies before or after it, raises max_before or max_after.
constexpr void block_keep_longer_piece(block_md& md, std::uint32_t s, std::uint32_t e) noexcept {
    const std::uint32_t cs = md.contig_hint_start, ce = cs + md.contig_hint;
    const std::uint32_t left = s - cs, right = ce - e;
    const bool take_right = right > left;
    if (take_right && left > md.max_before) md.max_before = left;
    if (!take_right && right > md.max_after) md.max_after = right;
    md.contig_hint = take_right ? right : left;
    md.contig_hint_start = take_right ? e : cs;
}

/// block_refresh_begin(md, use_scan) - the first step of recomputing md's contig and
/// scan hints (pcpu_block_refresh_hint, pcpu_chunk_refresh_hint). With a scan hint
/// (and use_scan) it becomes the contig hint and the walk need only cover what follows
/// it: no run wholly before a scan hint is longer than it. Otherwise both hints are
/// reset and the walk starts at first_free. Returns where the walk begins.
constexpr std::uint32_t block_refresh_begin(block_md& md, bool use_scan) noexcept {
    if (use_scan && md.scan_hint != 0) {
        md.contig_hint_start = md.scan_hint_start;
        md.contig_hint = md.scan_hint;
        md.max_before = md.scan_hint;
        md.max_after = 0;
        md.scan_hint = 0;
        return md.contig_hint_start + md.contig_hint;
    }
    md.contig_hint_start = 0;
    md.contig_hint = 0;
    md.max_before = 0;
    md.max_after = 0;
    md.scan_hint = 0;
    return md.first_free;
}

/// block_check_hint(md, bits, align) - pcpu_check_block_hint: true if an
/// `align`-aligned request of `bits` fits in the contig hint run. O(1). Positions
/// are aligned relative to the area's start, which is at least `align` aligned.
constexpr bool block_check_hint(const block_md& md, std::uint32_t bits, std::uint32_t align) noexcept {
    if (bits > md.contig_hint) return false;
    const std::uint32_t pad = align_up(md.contig_hint_start, align) - md.contig_hint_start;
    return pad <= md.contig_hint - bits;
}

/// block_next_hint(md, bits) - pcpu_next_hint: where a search for `bits` free bits
/// should begin. At the contig hint if the request is longer than max_before and fits
/// the contig run's length (no run before it can hold the request, whatever the
/// alignment); else after the scan hint if there is one before the contig hint and
/// the request is longer than it (no run wholly before its end can fit); otherwise at
/// first_free. Returns an offset relative to the area.
constexpr std::uint32_t block_next_hint(const block_md& md, std::uint32_t bits) noexcept {
    if (bits > md.max_before && bits <= md.contig_hint) return md.contig_hint_start;
    if (md.scan_hint != 0 && md.contig_hint_start > md.scan_hint_start && bits > md.scan_hint)
        return md.scan_hint_start + md.scan_hint;
    return md.first_free;
}

} // namespace pcpu
