// SPDX-License-Identifier: MIT
// pcpu/populate.hpp - populate policies: where a chunk's memory comes from and when
// its pages become real (mm/percpu-vm.c, mm/percpu-km.c).
//
//   static_only  - the first chunk is all there is; never allocates, never blocks.
//   contiguous   - no MMU: a new chunk gets all its units at once from alloc_units();
//                  every page is populated from creation, population is bookkeeping.
//   lazy_mapped  - MMU: a new chunk reserves address space only; pages are allocated
//                  and mapped per CPU when an allocation first lands on them, and
//                  unmapped and freed again by balance when they fall empty.
//
// Each policy only moves memory; the allocator decides when, under which lock and with
// which context. Every function here that can allocate or block takes that context
// and passes it on unchanged.
#pragma once

#include "config.hpp"
#include "platform.hpp"
#include "scope.hpp"

namespace pcpu {

/// unit_layout - what a policy needs to know about the units of a chunk.
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

struct static_only {
    static constexpr bool creates_chunks = false;
    static constexpr bool on_demand = false;
    template <class P>
    static constexpr bool check_platform() noexcept { return true; }
};

namespace detail {
template <class P>
constexpr bool check_creating_platform() noexcept {
    using t = platform_traits<P>;
    static_assert(t::template has<has_slow_lock> && t::template has<has_slow_unlock>,
                  "pcpu: a policy that creates chunks needs `void slow_lock(context) noexcept` and "
                  "`void slow_unlock() noexcept` (the sleeping lock, pcpu_alloc_mutex)");
    static_assert(t::template has<has_alloc_meta> && t::template has<has_free_meta>,
                  "pcpu: a policy that creates chunks needs `void* alloc_meta(std::size_t bytes, "
                  "std::size_t align, context ctx) noexcept` and `void free_meta(void*, std::size_t, "
                  "context) noexcept`");
    return true;
}
} // namespace detail

struct contiguous {
    static constexpr bool creates_chunks = true;
    static constexpr bool on_demand = false;

    template <class P>
    static constexpr bool check_platform() noexcept {
        using t = platform_traits<P>;
        static_assert(t::template has<detail::has_alloc_units> && t::template has<detail::has_free_units>,
                      "pcpu: the contiguous policy needs `void* alloc_units(std::size_t bytes, context "
                      "ctx) noexcept` and `void free_units(void*, std::size_t, context) noexcept`");
        return detail::check_creating_platform<P>();
    }

    /// create(p, u, ctx) - every unit of a new chunk in one block (percpu-km); 0 on failure.
    template <class P, class Ctx>
    static std::uintptr_t create(P& p, const unit_layout& u, Ctx ctx) noexcept {
        const auto start = reinterpret_cast<std::uintptr_t>(p.alloc_units(u.chunk_bytes(), ctx));
        return start == 0 ? 0 : u.chunk_base(start);
    }
    template <class P, class Ctx>
    static void destroy(P& p, const unit_layout& u, std::uintptr_t base, Ctx ctx) noexcept {
        platform_traits<P>::free_units(p, reinterpret_cast<void*>(u.span_start(base)), u.chunk_bytes(), ctx);
    }
};

struct lazy_mapped {
    static constexpr bool creates_chunks = true;
    static constexpr bool on_demand = true;

    template <class P>
    static constexpr bool check_platform() noexcept {
        using t = platform_traits<P>;
        static_assert(t::template has<detail::has_reserve> && t::template has<detail::has_release>,
                      "pcpu: the lazy_mapped policy needs `std::uintptr_t reserve(std::size_t, context) "
                      "noexcept` and `void release(std::uintptr_t, std::size_t, context) noexcept`");
        static_assert(t::template has<detail::has_alloc_pages> && t::template has<detail::has_free_pages>,
                      "pcpu: the lazy_mapped policy needs `bool alloc_pages(unsigned cpu, page_ref*, "
                      "std::size_t, context) noexcept` and `void free_pages(unsigned, const page_ref*, "
                      "std::size_t, context) noexcept`");
        static_assert(t::template has<detail::has_map> && t::template has<detail::has_unmap>,
                      "pcpu: the lazy_mapped policy needs `bool map(std::uintptr_t, const page_ref*, "
                      "std::size_t, context) noexcept` and `void unmap(std::uintptr_t, page_ref*, "
                      "std::size_t, context) noexcept`");
        static_assert(t::template has<detail::has_scope_apply> && t::template has<detail::has_current_scope>,
                      "pcpu: the lazy_mapped policy needs `scope_token scope_apply(context) noexcept`, "
                      "`void scope_restore(scope_token) noexcept` and `context current_scope() noexcept`: "
                      "map() runs under the caller's scope");
        return detail::check_creating_platform<P>();
    }

    /// create(p, u, ctx) - address space for every unit of a new chunk, nothing mapped
    /// (pcpu_get_vm_areas, which takes the caller's gfp since the 2026 series); 0 on
    /// failure.
    template <class P, class Ctx>
    static std::uintptr_t create(P& p, const unit_layout& u, Ctx ctx) noexcept {
        const std::uintptr_t start = p.reserve(u.chunk_bytes(), ctx);
        return start == 0 ? 0 : u.chunk_base(start);
    }
    /// destroy(p, u, base, ctx) - precondition: every page already depopulated.
    template <class P, class Ctx>
    static void destroy(P& p, const unit_layout& u, std::uintptr_t base, Ctx ctx) noexcept {
        platform_traits<P>::release(p, u.span_start(base), u.chunk_bytes(), ctx);
    }

    /// populate(p, u, base, b, e, pages, ctx) - back pages [b, e) of every CPU's unit
    /// (pcpu_populate_chunk). `pages` is the temporary page array, nr_cpus * unit_pages
    /// entries, CPU c's page i at c * unit_pages + i.
    /// Returns true, or false with nothing left allocated or mapped.
    /// Context: ctx reaches every page allocation and every map call, and map runs
    /// under ctx's implicit scope as well: a real MMU allocates page tables inside
    /// map() with a fixed mask that no argument reaches (the hole the 2026 kernel
    /// series closed with memalloc_apply_gfp_scope).
    template <class P, class Ctx>
    static bool populate(P& p, const unit_layout& u, std::uintptr_t base, std::uint32_t b, std::uint32_t e,
                         page_ref* pages, Ctx ctx) noexcept {
        const std::size_t n = e - b;
        auto slot = [&](unsigned cpu) { return pages + std::size_t{cpu} * u.unit_pages + b; };
        for (unsigned cpu = 0; cpu < u.nr_cpus; ++cpu) {
            if (!p.alloc_pages(cpu, slot(cpu), n, ctx)) {
                // alloc_pages is all or nothing: free the CPUs before this one.
                while (cpu-- != 0) platform_traits<P>::free_pages(p, cpu, slot(cpu), n, ctx);
                return false;
            }
        }
        for (unsigned cpu = 0; cpu < u.nr_cpus; ++cpu) {
            bool mapped;
            {
                scope_guard<P> scope(p, ctx);
                mapped = p.map(u.page_addr(base, cpu, b), slot(cpu), n, ctx);
            }
            if (!mapped) {
                // map is all or nothing: unmap the CPUs before this one, flush their
                // stale translations, then free every CPU's pages.
                for (unsigned c = 0; c < cpu; ++c)
                    platform_traits<P>::unmap(p, u.page_addr(base, c, b), slot(c), n, ctx);
                if (cpu != 0) platform_traits<P>::flush_tlb(p, u.span_begin(base, b), u.span_end(base, e));
                for (unsigned c = 0; c < u.nr_cpus; ++c) platform_traits<P>::free_pages(p, c, slot(c), n, ctx);
                return false;
            }
        }
        platform_traits<P>::flush_after_map(p, u.span_begin(base, b), u.span_end(base, e));
        return true;
    }

    /// depopulate(p, u, base, b, e, pages, ctx) - unmap and free pages [b, e) of every
    /// CPU (pcpu_depopulate_chunk). Allocates nothing: the page array already exists,
    /// it only receives the pages unmap() reports; ctx reaches unmap and free_pages,
    /// which may sleep. No TLB flush here: the caller issues one per chunk per pass
    /// (or none when the address space is released next).
    template <class P, class Ctx>
    static void depopulate(P& p, const unit_layout& u, std::uintptr_t base, std::uint32_t b, std::uint32_t e,
                           page_ref* pages, Ctx ctx) noexcept {
        const std::size_t n = e - b;
        platform_traits<P>::flush_before_unmap(p, u.span_begin(base, b), u.span_end(base, e));
        for (unsigned cpu = 0; cpu < u.nr_cpus; ++cpu)
            platform_traits<P>::unmap(p, u.page_addr(base, cpu, b), pages + std::size_t{cpu} * u.unit_pages + b, n,
                                      ctx);
        for (unsigned cpu = 0; cpu < u.nr_cpus; ++cpu)
            platform_traits<P>::free_pages(p, cpu, pages + std::size_t{cpu} * u.unit_pages + b, n, ctx);
    }
};

} // namespace pcpu
