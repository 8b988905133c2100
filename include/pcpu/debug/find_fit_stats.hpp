// SPDX-License-Identifier: MIT
// pcpu/debug/find_fit_stats.hpp - optional counters of the work find-fit does, to show
// that the block hints keep the bitmap scan where a fit can be.
//
// A measuring aid for benchmarks and tests, not an API to ship enabled: define
// PCPU_FIND_FIT_STATS to 1 before any pcpu header, then read or reset
// debug::find_fit_counters. The counting itself is the chunk layer's hook
// (pcpu/internal/fit_counters.hpp, where the fields are explained); this header only
// names it for readers, so nothing below debug/ depends on debug/.
#pragma once

#include "../internal/fit_counters.hpp"

namespace pcpu::debug {

/// find_fit_stats - what find-fit (metadata walk) and alloc-area (bitmap scan) did.
using find_fit_stats = pcpu::detail::fit_counters;

#if PCPU_FIND_FIT_STATS
/// find_fit_counters - the one set of counters the chunk code updates.
inline find_fit_stats& find_fit_counters = pcpu::detail::fit_counts;
#endif

} // namespace pcpu::debug
