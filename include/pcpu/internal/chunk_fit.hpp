// SPDX-License-Identifier: MIT
// pcpu/internal/chunk_fit.hpp - the searches inside one chunk's window: the kernel's
// next-fit region walk (pcpu_next_fit_region), the word-at-a-time aligned search that
// bounds a find-fit (PCPU_FIT_WORD_SEARCH), the scan hint it leaves, and the debug
// accounting of a scanned run.
//
// Out-of-class members of pcpu::basic_chunk, which includes this header at the end of
// internal/chunk.hpp; it includes chunk.hpp back only so that it compiles on its own.
#pragma once

#include "chunk.hpp"

namespace pcpu {

/// next_fit_region(bits, align, pos, off, len) - pcpu_next_fit_region: walk the
/// block metadata from the block holding `pos` for a region [off, off + len) that
/// holds an aligned fit, such that the first fit a bitmap scan from off finds also
/// ends by off + len. Returns false if there is none at or after pos.
///
/// A run crossing block edges is carried from one block's right_free through the
/// following blocks' left_free; a run inside a block is found by the block's
/// contig hint. A walk that begins on a block boundary starts with an empty
/// carried run there, so the left edge of that block is not missed (the atomic
/// path restarts on page boundaries).
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline bool basic_chunk<PageShift, GranuleShift, BlockShift>::next_fit_region(
    std::uint32_t bits, std::uint32_t align, std::uint32_t pos, std::uint32_t& off,
    std::uint32_t& len) const noexcept {
    std::uint32_t b = pos / block_bits;
    bool carrying = pos % block_bits == 0;
    std::uint32_t carry_start = pos; // aligned start of the carried candidate
    for (; b < nr_blocks_; ++b) {
        PCPU_FIND_FIT_COUNT(++detail::fit_counts.blocks_visited);
        const block_md& md = md_blocks_[b];
        const std::uint32_t base = b * block_bits;
        if (carrying) {
            if (base + md.left_free - carry_start >= bits) {
                off = carry_start;
                len = bits;
                return true;
            }
            if (md.left_free == block_bits) continue;
            carrying = false;
        }
        // Runs of this block before pos are either before first_free or, when pos
        // is the chunk scan hint's end (or the chunk contig hint, past max_before),
        // no longer than that scan hint (or max_before), which is shorter than the
        // request: a contig hint before pos cannot fit.
        const std::uint32_t rel = base < pos ? pos - base : 0;
        if (md.contig_hint_start >= rel && block_check_hint(md, bits, align)) {
            // Let the bitmap scan begin at the block's own hint: it may find an
            // earlier hole, and at worst ends on the contig hint, which lies within
            // a block of the start, hence inside alloc_area()'s window.
            off = base + block_next_hint(md, bits);
            len = base + align_up(md.contig_hint_start, align) + bits - off;
            return true;
        }
        std::uint32_t run_start = base + block_bits - md.right_free;
        if (run_start < pos) run_start = pos;
        // align <= block_bits, so this never passes the block's end.
        carry_start = align_up(run_start, align);
        if (base + block_bits - carry_start >= bits) {
            off = carry_start;
            len = bits;
            return true;
        }
        carrying = true;
    }
    return false;
}


template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline std::size_t basic_chunk<PageShift, GranuleShift, BlockShift>::find_aligned_fit(
    std::size_t from, std::size_t end, std::uint32_t bits, std::uint32_t align) const noexcept {
    using bitmap::word;
    constexpr std::size_t w_bits = bitmap::word_bits;
    if (from >= end) return end;
    const std::size_t first = from / w_bits, last = (end - 1) / w_bits;
    // free_word(i) - the clear bits of word i that lie in [from, end), as ones.
    auto free_word = [&](std::size_t i) noexcept {
        word f = ~alloc_map_[i];
        if (i == first) f &= bitmap::detail::mask_from(from);
        if (i == last) f &= bitmap::detail::mask_below(end);
        return f;
    };
    if (bits >= w_bits) {
        // A run of bits >= word_bits clear bits reaches the end of the word it
        // begins in: each word's trailing clear bits (all of it, if clear) are
        // the only candidate it holds. A candidate that fails does so at a set
        // bit q; no aligned start before q fits either, so go on from q's word.
        for (std::size_t i = first; i <= last;) {
            const word used = ~free_word(i);
            const std::size_t top = used == 0 ? 0 : w_bits - bitmap::detail::clz(used);
            if (top == w_bits) {
                ++i;
                continue;
            }
            const std::size_t a = align_up(u32(i * w_bits + top), align);
            if (a + bits > end) return end;
            const std::size_t next = (i + 1) * w_bits;
            const std::size_t q = bitmap::find_next_set(alloc_map_, a + bits, a > next ? a : next);
            if (q >= a + bits) return a;
            i = q / w_bits;
        }
        return end;
    }
    // Aligned positions within a word: every align-th bit (one in a word, or in
    // some words only, when align >= word_bits).
    const word every = align < w_bits ? ~word{0} / ((word{1} << align) - 1) : word{1};
    for (std::size_t i = first; i <= last; ++i) {
        word lo = free_word(i);
        if (lo == 0) continue;
        if (align >= w_bits && (i * w_bits) % align != 0) continue;
        word hi = i < last ? free_word(i + 1) : 0;
        // lo bit p: [p, p + have) clear, reading on into the next word.
        for (std::uint32_t have = 1; have < bits;) {
            const std::uint32_t sh = have < bits - have ? have : bits - have;
            lo &= (lo >> sh) | (hi << (w_bits - sh));
            hi &= hi >> sh;
            have += sh;
        }
        lo &= every;
        if (lo != 0) return i * w_bits + bitmap::detail::ctz(lo);
    }
    return end;
}

/// offer_last_run(from, at, bits, align, s, e) - after a word search from `from`
/// found the fit at `at`: every run it passed failed the request, so none is
/// longer than bits + align - 2 (a run that long always holds it). The last of
/// them, if that long and no shorter than [s, e) (the longest run the scan
/// examined before `from`), is as good a scan hint and a later one; it becomes
/// [s, e). At most three backward word searches over [from, at).
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline void basic_chunk<PageShift, GranuleShift, BlockShift>::offer_last_run(
    std::uint32_t from, std::uint32_t at, std::uint32_t bits, std::uint32_t align, std::uint32_t& s,
    std::uint32_t& e) const noexcept {
    const std::uint32_t bound = bits + align - 2;
    // Only runs shorter than a word: those are the holes a window holds by the
    // dozen and a later scan would visit again; longer ones are few.
    if (bound == 0 || bound >= bitmap::word_bits || bound < e - s) return;
    // The run holding the fit begins after the last allocated bit before it (an
    // unaligned fit begins its run: the bit before an earlier start is allocated).
    std::uint32_t fit_run = at;
    if (align > 1) {
        const auto p = u32(bitmap::find_last_set(alloc_map_, from, at));
        if (p == at) return;
        fit_run = p + 1;
    }
    const auto last_free = u32(bitmap::find_last_clear(alloc_map_, from, fit_run));
    if (last_free == fit_run) return;
    const auto before = u32(bitmap::find_last_set(alloc_map_, from, last_free));
    if (before == last_free || last_free - before != bound) return;
    s = before + 1;
    e = last_free + 1;
}

#if PCPU_FIND_FIT_STATS
/// count_scanned_run(rs, re, bits, align, last) - debug accounting for one free run
/// [rs, re) that alloc_area()'s scan examined: a run that ends inside its block, in
/// a block whose contig hint says the request cannot fit there, is a scan the hints
/// should have prevented (counted once per block per scan).
template <unsigned PageShift, unsigned GranuleShift, unsigned BlockShift>
inline void basic_chunk<PageShift, GranuleShift, BlockShift>::count_scanned_run(
    std::uint32_t rs, std::uint32_t re, std::uint32_t bits, std::uint32_t align, std::uint32_t& last) const noexcept {
    ++detail::fit_counts.runs_examined;
    const std::uint32_t b = rs / block_bits;
    if (re < (b + 1) * block_bits && b != last && !block_check_hint(md_blocks_[b], bits, align)) {
        ++detail::fit_counts.hopeless_blocks_scanned;
        last = b;
    }
}
#endif

} // namespace pcpu

