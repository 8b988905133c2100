// SPDX-License-Identifier: MIT
// pcpu/detail/index_lock.hpp - the index lock (pcpu_lock) held through a guard that can
// drop it and take it again.
//
// The slow paths drop the index lock around every callback that may block (chunk
// creation, population, depopulation, TLB flushes) and take it again to record the
// result; each has several exits. With the lock in a guard, every exit releases
// exactly what is held, and a drop is visible as unlock() ... relock().
#pragma once

#include "../config.hpp"

namespace pcpu::detail {

/// index_lock<P> - holds platform P's index lock from construction until unlock() or
/// destruction; relock() takes it again. Not reentrant, like the lock itself (an
/// IRQ-safe spin lock on firmware): unlock() needs it held, relock() needs it not.
template <class P>
class index_lock {
public:
    // Always inlined: held_ then folds at each site, as hand-paired calls did (an
    // out-of-line destructor would test it at run time and cost flash on -Os).
    [[gnu::always_inline]] explicit index_lock(P& p) noexcept : p_(p) { p_.index_lock(); }
    [[gnu::always_inline]] ~index_lock() {
        if (held_) p_.index_unlock();
    }
    index_lock(const index_lock&) = delete;
    index_lock& operator=(const index_lock&) = delete;

    [[gnu::always_inline]] void unlock() noexcept {
        PCPU_ASSERT(held_);
        held_ = false;
        p_.index_unlock();
    }
    [[gnu::always_inline]] void relock() noexcept {
        PCPU_ASSERT(!held_);
        p_.index_lock();
        held_ = true;
    }
    bool held() const noexcept { return held_; }

private:
    P& p_;
    bool held_ = true;
};

} // namespace pcpu::detail
