// SPDX-License-Identifier: MIT
// pcpu/core/setup.hpp - the allocator's life: init() (pcpu_setup_first_chunk: the
// geometry, the CPU offsets, the first and reserved chunks over the caller's storage,
// checked first by first_chunk.hpp's rules) and teardown() (everything dynamic back to
// the platform, the object fresh again).
//
// Out-of-class members of pcpu::allocator, which includes this header at the end of
// allocator.hpp; it includes allocator.hpp back only so that it compiles on its own.
// A private member's contract is stated here, where it is kept; a public one's (init,
// balance) with its declaration in the class.
#pragma once

#include "../allocator.hpp"

#include <cstring>

namespace pcpu {

template <class Platform, class Populate, class ChunkLayout>
inline errc allocator<Platform, Populate, ChunkLayout>::init(const first_chunk_config& cfg) noexcept {
    if (initialized_) {
        warn("pcpu: init: already initialised");
        return errc::bad_config;
    }
    if (const unsigned bad = rules::template check<!backend_type::creates_chunks, max_cpus>(cfg)) {
        // Without warn() nobody reads the names: they stay out of the image.
        if constexpr (traits::template has<detail::has_warn>) {
            detail::message<128> m;
            m << "pcpu: init: bad first_chunk_config." << bad_field(bad);
            if (const char* why = bad_reason(bad)) m << " (" << why << ")";
            warn(m.c_str());
        }
        return errc::bad_config;
    }
    const std::size_t s = detail::round_up(cfg.static_size, min_alloc_size);
    const std::size_t r = detail::round_up(cfg.reserved_size, min_alloc_size);
    const std::uintptr_t units = rules::unit0_of(cfg);
    const std::size_t end = rules::chunk_end(cfg.unit_size, s + r, cfg.dyn_size);

    void* meta_storage = cfg.meta;
    // Without chunk creation there is no heap, and check() has refused a null meta.
    if (backend_type::creates_chunks && meta_storage == nullptr) {
        // First-chunk setup asks with the full context: it runs once, at start-up,
        // before any caller of this allocator can hold a lock that reclaim might
        // need. Narrowed by the task's scope all the same: code that sets an
        // allocator up under a noio scope holds such a lock itself.
        own_meta_bytes_ =
            first_chunk_meta_bytes(cfg.unit_size, cfg.static_size, cfg.reserved_size, cfg.dyn_size);
        const context setup = ctx_traits::narrow(ctx_traits::full(), traits::current_scope(platform_));
        op_bracket op(platform_, setup);
        meta_storage = own_meta_ = backend_.alloc_meta(platform_, own_meta_bytes_, meta_align, setup);
        if (meta_storage == nullptr) return errc::out_of_memory;
    }

    nr_cpus_ = cfg.nr_cpus;
    unit_size_ = cfg.unit_size;
    static_size_ = s;
    reserved_size_ = r;
    first_end_ = end;
    // Offsets are differences modulo the address width: a unit below CPU 0's has a
    // "negative" offset, and h + offset still lands on it.
    std::uintptr_t lowest = units, highest = units;
    for (unsigned cpu = 0; cpu < max_cpus; ++cpu) {
        const std::uintptr_t at = cfg.unit_addrs == nullptr
                                      ? units + std::uintptr_t{cpu} * unit_size_
                                      : cpu < nr_cpus_ ? reinterpret_cast<std::uintptr_t>(cfg.unit_addrs[cpu]) : units;
        cpu_offsets_[cpu] = cpu < nr_cpus_ ? at - units : 0;
        if (cpu < nr_cpus_ && at < lowest) lowest = at;
        if (cpu < nr_cpus_ && at > highest) highest = at;
    }

    // Each CPU's static area starts as the image (the kernel copies .data..percpu).
    for (unsigned cpu = 0; cpu < nr_cpus_; ++cpu) {
        auto* dst = reinterpret_cast<unsigned char*>(units + cpu_offsets_[cpu]);
        if (cfg.static_image != nullptr) std::memcpy(dst, cfg.static_image, cfg.static_size);
        std::memset(dst + (cfg.static_image != nullptr ? cfg.static_size : 0), 0,
                    s - (cfg.static_image != nullptr ? cfg.static_size : 0));
    }
    detail::born_free(units + s, cpu_offsets_, nr_cpus_, end - s); // the tail past dyn_size is not pcpu's

    index_.init(unit_size_);

    // The unit layout is what dynamic chunks repeat; without them nobody reads it.
    if constexpr (backend_type::creates_chunks) {
        layout_.nr_cpus = nr_cpus_;
        layout_.unit_size = unit_size_;
        layout_.unit_pages = static_cast<std::uint32_t>(unit_size_ / page_size);
        layout_.page_size = page_size;
        layout_.offsets = cpu_offsets_;
        layout_.lo = lowest - units;
        layout_.span = highest - lowest + unit_size_;
    }

    auto* meta = static_cast<unsigned char*>(meta_storage);
    build_first_chunk(first_, chunk_kind::first, units, s + r, end, meta);
    meta += detail::round_up(chunk_type::meta_bytes(first_.chunk.nr_pages()), meta_align);
    if (r != 0) build_first_chunk(reserved_, chunk_kind::reserved, units, s, s + r, meta);

    // The first chunk's pages are all populated and stay so (it is immutable); count
    // them once, as the kernel's pcpu_nr_populated does, over the unit prefix it
    // uses (the hidden tail past dyn_size is not pcpu's).
    nr_populated_ = rules::region_pages(0, first_end_);
    nr_empty_pop_pages_ = first_.chunk.nr_empty_pop_pages();
    insert_chunk(first_);
    stats_.min_alloc_size = unit_size_;
    ++generation_;
    initialized_ = true;
    return errc::ok;
}

template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::build_first_chunk(chunk_node& c, chunk_kind kind, std::uintptr_t units,
                                                             std::size_t begin, std::size_t end,
                                                             unsigned char* meta) noexcept {
    const std::size_t page_begin = begin / page_size * page_size;
    const std::uint32_t pages = rules::region_pages(begin, end);
    c.chunk.init(meta, pages);
    c.chunk.set_populated(0, pages);
    c.chunk.hide(static_cast<std::uint32_t>((begin - page_begin) >> min_alloc_shift),
               static_cast<std::uint32_t>((end - page_begin) >> min_alloc_shift));
    c.base = units + page_begin;
    c.usable_begin = units + begin;
    c.usable_end = units + end;
    c.kind = kind;
    c.immutable = true;
    unit0_ = units;
}

/// teardown() - everything dynamic back to the platform.
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::teardown() noexcept {
    if (!initialized_) return;
    if (backend_type::creates_chunks) {
        // Depopulation and destruction allocate nothing; the bracket only tells a
        // checker that these callbacks belong to an operation.
        const context bg = traits::background_context(platform_);
        op_bracket op(platform_, bg);
        for (int slot = 0; slot < index_.nr_slots(); ++slot) {
            detail::list_link* head = &index_.list(slot);
            for (detail::list_link* l = head->next; l != head;) {
                auto& c = *static_cast<chunk_node*>(l);
                l = l->next;
                if (c.kind != chunk_kind::dynamic) continue;
                remove_chunk(c);
                destroy_chunk(c, bg);
            }
        }
        backend_.release(platform_, layout_, bg);
        if (own_meta_ != nullptr) backend_.free_meta(platform_, own_meta_, own_meta_bytes_, bg);
        own_meta_ = nullptr;
    }
    // Back to the state of a fresh object, so init() can start a new life: the
    // first chunk is still on a slot list (init() would link it twice and corrupt
    // the list), and the counters describe allocations that died with it.
    detail::released(unit0_, cpu_offsets_, nr_cpus_, unit_size_); // the caller's storage again
    index_.unlink(first_);
    reserved_.unlink();
    stats_ = alloc_stats{};
    settled_ops_ = no_ops;
    live_bytes_ = 0;
    nr_empty_pop_pages_ = 0;
    nr_populated_ = 0;
    atomic_alloc_failed_ = false;
    initialized_ = false;
}

} // namespace pcpu
