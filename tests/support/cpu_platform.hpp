// SPDX-License-Identifier: MIT
// tests/support/cpu_platform.hpp - static_only platforms with a running CPU, for the
// typed-handle, this-CPU and counter tests, in the three this-CPU guard flavours:
//
//   guard_kind::none     no guard: this-CPU operations are relaxed atomics (hosts)
//   guard_kind::preempt  preempt_disable()/preempt_enable()
//   guard_kind::irq      irq_save()/irq_restore(token)
//
// The running CPU is per thread: set_cpu(c) pins the calling thread to simulated CPU
// c. In the guarded flavours a guard really excludes every other thread of the same
// simulated CPU (one mutex per CPU), which is what preemption and interrupt masking
// give on one core, so concurrency tests exercise the plain load/store path honestly.
// A `migrate` mode makes every this_cpu() call of a thread return the next CPU, the
// worst case for the unguarded path: the task "moves" between choosing a copy and
// updating it on every single operation.
//
// Misuse is recorded, not crashed on: a guard released by another thread or out of
// order, an irq token that does not match, this_cpu() outside [0, nr_cpus).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace pcpu_test {

enum class guard_kind { none, preempt, irq };

/// cpu_state - shared by every platform object of one test (the allocator holds its
/// platform by value), reset by each test.
struct cpu_state {
    static constexpr unsigned max_cpus = 8;
    unsigned nr_cpus = 4;
    bool migrate = false;
    std::mutex cpu_mu[max_cpus];
    std::mutex index_mu;
    std::atomic<long> guards_entered{0};
    std::atomic<long> guards_left{0};
    std::atomic<long> this_cpu_calls{0};
    std::atomic<long> bugs{0};
    std::mutex bug_mu;
    std::vector<std::string> bug_log;

    void bug(const char* what) {
        ++bugs;
        std::lock_guard<std::mutex> g(bug_mu);
        bug_log.emplace_back(what);
    }
    void reset(unsigned n) {
        nr_cpus = n;
        migrate = false;
        guards_entered = 0;
        guards_left = 0;
        this_cpu_calls = 0;
        bugs = 0;
        bug_log.clear();
    }
};

inline cpu_state& cpus() {
    static cpu_state s;
    return s;
}

/// thread_cpu - the calling thread's simulated CPU and guard nesting.
struct thread_cpu {
    unsigned cpu = 0;
    unsigned migrations = 0;
    int depth = 0;        ///< guards held by this thread
    unsigned held_cpu = 0; ///< the CPU whose mutex it holds
    unsigned next_token = 1;
    unsigned expected_token = 0;
};
inline thread_cpu& tcpu() {
    thread_local thread_cpu t;
    return t;
}
inline void set_cpu(unsigned c) { tcpu().cpu = c; }

template <guard_kind Kind>
struct cpu_platform_base {
    static constexpr unsigned page_shift = 12;
    static constexpr std::size_t max_cpus = cpu_state::max_cpus;

    void index_lock() noexcept { cpus().index_mu.lock(); }
    void index_unlock() noexcept { cpus().index_mu.unlock(); }

    unsigned this_cpu() noexcept {
        ++cpus().this_cpu_calls;
        thread_cpu& t = tcpu();
        if (t.depth > 0) return t.held_cpu; // pinned while guarded
        if (cpus().migrate) return (t.cpu + t.migrations++) % cpus().nr_cpus;
        if (t.cpu >= cpus().nr_cpus) cpus().bug("this_cpu() outside [0, nr_cpus)");
        return t.cpu;
    }

protected:
    void enter() noexcept {
        thread_cpu& t = tcpu();
        if (t.depth++ == 0) {
            t.held_cpu = cpus().migrate ? (t.cpu + t.migrations++) % cpus().nr_cpus : t.cpu;
            cpus().cpu_mu[t.held_cpu].lock();
        }
        ++cpus().guards_entered;
    }
    void leave() noexcept {
        thread_cpu& t = tcpu();
        if (t.depth <= 0) {
            cpus().bug("guard released without being held");
            return;
        }
        if (--t.depth == 0) cpus().cpu_mu[t.held_cpu].unlock();
        ++cpus().guards_left;
    }
};

template <guard_kind Kind>
struct cpu_platform;

template <>
struct cpu_platform<guard_kind::none> : cpu_platform_base<guard_kind::none> {};

template <>
struct cpu_platform<guard_kind::preempt> : cpu_platform_base<guard_kind::preempt> {
    void preempt_disable() noexcept { enter(); }
    void preempt_enable() noexcept { leave(); }
};

template <>
struct cpu_platform<guard_kind::irq> : cpu_platform_base<guard_kind::irq> {
    /// irq_save() - the token is the previous nesting's expected token, so restores
    /// must come back in LIFO order with the right value.
    unsigned irq_save() noexcept {
        enter();
        thread_cpu& t = tcpu();
        const unsigned token = t.next_token++;
        const unsigned prev = t.expected_token;
        t.expected_token = token;
        saved_.push_back(prev);
        return token;
    }
    void irq_restore(unsigned token) noexcept {
        thread_cpu& t = tcpu();
        if (token != t.expected_token) cpus().bug("irq_restore with a token out of order");
        if (!saved_.empty()) {
            t.expected_token = saved_.back();
            saved_.pop_back();
        }
        leave();
    }

private:
    static inline thread_local std::vector<unsigned> saved_;
};

} // namespace pcpu_test
