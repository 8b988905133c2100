// SPDX-License-Identifier: MIT
// pcpu/backend/lazy_mapped.hpp - the lazy_mapped back end (mm/percpu-vm.c): with an
// MMU, a new chunk reserves address space only; pages are allocated and mapped per CPU
// when an allocation first lands on them, and unmapped and freed again when balance
// reclaims them.
//
// The tag's static members are the page-range primitives (pcpu_populate_chunk,
// pcpu_depopulate_chunk); lazy_mapped_backend<P> owns the state they need, the page
// array. The core decides when, under which lock and with which context; every call
// here that can allocate or block takes that context and passes it on unchanged.
#pragma once

#include "../internal/bitmap.hpp"
#include "../platform.hpp"
#include "../scope.hpp"
#include "creating.hpp"
#include "unit_layout.hpp"

#include <cstddef>
#include <cstdint>

namespace pcpu {

template <class P>
class lazy_mapped_backend;

/// lazy_mapped - the populate policy with an MMU.
struct lazy_mapped {
    static constexpr bool creates_chunks = true;
    static constexpr bool on_demand = true;
    template <class P>
    using backend = lazy_mapped_backend<P>;

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

/// lazy_mapped_backend<P> - the page array and the population of page ranges.
template <class P>
class lazy_mapped_backend : public creating_backend<P> {
public:
    using traits = platform_traits<P>;
    using context = typename traits::context;
    using creating_backend<P>::creates_chunks;
    /// A new chunk is address space only: the core populates what allocations touch.
    static constexpr bool populated_on_create = false;
    /// Empty pages can be unmapped and freed one run at a time (reclaim).
    static constexpr bool depopulates = true;
    /// populate_slots - populations that may run outside the sleeping lock at once,
    /// each with a page array of its own (internal/populating.hpp); none unless the
    /// platform has the population event.
    static constexpr unsigned populate_slots = traits::parallel_population ? 8 : 0;

    /// create(p, u, ctx) / destroy(...) - see lazy_mapped::create; destroy first
    /// depopulates whatever the chunk still has populated. destroy allocates nothing.
    static std::uintptr_t create(P& p, const unit_layout& u, context ctx) noexcept {
        return lazy_mapped::create(p, u, ctx);
    }
    template <class Chunk>
    void destroy(P& p, const unit_layout& u, Chunk& c, std::uintptr_t base, context ctx) noexcept {
        std::size_t rs = 0, re = 0;
        for (std::size_t from = 0; bitmap::next_set_region(c.populated_map(), u.unit_pages, from, rs, re);
             from = re) {
            PCPU_ASSERT(pages_[0] != nullptr); // populated once, so it exists
            const auto b = static_cast<std::uint32_t>(rs), e = static_cast<std::uint32_t>(re);
            lazy_mapped::depopulate(p, u, base, b, e, pages_[0], ctx);
            c.set_depopulated(b, e);
        }
        // No TLB flush: release() retires the whole range next and must flush it.
        lazy_mapped::destroy(p, u, base, ctx);
    }

    template <class Chunk>
    static bool is_populated(const Chunk& c, std::uint32_t b, std::uint32_t e) noexcept {
        return bitmap::all_set(c.populated_map(), b, e);
    }
    template <class Chunk>
    static bool fully_populated(const Chunk& c) noexcept {
        return c.nr_populated() == c.nr_pages();
    }

    /// should_reclaim(c, nr_empty, high) - pcpu_should_reclaim_chunk, for a chunk in
    /// use: worth depopulating when the other chunks hold more than the reserve's high
    /// mark of empty pages (nr_empty counts the reserve, c's included) and at least a
    /// quarter of c is empty populated pages. Never the first chunk: it stays mapped.
    template <class Node>
    static bool should_reclaim(const Node& c, std::size_t nr_empty, std::size_t high) noexcept {
        if (c.immutable) return false;
        const std::size_t empty = c.chunk.nr_empty_pop_pages();
        return nr_empty > high + empty && empty >= c.chunk.nr_pages() / 4 && empty != 0;
    }

    /// populate(p, u, base, b, e, ctx, slot) - back pages [b, e) of every CPU (see
    /// lazy_mapped::populate) with slot's page array: slot 0 under the sleeping lock,
    /// else the populating_set slot the caller holds, after prepare(). False with
    /// nothing left allocated or mapped.
    bool populate(P& p, const unit_layout& u, std::uintptr_t base, std::uint32_t b, std::uint32_t e,
                  context ctx, unsigned slot = 0) noexcept {
        return (slot != 0 || prepare(p, u, ctx, 0)) && lazy_mapped::populate(p, u, base, b, e, pages_[slot], ctx);
    }
    /// prepare(p, u, ctx, slot) - under the sleeping lock, before slot's population runs
    /// outside it: the page arrays it needs, slot 0's included (depopulation's, which
    /// must then exist). The only place an array is allocated, so no two tasks ever
    /// race on one.
    bool prepare(P& p, const unit_layout& u, context ctx, unsigned slot) noexcept {
        return ensure_page_array(p, u, ctx, 0) && ensure_page_array(p, u, ctx, slot);
    }
    /// depopulate(p, u, base, b, e, ctx) - unmap and free pages [b, e) of every CPU;
    /// no TLB flush (flush() once per chunk after a pass).
    void depopulate(P& p, const unit_layout& u, std::uintptr_t base, std::uint32_t b, std::uint32_t e,
                    context ctx) noexcept {
        lazy_mapped::depopulate(p, u, base, b, e, pages_[0], ctx);
    }
    /// flush(p, u, base, b, e) - one TLB flush over pages [b, e) of every CPU.
    static void flush(P& p, const unit_layout& u, std::uintptr_t base, std::uint32_t b, std::uint32_t e) noexcept {
        traits::flush_tlb(p, u.span_begin(base, b), u.span_end(base, e));
    }

    /// release(p, u, ctx) - the page array back to the platform (teardown).
    void release(P& p, const unit_layout& u, context ctx) noexcept {
        for (page_ref*& a : pages_) {
            if (a != nullptr) traits::free_meta(p, a, page_array_bytes(u), ctx);
            a = nullptr;
        }
    }

private:
    /// ensure_page_array(p, u, ctx, slot) - slot's temporary page array: allocated by
    /// the first population that needs it, with that population's context (it was
    /// GFP_KERNEL in Linux before 2026: one of the allocations the noio bug went
    /// through), then kept for good so depopulation never has to allocate. Sleeping
    /// lock held.
    bool ensure_page_array(P& p, const unit_layout& u, context ctx, unsigned slot) noexcept {
        if (pages_[slot] == nullptr)
            pages_[slot] = static_cast<page_ref*>(p.alloc_meta(page_array_bytes(u), alignof(page_ref), ctx));
        return pages_[slot] != nullptr;
    }
    static std::size_t page_array_bytes(const unit_layout& u) noexcept {
        return std::size_t{u.nr_cpus} * u.unit_pages * sizeof(page_ref);
    }

    /// nr_cpus * unit_pages entries each, CPU c's page i at c * unit_pages + i; [0] is
    /// the sleeping lock holder's, [k] populating_set slot k's.
    page_ref* pages_[1 + populate_slots] = {};
};

} // namespace pcpu
