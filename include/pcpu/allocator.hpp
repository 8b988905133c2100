// SPDX-License-Identifier: MIT
// pcpu/allocator.hpp - the per-CPU allocator (mm/percpu.c).
//
// An allocation is an (offset, size) pair inside the unit: allocating 512 bytes at
// offset 6 KiB of a chunk reserves those bytes at offset 6 KiB in every CPU's unit of
// that chunk, so the bookkeeping (bitmaps, hints) exists once per chunk and the caller
// gets one handle for all CPUs.
//
// Geometry. The CPU count and the unit layout are fixed by init(). CPU c's unit starts
// cpu_offset(c) bytes after CPU 0's, identically in every chunk, so a handle is simply
// the address of CPU 0's copy and
//
//     ptr(h, cpu) = h + cpu_offsets[cpu]            (one table load plus one add)
//
// resolves any allocation from any chunk for any CPU.
//
// The first chunk lives in storage the caller declares (first_chunk.hpp); the chunks
// sit on the slot index (internal/slot_index.hpp), fullest first.
//
// Locking. Every piece of index state is protected by the platform's index lock
// (pcpu_lock); allocation holds it only across find-fit and claim, and free only
// across free-area, so free() is safe from interrupt context and never calls any
// other platform callback.
#pragma once

#include "config.hpp"
#include "chunk_layout.hpp"
#include "context.hpp"
#include "ctx_type.hpp"
#include "detail/format.hpp"
#include "detail/index_lock.hpp"
#include "detail/list.hpp"
#include "detail/poison.hpp"
#include "error.hpp"
#include "first_chunk.hpp"
#include "handle.hpp"
#include "internal/bitmap.hpp"
#include "internal/chunk.hpp"
#include "internal/chunk_index.hpp"
#include "internal/slot_index.hpp"
#include "platform.hpp"
#include "populate.hpp"
#include "scope.hpp"
#include "stats.hpp"

#include <cstring>
#include <new>
#include <utility>

namespace pcpu {

/// allocator<Platform, Populate, ChunkLayout> - see the file comment. ChunkLayout is the
/// bitmap allocator's granule and block (chunk_layout.hpp), the kernel's by default.
template <class Platform, class Populate = static_only, class ChunkLayout = kernel_layout>
class allocator {
public:
    using platform_type = Platform;
    using traits = platform_traits<Platform>;
    using context = typename traits::context;
    using ctx_traits = context_traits<context>;
    using chunk_layout_type = ChunkLayout;
    using chunk_type = typename ChunkLayout::template chunk<traits::page_shift>;
    static constexpr std::size_t page_size = page_geometry<traits::page_shift>::page_size;
    /// min_alloc_size - the granule: every size and alignment rounds up to it.
    static constexpr unsigned min_alloc_shift = chunk_type::granule_shift;
    static constexpr std::size_t min_alloc_size = chunk_type::granule_size;
    /// max_align - the largest alignment alloc() takes: the page, or the block when
    /// the layout's blocks are smaller.
    static constexpr std::size_t max_align = chunk_type::max_align;
    static constexpr std::size_t max_cpus = traits::max_cpus;
    static constexpr std::size_t meta_align = chunk_type::meta_align;
    using rules = first_chunk_rules<chunk_type>;
    using index_type = slot_index<chunk_type>;
    /// backend_type - the back end (pcpu/backend/): the chunk memory, its population
    /// and whatever state that needs. The core asks it; it never branches on a policy.
    using backend_type = typename Populate::template backend<Platform>;
    /// Units above 1 GiB would overflow the 32-bit bit offsets of the chunk.
    static constexpr std::size_t max_unit_size = rules::max_unit_size;
    /// See slot_index::fail_threshold.
    static constexpr int slot_fail_threshold = index_type::fail_threshold;
    /// empty_pop_pages_low/high - the atomic reserve (PCPU_EMPTY_POP_PAGES_LOW/HIGH):
    /// an allocation that leaves fewer than low populated empty pages asks for balance,
    /// which refills to high; reclaim never takes the reserve below high. After
    /// everything is freed and balance has run, dynamic chunks keep at most high
    /// populated pages where pages can be unmapped (lazy_mapped).
    static constexpr std::size_t empty_pop_pages_low = 2;
    static constexpr std::size_t empty_pop_pages_high = 4;

    static_assert(Populate::template check_platform<Platform>(), "pcpu: platform/policy mismatch");

    template <class... Args>
    explicit allocator(Args&&... platform_args) noexcept
        : platform_(std::forward<Args>(platform_args)...) {}
    allocator(const allocator&) = delete;
    allocator& operator=(const allocator&) = delete;

    /// max_meta_align() - the largest `align` pcpu ever passes to alloc_meta() (a chunk's
    /// struct and bitmaps; the page array asks for less): what a platform heap must honour.
    static constexpr std::size_t max_meta_align() noexcept {
        return alignof(chunk_node) > meta_align ? alignof(chunk_node) : meta_align;
    }

    /// first_chunk_meta_bytes(unit_size, static_size, reserved_size) - metadata the
    /// first (and reserved) chunk need: size of first_chunk_config::meta.
    /// A first chunk with a dyn_size needs less: pass it as dyn_size (0: to the end).
    /// 0 for a geometry init() rejects (sizes that would not fit a unit).
    static constexpr std::size_t first_chunk_meta_bytes(std::size_t unit_size, std::size_t static_size,
                                                        std::size_t reserved_size,
                                                        std::size_t dyn_size = 0) noexcept {
        return rules::meta_bytes(unit_size, static_size, reserved_size, dyn_size);
    }

    /// init(cfg) - set the geometry and build the first chunk (and the reserved chunk if
    /// cfg.reserved_size != 0) over cfg.units, copying cfg.static_image into every
    /// CPU's static area.
    /// Returns errc::ok, or errc::bad_config (nothing changed, nothing written, one
    /// warning naming the field) if: already initialised; nr_cpus is 0 or above
    /// max_cpus; unit_size is 0, not a page multiple or above max_unit_size; units is
    /// null, not page aligned, or its nr_cpus units would wrap the address space;
    /// unit_addrs is given with units, or names a null, misaligned, wrapping or
    /// overlapping unit;
    /// static_size or reserved_size is not below unit_size, or together they leave no
    /// dynamic space; dyn_size does not fit in the unit after them; static_image
    /// overlaps the units; meta is misaligned, smaller than first_chunk_meta_bytes(),
    /// null under static_only, or overlaps the units.
    /// out_of_memory if pcpu had to allocate the metadata and could not.
    [[nodiscard]] errc init(const first_chunk_config& cfg) noexcept {
        if (initialized_) {
            warn("pcpu: init: already initialised");
            return errc::bad_config;
        }
        if (const char* bad = rules::template check<traits::template has<detail::has_warn>,
                                                    !backend_type::creates_chunks, max_cpus>(cfg)) {
            if constexpr (traits::template has<detail::has_warn>) {
                detail::message<128> m;
                m << "pcpu: init: bad first_chunk_config." << bad;
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

        layout_.nr_cpus = nr_cpus_;
        layout_.unit_size = unit_size_;
        layout_.unit_pages = static_cast<std::uint32_t>(unit_size_ / page_size);
        layout_.page_size = page_size;
        layout_.offsets = cpu_offsets_;
        layout_.lo = lowest - units;
        layout_.span = highest - lowest + unit_size_;

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

    /// valid_unit_addrs(cfg) - cfg.unit_addrs names nr_cpus page-aligned units, none
    /// wrapping the address space, no two overlapping (the span of all of them then
    /// fits in a size_t, which dynamic chunks need).
    static bool valid_unit_addrs(const first_chunk_config& cfg) noexcept { return rules::valid_unit_addrs(cfg); }

    /// alloc(size, align, ctx) - allocate `size` bytes aligned to `align` on every CPU,
    /// zeroed on every CPU.
    /// Context: ctx narrowed by the platform's current scope decides everything: a
    /// context that may not block takes the atomic path (populated pages only, no
    /// sleeping lock, no chunk creation). Takes the index lock.
    /// Returns a handle, or: zero_size (size 0); size_too_large (size > unit size);
    /// bad_alignment (align 0, not a power of two, or above max_align: the page size in
    /// the kernel's layout); no_space;
    /// not_initialized. Failures are warned through the platform (at most 10 times)
    /// unless the context has nowarn; the allocator is unchanged by any failure.
    result<handle> alloc(std::size_t size, std::size_t align, context ctx) noexcept {
        return alloc_impl(size, align, false, ctx);
    }

    /// alloc_reserved(size, align, ctx) - as alloc(), but served only from the reserved
    /// area (the kernel's module per-CPU reserve). no_space if there is none or it is full.
    result<handle> alloc_reserved(std::size_t size, std::size_t align, context ctx) noexcept {
        return alloc_impl(size, align, true, ctx);
    }

    /// alloc(size, align, ctx_t<Bits>) / alloc_reserved(...) - the same with a compile-time
    /// context (ctx_type.hpp): one that may not block instantiates the atomic path
    /// alone, so no sleeping-lock, chunk-creation or population code is compiled for
    /// it and none of those platform members is instantiated. A compile-time context
    /// that may block is narrowed by the scope at run time, as a run-time one.
    template <ctx_bits Bits>
    result<handle> alloc(std::size_t size, std::size_t align, ctx_t<Bits> ctx) noexcept {
        static_assert(std::is_same<context, gfp>::value,
                      "pcpu: compile-time contexts (ctx_t) are gfp contexts; this platform has its own context type");
        return alloc_impl<ctx_t<Bits>::may_block, !ctx_t<Bits>::nowarn>(size, align, false, ctx);
    }
    template <ctx_bits Bits>
    result<handle> alloc_reserved(std::size_t size, std::size_t align, ctx_t<Bits> ctx) noexcept {
        static_assert(std::is_same<context, gfp>::value,
                      "pcpu: compile-time contexts (ctx_t) are gfp contexts; this platform has its own context type");
        return alloc_impl<ctx_t<Bits>::may_block, !ctx_t<Bits>::nowarn>(size, align, true, ctx);
    }

    /// free(h) - free an allocation made by alloc() or alloc_reserved().
    /// Context: any, interrupts included: takes only the index lock and calls no other
    /// platform callback but warn() and request_balance(); it never unmaps or destroys
    /// anything itself. A null handle is a no-op.
    /// Returns ok, or: invalid_pointer (h is not the start of anything pcpu returned),
    /// double_free (h lies in a chunk but its area is not allocated). Nothing changes on
    /// error.
    errc free(handle h) noexcept { return free_impl(h, 0, false); }

    /// free(h, size) - free(h), but only if h starts an allocation of `size` bytes
    /// (rounded up to min_alloc_size, as alloc() rounds): invalid_pointer, nothing freed,
    /// otherwise.
    /// A counter's destroy() frees this way, which catches a stale handle whose area a
    /// new owner took with another size. A stale handle equal to a new owner's handle of
    /// the same size is indistinguishable from that owner's and is freed: the limit of
    /// any check that has only the address (docs/reliability.md).
    errc free(handle h, std::size_t size) noexcept { return free_impl(h, size, true); }

    /// allocation_size(h) - the bytes of the allocation h starts (a multiple of
    /// min_alloc_size), or
    /// free()'s error for h (nothing changes). Takes the index lock.
    result<std::size_t> allocation_size(handle h) noexcept {
        if (!initialized_) return errc::not_initialized;
        index_guard<Platform> guard(platform_);
        chunk_node* c = find_chunk(h.addr());
        const std::uintptr_t off_bytes = c != nullptr ? h.addr() - c->base : 0;
        if (c == nullptr || off_bytes % min_alloc_size != 0) return errc::invalid_pointer;
        const auto off = static_cast<std::uint32_t>(off_bytes >> min_alloc_shift);
        const std::uint32_t size_bits = c->chunk.area_size(off);
        if (size_bits != 0) return std::size_t{size_bits} << min_alloc_shift;
        return bitmap::test(c->chunk.alloc_map(), off) ? errc::invalid_pointer : errc::double_free;
    }

private:
    errc free_impl(handle h, std::size_t size, bool sized) noexcept {
        if (!h) return errc::ok;
        if (!initialized_) return errc::not_initialized;
        errc err = errc::ok;
        bool need_balance = false;
        // free() never blocks: to a checker it is an atomic operation.
        op_bracket op(platform_, ctx_traits::atomic());
        {
            index_guard<Platform> guard(platform_);
            chunk_node* c = find_chunk(h.addr());
            const std::uintptr_t off_bytes = c != nullptr ? h.addr() - c->base : 0;
            if (c == nullptr || off_bytes % min_alloc_size != 0) {
                err = errc::invalid_pointer;
            } else {
                const auto off = static_cast<std::uint32_t>(off_bytes >> min_alloc_shift);
                const std::uint32_t size_bits = c->chunk.area_size(off);
                if (size_bits == 0) {
                    // An allocated bit without a boundary bit is the inside of an
                    // allocation or a hidden region; a clear bit was never allocated
                    // or was freed already.
                    err = bitmap::test(c->chunk.alloc_map(), off) ? errc::invalid_pointer : errc::double_free;
                } else if (sized && std::size_t{size_bits} << min_alloc_shift != detail::round_up(size, min_alloc_size)) {
                    err = errc::invalid_pointer;
                } else {
                    const std::uint32_t contig_before = c->chunk.contig_bits();
                    const std::uint32_t empty_before = c->chunk.nr_empty_pop_pages();
                    detail::freed_area(h.addr(), cpu_offsets_, nr_cpus_, std::size_t{size_bits} << min_alloc_shift);
                    const std::uint32_t bits = c->chunk.free_area(off, size_bits);
                    account_empty_pages(*c, empty_before);
                    index_.relocate_if_changed(*c, contig_before);
                    ++stats_.nr_dealloc;
                    --stats_.nr_cur_alloc;
                    live_bytes_ -= std::size_t{bits} << min_alloc_shift;
                    need_balance = after_free(*c);
                }
            }
            if (err != errc::ok) ++stats_.nr_bad_free;
        }
        if (need_balance) traits::request_balance(platform_);
        if (err != errc::ok) {
            detail::message<96> m;
            m << "pcpu: free of ";
            m.hex(h.addr()) << ": " << errc_name(err);
            warn(m.c_str());
        }
        return err;
    }

public:
    /// balance(ctx) - the deferred work (pcpu_balance_workfn): destroy surplus fully free
    /// chunks (one spare is kept), depopulate empty pages of chunks isolated by free(),
    /// and refill the atomic reserve to empty_pop_pages_high populated empty pages,
    /// creating a chunk if needed. Call it when the platform's request_balance() asked,
    /// from a work queue, idle hook or timer; never from inside a platform callback.
    /// Context: sleeps (takes the sleeping lock). Runs with ctx narrowed by the
    /// platform's background_context() (default noio): balance holds the sleeping lock
    /// that noio callers wait on, so it must never enter IO reclaim itself, which could
    /// need a lock such a caller holds (Linux has run its balance worker under a NOIO
    /// scope since 2025 for exactly this).
    /// Returns ok; would_block if the context may not block; out_of_memory if the
    /// reserve could not be refilled (nothing is left half done either way).
    errc balance(context ctx) noexcept {
        if (!initialized_) return errc::not_initialized;
        // Without chunk creation there is nothing to destroy, reclaim or refill.
        if (!backend_type::creates_chunks) return errc::ok;
        const context eff = ctx_traits::narrow(ctx_traits::narrow(ctx, traits::current_scope(platform_)),
                                               traits::background_context(platform_));
        if (!ctx_traits::may_block(eff)) return errc::would_block;
        op_bracket op(platform_, eff);
        // The whole body runs under the context's scope, so even an allocation the
        // platform makes without a context argument sees it.
        optional_scope scope(platform_, eff);
        // Everything under the sleeping lock, freeing included, is told this context.
        const context locked = ctx_traits::for_backing(eff);
        slow_guard slow(platform_, true, locked);
        std::uint64_t ops_before;
        {
            index_guard<Platform> guard(platform_);
            ops_before = ops_seen();
        }
        balance_free(false, locked);
        if (backend_type::depopulates) {
            isolate_surplus();
            reclaim_populated(locked);
            // Reclaim puts the chunks it emptied on the free list: the spare rule
            // again before the reserve is refilled, so that the refill goes to the
            // spare rather than into a chunk that is then kept beside it.
            balance_free(false, locked);
        }
        const errc err = balance_populated(locked);
        balance_free(true, locked);
        index_guard<Platform> guard(platform_);
        // A balance that completed with no operation in between leaves the lists
        // settled; verify() checks what that promises.
        settled_ops_ = err == errc::ok && ops_seen() == ops_before ? ops_before : no_ops;
        return err;
    }
    errc balance() noexcept { return balance(traits::background_context(platform_)); }

    /// shutdown() - return every dynamic chunk, its pages, its address space and all
    /// metadata pcpu allocated to the platform, whatever state the allocator is in, and
    /// leave it uninitialised. Every handle dies with it. The destructor calls it.
    /// Context: sleeps for policies that create chunks (unmapping); allocates nothing.
    void shutdown() noexcept { teardown(); }
    ~allocator() { teardown(); }

    /// ptr(h, cpu) - CPU `cpu`'s copy of the allocation h (one load, one add).
    /// Precondition: cpu < nr_cpus() (PCPU_CHECKS: else PCPU_TRAP).
    void* ptr(handle h, unsigned cpu) const noexcept {
        PCPU_CHECK(cpu < nr_cpus_, "pcpu: ptr(): cpu index not below nr_cpus");
        return reinterpret_cast<void*>(h.addr() + cpu_offsets_[cpu]);
    }
    /// cpu_offsets() - the table ptr() adds: CPU c's copy is at h + cpu_offsets()[c].
    const std::uintptr_t* cpu_offsets() const noexcept { return cpu_offsets_; }
    /// static_handle(offset) - handle of byte `offset` of the static area (static
    /// per-CPU variables resolve through ptr() like dynamic ones).
    handle static_handle(std::size_t offset) const noexcept {
        PCPU_CHECK(offset < static_size_, "pcpu: static_handle() past the static area");
        return handle(unit0_ + offset);
    }

    unsigned nr_cpus() const noexcept { return nr_cpus_; }
    std::size_t unit_size() const noexcept { return unit_size_; }
    bool initialized() const noexcept { return initialized_; }
    /// generation() - changes with every successful init(): an object that keeps an
    /// allocation (a counter) compares it to tell its allocator's life from a later one.
    std::uint32_t generation() const noexcept { return generation_; }
    Platform& platform() noexcept { return platform_; }
    const Platform& platform() const noexcept { return platform_; }

    /// stats() - a consistent snapshot, taken under the index lock.
    alloc_stats stats() const noexcept {
        index_guard<Platform> guard(platform_);
        return detail::allocator_inspector::stats(*this);
    }

    /// for_each_chunk(f) - call f(const chunk_stats&) for every chunk: the reserved
    /// chunk first, then every slot list in order (as the kernel's debugfs file).
    /// f runs under the index lock: it must not call back into the allocator.
    template <class F>
    void for_each_chunk(F&& f) const noexcept {
        if (!initialized_) return;
        index_guard<Platform> guard(platform_);
        if (reserved_size_ != 0) f(chunk_info(reserved_));
        index_.for_each([&f](const chunk_node& c) { f(chunk_info(c)); });
    }

    /// for_each_chunk_map(f) - as for_each_chunk(), but f(const chunk_stats&, const
    /// chunk_type&) also receives the chunk's bitmap allocator (alloc map, populated
    /// map, block hints), read-only, for debug views such as debug/occupancy_svg.hpp.
    /// f runs under the index lock: it must not call back into the allocator.
    template <class F>
    void for_each_chunk_map(F&& f) const noexcept {
        if (!initialized_) return;
        index_guard<Platform> guard(platform_);
        if (reserved_size_ != 0) f(chunk_info(reserved_), reserved_.chunk);
        index_.for_each([&f](const chunk_node& c) { f(chunk_info(c), c.chunk); });
    }

    /// verify() - check every invariant the allocator maintains: each chunk's own
    /// (bitmaps against hints and counts, chunk_type::verify()), slot placement, list
    /// integrity, the global counters and the statistics. O(total bitmap size).
    /// Context: takes the sleeping lock when the policy creates chunks, so that it never
    /// sees an allocation between its claim and its population (the only moment the
    /// counters legitimately disagree), then the index lock.
    verify_report verify() const noexcept {
        if (!initialized_) return verify_report{};
        // Taking the sleeping lock is a blocking operation of its own; it allocates
        // nothing, so the background context bounds it.
        const context bg = traits::background_context(platform_);
        op_bracket op(platform_, bg);
        slow_guard slow(platform_, true, bg); // none without chunk creation
        index_guard<Platform> guard(platform_);
        return detail::allocator_inspector::verify(*this);
    }

private:
    friend struct detail::allocator_inspector;
    using chunk_node = pcpu::chunk_node<chunk_type>;

    void build_first_chunk(chunk_node& c, chunk_kind kind, std::uintptr_t units, std::size_t begin,
                           std::size_t end, unsigned char* meta) noexcept {
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

    void insert_chunk(chunk_node& c) noexcept {
        index_.link(c, index_.chunk_slot(c), true);
        if (++stats_.nr_chunks > stats_.nr_max_chunks) stats_.nr_max_chunks = stats_.nr_chunks;
    }

    /// adopt_chunk(c) - put a chunk fresh from create_chunk() into service. Index lock
    /// held. Without an MMU every page exists from creation, so its population is
    /// recorded here, under the lock, together with the global counts.
    void adopt_chunk(chunk_node& c) noexcept {
        insert_chunk(c);
        addr_index_.insert(c); // chunk index hook: every dynamic chunk, adoption to removal
        if (backend_type::populated_on_create) record_population(c, 0, layout_.unit_pages, true);
    }

    /// account_empty_pages(c, before) - mirror a change of c's empty populated pages in
    /// the global count, which covers non-reserved, non-isolated chunks only: it is the
    /// atomic reserve, and neither of those serves normal atomic allocations.
    void account_empty_pages(const chunk_node& c, std::uint32_t before) noexcept {
        if (c.kind == chunk_kind::reserved || c.isolated) return;
        nr_empty_pop_pages_ = nr_empty_pop_pages_ + c.chunk.nr_empty_pop_pages() - before;
    }

    /// claim(c, bits, align, pop_only) - find-fit and claim in one chunk; -1 if it fails.
    std::int32_t claim(chunk_node& c, std::uint32_t bits, std::uint32_t align, bool pop_only) noexcept {
        const std::int32_t start = c.chunk.find_fit(bits, align, pop_only);
        if (start < 0) return -1;
        return claim_from(c, bits, align, start);
    }
    /// claim_from(c, bits, align, start) - claim at find_fit()'s result `start` (>= 0).
    std::int32_t claim_from(chunk_node& c, std::uint32_t bits, std::uint32_t align, std::int32_t start) noexcept {
        const std::uint32_t contig_before = c.chunk.contig_bits();
        const std::uint32_t empty_before = c.chunk.nr_empty_pop_pages();
        const std::int32_t off = c.chunk.alloc_area(bits, align, static_cast<std::uint32_t>(start));
        if (off < 0) return -1;
        account_empty_pages(c, empty_before);
        index_.relocate_if_changed(c, contig_before);
        return off;
    }

    /// op_bracket - tells the platform (a context checker) which effective context the
    /// callbacks of this public operation must stay within.
    struct op_bracket {
        op_bracket(Platform& p, context c) noexcept : p_(p) { traits::op_begin(p_, c); }
        ~op_bracket() { traits::op_end(p_); }
        op_bracket(const op_bracket&) = delete;
        op_bracket& operator=(const op_bracket&) = delete;
        Platform& p_;
    };
    /// slow_guard - the sleeping lock, taken only when `take` (atomic allocations
    /// never take it; back ends that never create chunks have none).
    struct slow_guard {
        slow_guard(Platform& p, bool take, context ctx) noexcept : p_(p), held_(take) {
            if (held_) backend_type::slow_lock(p_, ctx);
        }
        ~slow_guard() {
            if (held_) backend_type::slow_unlock(p_);
        }
        slow_guard(const slow_guard&) = delete;
        slow_guard& operator=(const slow_guard&) = delete;
        Platform& p_;
        bool held_;
    };
    /// no_slow_guard - slow_guard for an allocation that can never block.
    struct no_slow_guard {
        no_slow_guard(Platform&, bool, context) noexcept {}
    };
    /// optional_scope - the context's implicit scope, where the platform has scopes.
    struct optional_scope {
        static constexpr bool has = traits::template has<detail::has_scope_apply>;
        struct none {
            none(Platform&, context) noexcept {}
        };
        std::conditional_t<has, scope_guard<Platform>, none> guard_;
        optional_scope(Platform& p, context c) noexcept : guard_(p, c) {}
    };

    /// locked_context(eff) - the context of every callback made under the sleeping
    /// lock for a caller whose effective context is eff: eff without nofail (never
    /// forwarded to backing allocators), capped by the platform's sleeping_lock_cap()
    /// (default: its background context). The cap is the kernel's 2026 rule: whoever
    /// holds the sleeping lock can be waited on by the narrowest caller (a noio one
    /// holding a lock IO reclaim needs), so nothing done under it may enter IO or FS
    /// reclaim. A platform that wants the caller's own context passed through unchanged
    /// returns full from sleeping_lock_cap(); balance keeps background_context().
    context locked_context(context eff) noexcept {
        return ctx_traits::narrow(ctx_traits::for_backing(eff), traits::sleeping_lock_cap(platform_));
    }

    /// MayBlock false: the caller's context is known at compile time to forbid
    /// blocking, and only the atomic path is instantiated (here and in alloc_area).
    /// MayWarn false: it is known to have nowarn, and no failure report is compiled.
    template <bool MayBlock = true, bool MayWarn = true>
    result<handle> alloc_impl(std::size_t size, std::size_t align, bool reserved, context ctx) noexcept {
        if (!initialized_) return errc::not_initialized;
        // Effective context: the caller's, narrowed by the task's scope (a NOIO scope
        // makes a full request NOIO), decided once here and passed down.
        const context eff = ctx_traits::narrow(ctx, traits::current_scope(platform_));
        const bool is_atomic = !MayBlock || !ctx_traits::may_block(eff);
        errc err = errc::ok;
        if (size == 0) err = errc::zero_size;
        else if (size > unit_size_) err = errc::size_too_large;
        else if (align == 0 || (align & (align - 1)) != 0 || align > max_align) err = errc::bad_alignment;

        handle h;
        if (err == errc::ok) {
            op_bracket op(platform_, eff);
            err = alloc_area<MayBlock>(detail::round_up(size, min_alloc_size),
                                       align < min_alloc_size ? min_alloc_size : align,
                             reserved, is_atomic, eff, h);
        } else {
            index_guard<Platform> guard(platform_);
            ++stats_.nr_failed;
        }
        if (err == errc::ok) {
            // Outside every lock: the area is ours, and zeroing a large area on many
            // CPUs must not hold off interrupts.
            unsigned bad_cpu = 0;
            if (!detail::reused_area(h.addr(), cpu_offsets_, nr_cpus_, detail::round_up(size, min_alloc_size), bad_cpu))
                freed_area_written(h, bad_cpu);
            for (unsigned cpu = 0; cpu < nr_cpus_; ++cpu) std::memset(ptr(h, cpu), 0, detail::round_up(size, min_alloc_size));
            return h;
        }
        if constexpr (MayWarn)
            if (!ctx_traits::nowarn(eff)) warn_alloc_failure(size, align, is_atomic, err);
        return err;
    }

    /// alloc_area(bytes, align, reserved, is_atomic, eff, out) - pcpu_alloc without the
    /// argument checks and the zeroing.
    ///
    /// A sleeping allocation holds the sleeping lock throughout: only one task creates
    /// or populates at a time, and no chunk is destroyed under it, which is what allows
    /// dropping the index lock while a chunk is created or pages are populated. An
    /// atomic allocation never takes it: it claims only populated space, or fails and
    /// asks balance to refill the reserve.
    template <bool MayBlock>
    errc alloc_area(std::size_t bytes, std::size_t align, bool reserved, bool is_atomic, context eff,
                    handle& out) noexcept {
        const auto bits = static_cast<std::uint32_t>(bytes >> min_alloc_shift);
        const auto align_bits = static_cast<std::uint32_t>(align >> min_alloc_shift);
        const bool sleeping = backend_type::creates_chunks && MayBlock && !is_atomic;
        if (sleeping && !reserved) {
            // Fast path: a fit on populated pages needs neither population nor a new
            // chunk, so the sleeping lock buys nothing; claim it as an atomic allocation
            // would, under the index lock alone (the atomic path shows this is safe
            // against concurrent balance). Chunks are not demoted here: a chunk whose
            // fits are all unpopulated is still the right place for the slow path.
            // Measured: the sleeping lock was a fifth of a trace replay's time.
            chunk_node* fc = nullptr;
            detail::index_lock<Platform> lock(platform_);
            const std::int32_t foff = search(bytes, bits, align_bits, true, fc, true);
            if (foff >= 0) {
                account_alloc(bytes);
                const bool low = nr_empty_pop_pages_ < empty_pop_pages_low;
                lock.unlock();
                if (low) traits::request_balance(platform_);
                out = handle(fc->base + (static_cast<std::uintptr_t>(foff) << min_alloc_shift));
                return errc::ok;
            }
        }
        const context locked = MayBlock ? locked_context(eff) : eff;
        std::conditional_t<MayBlock, slow_guard, no_slow_guard> slow(platform_, sleeping, locked);

        chunk_node* c = nullptr;
        std::int32_t off = -1;
        errc err = errc::ok;
        detail::index_lock<Platform> lock(platform_);
        for (;;) {
            if (reserved) {
                // The reserved chunk never grows and is always populated.
                if (reserved_size_ != 0) {
                    c = &reserved_;
                    off = claim(reserved_, bits, align_bits, is_atomic);
                }
                break;
            }
            off = search(bytes, bits, align_bits, is_atomic, c);
            if (off >= 0 || !sleeping) break;
            // Nothing fits. A fully free chunk fits any legal request, so one is created
            // only while none exists; the sleeping lock makes this task the only creator.
            if (!index_.list(index_.free_slot()).empty()) break;
            if constexpr (MayBlock) {
                lock.unlock();
                chunk_node* fresh;
                {
                    // The whole population step runs under the caller's scope, not only
                    // map(): whatever the platform allocates without a context argument
                    // (bookkeeping, page tables) is narrowed as the callbacks are.
                    optional_scope scope(platform_, locked);
                    fresh = create_chunk(locked);
                }
                lock.relock();
                if (fresh == nullptr) {
                    err = errc::out_of_memory;
                    break;
                }
                adopt_chunk(*fresh);
            }
        }
        if (off < 0) {
            if (err == errc::ok)
                err = is_atomic && backend_type::creates_chunks && !reserved ? errc::would_block : errc::no_space;
            // An atomic failure is what the reserve exists for: refill it with priority.
            const bool refill = err == errc::would_block;
            if (refill) atomic_alloc_failed_ = true;
            ++stats_.nr_failed;
            lock.unlock();
            if (refill) traits::request_balance(platform_);
            return err;
        }

        const std::uint32_t page_begin = static_cast<std::uint32_t>(off) / chunk_type::page_bits;
        const std::uint32_t page_end = (static_cast<std::uint32_t>(off) + bits - 1) / chunk_type::page_bits + 1;
        bool populated = true;
        // Only a sleeping allocation can need population: an atomic fit is populated.
        if constexpr (MayBlock) populated = backend_type::is_populated(c->chunk, page_begin, page_end);
        if (!populated) {
            lock.unlock();
            if constexpr (MayBlock) {
                optional_scope scope(platform_, locked); // as around create_chunk() above
                err = populate_range(*c, page_begin, page_end, locked);
            }
            lock.relock();
            if (err != errc::ok) {
                release_area(*c, static_cast<std::uint32_t>(off));
                ++stats_.nr_failed;
                return err;
            }
        }
        account_alloc(bytes);
        const bool low = nr_empty_pop_pages_ < empty_pop_pages_low && backend_type::creates_chunks;
        lock.unlock();
        if (low) traits::request_balance(platform_);
        out = handle(c->base + (static_cast<std::uintptr_t>(off) << min_alloc_shift));
        return errc::ok;
    }

    void account_alloc(std::size_t bytes) noexcept {
        ++stats_.nr_alloc;
        if (++stats_.nr_cur_alloc > stats_.nr_max_alloc) stats_.nr_max_alloc = stats_.nr_cur_alloc;
        if (bytes < stats_.min_alloc_size) stats_.min_alloc_size = bytes;
        if (bytes > stats_.max_alloc_size) stats_.max_alloc_size = bytes;
        live_bytes_ += bytes;
    }

    /// release_area(c, off) - give back an area claimed by an allocation that then
    /// failed (population), leaving the chunk as if it had never been claimed.
    void release_area(chunk_node& c, std::uint32_t off) noexcept {
        const int old_slot = index_.chunk_slot(c);
        const std::uint32_t empty_before = c.chunk.nr_empty_pop_pages();
        c.chunk.free_area(off);
        account_empty_pages(c, empty_before);
        index_.relocate(c, old_slot);
    }

    /// search(bytes, bits, align, pop_only, out, fast) - the normal allocation search:
    /// slots from the request's size class up to the free slot, fullest chunks first
    /// (sidelined chunks come after every chunk in use, and fully free chunks last),
    /// then slot 0. Returns the bit offset with the chunk in out, or -1.
    /// fast: the sleeping allocation's lock-free try, which claims populated space
    /// only: it demotes nothing and skips the sidelined list. A sidelined chunk's
    /// populated pages hold no empty page (the reclaim rule at after_free()), often
    /// no free run at all, and a populated fit there is found by the sleeping search
    /// that follows; walking them here cost every allocation a bitmap scan per
    /// sidelined chunk, for as long as they stayed sidelined.
    std::int32_t search(std::size_t bytes, std::uint32_t bits, std::uint32_t align, bool pop_only,
                        chunk_node*& out, bool fast = false) noexcept {
        const bool demote = !fast;
        // Non-empty slots from the request's size class up to the free slot, in order.
        // The mask is re-read after each slot: demotion may have emptied one (it only
        // ever moves chunks to slot 0, below any slot still to visit).
        const std::uint32_t free_bit = index_type::bit(index_.free_slot());
        const std::uint32_t upto = (free_bit | (free_bit - 1)) & ~(fast ? index_type::bit(index_.sidelined_slot()) : 0u);
        for (int slot = index_.size_to_slot(bytes);; ++slot) {
            const std::uint32_t pending = index_.mask() & upto & ~(index_type::bit(slot) - 1);
            if (pending == 0) break;
            slot = __builtin_ctz(pending);
            detail::list_link* head = &index_.list(slot);
            for (detail::list_link* l = head->next; l != head;) {
                auto& c = *static_cast<chunk_node*>(l);
                l = l->next; // c may move lists below
                const std::int32_t start = c.chunk.find_fit(bits, align, pop_only);
                if (start < 0) {
                    // Usually an alignment failure in a nearly full chunk: park it in
                    // slot 0, which is searched last, until its contig hint changes.
                    if (demote && slot < slot_fail_threshold) {
                        index_.move(c, 0, true);
                    }
                    continue;
                }
                // find_fit() once: claim from its result rather than searching again.
                const std::int32_t off = claim_from(c, bits, align, start);
                if (off >= 0) {
                    // Serving from a sidelined chunk puts it back into use.
                    if (c.isolated) reintegrate(c);
                    out = &c;
                    return off;
                }
            }
        }
        // Deviation from the kernel, which never looks at slot 0 and would rather
        // create a chunk: a static-only allocator cannot create one, and a request that
        // fits an existing chunk must not fail. Slot 0 holds only nearly full and
        // demoted chunks, each rejected in O(1) by its contig hint when it cannot fit.
        detail::list_link* head = &index_.list(0);
        for (detail::list_link* l = head->next; l != head; l = l->next) {
            auto& c = *static_cast<chunk_node*>(l);
            const std::int32_t off = claim(c, bits, align, pop_only);
            if (off >= 0) {
                out = &c;
                return off;
            }
        }
        return -1;
    }

    // ---- dynamic chunks -------------------------------------------------------------

    static constexpr std::size_t node_bytes() noexcept { return detail::round_up(sizeof(chunk_node), meta_align); }

    /// create_chunk(ctx) - a new, empty dynamic chunk, not yet on any list; nullptr if
    /// the metadata or the memory could not be had (and then nothing is left behind).
    /// Context: sleeping lock held, index lock not held; ctx reaches the metadata
    /// allocation and the address-space (or units) allocation alike.
    chunk_node* create_chunk(context ctx) noexcept {
        const std::size_t bytes = node_bytes() + chunk_type::meta_bytes(layout_.unit_pages);
        void* mem = backend_.alloc_meta(platform_, bytes, max_meta_align(), ctx);
        if (mem == nullptr) return nullptr;
        auto* c = new (mem) chunk_node;
        c->chunk.init(static_cast<unsigned char*>(mem) + node_bytes(), layout_.unit_pages);
        const std::uintptr_t base = backend_.create(platform_, layout_, ctx);
        if (base == 0) {
            c->~chunk_node();
            backend_.free_meta(platform_, mem, bytes, ctx);
            return nullptr;
        }
        c->base = c->usable_begin = base;
        c->usable_end = base + unit_size_;
        c->kind = chunk_kind::dynamic;
        return c;
    }

    /// destroy_chunk(c) - the back end depopulates what is populated and gives the
    /// memory back; then the metadata goes. c is on no list and out of every global
    /// count. Context: sleeping lock held, index lock not held. Allocates nothing.
    void destroy_chunk(chunk_node& c, context ctx) noexcept {
        detail::released(c.base, cpu_offsets_, nr_cpus_, unit_size_);
        backend_.destroy(platform_, layout_, c.chunk, c.base, ctx);
        c.~chunk_node();
        backend_.free_meta(platform_, &c, node_bytes() + chunk_type::meta_bytes(layout_.unit_pages), ctx);
    }

    /// populate_range(c, b, e, ctx) - populate every unpopulated run of pages [b, e) of
    /// c and record it. Context: sleeping lock held, index lock not held.
    errc populate_range(chunk_node& c, std::uint32_t b, std::uint32_t e, context ctx) noexcept {
        std::size_t rs = 0, re = 0;
        for (std::size_t from = b; bitmap::next_clear_region(c.chunk.populated_map(), e, from, rs, re); from = re) {
            PCPU_ASSERT(!c.immutable);
            if (!backend_.populate(platform_, layout_, c.base, static_cast<std::uint32_t>(rs),
                                   static_cast<std::uint32_t>(re), ctx))
                return errc::out_of_memory;
            index_guard<Platform> guard(platform_);
            record_population(c, static_cast<std::uint32_t>(rs), static_cast<std::uint32_t>(re), true);
        }
        return errc::ok;
    }

    /// record_population(c, b, e, populated) - pcpu_chunk_(de)populated: the chunk's
    /// bitmap and counts, and the global ones. Index lock held.
    void record_population(chunk_node& c, std::uint32_t b, std::uint32_t e, bool populated) noexcept {
        const std::uint32_t empty_before = c.chunk.nr_empty_pop_pages();
        if (populated) {
            detail::born_free(c.base + std::uintptr_t{b} * page_size, cpu_offsets_, nr_cpus_,
                              std::size_t{e - b} * page_size);
            c.chunk.set_populated(b, e);
            nr_populated_ += e - b;
        } else {
            c.chunk.set_depopulated(b, e);
            nr_populated_ -= e - b;
        }
        account_empty_pages(c, empty_before);
    }

    /// after_free(c) - pcpu_free_percpu's background decision. Index lock held.
    /// Returns true if balance should run.
    ///
    /// The reclaim rule. Memory comes back because every dynamic chunk is always where
    /// the search or balance will find it:
    ///   - in use (slots 0..base) or fully free (free slot): searched, and its empty
    ///     populated pages are counted in the reserve, where the surplus pass sees them;
    ///   - queued (to_depopulate): balance depopulates it next;
    ///   - sidelined: searched by sleeping allocations only after every chunk in use,
    ///     and it holds no empty populated page. So a free that leaves an empty
    ///     populated page in a sidelined chunk (or leaves it entirely free) sends it
    ///     back to to_depopulate, as the kernel's free does; without that move its
    ///     pages were out of every count and no balance ever returned them.
    /// Balance then depopulates every queued chunk down to what the reserve needs and
    /// destroys every fully free chunk beyond one spare. verify() checks the rule.
    bool after_free(chunk_node& c) noexcept {
        if (!backend_type::creates_chunks || c.kind != chunk_kind::dynamic) return false;
        const bool fully_free = c.chunk.free_bits() == c.chunk.map_bits();
        if (c.isolated) {
            if (c.chunk.nr_empty_pop_pages() == 0 && !fully_free) return false;
            if (c.slot != index_.to_depopulate_slot()) {
                index_.move(c, index_.to_depopulate_slot(), true);
            }
            return true;
        }
        if (fully_free) {
            // One fully free chunk is kept as a spare; a second one is surplus.
            const detail::list_link& head = index_.list(index_.free_slot());
            return head.next != &c || c.next != &head;
        }
        // Isolated chunks follow the reclaim rule above; one in use, the back end's.
        if (!backend_type::should_reclaim(c, nr_empty_pop_pages_, empty_pop_pages_high)) return false;
        isolate(c);
        return true;
    }

    /// isolate(c) / reintegrate(c) - take c out of service for reclaim (to_depopulate,
    /// its empty pages out of the global count) and put it back.
    void isolate(chunk_node& c) noexcept {
        nr_empty_pop_pages_ -= c.chunk.nr_empty_pop_pages();
        c.isolated = true;
        index_.move(c, index_.to_depopulate_slot(), true);
    }
    void reintegrate(chunk_node& c) noexcept {
        c.isolated = false;
        nr_empty_pop_pages_ += c.chunk.nr_empty_pop_pages();
        index_.move(c, index_.chunk_slot(c), true);
    }

    /// balance_free(empty_only) - destroy every fully free chunk but one spare (with
    /// empty_only, only those with no populated page left). The spare is the first
    /// free chunk that still has populated pages, else the first one. The kernel
    /// keeps the first one whatever it holds, so after reclaim it can keep an
    /// unpopulated spare beside a populated free chunk: two spares.
    void balance_free(bool empty_only, context ctx) noexcept {
        detail::list_link doomed;
        {
            index_guard<Platform> guard(platform_);
            detail::list_link* head = &index_.list(index_.free_slot());
            const detail::list_link* spare = head->next;
            for (const detail::list_link* l = head->next; l != head; l = l->next) {
                if (static_cast<const chunk_node*>(l)->chunk.nr_populated() != 0) {
                    spare = l;
                    break;
                }
            }
            for (detail::list_link* l = head->next; l != head;) {
                auto& c = *static_cast<chunk_node*>(l);
                l = l->next;
                if (&c == spare || c.immutable || (empty_only && c.chunk.nr_populated() != 0)) continue;
                remove_chunk(c);
                doomed.push_back(c);
            }
        }
        while (!doomed.empty()) {
            auto& c = *static_cast<chunk_node*>(doomed.next);
            c.unlink();
            destroy_chunk(c, ctx);
        }
    }

    /// remove_chunk(c) - off its list and out of every global count. Index lock held.
    void remove_chunk(chunk_node& c) noexcept {
        if (last_found_ == &c) last_found_ = nullptr;
        if (c.kind == chunk_kind::dynamic) addr_index_.remove(c); // chunk index hook
        if (!c.isolated) nr_empty_pop_pages_ -= c.chunk.nr_empty_pop_pages();
        nr_populated_ -= c.chunk.nr_populated();
        index_.unlink(c);
        --stats_.nr_chunks;
    }

    /// isolate_surplus() - beyond the kernel, which reclaims only chunks that free()
    /// isolated: when the reserve holds more than the high mark, isolate every chunk
    /// whose empty populated pages make up at least a quarter of it (the kernel's
    /// threshold against churn), the spare free chunk included, so that reclaim brings
    /// the reserve down to the high mark. The first chunk is never touched.
    void isolate_surplus() noexcept {
        index_guard<Platform> guard(platform_);
        for (int slot = 0; slot < index_.nr_slots() && nr_empty_pop_pages_ > empty_pop_pages_high; ++slot) {
            if (slot == index_.sidelined_slot() || slot == index_.to_depopulate_slot()) continue;
            detail::list_link* head = &index_.list(slot);
            for (detail::list_link* l = head->next; l != head;) {
                auto& c = *static_cast<chunk_node*>(l);
                l = l->next;
                const std::uint32_t empty = c.chunk.nr_empty_pop_pages();
                // A fully free chunk (the spare) gives back every page the reserve
                // does not need, however few: nothing else will.
                if (!c.immutable && empty != 0 &&
                    (empty >= c.chunk.nr_pages() / 4 || c.chunk.free_bits() == c.chunk.map_bits()))
                    isolate(c);
            }
        }
    }

    /// reclaim_populated() - pcpu_reclaim_populated: for each isolated chunk, unmap its
    /// empty populated pages from the top down (so what stays populated gathers at the
    /// chunk's start), one TLB flush per chunk. It stops where the reserve, counting
    /// the pages this chunk keeps, would drop below the high mark (the kernel stops as
    /// soon as the *other* chunks are below it, and then keeps every page of this one,
    /// which can leave far more than the high mark populated). A chunk is then
    /// reintegrated if the reserve needs it or it is entirely free, else sidelined:
    /// searched only after every chunk in use.
    void reclaim_populated(context ctx) noexcept {
        detail::index_lock<Platform> lock(platform_);
        while (!index_.list(index_.to_depopulate_slot()).empty()) {
            auto& c = *static_cast<chunk_node*>(index_.list(index_.to_depopulate_slot()).next);
            bool keep = false;
            std::uint32_t lo = layout_.unit_pages, hi = 0; // pages unmapped, for the flush
            std::uint32_t run_end = 0, run_begin = 0;        // pending run [run_begin, run_end)
            auto flush_run = [&] {
                lock.unlock();
                detail::released(c.base + std::uintptr_t{run_begin} * page_size, cpu_offsets_, nr_cpus_,
                                 std::size_t{run_end - run_begin} * page_size);
                backend_.depopulate(platform_, layout_, c.base, run_begin, run_end, ctx);
                lock.relock();
                record_population(c, run_begin, run_end, false);
                lo = run_begin < lo ? run_begin : lo;
                hi = run_end > hi ? run_end : hi;
                run_end = 0;
            };
            for (std::uint32_t i = layout_.unit_pages; i-- > 0;) {
                const std::uint32_t pending = run_end != 0 ? run_end - run_begin : 0;
                const std::uint32_t empty = c.chunk.nr_empty_pop_pages();
                if (empty == pending) break; // nothing else here to reclaim
                if (c.chunk.is_populated(i) && c.chunk.page_is_free(i)) {
                    // The reserve counts this chunk's remaining empty pages too: stop
                    // where unmapping one more would leave fewer than the high mark.
                    if (nr_empty_pop_pages_ + empty - pending - 1 < empty_pop_pages_high) {
                        keep = true;
                        break;
                    }
                    if (run_end == 0) run_end = i + 1;
                    run_begin = i;
                    continue;
                }
                if (run_end != 0) flush_run();
            }
            if (run_end != 0) flush_run();
            if (lo < hi) {
                lock.unlock();
                backend_.flush(platform_, layout_, c.base, lo, hi);
                lock.relock();
            }
            if (keep || c.chunk.free_bits() == c.chunk.map_bits()) {
                reintegrate(c);
            } else if (c.chunk.nr_empty_pop_pages() != 0) {
                // A free emptied a page behind the walk while the lock was dropped:
                // once more, so that no sidelined chunk holds an empty page.
                continue;
            } else {
                index_.move(c, index_.sidelined_slot(), false);
            }
        }
    }

    /// balance_populated(ctx) - pcpu_balance_populated: bring the populated empty pages
    /// up to the high mark (all of it if an atomic allocation failed since the last
    /// run), populating chunks that have at least a page of free space first, and
    /// creating a chunk only if that is not enough.
    errc balance_populated(context ctx) noexcept {
        detail::index_lock<Platform> lock(platform_);
        std::size_t target = atomic_alloc_failed_ ? empty_pop_pages_high
                             : nr_empty_pop_pages_ < empty_pop_pages_high ? empty_pop_pages_high - nr_empty_pop_pages_
                                                                          : 0;
        atomic_alloc_failed_ = false;
        while (target != 0) {
            chunk_node* c = nullptr;
            for (int slot = index_.size_to_slot(page_size); slot <= index_.free_slot() && c == nullptr; ++slot)
                for (detail::list_link* l = index_.list(slot).next; l != &index_.list(slot); l = l->next) {
                    auto& cand = *static_cast<chunk_node*>(l);
                    if (!cand.isolated && !backend_type::fully_populated(cand.chunk)) {
                        c = &cand;
                        break;
                    }
                }
            // A fully free chunk with every page populated serves any atomic request:
            // a second spare would be surplus the next balance destroys. (A chunk that
            // comes populated is such a chunk as soon as it is adopted.)
            if (c == nullptr && !index_.list(index_.free_slot()).empty()) break;
            if (c == nullptr) {
                lock.unlock();
                chunk_node* fresh = create_chunk(ctx);
                lock.relock();
                if (fresh == nullptr) return errc::out_of_memory;
                adopt_chunk(*fresh);
                continue;
            }
            std::size_t rs = 0, re = 0;
            for (std::size_t from = 0;
                 target != 0 && bitmap::next_clear_region(c->chunk.populated_map(), c->chunk.nr_pages(), from, rs, re);
                 from = re) {
                if (re - rs > target) re = rs + target;
                lock.unlock();
                const bool ok = backend_.populate(platform_, layout_, c->base, static_cast<std::uint32_t>(rs),
                                                  static_cast<std::uint32_t>(re), ctx);
                lock.relock();
                if (!ok) return errc::out_of_memory;
                record_population(*c, static_cast<std::uint32_t>(rs), static_cast<std::uint32_t>(re), true);
                target -= re - rs;
            }
        }
        return errc::ok;
    }

    /// teardown() - everything dynamic back to the platform.
    void teardown() noexcept {
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

    /// find_chunk(addr) - the chunk whose usable CPU 0 range holds addr, or nullptr.
    chunk_node* find_chunk(std::uintptr_t addr) noexcept {
        auto holds = [addr](const chunk_node& c) { return addr >= c.usable_begin && addr < c.usable_end; };
        if (holds(first_)) return &first_;
        if (reserved_size_ != 0 && holds(reserved_)) return &reserved_;
        // Frees come in runs from the same chunk: try the last one found before walking
        // every slot list (remove_chunk() forgets it, so it never dangles).
        if (last_found_ != nullptr && holds(*last_found_)) return last_found_;
        // chunk index hook: O(log chunks) (pcpu/internal/chunk_index.hpp states the bound).
        chunk_node* c = addr_index_.find(addr);
        if (c != nullptr) last_found_ = c;
        return c;
    }

    void warn(const char* msg) noexcept { warnings_.warn(platform_, msg); }

    /// freed_area_written(h, cpu) - PCPU_FREE_PATTERN found a write after free in the
    /// area alloc() just took: whoever wrote holds a stale handle, and its next write
    /// lands in the new owner's data, so stop here.
    [[noreturn]] void freed_area_written(handle h, unsigned cpu) noexcept {
        detail::message<112> m;
        m << "pcpu: free area ";
        m.hex(h.addr()) << " was written after free (CPU " << cpu << "'s copy)";
        warn(m.c_str());
        PCPU_TRAP("pcpu: per-CPU area written after free");
    }

    void warn_alloc_failure(std::size_t size, std::size_t align, bool is_atomic, errc err) noexcept {
        detail::message<128> m;
        m << "pcpu: allocation failed, size=" << size << " align=" << align << " atomic=" << (is_atomic ? 1u : 0u)
          << ": " << errc_name(err);
        warn(m.c_str());
    }

    /// ops_seen() - a count that grows with every allocation attempt and free (the
    /// monotone statistics), so balance can tell whether it ran undisturbed. Index lock.
    std::uint64_t ops_seen() const noexcept {
        return stats_.nr_alloc + stats_.nr_failed + stats_.nr_dealloc + stats_.nr_bad_free;
    }
    static constexpr std::uint64_t no_ops = ~std::uint64_t{0};

    mutable Platform platform_;
    bool initialized_ = false;
    std::uint64_t settled_ops_ = no_ops; // ops_seen() when a balance last completed undisturbed
    std::uint32_t generation_ = 0; // successful init() calls, see generation()
    unsigned nr_cpus_ = 0;
    std::size_t unit_size_ = 0;
    std::size_t static_size_ = 0;
    std::size_t reserved_size_ = 0;
    std::size_t first_end_ = 0; // end of the first chunk's dynamic area (unit bytes)
    std::uintptr_t unit0_ = 0;
    std::uintptr_t cpu_offsets_[max_cpus] = {};

    chunk_node* last_found_ = nullptr; // find_chunk()'s last dynamic chunk (index lock)
    chunk_index<chunk_node> addr_index_; // every dynamic chunk by address (index lock)
    chunk_node first_;    // the first chunk's dynamic area
    chunk_node reserved_; // the first chunk's reserved area (if reserved_size_ != 0)
    index_type index_;

    unit_layout layout_;
    backend_type backend_;            // the back end's own state (lazy_mapped: the page array)
    void* own_meta_ = nullptr;        // first-chunk metadata pcpu allocated itself
    std::size_t own_meta_bytes_ = 0;
    bool atomic_alloc_failed_ = false;

    std::size_t nr_empty_pop_pages_ = 0;
    std::size_t nr_populated_ = 0;
    std::size_t live_bytes_ = 0;
    alloc_stats stats_;
    warn_limit warnings_;
};

} // namespace pcpu
