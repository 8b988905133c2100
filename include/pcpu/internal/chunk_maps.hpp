// SPDX-License-Identifier: MIT
// pcpu/internal/chunk_maps.hpp - what every chunk policy keeps the same way: the
// allocation map and the bound map (their contract, the claim of an area in them, the
// size of an allocation read back from them, their verification) and the first
// mismatch verify() reports.
//
// The contract, stated once here and kept by every chunk (internal/chunk.hpp,
// internal/scan_chunk.hpp):
//  - alloc_map: 1 bit per granule, set = allocated (hidden head/tail of a first
//    chunk included).
//  - bound_map: map_bits + 1 bits, written only on allocation: an allocation of
//    [s, e) sets bit s, clears s+1 .. e-1 and sets bit e. Free reads an allocation's
//    size as the distance to the next set bit. Free space may keep stale set bits;
//    they are harmless because every allocation rewrites its own bits and both ends.
//  - [usable_begin, usable_end) is what allocations can use; the rest is hidden,
//    allocated for good and never freeable.
#pragma once

#include "bitmap.hpp"

#include <cstdint>

namespace pcpu {

/// chunk_verify_report - first mismatch found by a chunk's verify(); ok == true when
/// none. `what` is a static string naming the invariant, `index` the block (or bit, or
/// page, as `what` says), expected/actual the recomputed and stored values.
struct chunk_verify_report {
    bool ok = true;
    const char* what = nullptr;
    std::uint32_t index = 0;
    std::uint32_t expected = 0;
    std::uint32_t actual = 0;
};

namespace detail {

inline chunk_verify_report chunk_mismatch(const char* what, std::uint32_t index, std::uint32_t expected,
                                          std::uint32_t actual) noexcept {
    chunk_verify_report r;
    r.ok = false;
    r.what = what;
    r.index = index;
    r.expected = expected;
    r.actual = actual;
    return r;
}

/// map_words<PageBits> - the words of a chunk's three bitmaps, laid out in this order at
/// the start of its metadata: alloc_map (map_bits), bound_map (map_bits + 1),
/// populated (one bit per page).
template <std::uint32_t PageBits>
struct map_words {
    static constexpr std::size_t alloc(std::uint32_t nr_pages) noexcept {
        return bitmap::words_for(std::size_t{nr_pages} * PageBits);
    }
    static constexpr std::size_t bound(std::uint32_t nr_pages) noexcept {
        return bitmap::words_for(std::size_t{nr_pages} * PageBits + 1);
    }
    static constexpr std::size_t populated(std::uint32_t nr_pages) noexcept { return bitmap::words_for(nr_pages); }
    static constexpr std::size_t all(std::uint32_t nr_pages) noexcept {
        return alloc(nr_pages) + bound(nr_pages) + populated(nr_pages);
    }
    /// lay_out(meta, nr_pages, alloc_map, bound_map, populated) - zero the three maps at
    /// the start of meta and point at them; returns the first word after them.
    static bitmap::word* lay_out(void* meta, std::uint32_t nr_pages, bitmap::word*& alloc_map,
                                 bitmap::word*& bound_map, bitmap::word*& populated_map) noexcept {
        auto* words = static_cast<bitmap::word*>(meta);
        const std::size_t n = all(nr_pages);
        for (std::size_t i = 0; i < n; ++i) words[i] = 0;
        alloc_map = words;
        bound_map = alloc_map + alloc(nr_pages);
        populated_map = bound_map + bound(nr_pages);
        return words + n;
    }
};

/// mark_area(alloc_map, bound_map, s, e) - [s, e) allocated in both maps.
inline void mark_area(bitmap::word* alloc_map, bitmap::word* bound_map, std::uint32_t s, std::uint32_t e) noexcept {
    bitmap::set_range(alloc_map, s, e);
    bitmap::set(bound_map, s);
    bitmap::clear_range(bound_map, std::size_t{s} + 1, e);
    bitmap::set(bound_map, e);
}

/// area_size(alloc_map, bound_map, map_bits, usable_begin, usable_end, off) - size in
/// bits of the live allocation that starts at bit `off`, or 0 if `off` is not the start
/// of one (free bit, interior bit, hidden region, out of range). Plain arguments: on
/// free()'s path, where a view object cost instructions.
inline std::uint32_t area_size(const bitmap::word* alloc_map, const bitmap::word* bound_map, std::uint32_t map_bits,
                               std::uint32_t usable_begin, std::uint32_t usable_end, std::uint32_t off) noexcept {
    if (off >= map_bits || off < usable_begin || off >= usable_end) return 0;
    // Interiors of live allocations have clear bound bits, so a set bound bit on an
    // allocated bit is always a live allocation's start.
    if (!bitmap::test(alloc_map, off) || !bitmap::test(bound_map, off)) return 0;
    return static_cast<std::uint32_t>(bitmap::find_next_set(bound_map, std::size_t{map_bits} + 1, std::size_t{off} + 1)) -
           off;
}

/// chunk_maps - a chunk's two maps and the bounds of its usable part, as a view for
/// verify().
struct chunk_maps {
    const bitmap::word* alloc_map;
    const bitmap::word* bound_map;
    std::uint32_t map_bits;
    std::uint32_t usable_begin;
    std::uint32_t usable_end;

    /// verify(nr_alloc) - the hidden head and tail allocated, every allocated run of the
    /// usable part a sequence of whole allocations (start bound bit set, interior bound
    /// bits clear, end bound bit set), and nr_alloc of them.
    chunk_verify_report verify(std::uint32_t nr_alloc) const noexcept {
        if (usable_begin > usable_end || usable_end > map_bits)
            return chunk_mismatch("hidden bounds", 0, usable_end, usable_begin);
        if (!bitmap::all_set(alloc_map, 0, usable_begin) || !bitmap::all_set(alloc_map, usable_end, map_bits))
            return chunk_mismatch("hidden region not allocated", 0, usable_begin, usable_end);
        std::uint32_t n = 0;
        std::size_t rs = 0, re = 0;
        for (std::size_t f = usable_begin; bitmap::next_set_region(alloc_map, usable_end, f, rs, re); f = re) {
            for (std::size_t p = rs; p < re;) {
                if (!bitmap::test(bound_map, p))
                    return chunk_mismatch("bound_map: allocated bit without an allocation start",
                                          static_cast<std::uint32_t>(p), 1, 0);
                const std::size_t q = bitmap::find_next_set(bound_map, std::size_t{map_bits} + 1, p + 1);
                if (q > re)
                    return chunk_mismatch("bound_map: allocation ends past its allocated run",
                                          static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(re),
                                          static_cast<std::uint32_t>(q));
                ++n;
                p = q;
            }
        }
        if (nr_alloc != n) return chunk_mismatch("nr_alloc", 0, n, nr_alloc);
        return chunk_verify_report{};
    }
};

} // namespace detail
} // namespace pcpu
