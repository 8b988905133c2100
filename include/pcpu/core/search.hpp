// SPDX-License-Identifier: MIT
// pcpu/core/search.hpp - the search over the slot index (pcpu_alloc's loop over
// pcpu_chunk_lists with pcpu_find_block_fit) and the claim of an area in one chunk
// (pcpu_alloc_area with its accounting), and the give-back of a claimed area whose
// population failed.
//
// Out-of-class members of pcpu::allocator, which includes this header at the end of
// allocator.hpp; it includes allocator.hpp back only so that it compiles on its own.
#pragma once

#include "../allocator.hpp"

namespace pcpu {

/// claim(c, bits, align, pop_only) - find-fit and claim in one chunk; -1 if it fails.
template <class Platform, class Populate, class ChunkLayout>
inline std::int32_t allocator<Platform, Populate, ChunkLayout>::claim(chunk_node& c, std::uint32_t bits,
                                                               std::uint32_t align, bool pop_only) noexcept {
    const std::int32_t start = c.chunk.template find_fit_in<backend_type::creates_chunks>(bits, align, pop_only);
    if (start < 0) return -1;
    return claim_from(c, bits, align, start);
}

/// claim_from(c, bits, align, start) - claim at find_fit()'s result `start` (>= 0).
template <class Platform, class Populate, class ChunkLayout>
inline std::int32_t allocator<Platform, Populate, ChunkLayout>::claim_from(chunk_node& c, std::uint32_t bits,
                                                                    std::uint32_t align,
                                                                    std::int32_t start) noexcept {
    const std::uint32_t contig_before = c.chunk.contig_bits();
    const std::uint32_t empty_before = c.chunk.nr_empty_pop_pages();
    const std::int32_t off = c.chunk.alloc_area(bits, align, static_cast<std::uint32_t>(start));
    if (off < 0) return -1;
    account_empty_pages(c, empty_before);
    index_.relocate_if_changed(c, contig_before);
    return off;
}

/// release_area(c, off) - give back an area claimed by an allocation that then
/// failed (population), leaving the chunk as if it had never been claimed.
template <class Platform, class Populate, class ChunkLayout>
inline void allocator<Platform, Populate, ChunkLayout>::release_area(chunk_node& c, std::uint32_t off) noexcept {
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
template <class Platform, class Populate, class ChunkLayout>
inline std::int32_t allocator<Platform, Populate, ChunkLayout>::search(std::size_t bytes, std::uint32_t bits,
                                                                std::uint32_t align, bool pop_only,
                                                                chunk_node*& out, bool fast) noexcept {
    // One chunk on the lists (index_type): nothing to choose, search it.
    if constexpr (!index_type::sorted) {
        out = &first_;
        return claim(first_, bits, align, pop_only);
    }
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
            const std::int32_t start = c.chunk.template find_fit_in<backend_type::creates_chunks>(bits, align, pop_only);
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
                // Serving from a sidelined chunk puts it back into use (only a
                // dynamic chunk is ever sidelined).
                if (backend_type::creates_chunks && c.isolated) reintegrate(c);
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

} // namespace pcpu
