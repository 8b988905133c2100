// SPDX-License-Identifier: MIT
// pcpu/detail/list.hpp - intrusive circular doubly-linked list (list_head).
//
// Chunks move between slot lists on every allocation that changes their largest free
// region, so moving must be O(1) and allocation-free: each chunk carries its own link.
#pragma once

namespace pcpu::detail {

/// list_link - a node, or the head of a list when used as a sentinel. An unlinked node
/// points at itself, so unlink() of an unlinked node is harmless.
struct list_link {
    list_link* prev = this;
    list_link* next = this;

    list_link() noexcept = default;
    list_link(const list_link&) = delete;
    list_link& operator=(const list_link&) = delete;

    bool empty() const noexcept { return next == this; }
    bool linked() const noexcept { return next != this; }

    void unlink() noexcept {
        prev->next = next;
        next->prev = prev;
        prev = next = this;
    }
    /// push_front/push_back(n) - insert n (unlinked) right after/before this head.
    void push_front(list_link& n) noexcept { insert_between(n, this, next); }
    void push_back(list_link& n) noexcept { insert_between(n, prev, this); }

private:
    static void insert_between(list_link& n, list_link* p, list_link* nx) noexcept {
        n.prev = p;
        n.next = nx;
        p->next = &n;
        nx->prev = &n;
    }
};

} // namespace pcpu::detail
