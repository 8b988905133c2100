// SPDX-License-Identifier: MIT
// pcpu/internal/chunk_index.hpp - the address-ordered index of dynamic chunks: which chunk holds
// an address, for free(), in O(log chunks) whatever the number of chunks.
//
// The kernel finds a chunk from an address in O(1) through the page (the vmalloc area
// records its owner); pcpu's platforms need not have a page structure, so the index
// is an AVL tree threaded through the chunks themselves (chunk_index_link, a base of
// the allocator's chunk node). Intrusive, so it never allocates: inserting at chunk
// adoption, removing at chunk removal and looking up in free() all run under the
// index lock in any context, atomic and ISR included, and static_only (no dynamic
// chunk) carries an empty root and nothing else. Its metadata is five words per
// chunk (two links, a copy of the range and a height).
//
// Bound. An AVL tree of n nodes is at most h(n) high, where h(n) is the largest h
// with N(h) <= n for N(0) = 0, N(1) = 1, N(h) = N(h-1) + N(h-2) + 1 (the sparsest
// AVL trees), i.e. h(n) < 1.4405 log2(n + 2): a lookup visits at most h(n) chunks
// (11 for 256 chunks, 15 for 2,048). Insert and remove are O(h(n)) too.
#pragma once

#include "../config.hpp"
#include "fit_counters.hpp"

#include <cstddef>
#include <cstdint>

namespace pcpu {

/// chunk_index_link - the index's links, a base of every indexed node.
struct chunk_index_link {
    chunk_index_link* idx_left = nullptr;
    chunk_index_link* idx_right = nullptr;
    // The node's range, copied at insertion so a lookup reads one cache line per node.
    std::uintptr_t idx_begin = 0;
    std::uintptr_t idx_end = 0;
    int idx_height = 0; ///< of the subtree rooted here, 1 for a leaf
};

/// avl_max_height(n) - h(n) above: the most nodes a lookup visits among n.
constexpr std::uint32_t avl_max_height(std::size_t n) noexcept {
    std::size_t sparse_prev = 0, sparse = 1; // N(h - 1), N(h)
    std::uint32_t h = 1;
    if (n == 0) return 0;
    while (true) {
        const std::size_t next = sparse + sparse_prev + 1;
        if (next > n) return h;
        sparse_prev = sparse;
        sparse = next;
        ++h;
    }
}

/// chunk_index<Node> - an AVL tree of Nodes (each a chunk_index_link with
/// std::uintptr_t members usable_begin and usable_end: disjoint, non-empty address
/// ranges) ordered by usable_begin. Every member runs under the index lock.
template <class Node>
class chunk_index {
public:
    /// insert(n) - add n (not in the index). O(h(size)).
    void insert(Node& n) noexcept {
        n.idx_left = n.idx_right = nullptr;
        n.idx_begin = n.usable_begin;
        n.idx_end = n.usable_end;
        n.idx_height = 1;
        root_ = insert_at(root_, n);
        ++size_;
    }
    /// remove(n) - take n (in the index) out. O(h(size)).
    void remove(Node& n) noexcept {
        PCPU_ASSERT(size_ != 0);
        root_ = remove_at(root_, key(n));
        n.idx_left = n.idx_right = nullptr;
        n.idx_height = 0;
        --size_;
    }
    /// find(addr) - the node whose [usable_begin, usable_end) holds addr, or nullptr.
    /// Visits at most h(size()) nodes (counted as chunk_lookup_probes with the
    /// find-fit debug counters on).
    Node* find(std::uintptr_t addr) const noexcept {
        chunk_index_link* t = root_;
        chunk_index_link* best = nullptr; // the node with the greatest begin <= addr so far
        while (t != nullptr) {
            PCPU_FIND_FIT_COUNT(++detail::fit_counts.chunk_lookup_probes);
            if (addr < t->idx_begin) {
                t = t->idx_left;
            } else {
                best = t;
                t = t->idx_right;
            }
        }
        if (best == nullptr || addr >= best->idx_end) return nullptr;
        return static_cast<Node*>(best);
    }
    std::size_t size() const noexcept { return size_; }
    int height() const noexcept { return h(root_); }

    /// verify() - the tree is ordered, balanced and its heights are right (O(size)).
    bool verify() const noexcept {
        std::size_t count = 0;
        return check(root_, 0, ~std::uintptr_t{0}, count) >= 0 && count == size_;
    }

private:
    static std::uintptr_t key(const chunk_index_link& l) noexcept { return l.idx_begin; }
    static const Node& node(const chunk_index_link& l) noexcept { return static_cast<const Node&>(l); }
    static int h(const chunk_index_link* t) noexcept { return t != nullptr ? t->idx_height : 0; }
    static void fix(chunk_index_link* t) noexcept {
        const int l = h(t->idx_left), r = h(t->idx_right);
        t->idx_height = (l > r ? l : r) + 1;
    }
    static chunk_index_link* rotate_right(chunk_index_link* t) noexcept {
        chunk_index_link* l = t->idx_left;
        if (l == nullptr) return t; // never: balance() rotates towards the taller side
        t->idx_left = l->idx_right;
        l->idx_right = t;
        fix(t);
        fix(l);
        return l;
    }
    static chunk_index_link* rotate_left(chunk_index_link* t) noexcept {
        chunk_index_link* r = t->idx_right;
        if (r == nullptr) return t; // never, as above
        t->idx_right = r->idx_left;
        r->idx_left = t;
        fix(t);
        fix(r);
        return r;
    }
    /// balance(t) - restore the AVL condition at t, whose subtrees are AVL trees
    /// differing in height by at most 2. Returns the subtree's new root.
    static chunk_index_link* balance(chunk_index_link* t) noexcept {
        fix(t);
        const int d = h(t->idx_left) - h(t->idx_right);
        if (d > 1) {
            if (h(t->idx_left->idx_left) < h(t->idx_left->idx_right)) t->idx_left = rotate_left(t->idx_left);
            return rotate_right(t);
        }
        if (d < -1) {
            if (h(t->idx_right->idx_right) < h(t->idx_right->idx_left)) t->idx_right = rotate_right(t->idx_right);
            return rotate_left(t);
        }
        return t;
    }
    static chunk_index_link* insert_at(chunk_index_link* t, Node& n) noexcept {
        if (t == nullptr) return &n;
        if (key(n) < key(*t))
            t->idx_left = insert_at(t->idx_left, n);
        else
            t->idx_right = insert_at(t->idx_right, n);
        return balance(t);
    }
    /// remove_min(t, min) - t without its leftmost node, which is returned in min.
    static chunk_index_link* remove_min(chunk_index_link* t, chunk_index_link*& min) noexcept {
        if (t->idx_left == nullptr) {
            min = t;
            return t->idx_right;
        }
        t->idx_left = remove_min(t->idx_left, min);
        return balance(t);
    }
    static chunk_index_link* remove_at(chunk_index_link* t, std::uintptr_t k) noexcept {
        PCPU_ASSERT(t != nullptr);
        if (k < key(*t)) {
            t->idx_left = remove_at(t->idx_left, k);
        } else if (k > key(*t)) {
            t->idx_right = remove_at(t->idx_right, k);
        } else {
            if (t->idx_left == nullptr) return t->idx_right;
            if (t->idx_right == nullptr) return t->idx_left;
            chunk_index_link* min = nullptr;
            chunk_index_link* right = remove_min(t->idx_right, min);
            min->idx_right = right;
            min->idx_left = t->idx_left;
            t = min;
        }
        return balance(t);
    }
    /// check(t, lo, hi, count) - height of t if it is a valid AVL subtree with every
    /// range inside [lo, hi), else -1.
    static int check(const chunk_index_link* t, std::uintptr_t lo, std::uintptr_t hi, std::size_t& count) noexcept {
        if (t == nullptr) return 0;
        const Node& n = node(*t);
        if (t->idx_begin != n.usable_begin || t->idx_end != n.usable_end) return -1;
        if (n.usable_begin < lo || n.usable_end > hi || n.usable_begin >= n.usable_end) return -1;
        ++count;
        const int l = check(t->idx_left, lo, n.usable_begin, count);
        const int r = check(t->idx_right, n.usable_end, hi, count);
        if (l < 0 || r < 0 || l - r > 1 || r - l > 1) return -1;
        const int ht = (l > r ? l : r) + 1;
        return ht == t->idx_height ? ht : -1;
    }

    chunk_index_link* root_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace pcpu
