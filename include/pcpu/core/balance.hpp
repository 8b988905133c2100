// SPDX-License-Identifier: MIT
// pcpu/core/balance.hpp - the deferred work (pcpu_balance_workfn and its family):
// free()'s decision to ask for it, isolation of chunks with surplus empty pages,
// destruction of surplus free chunks, reclaim of empty populated pages, and the refill
// of the atomic reserve.
//
// Out-of-class members of pcpu::allocator, which includes this header at the end of
// allocator.hpp; it includes allocator.hpp back only so that it compiles on its own.
// A private member's contract is stated here, where it is kept; a public one's (init,
// balance) with its declaration in the class.
#pragma once

#include "../allocator.hpp"

namespace pcpu {

template <class Platform, class Populate, class ChunkLayout>
inline errc allocator<Platform, Populate, ChunkLayout>::balance(context ctx) noexcept {
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
template <class Platform, class Populate, class ChunkLayout>
inline bool allocator<Platform, Populate, ChunkLayout>::after_free(chunk_node& c) noexcept {
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
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::isolate(chunk_node& c) noexcept {
    nr_empty_pop_pages_ -= c.chunk.nr_empty_pop_pages();
    c.isolated = true;
    index_.move(c, index_.to_depopulate_slot(), true);
}

template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::reintegrate(chunk_node& c) noexcept {
    c.isolated = false;
    nr_empty_pop_pages_ += c.chunk.nr_empty_pop_pages();
    index_.move(c, index_.chunk_slot(c), true);
}

/// balance_free(empty_only) - destroy every fully free chunk but one spare (with
/// empty_only, only those with no populated page left). The spare is the first
/// free chunk that still has populated pages, else the first one. The kernel
/// keeps the first one whatever it holds, so after reclaim it can keep an
/// unpopulated spare beside a populated free chunk: two spares.
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::balance_free(bool empty_only, context ctx) noexcept {
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

/// isolate_surplus() - beyond the kernel, which reclaims only chunks that free()
/// isolated: when the reserve holds more than the high mark, isolate every chunk
/// whose empty populated pages make up at least a quarter of it (the kernel's
/// threshold against churn), the spare free chunk included, so that reclaim brings
/// the reserve down to the high mark. The first chunk is never touched.
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::isolate_surplus() noexcept {
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
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::reclaim_populated(context ctx) noexcept {
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
/// creating a chunk only if that is not enough. It populates empty pages only: an
/// unpopulated page that holds an allocated area belongs to the allocation
/// populating it outside the sleeping lock (internal/populating.hpp).
template <class Platform, class Populate, class ChunkLayout>
inline errc allocator<Platform, Populate, ChunkLayout>::balance_populated(context ctx) noexcept {
    auto fillable = [](const chunk_type& ch, std::uint32_t i) {
        return !ch.is_populated(i) && (!parallel_population || ch.page_is_free(i));
    };
    auto has_fillable = [&fillable](const chunk_type& ch) {
        if (backend_type::fully_populated(ch)) return false;
        for (std::uint32_t i = 0; i < ch.nr_pages(); ++i)
            if (fillable(ch, i)) return true;
        return false;
    };
    index_lock lock(platform_);
    std::size_t target = atomic_alloc_failed_ ? empty_pop_pages_high
                         : nr_empty_pop_pages_ < empty_pop_pages_high ? empty_pop_pages_high - nr_empty_pop_pages_
                                                                      : 0;
    atomic_alloc_failed_ = false;
    while (target != 0) {
        chunk_node* c = nullptr;
        for (int slot = index_.size_to_slot(page_size); slot <= index_.free_slot() && c == nullptr; ++slot)
            for (detail::list_link* l = index_.list(slot).next; l != &index_.list(slot); l = l->next) {
                auto& cand = *static_cast<chunk_node*>(l);
                if (!cand.isolated && has_fillable(cand.chunk)) {
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
        // Runs of fillable pages, at most target pages in all. Which pages are
        // fillable cannot change while the index lock is dropped: only a sleeping
        // allocation claims unpopulated space, under the sleeping lock this holds.
        const std::uint32_t n = c->chunk.nr_pages();
        for (std::uint32_t rs = 0; target != 0 && rs < n;) {
            if (!fillable(c->chunk, rs)) {
                ++rs;
                continue;
            }
            std::uint32_t re = rs + 1;
            while (re < n && re - rs < target && fillable(c->chunk, re)) ++re;
            lock.unlock();
            const bool ok = backend_.populate(platform_, layout_, c->base, rs, re, ctx);
            lock.relock();
            if (!ok) return errc::out_of_memory;
            record_population(*c, rs, re, true);
            target -= re - rs;
            rs = re;
        }
    }
    return errc::ok;
}

} // namespace pcpu
