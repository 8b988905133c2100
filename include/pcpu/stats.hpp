// SPDX-License-Identifier: MIT
// pcpu/stats.hpp - what the allocator tells about itself: statistics (the kernel's
// percpu_stats), verify() (every invariant, checked from scratch) and the rate-limited
// warning through which failures are reported.
//
// The allocator keeps the counters and takes the locks; the functions here read its
// state under those locks (detail::allocator_inspector is its friend) and never
// change anything but the warning budget.
#pragma once

#include "config.hpp"
#include "detail/format.hpp"
#include "internal/bitmap.hpp"
#include "internal/chunk.hpp"
#include "internal/slot_index.hpp"
#include "platform.hpp"

#include <cstddef>
#include <cstdint>

namespace pcpu {

/// chunk_stats - one chunk, as the kernel's percpu_stats debugfs file shows it.
/// Sizes are bytes per unit.
struct chunk_stats {
    chunk_kind kind = chunk_kind::first;
    int slot = -1;                  ///< slot list it is on; -1 for the reserved chunk
    std::uintptr_t base = 0;        ///< CPU 0 address of the chunk's first page
    std::uint32_t nr_pages = 0;
    std::uint32_t nr_populated = 0;
    std::uint32_t nr_empty_pop_pages = 0;
    std::uint32_t nr_alloc = 0;     ///< live allocations
    std::size_t max_alloc_size = 0; ///< largest allocation ever served (bytes)
    std::size_t free_bytes = 0;
    std::size_t contig_bytes = 0;   ///< largest free region
    std::size_t first_free = 0;     ///< byte offset of the first free byte
    std::size_t sum_frag = 0;       ///< free bytes in holes followed by an allocation
    std::size_t max_frag = 0;       ///< largest such hole
};

/// alloc_stats - the kernel's percpu_stats. "monotone" fields never decrease.
struct alloc_stats {
    std::uint64_t nr_alloc = 0;      ///< successful allocations (monotone)
    std::uint64_t nr_dealloc = 0;    ///< successful frees (monotone)
    std::uint64_t nr_failed = 0;     ///< failed alloc calls, bad input included (monotone)
    std::uint64_t nr_bad_free = 0;   ///< rejected frees (monotone)
    std::uint32_t nr_cur_alloc = 0;  ///< live allocations = nr_alloc - nr_dealloc
    std::uint32_t nr_max_alloc = 0;  ///< high-water mark of nr_cur_alloc (monotone)
    std::uint32_t nr_chunks = 0;     ///< chunks on the slot lists (the reserved chunk is not)
    std::uint32_t nr_max_chunks = 0; ///< (monotone)
    std::size_t min_alloc_size = 0;  ///< smallest allocation served (bytes, rounded to 4)
    std::size_t max_alloc_size = 0;  ///< largest allocation served (monotone)
    std::size_t live_bytes = 0;      ///< bytes allocated per unit; times nr_cpus in memory
    std::size_t nr_empty_pop_pages = 0; ///< populated, entirely free pages (atomic reserve)
    std::size_t nr_populated_pages = 0; ///< populated pages per unit, first chunk included
    unsigned nr_cpus = 0;
    std::size_t unit_size = 0;
    std::size_t static_size = 0;
    std::size_t reserved_size = 0;
    std::size_t dynamic_size = 0;
};

/// verify_report - the first broken invariant found by allocator::verify().
struct verify_report {
    bool ok = true;
    const char* what = nullptr;       ///< the invariant, as a static string
    std::uintptr_t chunk = 0;         ///< base of the chunk concerned (0: global)
    chunk_verify_report detail;       ///< for "chunk": the chunk's own report
    std::size_t expected = 0;
    std::size_t actual = 0;

    /// describe(buf, n) - one line for a test failure or a firmware log.
    const char* describe(char* buf, std::size_t n) const noexcept {
        detail::message<160> m;
        if (ok) {
            m << "ok";
        } else {
            m << what << " (chunk ";
            m.hex(chunk) << ")";
            if (detail.what != nullptr)
                m << ": " << detail.what << " at " << detail.index << ": expected " << detail.expected
                  << ", got " << detail.actual;
            else
                m << ": expected " << expected << ", got " << actual;
        }
        std::size_t i = 0;
        for (const char* s = m.c_str(); n != 0 && i + 1 < n && s[i] != '\0'; ++i) buf[i] = s[i];
        if (n != 0) buf[i] = '\0';
        return buf;
    }
};

/// warn_limit - the kernel's budget for failure reports: ten, then one last word, then
/// silence, so a failing loop cannot flood a console (or a firmware UART).
class warn_limit {
public:
    /// warn(p, msg) - msg through the platform's warn() while the budget lasts.
    /// Failures on several CPUs warn at once: the budget is taken under the index lock
    /// (which the caller must not hold), else two could both see 1 left, and the
    /// budget, gone negative, never ends.
    template <class Platform>
    void warn(Platform& p, const char* msg) noexcept {
        bool last;
        {
            index_guard<Platform> guard(p);
            if (budget_ == 0) return;
            last = --budget_ == 0;
        }
        platform_traits<Platform>::warn(p, msg);
        if (last) platform_traits<Platform>::warn(p, "pcpu: limit reached, disable warning");
    }

private:
    int budget_ = 10;
};

/// chunk_info(c) - the chunk_stats of one chunk_node. Index lock held.
template <class Node>
chunk_stats chunk_info(const Node& c) noexcept {
    constexpr unsigned shift = decltype(c.chunk)::granule_shift; // bytes per bit, log2
    chunk_stats s;
    s.kind = c.kind;
    s.slot = c.slot;
    s.base = c.base;
    s.nr_pages = c.chunk.nr_pages();
    s.nr_populated = c.chunk.nr_populated();
    s.nr_empty_pop_pages = c.chunk.nr_empty_pop_pages();
    s.nr_alloc = c.chunk.nr_alloc();
    s.max_alloc_size = std::size_t{c.chunk.max_alloc_bits()} << shift;
    s.free_bytes = std::size_t{c.chunk.free_bits()} << shift;
    s.contig_bytes = std::size_t{c.chunk.contig_bits()} << shift;
    s.first_free = std::size_t{c.chunk.first_free()} << shift;
    // Holes: free runs followed by an allocated bit inside the usable range.
    const auto begin = static_cast<std::size_t>((c.usable_begin - c.base) >> shift);
    const auto end = static_cast<std::size_t>((c.usable_end - c.base) >> shift);
    std::size_t rs = 0, re = 0;
    for (std::size_t from = begin; bitmap::next_clear_region(c.chunk.alloc_map(), end, from, rs, re); from = re) {
        if (re == end) break; // the free tail is not a hole
        const std::size_t hole = (re - rs) << shift;
        s.sum_frag += hole;
        if (hole > s.max_frag) s.max_frag = hole;
    }
    return s;
}

namespace detail {

/// allocator_inspector - stats() and verify() over an allocator's state. The
/// allocator takes the locks and calls these with them held.
struct allocator_inspector {
    /// live_bits_of(c) - bits allocated in c's usable range.
    template <class Node>
    static std::size_t live_bits_of(const Node& c) noexcept {
        const std::size_t usable_bits = (c.usable_end - c.usable_begin) >> decltype(c.chunk)::granule_shift;
        return usable_bits - c.chunk.free_bits();
    }

    /// stats(a) - a's statistics with the live counts filled in. Index lock held.
    template <class A>
    static alloc_stats stats(const A& a) noexcept {
        alloc_stats s = a.stats_;
        s.live_bytes = a.live_bytes_;
        s.nr_empty_pop_pages = a.nr_empty_pop_pages_;
        s.nr_populated_pages = a.nr_populated_;
        s.nr_cpus = a.nr_cpus_;
        s.unit_size = a.unit_size_;
        s.static_size = a.static_size_;
        s.reserved_size = a.reserved_size_;
        s.dynamic_size = a.first_end_ - a.static_size_ - a.reserved_size_;
        return s;
    }

    /// verify(a) - see allocator::verify(). Both locks held as it says.
    template <class A>
    static verify_report verify(const A& a) noexcept {
        using node = typename A::chunk_node;
        verify_report rep;
        auto fail = [&rep](const char* what, const node* c, std::size_t expected,
                           std::size_t actual) -> verify_report {
            rep.ok = false;
            rep.what = what;
            rep.chunk = c != nullptr ? c->base : 0;
            rep.expected = expected;
            rep.actual = actual;
            return rep;
        };
        auto check_chunk = [&](const node& c) {
            const chunk_verify_report r = c.chunk.verify();
            if (!r.ok) {
                fail("chunk", &c, 0, 0);
                rep.detail = r;
                return false;
            }
            return true;
        };

        std::size_t live_bits = 0, empty_pages = 0, populated = A::rules::region_pages(0, a.first_end_);
        std::uint32_t nr_alloc = 0, nr_chunks = 0, nr_free_chunks = 0;
        if (a.reserved_size_ != 0) {
            if (!check_chunk(a.reserved_)) return rep;
            if (a.reserved_.linked()) return fail("reserved chunk on a slot list", &a.reserved_, 0, 1);
            live_bits += live_bits_of(a.reserved_);
            nr_alloc += a.reserved_.chunk.nr_alloc();
        }
        bool first_seen = false;
        const auto& index = a.index_;
        // Each chunk on the lists: its own invariants and the reclaim rule, then its
        // share of the global counts, summed to be compared below.
        const index_report<node> ir = index.check([&](const node& c) {
            if (!check_chunk(c)) return false;
            const int slot = c.slot;
            if (c.kind == chunk_kind::dynamic) {
                if (c.immutable) return (void)fail("dynamic chunk marked immutable", &c, 0, 1), false;
                populated += c.chunk.nr_populated();
                // The reclaim rule (after_free()): empty populated pages are counted
                // (chunk in use or free) or queued (to_depopulate), never sidelined.
                if (slot == index.sidelined_slot() && c.chunk.nr_empty_pop_pages() != 0)
                    return (void)fail("sidelined chunk with empty populated pages (neither counted nor queued)",
                                      &c, 0, c.chunk.nr_empty_pop_pages()),
                           false;
                if (slot == index.sidelined_slot() && c.chunk.free_bits() == c.chunk.map_bits())
                    return (void)fail("fully free chunk left sidelined", &c, 0, 1), false;
                if (c.chunk.free_bits() == c.chunk.map_bits()) ++nr_free_chunks;
            } else if (c.chunk.nr_populated() != c.chunk.nr_pages()) {
                return (void)fail("first chunk not fully populated", &c, c.chunk.nr_pages(), c.chunk.nr_populated()),
                       false;
            }
            first_seen |= &c == &a.first_;
            live_bits += live_bits_of(c);
            nr_alloc += c.chunk.nr_alloc();
            if (!c.isolated) empty_pages += c.chunk.nr_empty_pop_pages();
            ++nr_chunks;
            return true;
        });
        if (ir.stopped) return rep;
        if (ir.what != nullptr) return fail(ir.what, ir.chunk, ir.expected, ir.actual);
        if (!first_seen) return fail("first chunk missing from the slot lists", &a.first_, 1, 0);
        if (a.settled_ops_ == a.ops_seen()) {
            // Balance ran to the end and nothing happened since: it reclaimed every
            // queued chunk and destroyed every fully free chunk beyond the spare, but
            // one the reserve needed to reach its high mark.
            if (!index.list(index.to_depopulate_slot()).empty())
                return fail("chunk still queued for depopulation after balance", nullptr, 0, 1);
            if (nr_free_chunks > 1 && a.nr_empty_pop_pages_ > A::empty_pop_pages_high)
                return fail("fully free chunks beyond the spare after balance", nullptr, 1, nr_free_chunks);
        }
        if (populated != a.nr_populated_) return fail("global populated pages", nullptr, populated, a.nr_populated_);
        if (empty_pages != a.nr_empty_pop_pages_)
            return fail("global empty populated pages", nullptr, empty_pages, a.nr_empty_pop_pages_);
        // Areas claimed by allocations still populating (internal/populating.hpp)
        // are in the maps but not yet in the statistics; each such range's pages
        // that are not populated hold one, so balance never takes them for empty.
        bool range_ok = true;
        a.populating_.for_each([&](const auto& r) {
            for (std::uint32_t p = r.begin; p < r.end; ++p)
                if (!r.chunk->chunk.is_populated(p) && r.chunk->chunk.page_is_free(p)) range_ok = false;
        });
        if (!range_ok) return fail("page being populated holds no claimed area", nullptr, 0, 1);
        if (a.populating_.size() > a.pending_allocs_)
            return fail("ranges being populated without a pending allocation", nullptr, a.pending_allocs_,
                        a.populating_.size());
        nr_alloc -= a.pending_allocs_;
        live_bits -= a.pending_bits_;
        if (nr_alloc != a.stats_.nr_cur_alloc)
            return fail("stats: live allocations", nullptr, nr_alloc, a.stats_.nr_cur_alloc);
        if (a.stats_.nr_alloc - a.stats_.nr_dealloc != a.stats_.nr_cur_alloc)
            return fail("stats: nr_alloc - nr_dealloc", nullptr,
                        static_cast<std::size_t>(a.stats_.nr_alloc - a.stats_.nr_dealloc), a.stats_.nr_cur_alloc);
        if ((live_bits << A::min_alloc_shift) != a.live_bytes_)
            return fail("stats: live bytes", nullptr, live_bits << A::min_alloc_shift, a.live_bytes_);
        if (nr_chunks != a.stats_.nr_chunks) return fail("stats: chunk count", nullptr, nr_chunks, a.stats_.nr_chunks);
        // chunk index hook: ordered, balanced, and holding every dynamic chunk.
        if (!a.addr_index_.verify() || a.addr_index_.size() != nr_chunks - 1)
            return fail("chunk index: unbalanced, unordered or missing a chunk", nullptr, nr_chunks - 1,
                        a.addr_index_.size());
        return rep;
    }
};

} // namespace detail
} // namespace pcpu
