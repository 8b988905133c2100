// SPDX-License-Identifier: MIT
// pcpu/core/chunks.hpp - dynamic chunks: create, adopt, remove and destroy one
// (pcpu_create_chunk, pcpu_destroy_chunk), populate a page range and record it in the
// chunk's and the global counts (pcpu_chunk_populated/depopulated), and find the chunk
// that holds an address (pcpu_chunk_addr_search).
//
// Out-of-class members of pcpu::allocator, which includes this header at the end of
// allocator.hpp; it includes allocator.hpp back only so that it compiles on its own.
// A private member's contract is stated here, where it is kept; a public one's (init,
// balance) with its declaration in the class.
#pragma once

#include "../allocator.hpp"

#include <new>

namespace pcpu {

template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::insert_chunk(chunk_node& c) noexcept {
    index_.link(c, index_.chunk_slot(c), true);
    if (++stats_.nr_chunks > stats_.nr_max_chunks) stats_.nr_max_chunks = stats_.nr_chunks;
}

/// adopt_chunk(c) - put a chunk fresh from create_chunk() into service. Index lock
/// held. Without an MMU every page exists from creation, so its population is
/// recorded here, under the lock, together with the global counts.
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::adopt_chunk(chunk_node& c) noexcept {
    insert_chunk(c);
    addr_index_.insert(c); // chunk index hook: every dynamic chunk, adoption to removal
    if (backend_type::populated_on_create) record_population(c, 0, layout_.unit_pages, true);
}

/// remove_chunk(c) - off its list and out of every global count. Index lock held.
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::remove_chunk(chunk_node& c) noexcept {
    if (last_found_ == &c) last_found_ = nullptr;
    if (c.kind == chunk_kind::dynamic) addr_index_.remove(c); // chunk index hook
    if (!c.isolated) nr_empty_pop_pages_ -= c.chunk.nr_empty_pop_pages();
    nr_populated_ -= c.chunk.nr_populated();
    index_.unlink(c);
    --stats_.nr_chunks;
}

/// create_chunk(ctx) - a new, empty dynamic chunk, not yet on any list; nullptr if
/// the metadata or the memory could not be had (and then nothing is left behind).
/// Context: sleeping lock held, index lock not held; ctx reaches the metadata
/// allocation and the address-space (or units) allocation alike.
template <class Platform, class Populate, class ChunkLayout>
inline auto allocator<Platform, Populate, ChunkLayout>::create_chunk(context ctx) noexcept -> chunk_node* {
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
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::destroy_chunk(chunk_node& c, context ctx) noexcept {
    detail::released(c.base, cpu_offsets_, nr_cpus_, unit_size_);
    backend_.destroy(platform_, layout_, c.chunk, c.base, ctx);
    c.~chunk_node();
    backend_.free_meta(platform_, &c, node_bytes() + chunk_type::meta_bytes(layout_.unit_pages), ctx);
}

/// populate_range(c, b, e, ctx, lock, slot) - populate every unpopulated run of pages
/// [b, e) of c with slot's page array and record it. Index lock held on entry and on
/// return, dropped around the back end; the caller owns the runs: it holds the
/// sleeping lock (slot 0), or the populating_set slot registering [b, e).
template <class Platform, class Populate, class ChunkLayout>
inline errc allocator<Platform, Populate, ChunkLayout>::populate_range(chunk_node& c, std::uint32_t b, std::uint32_t e,
                                                                       context ctx, index_lock& lock,
                                                                       unsigned slot) noexcept {
    std::size_t rs = 0, re = 0;
    for (std::size_t from = b; bitmap::next_clear_region(c.chunk.populated_map(), e, from, rs, re); from = re) {
        PCPU_ASSERT(!c.immutable);
        lock.unlock();
        const bool ok = backend_.populate(platform_, layout_, c.base, static_cast<std::uint32_t>(rs),
                                          static_cast<std::uint32_t>(re), ctx, slot);
        lock.relock();
        if (!ok) return errc::out_of_memory;
        record_population(c, static_cast<std::uint32_t>(rs), static_cast<std::uint32_t>(re), true);
    }
    return errc::ok;
}

/// populate_claimed(c, bits, b, e, ctx, lock, slow, wake) - populate pages [b, e) of
/// c, which hold the `bits`-bit area this allocation has just claimed. Index lock
/// held on entry and on return; the sleeping lock held on entry, possibly not on
/// return. The whole step runs under the caller's scope, not only map(): whatever the
/// platform allocates without a context argument (bookkeeping, page tables) is
/// narrowed as the callbacks are.
///
/// Without the population event the sleeping lock stays held throughout, as in the
/// kernel. With it (internal/populating.hpp states what keeps this safe) the pages
/// are registered and populated after the sleeping lock is let go; an allocation
/// that needs a page someone else registered, or finds every slot taken, sleeps on
/// the event and tries again. wake: a task sleeps on the event and must be woken once
/// the index lock is dropped.
template <class Platform, class Populate, class ChunkLayout>
inline errc allocator<Platform, Populate, ChunkLayout>::populate_claimed(chunk_node& c, std::uint32_t bits,
                                                                         std::uint32_t b, std::uint32_t e,
                                                                         context ctx, index_lock& lock,
                                                                         slow_guard& slow, bool& wake) noexcept {
    optional_scope scope(platform_, ctx);
    if constexpr (!parallel_population) {
        (void)bits, (void)slow, (void)wake;
        return populate_range(c, b, e, ctx, lock, 0);
    } else {
        // Claimed but not yet counted as an allocation while the locks are dropped.
        ++pending_allocs_;
        pending_bits_ += bits;
        errc err = errc::ok;
        while (!backend_type::is_populated(c.chunk, b, e)) {
            if (!populating_.full() && !populating_.conflicts(c, b, e)) {
                const unsigned slot = populating_.add(c, b, e);
                lock.unlock();
                const bool ready = backend_.prepare(platform_, layout_, ctx, slot);
                slow.release();
                lock.relock();
                err = ready ? populate_range(c, b, e, ctx, lock, slot) : errc::out_of_memory;
                populating_.remove(slot);
                wake = populate_waiters_ != 0;
                break;
            }
            // The ticket is read under the index lock, before the range this waits
            // for can go: a wake that comes before the wait is not lost.
            ++populate_waiters_;
            const std::uint32_t ticket = traits::populate_ticket(platform_);
            lock.unlock();
            slow.release();
            traits::populate_wait(platform_, ticket, ctx);
            slow.retake();
            lock.relock();
            --populate_waiters_;
        }
        --pending_allocs_;
        pending_bits_ -= bits;
        return err;
    }
}

/// record_population(c, b, e, populated) - pcpu_chunk_(de)populated: the chunk's
/// bitmap and counts, and the global ones. Index lock held.
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::record_population(chunk_node& c, std::uint32_t b, std::uint32_t e,
                                                             bool populated) noexcept {
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

/// find_chunk(addr) - the chunk whose usable CPU 0 range holds addr, or nullptr.
template <class Platform, class Populate, class ChunkLayout>
inline auto allocator<Platform, Populate, ChunkLayout>::find_chunk(std::uintptr_t addr) noexcept -> chunk_node* {
    auto holds = [addr](const chunk_node& c) { return addr >= c.usable_begin && addr < c.usable_end; };
    if (holds(first_)) return &first_;
    if (reserved_size_ != 0 && holds(reserved_)) return &reserved_;
    // Without chunk creation those two are all there is.
    if constexpr (!backend_type::creates_chunks) return nullptr;
    // Frees come in runs from the same chunk: try the last one found before walking
    // every slot list (remove_chunk() forgets it, so it never dangles).
    if (last_found_ != nullptr && holds(*last_found_)) return last_found_;
    // chunk index hook: O(log chunks) (pcpu/internal/chunk_index.hpp states the bound).
    chunk_node* c = addr_index_.find(addr);
    if (c != nullptr) last_found_ = c;
    return c;
}

} // namespace pcpu
