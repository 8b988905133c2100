// SPDX-License-Identifier: MIT
// pcpu/internal/slot_index.hpp - the slot index: every chunk on one list, by its largest free
// region (pcpu_chunk_lists and pcpu_chunk_relocate in mm/percpu.c).
//
// Chunks sit on slot lists indexed by their largest free region (contig hint), so the
// search visits the fullest chunks that can still fit first: that keeps fragmentation
// low and empty chunks empty. Above the size slots come three lists that hold chunks
// by state, not size:
//
//     slot:  0 | 1 .. base | sidelined | free | to_depopulate
//            demoted and   in use, by  reclaimed, fully  isolated for
//            nearly full   contig hint  searched  free   reclaim
//                                       last
//
// An unsorted index (Sorted false) keeps every chunk on slot 0 and never moves it: for
// an allocator with a single chunk to search, where the order of the search has
// nothing to choose (allocator.hpp says when).
//
// The index only places chunks; what a placement means for the global counts (the
// atomic reserve) is the allocator's. Every piece of it is protected by the index
// lock, which the caller holds.
#pragma once

#include "chunk_index.hpp"
#include "../config.hpp"
#include "../detail/list.hpp"

#include <cstddef>
#include <cstdint>

namespace pcpu {

enum class chunk_kind : std::uint8_t { first, reserved, dynamic };

/// chunk_node<Chunk> - a chunk as the allocator sees it: the bitmap allocator plus where
/// it lives, which list it is on and (dynamic chunks) its place in the chunk index.
template <class Chunk>
struct chunk_node : detail::list_link, chunk_index_link {
    Chunk chunk;                     ///< the chunk's bitmap allocator (maps, hints, counts)
    std::uintptr_t base = 0;         ///< CPU 0 address of bit 0 of chunk
    std::uintptr_t usable_begin = 0; ///< [usable_begin, usable_end): what free() may name
    std::uintptr_t usable_end = 0;
    int slot = -1;                   ///< the slot list it is on, -1 if none
    chunk_kind kind = chunk_kind::first;
    bool immutable = false;          ///< never populated, depopulated or destroyed
    bool isolated = false;           ///< on to_depopulate/sidelined, out of the counts
};

/// index_report - the first broken invariant slot_index::check() found: `what` is a
/// static string (nullptr: none), `chunk` the chunk concerned (nullptr: the index).
template <class Node>
struct index_report {
    const char* what = nullptr;
    const Node* chunk = nullptr;
    std::size_t expected = 0;
    std::size_t actual = 0;
    bool stopped = false; ///< the visitor passed to check() stopped the walk
};

/// slot_index<Chunk, Sorted> - see the file comment.
template <class Chunk, bool Sorted = true>
class slot_index {
public:
    using node = chunk_node<Chunk>;
    static constexpr bool sorted = Sorted;
    /// One bitmap bit stands for this many bytes (the chunk's granule).
    static constexpr unsigned min_alloc_shift = Chunk::granule_shift;
    static constexpr int max_slots = 32;
    /// PCPU_SLOT_FAIL_THRESHOLD: chunks in a slot below it that fail a fit are demoted
    /// to slot 0, where only a change of their contig hint finds them again.
    static constexpr int fail_threshold = 3;

    /// init(unit_size) - the slots for units of unit_size bytes: 1..base by contig
    /// size, then sidelined, free and to_depopulate (kernel §3).
    void init(std::size_t unit_size) noexcept {
        unit_size_ = unit_size;
        base_slot_ = size_to_slot_raw(unit_size);
        PCPU_ASSERT(base_slot_ + 4 <= max_slots);
        sidelined_slot_ = base_slot_ + 1;
        free_slot_ = base_slot_ + 2;
        to_depopulate_slot_ = base_slot_ + 3;
        nr_slots_ = base_slot_ + 4;
    }

    int nr_slots() const noexcept { return nr_slots_; }
    int sidelined_slot() const noexcept { return sidelined_slot_; }
    int free_slot() const noexcept { return free_slot_; }
    int to_depopulate_slot() const noexcept { return to_depopulate_slot_; }
    detail::list_link& list(int slot) noexcept { return slots_[slot]; }
    const detail::list_link& list(int slot) const noexcept { return slots_[slot]; }
    /// mask() - bit s set exactly while list(s) is non-empty.
    std::uint32_t mask() const noexcept { return mask_; }
    static constexpr std::uint32_t bit(int slot) noexcept { return std::uint32_t{1} << slot; }

    /// fls(v) - 1-based index of the highest set bit, 0 for 0. One count-leading-zeros
    /// instruction: it runs several times per alloc and free (slot of a chunk).
    static int fls(std::size_t v) noexcept {
        return v == 0 ? 0 : static_cast<int>(sizeof(unsigned long long) * 8) - __builtin_clzll(v);
    }
    /// size_to_slot_raw(bytes) - PCPU_SLOT_BASE_SHIFT 5: max(fls(bytes) - 3, 1), so 4-15
    /// bytes share slot 1 and every doubling after that gets its own slot.
    static int size_to_slot_raw(std::size_t bytes) noexcept {
        const int s = fls(bytes) - 3;
        return s < 1 ? 1 : s;
    }
    int size_to_slot(std::size_t bytes) const noexcept {
        return bytes == unit_size_ ? free_slot_ : size_to_slot_raw(bytes);
    }
    /// chunk_slot(c) - where c belongs: by its largest free region, not its free bytes,
    /// so the list tells whether a request can fit (kernel since 2019).
    int chunk_slot(const node& c) const noexcept {
        if (!Sorted) return 0;
        const std::size_t contig = std::size_t{c.chunk.contig_bits()} << min_alloc_shift;
        if (c.chunk.free_bits() == 0 || contig == 0) return 0;
        return size_to_slot(contig);
    }
    /// slot_of_contig(contig_bits) - chunk_slot() from the contig hint alone. The two
    /// agree because contig hints are exact: contig is 0 exactly when no bit is free.
    int slot_of_contig(std::uint32_t contig_bits) const noexcept {
        if (!Sorted) return 0;
        return contig_bits == 0 ? 0 : size_to_slot(std::size_t{contig_bits} << min_alloc_shift);
    }

    /// link(c, slot, front) / unlink(c) - the only ways onto and off a slot list, so
    /// that bit s of mask() is set exactly while list(s) is non-empty (check() checks
    /// it). The search then finds the next non-empty slot with one find-first-set
    /// instead of walking every empty list head in between.
    void link(node& c, int slot, bool front) noexcept {
        if (front) slots_[slot].push_front(c);
        else slots_[slot].push_back(c);
        c.slot = slot;
        mask_ |= bit(slot);
    }
    void unlink(node& c) noexcept {
        c.unlink();
        if (c.slot >= 0 && slots_[c.slot].empty()) mask_ &= ~bit(c.slot);
        c.slot = -1;
    }
    /// move(c, slot, front) - unlink(c), then link(c, slot, front). Forced inline: out
    /// of line, GCC -Os keeps it as one more function in every firmware image (122
    /// bytes of Cortex-M4 text for static_only, docs/performance.md).
    [[gnu::always_inline]] void move(node& c, int slot, bool front) noexcept {
        unlink(c);
        link(c, slot, front);
    }

    /// relocate(c, old_slot) - pcpu_chunk_relocate: move c if its computed slot changed;
    /// to the front when it went up (more room: try it soon), to the tail when it went
    /// down. Compares computed slots, so a demoted chunk stays in slot 0 until its
    /// contig hint moves it. The reserved and isolated chunks are on no slot by size.
    void relocate(node& c, int old_slot) noexcept {
        if (!Sorted) return;
        if (c.kind == chunk_kind::reserved || c.isolated) return;
        const int new_slot = chunk_slot(c);
        if (new_slot == old_slot) return;
        move(c, new_slot, old_slot < new_slot);
    }
    /// relocate_if_changed(c, contig_before) - relocate() after an operation that may
    /// have changed c's contig hint from contig_before. A chunk's slot is a function of
    /// its contig hint (slot_of_contig), so when the hint did not change, neither did
    /// the slot, and the two slot computations are skipped: most allocations and frees
    /// leave the largest run alone.
    void relocate_if_changed(node& c, std::uint32_t contig_before) noexcept {
        if (c.chunk.contig_bits() != contig_before) relocate(c, slot_of_contig(contig_before));
    }

    /// for_each(f) - f(c) for every chunk on every list, slot by slot, in list order.
    template <class F>
    void for_each(F&& f) const noexcept {
        for (int slot = 0; slot < nr_slots_; ++slot)
            for (const detail::list_link* l = slots_[slot].next; l != &slots_[slot]; l = l->next)
                f(*static_cast<const node*>(l));
    }

    /// check(visit) - the index's invariants: the mask agrees with the lists, every
    /// list is well linked, every chunk's slot field names its list, the isolated
    /// chunks are exactly those on sidelined and to_depopulate, and every other chunk
    /// is on the list its contig hint computes (or demoted to slot 0). visit(c) runs on
    /// each chunk once its links are known good, before its placement is checked; it
    /// returns false to stop the walk (the report then says `stopped`).
    template <class F>
    index_report<node> check(F&& visit) const noexcept {
        index_report<node> rep;
        auto fail = [&rep](const char* what, const node* c, std::size_t expected, std::size_t actual) {
            rep.what = what;
            rep.chunk = c;
            rep.expected = expected;
            rep.actual = actual;
            return rep;
        };
        for (int slot = 0; slot < nr_slots_; ++slot) {
            const detail::list_link* head = &slots_[slot];
            const bool bit_set = (mask_ & bit(slot)) != 0;
            if (bit_set != !head->empty())
                return fail("slot mask bit disagrees with its list", nullptr, !head->empty(), bit_set);
            for (const detail::list_link* l = head->next; l != head; l = l->next) {
                const auto& c = *static_cast<const node*>(l);
                if (l->next->prev != l || l->prev->next != l) return fail("slot list links", &c, 0, 0);
                if (!visit(c)) {
                    rep.stopped = true;
                    return rep;
                }
                if (c.slot != slot) return fail("chunk slot field", &c, unsigned(slot), unsigned(c.slot));
                const bool isolated_slot = slot == sidelined_slot_ || slot == to_depopulate_slot_;
                if (c.isolated != isolated_slot)
                    return fail("isolated chunk off the isolation lists (or the reverse)", &c, c.isolated,
                                isolated_slot);
                const int want = chunk_slot(c);
                // A demoted chunk stays in slot 0 until its contig hint changes slot.
                if (!c.isolated && slot != want && !(slot == 0 && want < fail_threshold))
                    return fail("chunk on the wrong slot list", &c, unsigned(want), unsigned(slot));
            }
        }
        return rep;
    }

private:
    detail::list_link slots_[max_slots];
    std::uint32_t mask_ = 0; // bit s set <=> slots_[s] non-empty (link/unlink)
    std::size_t unit_size_ = 0;
    int base_slot_ = 0, sidelined_slot_ = 0, free_slot_ = 0, to_depopulate_slot_ = 0, nr_slots_ = 0;
};

} // namespace pcpu
