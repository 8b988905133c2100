// SPDX-License-Identifier: MIT
// pcpu/first_chunk.hpp - the first chunk's configuration and the rules init() checks it
// against (pcpu_setup_first_chunk's sanity checks, made errors instead of BUG_ON).
//
// The first chunk lives in storage the caller declares (no heap):
//
//     unit:  < static | reserved | dynamic .................... | tail >
//              copied    served only to   served to alloc(); the   unused
//              image     alloc_reserved() first chunk on the       (dyn_size)
//                                         slot lists
//
// The static and reserved parts (and the tail past dyn_size) are hidden from the
// dynamic chunk's bitmap (and the static and dynamic parts from the reserved chunk's),
// as the kernel's pcpu_alloc_first_chunk() does, so the same bitmap allocator serves
// both.
#pragma once

#include "config.hpp"

#include <cstddef>
#include <cstdint>

namespace pcpu {

/// first_chunk_config - the layout handed to allocator::init().
struct first_chunk_config {
    unsigned nr_cpus = 1;
    /// nr_cpus * unit_size bytes, aligned to the page size; CPU c's unit is at
    /// units + c * unit_size.
    void* units = nullptr;
    /// bytes per CPU: a multiple of the page size. Also the largest allocation.
    std::size_t unit_size = 0;
    /// bytes of static per-CPU variables at the start of each unit (rounded up to 4).
    std::size_t static_size = 0;
    /// copied into every unit's static area; nullptr zero-fills it.
    const void* static_image = nullptr;
    /// bytes after the static area served only by alloc_reserved() (rounded up to 4).
    std::size_t reserved_size = 0;
    /// bytes after the reserved area served by alloc() from the first chunk (rounded up
    /// to 4); 0: to the end of the unit. The unit's tail past static + reserved +
    /// dynamic stays hidden, as in Linux's boot layout (s185560 r0 d31528 u1048576,
    /// whose 2 MiB boot atoms leave most of each unit unused). Dynamic chunks always
    /// span whole units.
    std::size_t dyn_size = 0;
    /// metadata storage for the first (and reserved) chunk:
    /// allocator::first_chunk_meta_bytes(unit_size, static_size, reserved_size, dyn_size) bytes
    /// aligned to allocator::meta_align. Never freed by pcpu. With a policy that creates
    /// chunks it may be null: init() then takes it from the platform's alloc_meta().
    void* meta = nullptr;
    std::size_t meta_size = 0;
    /// where each CPU's unit is, when the platform picks (core-local SRAM banks, TCM):
    /// nr_cpus addresses, CPU c's unit at unit_addrs[c], instead of `units`, which must
    /// then be null. Any order, gaps allowed, units below CPU 0's too; each page
    /// aligned, none wrapping the address space, no two overlapping. Dynamic chunks
    /// repeat the same layout: see unit_layout (populate.hpp) for what that asks of
    /// alloc_units() and reserve().
    const void* const* unit_addrs = nullptr;
};

namespace detail {
/// round_up(v, a) - v rounded up to a multiple of a (a > 0).
constexpr std::size_t round_up(std::size_t v, std::size_t a) noexcept { return (v + a - 1) / a * a; }
} // namespace detail

/// config_field, config_reason - what first_chunk_rules::check() found wrong: the field
/// (low 4 bits of its code) and, where the field alone does not say it, why (high 4).
/// Their names are bad_field() and bad_reason(), in the order of the enumerators.
enum class config_field : unsigned char {
    nr_cpus = 1, unit_size, units, unit_addrs, static_size, reserved_size, dyn_size, static_image, meta, meta_size
};
enum class config_reason : unsigned char {
    none, given_with_unit_addrs, wraps, no_dynamic_space, past_the_end, overlaps_units, null, alignment
};

namespace detail {
/// nth_name(names, n) - the n-th of the NUL-separated names (0 is the first).
inline const char* nth_name(const char* names, unsigned n) noexcept {
    for (; n != 0; --n)
        while (*names++ != '\0') {
        }
    return names;
}
} // namespace detail

/// bad_field(code), bad_reason(code) - the field check() blamed, as init()'s warning names
/// it ("units"), and the reason ("wraps"), or nullptr when the field says it all.
inline const char* bad_field(unsigned code) noexcept {
    return detail::nth_name("nr_cpus\0unit_size\0units\0unit_addrs\0static_size\0reserved_size\0dyn_size\0"
                            "static_image\0meta\0meta_size",
                            (code & 15u) - 1);
}
inline const char* bad_reason(unsigned code) noexcept {
    if ((code >> 4) == 0) return nullptr;
    return detail::nth_name("given with unit_addrs\0wraps\0no dynamic space\0past the unit's end\0overlaps units\0"
                            "null\0alignment",
                            (code >> 4) - 1);
}

/// first_chunk_rules<Chunk> - the first chunk's geometry for the bitmap allocator
/// Chunk (chunk_layout<...>::chunk<page_shift>), and check(), the validation init() runs before it
/// writes anything.
template <class Chunk>
struct first_chunk_rules {
    static constexpr std::size_t page_size = Chunk::geometry::page_size;
    static constexpr std::size_t meta_align = Chunk::meta_align;
    /// The chunk's granule: static, reserved and dynamic sizes round up to it.
    static constexpr std::size_t min_alloc_size = Chunk::granule_size;
    /// Units above 1 GiB would overflow the 32-bit bit offsets of the chunk.
    static constexpr std::size_t max_unit_size = std::size_t{1} << 30;

    /// chunk_end(unit, head, dyn) - end of the first chunk's dynamic area: head
    /// (static + reserved, rounded) plus dyn rounded up to the granule, or the unit's
    /// end for 0.
    /// check() has made sure dyn <= unit - head, so nothing overflows.
    static constexpr std::size_t chunk_end(std::size_t unit, std::size_t head, std::size_t dyn) noexcept {
        return dyn == 0 || dyn > unit - head ? unit : head + detail::round_up(dyn, min_alloc_size);
    }
    /// region_pages(begin, end) - pages a chunk needs to cover unit bytes [begin, end).
    static constexpr std::uint32_t region_pages(std::size_t begin, std::size_t end) noexcept {
        return static_cast<std::uint32_t>(detail::round_up(end, page_size) / page_size - begin / page_size);
    }
    /// meta_bytes(unit_size, static_size, reserved_size, dyn_size) - see
    /// allocator::first_chunk_meta_bytes(); 0 for a geometry check() rejects.
    static constexpr std::size_t meta_bytes(std::size_t unit_size, std::size_t static_size,
                                            std::size_t reserved_size, std::size_t dyn_size) noexcept {
        if (unit_size > max_unit_size || static_size >= unit_size || reserved_size >= unit_size) return 0;
        const std::size_t s = detail::round_up(static_size, min_alloc_size);
        const std::size_t r = detail::round_up(reserved_size, min_alloc_size);
        const std::size_t end = chunk_end(unit_size, s + r, dyn_size);
        std::size_t bytes = detail::round_up(Chunk::meta_bytes(region_pages(s + r, end)), meta_align);
        if (r != 0) bytes += detail::round_up(Chunk::meta_bytes(region_pages(s, s + r)), meta_align);
        return bytes;
    }

    /// unit0_of(cfg) - CPU 0's unit: cfg.unit_addrs[0] when the platform places each
    /// unit, else cfg.units.
    static std::uintptr_t unit0_of(const first_chunk_config& cfg) noexcept {
        return reinterpret_cast<std::uintptr_t>(cfg.unit_addrs != nullptr ? cfg.unit_addrs[0] : cfg.units);
    }

    /// valid_unit_addrs(cfg) - cfg.unit_addrs names nr_cpus page-aligned units, none
    /// wrapping the address space, no two overlapping (the span of all of them then
    /// fits in a size_t, which dynamic chunks need).
    static bool valid_unit_addrs(const first_chunk_config& cfg) noexcept {
        const std::uintptr_t last = ~std::uintptr_t{0} - cfg.unit_size; // highest start that does not wrap
        for (unsigned i = 0; i < cfg.nr_cpus; ++i) {
            const auto a = reinterpret_cast<std::uintptr_t>(cfg.unit_addrs[i]);
            if (a == 0 || a % page_size != 0 || a > last) return false;
            for (unsigned j = 0; j < i; ++j) {
                const auto b = reinterpret_cast<std::uintptr_t>(cfg.unit_addrs[j]);
                if (a < b + cfg.unit_size && b < a + cfg.unit_size) return false;
            }
        }
        return true;
    }

    /// check<MetaRequired, MaxCpus>(cfg) - 0 if init() may use cfg, else a code naming
    /// the first bad field and a word of why (bad_field(), bad_reason()): a byte, so
    /// that each rejection costs an immediate rather than a string address, and the
    /// names exist once, in the two tables below. MetaRequired: the back end cannot
    /// allocate the metadata itself. allocator::init()'s comment has the rules in
    /// full. Every comparison is made so that it cannot wrap: each size is bounded by
    /// the unit size (at most max_unit_size) before it is rounded or added.
    template <bool MetaRequired, std::size_t MaxCpus>
    static unsigned check(const first_chunk_config& cfg) noexcept {
        using f = config_field;
        using r = config_reason;
        const auto meta = reinterpret_cast<std::uintptr_t>(cfg.meta);
        if (cfg.nr_cpus == 0 || cfg.nr_cpus > MaxCpus) return bad(f::nr_cpus);
        if (cfg.unit_size == 0 || cfg.unit_size % page_size != 0 || cfg.unit_size > max_unit_size)
            return bad(f::unit_size);
        const auto units = reinterpret_cast<std::uintptr_t>(cfg.units);
        const std::uintptr_t span = cfg.unit_size * std::uintptr_t{cfg.nr_cpus};
        if (cfg.unit_addrs != nullptr) {
            if (units != 0) return bad(f::units, r::given_with_unit_addrs);
            if (!valid_unit_addrs(cfg)) return bad(f::unit_addrs);
        } else {
            if (units == 0 || units % page_size != 0) return bad(f::units);
            if (span / cfg.nr_cpus != cfg.unit_size || UINTPTR_MAX - units < span) return bad(f::units, r::wraps);
        }
        // [p, p + n) meets some CPU's unit.
        const auto overlaps_units = [&](std::uintptr_t p, std::size_t n) {
            if (cfg.unit_addrs == nullptr) return p < units + span && units < p + n;
            for (unsigned cpu = 0; cpu < cfg.nr_cpus; ++cpu) {
                const auto u = reinterpret_cast<std::uintptr_t>(cfg.unit_addrs[cpu]);
                if (p < u + cfg.unit_size && u < p + n) return true;
            }
            return false;
        };
        if (cfg.static_size >= cfg.unit_size) return bad(f::static_size);
        if (cfg.reserved_size >= cfg.unit_size) return bad(f::reserved_size);
        const std::size_t head = detail::round_up(cfg.static_size, min_alloc_size) +
                                 detail::round_up(cfg.reserved_size, min_alloc_size);
        if (head >= cfg.unit_size) return bad(f::reserved_size, r::no_dynamic_space);
        if (cfg.dyn_size > cfg.unit_size - head) return bad(f::dyn_size, r::past_the_end);
        const auto image = reinterpret_cast<std::uintptr_t>(cfg.static_image);
        if (image != 0 && UINTPTR_MAX - image < cfg.static_size) return bad(f::static_image, r::wraps);
        if (image != 0 && cfg.static_size != 0 && overlaps_units(image, cfg.static_size))
            return bad(f::static_image, r::overlaps_units);
        if (meta == 0 && MetaRequired) return bad(f::meta, r::null);
        if (meta % meta_align != 0) return bad(f::meta, r::alignment);
        const std::size_t need = meta_bytes(cfg.unit_size, cfg.static_size, cfg.reserved_size, cfg.dyn_size);
        if (meta != 0 && cfg.meta_size < need) return bad(f::meta_size);
        if (meta != 0 && (UINTPTR_MAX - meta < need || overlaps_units(meta, need)))
            return bad(f::meta, r::overlaps_units);
        return 0;
    }

private:
    static constexpr unsigned bad(config_field field, config_reason why = config_reason::none) noexcept {
        return static_cast<unsigned>(field) | static_cast<unsigned>(why) << 4;
    }
};

} // namespace pcpu
