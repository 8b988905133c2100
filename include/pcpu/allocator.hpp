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
//
// Layout. This header holds the public API and the allocation and free paths, atomic
// path included; the class declares every member, and the rest are defined after it in
// core/: search.hpp (the search over the slot index and the claim), setup.hpp (init,
// teardown), chunks.hpp (chunk lifecycle, population
// bookkeeping, find_chunk), balance.hpp (balance and free()'s part in it). core/guards.hpp
// holds the guards an operation takes.
//
// Cost, with n dynamic chunks of P blocks of B = block_bits bits (a block is a page in
// the kernel's layout) and a request of `bits` (internal/chunk.hpp bounds find_fit(),
// alloc_area() and free_area() per chunk):
//  - alloc(): the search visits the non-empty slots from the request's size class up
//    (one ctz each, slot_index's mask) and at most every chunk on them: O(1) for a chunk
//    whose contig hint rejects the request, at most P blocks of find_fit() for any other,
//    then one claim. So O(n * P) block reads under the index lock at worst, O(n) when
//    every chunk's hint rejects. The zeroing (bytes times CPUs) runs outside the lock. A
//    sleeping allocation that finds nothing creates at most one chunk and populates at
//    most the pages its area spans (back-end work per page).
//  - free(): find the chunk: O(1) for the first and reserved chunks and the last one
//    found, else O(log n) (internal/chunk_index.hpp); then free_area(): O(bits / 64 +
//    B / 64 + P) words and blocks; the slot move is O(1).
#pragma once

#include "config.hpp"
#include "chunk_layout.hpp"
#include "context.hpp"
#include "core/guards.hpp"
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
#include "internal/populating.hpp"
#include "internal/slot_index.hpp"
#include "platform.hpp"
#include "populate.hpp"
#include "scope.hpp"
#include "stats.hpp"

#include <cstring>
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
    /// backend_type - the back end (pcpu/backend/): the chunk memory, its population
    /// and whatever state that needs. The core asks it; it never branches on a policy.
    using backend_type = typename Populate::template backend<Platform>;
    /// index_type - the slot lists. Sorted by contig hint unless the allocator has one
    /// chunk to search (it creates none: the reserved chunk is not on them) and its
    /// chunk layout does not ask for the order (scan_layout).
    using index_type = slot_index<chunk_type, backend_type::creates_chunks || ChunkLayout::sorts_single_chunk>;
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
    [[nodiscard]] errc init(const first_chunk_config& cfg) noexcept;

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
        if (err != errc::ok) warn_bad_free(h, err);
        return err;
    }

    /// warn_bad_free(h, err) - free()'s report of a rejected handle. Out of line under
    /// -Os, so that its buffer is on the stack only while a report is made, not on every
    /// free (which may run in an interrupt).
    PCPU_SIZE_NOINLINE void warn_bad_free(handle h, errc err) noexcept {
        detail::message<128> m;
        m << "pcpu: free of ";
        m.hex(h.addr()) << ": " << errc_name(err);
        warn(m.c_str());
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
    errc balance(context ctx) noexcept;
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
    /// counters legitimately disagree) unless that allocation populates outside the
    /// lock, which the allocator then counts as pending; then the index lock.
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
    // The guards an operation holds (core/guards.hpp).
    using op_bracket = detail::op_bracket<Platform>;
    using slow_guard = detail::slow_guard<Platform, backend_type>;
    using no_slow_guard = detail::no_slow_guard<Platform>;
    using optional_scope = detail::optional_scope<Platform>;
    using index_lock = detail::index_lock<Platform>;
    /// parallel_population - allocations populate outside the sleeping lock
    /// (internal/populating.hpp): the back end populates on demand and the platform
    /// has the population event.
    static constexpr bool parallel_population = backend_type::populate_slots != 0;

    /// account_empty_pages(c, before) - mirror a change of c's empty populated pages in
    /// the global count, which covers non-reserved, non-isolated chunks only: it is the
    /// atomic reserve, and neither of those serves normal atomic allocations.
    void account_empty_pages(const chunk_node& c, std::uint32_t before) noexcept {
        if (c.kind == chunk_kind::reserved || (backend_type::creates_chunks && c.isolated)) return;
        nr_empty_pop_pages_ = nr_empty_pop_pages_ + c.chunk.nr_empty_pop_pages() - before;
    }


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
    /// A sleeping allocation holds the sleeping lock from its search to its
    /// population: only one task creates a chunk or claims unpopulated space at a
    /// time, and no chunk is destroyed under it, which is what allows dropping the
    /// index lock while a chunk is created or pages are populated. With the
    /// population event it lets the lock go before populating (populate_claimed()).
    /// An atomic allocation never takes it: it claims only populated space, or fails
    /// and asks balance to refill the reserve.
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
        bool wake = false; // a task sleeps on a page range this allocation populated
        // Only a sleeping allocation can need population: an atomic fit is populated.
        if constexpr (MayBlock) populated = backend_type::is_populated(c->chunk, page_begin, page_end);
        if (!populated) {
            if constexpr (MayBlock) err = populate_claimed(*c, bits, page_begin, page_end, locked, lock, slow, wake);
            if (err != errc::ok) {
                release_area(*c, static_cast<std::uint32_t>(off));
                ++stats_.nr_failed;
                lock.unlock();
                if (wake) traits::populate_wake(platform_);
                return err;
            }
        }
        account_alloc(bytes);
        const bool low = nr_empty_pop_pages_ < empty_pop_pages_low && backend_type::creates_chunks;
        lock.unlock();
        if (wake) traits::populate_wake(platform_);
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



    // ---- the search over the slot index and the claim: core/search.hpp ----------------
    std::int32_t claim(chunk_node& c, std::uint32_t bits, std::uint32_t align, bool pop_only) noexcept;
    std::int32_t claim_from(chunk_node& c, std::uint32_t bits, std::uint32_t align, std::int32_t start) noexcept;
    void release_area(chunk_node& c, std::uint32_t off) noexcept;
    std::int32_t search(std::size_t bytes, std::uint32_t bits, std::uint32_t align, bool pop_only, chunk_node*& out,
                        bool fast = false) noexcept;

    // ---- first-chunk setup and teardown: core/setup.hpp ------------------------------
    void build_first_chunk(chunk_node& c, chunk_kind kind, std::uintptr_t units, std::size_t begin,
                           std::size_t end, unsigned char* meta) noexcept;
    void teardown() noexcept;

    // ---- chunk lifecycle and population bookkeeping: core/chunks.hpp ------------------
    static constexpr std::size_t node_bytes() noexcept { return detail::round_up(sizeof(chunk_node), meta_align); }
    void insert_chunk(chunk_node& c) noexcept;
    void adopt_chunk(chunk_node& c) noexcept;
    void remove_chunk(chunk_node& c) noexcept;
    chunk_node* create_chunk(context ctx) noexcept;
    void destroy_chunk(chunk_node& c, context ctx) noexcept;
    errc populate_range(chunk_node& c, std::uint32_t b, std::uint32_t e, context ctx, index_lock& lock,
                        unsigned slot) noexcept;
    errc populate_claimed(chunk_node& c, std::uint32_t bits, std::uint32_t b, std::uint32_t e, context ctx,
                          index_lock& lock, slow_guard& slow, bool& wake) noexcept;
    void record_population(chunk_node& c, std::uint32_t b, std::uint32_t e, bool populated) noexcept;
    chunk_node* find_chunk(std::uintptr_t addr) noexcept;

    // ---- balance (pcpu_balance_workfn's family): core/balance.hpp ---------------------
    bool after_free(chunk_node& c) noexcept;
    void isolate(chunk_node& c) noexcept;
    void reintegrate(chunk_node& c) noexcept;
    void balance_free(bool empty_only, context ctx) noexcept;
    void isolate_surplus() noexcept;
    void reclaim_populated(context ctx) noexcept;
    errc balance_populated(context ctx) noexcept;

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
    // Population outside the sleeping lock (internal/populating.hpp), index lock: the
    // ranges being populated, the tasks asleep until one goes, and the areas claimed
    // whose allocation has not been counted yet (verify() allows for them).
    populating_set<chunk_node, backend_type::populate_slots> populating_;
    unsigned populate_waiters_ = 0;
    std::uint32_t pending_allocs_ = 0;
    std::size_t pending_bits_ = 0;
    std::size_t live_bytes_ = 0;
    alloc_stats stats_;
    warn_limit warnings_;
};

} // namespace pcpu

// The members defined out of the class, along the kernel's lines (docs/architecture.md).
#include "core/search.hpp"
#include "core/setup.hpp"
#include "core/chunks.hpp"
#include "core/balance.hpp"
