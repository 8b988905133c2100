// SPDX-License-Identifier: MIT
// pcpu/backend/unit_layout.hpp - where each CPU's unit of a chunk lies: what a back end
// needs to know to create a chunk's memory and to (de)populate its pages.
#pragma once

#include "../config.hpp"

#include <cstddef>
#include <cstdint>

namespace pcpu {

/// unit_layout - what a back end needs to know about the units of a chunk.
///
/// CPU c's unit starts offsets[c] bytes after CPU 0's (modulo the address width, so a
/// unit may lie below CPU 0's), identically in every chunk: that is what lets one
/// handle and one offset table reach every chunk. By default offsets[c] is
/// c * unit_size; first_chunk_config::unit_addrs makes it whatever the platform laid
/// out. A dynamic chunk is then one *span*, from the lowest unit's first byte to the
/// highest unit's last: alloc_units() and reserve() are asked for span bytes (page
/// aligned, as before) and the chunk's CPU 0 unit is `lo` bytes into it. The gaps
/// between units are part of the span and unused by pcpu: a platform whose units sit
/// far apart pays for them in every dynamic chunk, or keeps static_only.
struct unit_layout {
    unsigned nr_cpus = 0;
    std::size_t unit_size = 0;       ///< bytes per CPU
    std::uint32_t unit_pages = 0;
    std::size_t page_size = 0;
    /// CPU c's unit at base + offsets[c]; null: the default, c * unit_size.
    const std::uintptr_t* offsets = nullptr;
    std::uintptr_t lo = 0;           ///< offset of the lowest unit (0 unless one is below CPU 0's)
    std::size_t span = 0;            ///< lowest unit's start to highest unit's end; 0: nr_cpus * unit_size

    std::size_t chunk_bytes() const noexcept { return span != 0 ? span : std::size_t{nr_cpus} * unit_size; }
    std::uintptr_t offset(unsigned cpu) const noexcept {
        return offsets != nullptr ? offsets[cpu] : std::uintptr_t{cpu} * unit_size;
    }
    /// span_start(base) - the address alloc_units()/reserve() returned for the chunk
    /// whose CPU 0 unit is at base; chunk_base(start) is the inverse.
    std::uintptr_t span_start(std::uintptr_t base) const noexcept { return base + lo; }
    std::uintptr_t chunk_base(std::uintptr_t start) const noexcept { return start - lo; }
    std::uintptr_t page_addr(std::uintptr_t base, unsigned cpu, std::uint32_t page) const noexcept {
        return base + offset(cpu) + std::size_t{page} * page_size;
    }
    /// span(base, b, e) - one range covering pages [b, e) of every CPU: flushes are
    /// issued once over it instead of once per CPU (pcpu_low/high_unit_cpu).
    std::uintptr_t span_begin(std::uintptr_t base, std::uint32_t b) const noexcept {
        return span_start(base) + std::size_t{b} * page_size;
    }
    std::uintptr_t span_end(std::uintptr_t base, std::uint32_t e) const noexcept {
        return span_start(base) + (chunk_bytes() - unit_size) + std::size_t{e} * page_size;
    }
};

} // namespace pcpu
