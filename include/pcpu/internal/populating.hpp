// SPDX-License-Identifier: MIT
// pcpu/internal/populating.hpp - the page ranges allocations are populating outside the
// sleeping lock (a platform with the population event, platform.hpp).
//
// Linux populates under pcpu_alloc_mutex, so two allocations that need fresh pages wait
// for each other even when their pages have nothing in common. Here a sleeping
// allocation claims its area under the sleeping lock as before, then registers the
// page range it will populate, drops the sleeping lock and populates with no lock held.
// What keeps that safe:
//   - a registered page is populated by its registrant alone: another allocation whose
//     area needs one of its unpopulated pages waits for the range to go (the
//     platform's populate_wait) instead of populating it again;
//   - a registered page holds a claimed area whose allocation has not returned, so it
//     is never empty: balance, which populates and depopulates empty pages only, and
//     chunk destruction, which needs a fully free chunk, never touch it;
//   - the set has a fixed number of slots, one page array each in the back end, so
//     concurrent populations never share scratch memory; when every slot is taken a
//     new populator waits like a conflicting one.
// Every member runs under the index lock.
#pragma once

#include "bitmap.hpp"

#include <cstdint>

namespace pcpu {

/// populating_set<Node, N> - at most N registered ranges [begin, end) of chunk pages.
template <class Node, unsigned N>
class populating_set {
public:
    static constexpr unsigned capacity = N;
    struct range {
        const Node* chunk = nullptr; ///< nullptr: the slot is free
        std::uint32_t begin = 0, end = 0;
    };

    /// conflicts(c, b, e) - an unpopulated page of [b, e) of c lies in a registered
    /// range: whoever registered it populates it.
    bool conflicts(const Node& c, std::uint32_t b, std::uint32_t e) const noexcept {
        for (const range& r : slots_) {
            if (r.chunk != &c) continue;
            const std::uint32_t lo = r.begin > b ? r.begin : b, hi = r.end < e ? r.end : e;
            if (lo < hi && !bitmap::all_set(c.chunk.populated_map(), lo, hi)) return true;
        }
        return false;
    }
    /// add(c, b, e) - register [b, e) of c; the slot it took (1..N: slot 0 is the
    /// sleeping lock holder's page array), or 0 if every slot is taken.
    unsigned add(const Node& c, std::uint32_t b, std::uint32_t e) noexcept {
        for (unsigned i = 0; i < N; ++i) {
            if (slots_[i].chunk != nullptr) continue;
            slots_[i] = range{&c, b, e};
            ++nr_;
            return i + 1;
        }
        return 0;
    }
    /// remove(slot) - the range add() returned slot for is populated (or given up).
    void remove(unsigned slot) noexcept {
        slots_[slot - 1] = range{};
        --nr_;
    }
    unsigned size() const noexcept { return nr_; }
    bool full() const noexcept { return nr_ == N; }
    template <class F>
    void for_each(F&& f) const noexcept {
        for (const range& r : slots_)
            if (r.chunk != nullptr) f(r);
    }

private:
    range slots_[N];
    unsigned nr_ = 0;
};

/// populating_set<Node, 0> - the platform has no population event: population stays
/// under the sleeping lock and nothing is registered.
template <class Node>
class populating_set<Node, 0> {
public:
    static constexpr unsigned capacity = 0;
    unsigned size() const noexcept { return 0; }
    template <class F>
    void for_each(F&&) const noexcept {}
};

} // namespace pcpu
