// SPDX-License-Identifier: MIT
// pcpu/internal/fit_counters.hpp - the chunk layer's measuring hook: counters of the
// work find-fit, alloc-area, the hint refreshes and the chunk index do.
//
// Off by default: unless PCPU_FIND_FIT_STATS is defined to 1 before any pcpu header,
// PCPU_FIND_FIT_COUNT(...) expands to nothing, so the default build carries no counter,
// no branch and no global. With it on, the one detail::fit_counts is updated by the
// chunk code; every update happens under the index lock (find-fit and claim run there),
// so plain integers suffice. The hook lives here, beside the code that counts, so the
// allocator never includes debug/; pcpu/debug/find_fit_stats.hpp is the reader's face
// of it (debug::find_fit_stats, debug::find_fit_counters).
#pragma once

#include <cstdint>

#ifndef PCPU_FIND_FIT_STATS
#define PCPU_FIND_FIT_STATS 0
#endif

namespace pcpu::detail {

/// fit_counters - what find-fit (metadata walk) and alloc-area (bitmap scan) did.
struct fit_counters {
    std::uint64_t find_fit_calls = 0;   ///< basic_chunk::find_fit() calls
    std::uint64_t chunk_rejects = 0;    ///< rejected in O(1) by the chunk's contig hint
    std::uint64_t blocks_visited = 0;   ///< block metadata entries read by the fit walk
    std::uint64_t scans = 0;            ///< alloc_area() bitmap scans
    std::uint64_t failed_scans = 0;     ///< scans that found nothing although find_fit promised a fit
    std::uint64_t runs_examined = 0;    ///< free runs the scans looked at
    std::uint64_t words_scanned = 0;    ///< bitmap words the scans read
    std::uint64_t word_searches = 0;    ///< scans that went on word by word after their first runs
    /// Blocks in which a scan examined a free run that lies wholly inside the block
    /// although the block's hints (contig hint, checked with the request's size and
    /// alignment) said no fit is there: wasted work the hints exist to prevent. The
    /// claim is that this stays 0.
    std::uint64_t hopeless_blocks_scanned = 0;
    std::uint64_t refresh_runs = 0;        ///< free runs block hint refreshes walked (bitmap)
    std::uint64_t refresh_blocks = 0;      ///< block metadata entries chunk hint refreshes walked
    std::uint64_t chunk_lookup_probes = 0; ///< chunks the address-to-chunk index visited (free)
};

#if PCPU_FIND_FIT_STATS
/// fit_counts - the one set of counters (C++17 inline variable).
inline fit_counters fit_counts{};
#endif

} // namespace pcpu::detail

#if PCPU_FIND_FIT_STATS
#define PCPU_FIND_FIT_COUNT(...) \
    do {                         \
        __VA_ARGS__;             \
    } while (0)
#else
#define PCPU_FIND_FIT_COUNT(...) \
    do {                         \
    } while (0)
#endif
