// SPDX-License-Identifier: MIT
// pcpu/debug/context_checker.hpp - proves at run time that no platform callback ever
// receives a wider allocation context than the caller gave.
//
// This is why pcpu exists. In Linux a GFP_NOIO caller of alloc_percpu() could still
// get GFP_KERNEL allocations deep inside chunk population (the temporary page array,
// the page tables vmap allocates) and deadlock against its own IO. pcpu passes the
// caller's effective context to every callback; this wrapper checks that it did:
//
//   - the allocator brackets each public operation with op_begin(effective) and
//     op_end(); the checker keeps those on a small per-thread stack;
//   - every callback that receives a context (each one that can allocate or block,
//     and scope_apply: callback_takes_context(), from PCPU_PLATFORM_CONTRACT) must
//     receive one within the operation's, and the backing allocators must never see
//     nofail. The checker takes the context even where the inner platform declares a
//     blocking member without it, so it sees every one;
//   - map() must run under the operation's implicit scope, because a real MMU
//     allocates page tables inside it with a mask no argument reaches: the checker
//     reads the platform's current_scope() inside the call;
//   - an operation that may not block must call nothing that sleeps (the sleeping
//     lock, any allocation, any mapping or unmapping);
//   - nothing that sleeps may be called with the index lock (pcpu_lock, a spinlock
//     in the kernel) held, and neither lock may be taken twice by one thread;
//   - every callback except the ones free() and the lock paths use (index_lock,
//     index_unlock, warn, this_cpu, current_scope, request_balance,
//     background_context: callback_in_op() is false) belongs to an operation, and an
//     operation leaves the locks and the scope as it found them.
// It is the lockdep fs_reclaim annotation of this allocator, made exact because the
// context is an argument here rather than a task flag.
//
// A violation is counted, its message kept (the last kept_violations of them, in
// fixed buffers), passed to the inner platform's warn() if it has one, then to the
// violation handler, which by default prints it (hosted builds) and aborts. Tests
// install record_only, or their own handler, and assert on violations().
//
// The checker also counts every callback and, for those that receive a context, how
// often each distinct context arrived and the widest one, so a test can say "map ran
// three times, always within noio".
//
// Threads. The operation stack and the lock depths are per thread: pcpu calls every
// callback of an operation on the thread that began it, and other threads (a free()
// from another CPU, a concurrent allocation waiting on the sleeping lock) must not
// see them. Hosted builds keep them in thread_local storage (a few slots per thread,
// one per checker in use). Define PCPU_NO_THREAD_LOCAL for firmware without TLS: the
// stack then lives in the checker itself, which is exact as long as one task at a
// time performs operations (interrupts nest on it like operations do). Counters and
// messages are shared; they are updated with atomics and a small spinlock, so read
// violation(i) and the tables when the threads under test are quiescent.
//
// No heap, no exceptions, no RTTI, no <mutex>: this header builds for arm-none-eabi.
// (Cortex-M0 has no 32-bit atomic read-modify-write instructions; there the counters
// link against libatomic or the application's __atomic_* helpers.)
#pragma once

#include "../config.hpp"
#include "../context.hpp"
#include "../detail/format.hpp"
#include "../platform.hpp"
#include "platform_wrapper.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <utility>

#if !defined(PCPU_NO_STDIO)
#include <cstdio>
#endif

namespace pcpu::debug {

namespace detail {

/// same_context(a, b) - equality through the partial order: context types need not
/// have operator== (context_traits is all pcpu asks of them).
template <class Ctx>
constexpr bool same_context(Ctx a, Ctx b) noexcept {
    return pcpu::within(a, b) && pcpu::within(b, a);
}

/// preset_name(c) - the preset c equals ("noio"), or nullptr. Any context type knows
/// full and noio through its traits; gfp knows all five.
template <class Ctx>
const char* preset_name(Ctx c) noexcept {
    using t = context_traits<Ctx>;
    if (same_context(c, t::full())) return "full";
    if (same_context(c, t::noio())) return "noio";
    return nullptr;
}
inline const char* preset_name(gfp c) noexcept {
    if (c == ctx::full) return "full";
    if (c == ctx::nofs) return "nofs";
    if (c == ctx::noio) return "noio";
    if (c == ctx::nowait) return "nowait";
    if (c == ctx::atomic) return "atomic";
    return nullptr;
}

/// join(a, b) - the narrowest context that both a and b are within, for "the widest
/// context a callback ever received". context_traits has no join, so a foreign
/// context type gets an approximation (the wider one if they are ordered, else the
/// first); the per-context counts are exact whatever the type.
template <class Ctx>
Ctx join(Ctx a, Ctx b) noexcept {
    return pcpu::within(a, b) ? b : a;
}
/// join(a, b) for gfp: permissions of either, restrictions of both.
inline gfp join(gfp a, gfp b) noexcept {
    const unsigned perm = static_cast<unsigned>(a.bits | b.bits) & gfp::permission_bits;
    const unsigned restr = static_cast<unsigned>(a.bits & b.bits) & gfp::restriction_bits;
    return gfp{static_cast<std::uint8_t>(perm | restr)};
}

/// spinlock - guards the checker's shared tables. try_lock() gives up after `spins`
/// attempts: a violation reported from an interrupt that arrived while its own CPU
/// held the lock must not deadlock the checker, it only loses that record.
class spinlock {
public:
    bool try_lock(std::uint32_t spins) noexcept {
        for (;;) {
            if (!flag_.test_and_set(std::memory_order_acquire)) return true;
            if (spins-- == 0) return false;
        }
    }
    void unlock() noexcept { flag_.clear(std::memory_order_release); }

private:
    std::atomic_flag flag_ = ATOMIC_FLAG_INIT;
};

/// context_table_of(k) - k's table of received contexts: the number of callbacks
/// before k that receive one; -1 if k receives none.
constexpr int context_table_of(callback k) noexcept {
    if (!callback_takes_context(k)) return -1;
    int t = 0;
    for (std::size_t i = 0; i < callback_index(k); ++i) t += callback_takes_context(static_cast<callback>(i)) ? 1 : 0;
    return t;
}

} // namespace detail

/// context_checker<Inner> - a platform that forwards to Inner and checks every callback
/// against the context of the operation it belongs to. See the file comment.
///
/// Use it in place of the platform: pcpu::allocator<context_checker<my_platform>,
/// lazy_mapped>; reach the real platform through inner().
template <class Inner>
class context_checker : public platform_wrapper<Inner> {
    using base = platform_wrapper<Inner>;
    using ptraits = platform_traits<Inner>;

public:
    using context = typename base::context;
    using ctx_traits = context_traits<context>;
    /// violation_handler - called with every violation message and the user pointer
    /// given to set_violation_handler(). May return (the checker then carries on and
    /// forwards the call) or not.
    using violation_handler = void (*)(const char* msg, void* user);

    /// deepest operation nesting tracked per thread (an interrupt's free() inside an
    /// allocation nests; nothing in pcpu nests deeper than that).
    static constexpr std::size_t max_op_depth = 8;
    /// violation messages kept: the most recent ones.
    static constexpr std::size_t kept_violations = 4;
    static constexpr std::size_t message_size = 200;
    /// distinct contexts counted per callback; more are folded into widest().
    static constexpr std::size_t contexts_per_callback = 8;

    using base::base;
    ~context_checker() { release_thread_state(); }
    context_checker(const context_checker&) = delete;
    context_checker& operator=(const context_checker&) = delete;

    // ---- Violation handling ------------------------------------------------------

    /// abort_handler - the default: print the message (unless PCPU_NO_STDIO) and abort.
    static void abort_handler(const char* msg, void* user) noexcept {
        (void)user;
#if !defined(PCPU_NO_STDIO)
        std::fputs(msg, stderr);
        std::fputc('\n', stderr);
#else
        (void)msg;
#endif
        std::abort();
    }
    /// record_only - a handler that does nothing: the violation is only counted and
    /// kept, for tests that assert on violations().
    static void record_only(const char* msg, void* user) noexcept { (void)msg, (void)user; }

    /// set_violation_handler(h, user) - h(msg, user) runs on every violation; nullptr
    /// restores abort_handler.
    void set_violation_handler(violation_handler h, void* user = nullptr) noexcept {
        handler_ = h != nullptr ? h : &abort_handler;
        user_ = user;
    }

    /// violations() - violations since construction or clear_violations().
    std::size_t violations() const noexcept { return nr_violations_.load(std::memory_order_relaxed); }
    /// violation(i) - the message of violation i (0 = the first since the last clear),
    /// or "" if it is not among the last kept_violations.
    const char* violation(std::size_t i) const noexcept {
        if (i >= violations()) return "";
        const std::size_t slot = i % kept_violations;
        return seq_[slot] == i + 1 ? messages_[slot] : "";
    }
    /// last_violation() - the most recent message, or "" if there was none.
    const char* last_violation() const noexcept {
        const std::size_t n = violations();
        return n == 0 ? "" : violation(n - 1);
    }
    void clear_violations() noexcept {
        lock_record();
        for (std::size_t i = 0; i < kept_violations; ++i) {
            seq_[i] = 0;
            messages_[i][0] = '\0';
        }
        nr_violations_.store(0, std::memory_order_relaxed);
        unlock_record();
    }

    // ---- Call statistics ---------------------------------------------------------

    /// calls(k) - how many times pcpu called member k (op_begin/op_end included).
    std::uint32_t calls(callback k) const noexcept {
        return calls_[callback_index(k)].load(std::memory_order_relaxed);
    }
    /// calls(k, c) - how many times member k received exactly context c; 0 for members
    /// that take no context.
    std::uint32_t calls(callback k, context c) const noexcept {
        const int t = table_of(k);
        return t < 0 ? 0 : count_in(tables_[t], c);
    }
    /// widest(k) - the narrowest context every context k received is within (for
    /// gfp; see detail::join for other types). A default context if k never ran.
    context widest(callback k) const noexcept {
        const int t = table_of(k);
        return t < 0 ? context{} : widest_in(tables_[t]);
    }
    /// all_within(k, bound) - every context member k received was within bound
    /// (vacuously true if k never ran or takes no context).
    bool all_within(callback k, context bound) const noexcept {
        const int t = table_of(k);
        return t < 0 || all_within_in(tables_[t], bound);
    }
    /// map_scope_calls(s), widest_map_scope(), map_scopes_within(bound) - the same
    /// for the implicit scope in force during map().
    std::uint32_t map_scope_calls(context s) const noexcept { return count_in(tables_[map_scope_table], s); }
    context widest_map_scope() const noexcept { return widest_in(tables_[map_scope_table]); }
    bool map_scopes_within(context bound) const noexcept { return all_within_in(tables_[map_scope_table], bound); }
    /// lost_records() - records dropped because the table lock stayed busy (see
    /// detail::spinlock); 0 unless an interrupt reported a violation mid-update.
    std::uint32_t lost_records() const noexcept { return lost_.load(std::memory_order_relaxed); }
    void clear_calls() noexcept {
        lock_record();
        for (auto& c : calls_) c.store(0, std::memory_order_relaxed);
        for (auto& t : tables_) t = ctx_table{};
        unlock_record();
    }

    // ---- The calling thread's state ----------------------------------------------

    /// op_depth() - operations open on the calling thread.
    std::size_t op_depth() const noexcept {
        const thread_state* s = find_state();
        return s == nullptr ? 0 : s->depth;
    }
    /// op_context() - the innermost open operation's context on the calling thread,
    /// or the full context outside any operation.
    context op_context() const noexcept {
        const thread_state* s = find_state();
        const op_frame* f = s == nullptr ? nullptr : top(*s);
        return f == nullptr ? ctx_traits::full() : f->ctx;
    }
    /// index_lock_depth() - how often the calling thread holds the index lock.
    std::size_t index_lock_depth() const noexcept {
        const thread_state* s = find_state();
        return s == nullptr ? 0 : s->index_depth;
    }

    // ---- Operation brackets ------------------------------------------------------

    /// op_begin(effective) - a public operation starts; its callbacks must stay within
    /// effective. Also forwarded to Inner if it has op_begin (checkers stack).
    void op_begin(context effective) noexcept {
        count(callback::op_begin);
        record(table_of(callback::op_begin), effective);
        thread_state& s = state();
        if (s.depth < max_op_depth) {
            s.frames[s.depth] = op_frame{effective, scope_now(), s.index_depth, s.slow_depth};
        } else {
            pcpu::detail::message<message_size> m;
            m << prefix << "operations nested deeper than " << static_cast<unsigned>(max_op_depth)
              << ": the innermost ones are checked against the deepest tracked";
            report(m.c_str());
        }
        ++s.depth;
        if constexpr (ptraits::template has<pcpu::detail::has_op_begin>) this->inner().op_begin(effective);
    }

    /// op_end() - the innermost operation ends. It must leave both locks and the
    /// implicit scope as op_begin found them.
    void op_end() noexcept {
        count(callback::op_end);
        thread_state& s = state();
        if (s.depth == 0) {
            pcpu::detail::message<message_size> m;
            m << prefix << "op_end without op_begin";
            report(m.c_str());
        } else {
            --s.depth;
            if (s.depth < max_op_depth) {
                const op_frame f = s.frames[s.depth];
                if (s.index_depth != f.index_depth) report_depth("index lock", s.index_depth, f.index_depth);
                if (s.slow_depth != f.slow_depth) report_depth("sleeping lock", s.slow_depth, f.slow_depth);
                if constexpr (ptraits::template has<pcpu::detail::has_current_scope>) {
                    const context now = scope_now();
                    if (!detail::same_context(now, f.scope)) {
                        pcpu::detail::message<message_size> m;
                        m << prefix << "op_end with the implicit scope ";
                        put_context(m, now, false);
                        m << ", not restored to ";
                        put_context(m, f.scope, false);
                        report(m.c_str());
                    }
                }
            }
        }
        if constexpr (ptraits::template has<pcpu::detail::has_op_end>) this->inner().op_end();
    }

    // ---- Checked callbacks ---------------------------------------------------------
    // One per row of PCPU_PLATFORM_CONTRACT; each exists exactly when Inner's does
    // (see platform_wrapper), and runs checked() before forwarding.
#define PCPU_DETAIL_CHECKED_HOOK(name, received) this->checked(callback::name, received);
#define PCPU_DETAIL_CHECKED(name, sig, ctx, blocks, backing, in_op, need) \
    PCPU_DEBUG_FORWARDER(name, sig, ctx, PCPU_DETAIL_CHECKED_HOOK)
    PCPU_PLATFORM_CONTRACT(PCPU_DETAIL_CHECKED)
#undef PCPU_DETAIL_CHECKED
#undef PCPU_DETAIL_CHECKED_HOOK

private:
    static constexpr const char* prefix = "pcpu context checker: ";
    static constexpr std::uint32_t record_spins = std::uint32_t{1} << 26;

    /// op_frame - one open operation: its context, and the state op_end must find
    /// again (implicit scope, lock depths).
    struct op_frame {
        context ctx;
        context scope;
        std::size_t index_depth;
        std::size_t slow_depth;
    };
    struct thread_state {
        const void* owner = nullptr;
        std::size_t depth = 0; ///< open operations; frames beyond max_op_depth are not kept
        std::size_t index_depth = 0;
        std::size_t slow_depth = 0;
        op_frame frames[max_op_depth];
        bool idle() const noexcept { return depth == 0 && index_depth == 0 && slow_depth == 0; }
    };

    struct ctx_count {
        context ctx;
        std::uint32_t count;
    };
    /// ctx_table - the contexts one callback received.
    struct ctx_table {
        ctx_count entries[contexts_per_callback];
        std::uint32_t used = 0;
        std::uint32_t untracked = 0; ///< calls whose context found no free entry
        context widest{};
        bool any = false;
    };
    // Tables: one per callback that receives a context (callback_takes_context: the
    // members that allocate or block, scope_apply and op_begin, whose context is each
    // operation's effective one), in callback order, then the scope seen by map().
    static constexpr int table_of(callback k) noexcept { return detail::context_table_of(k); }
    static constexpr int map_scope_table = detail::context_table_of(callback::op_begin) + 1;
    static constexpr int nr_tables = map_scope_table + 1;
    // ---- Per-thread state ----

#if !defined(PCPU_NO_THREAD_LOCAL)
    static constexpr std::size_t thread_slots = 4;
    struct tls_block {
        thread_state slots[thread_slots];
        thread_state overflow;
    };
    static tls_block& tls() noexcept {
        static thread_local tls_block block;
        return block;
    }
    /// state() - the calling thread's state for this checker. A slot that is idle may
    /// be taken over from another checker: it holds nothing worth keeping.
    thread_state& state() noexcept {
        tls_block& b = tls();
        thread_state* spare = nullptr;
        for (thread_state& s : b.slots) {
            if (s.owner == this) return s;
            if (spare == nullptr && (s.owner == nullptr || s.idle())) spare = &s;
        }
        if (spare == nullptr) {
            pcpu::detail::message<message_size> m;
            m << prefix << "more than " << static_cast<unsigned>(thread_slots)
              << " checkers are inside operations on one thread: their stacks are shared";
            report(m.c_str());
            spare = &b.overflow;
        }
        *spare = thread_state{};
        spare->owner = this;
        return *spare;
    }
    const thread_state* find_state() const noexcept {
        for (const thread_state& s : tls().slots)
            if (s.owner == this) return &s;
        return nullptr;
    }
    void release_thread_state() noexcept {
        for (thread_state& s : tls().slots)
            if (s.owner == this) s = thread_state{};
    }
#else
    thread_state state_{};
    thread_state& state() noexcept { return state_; }
    const thread_state* find_state() const noexcept { return &state_; }
    void release_thread_state() noexcept {}
#endif

    static const op_frame* top(const thread_state& s) noexcept {
        if (s.depth == 0) return nullptr;
        return &s.frames[(s.depth < max_op_depth ? s.depth : max_op_depth) - 1];
    }
    context scope_now() noexcept { return ptraits::current_scope(this->inner()); }

    // ---- The checks ----

    /// enter(k, received) - count k, check it against the calling thread's innermost
    /// operation, and record the context it received (nullptr: none).
    thread_state& enter(callback k, const context* received) noexcept {
        count(k);
        thread_state& s = state();
        const op_frame* f = top(s);
        if (f == nullptr && callback_in_op(k)) {
            pcpu::detail::message<message_size> m;
            m << prefix << callback_name(k) << " called outside an operation";
            if (received != nullptr) {
                m << " (received ";
                put_context(m, *received, false);
                m << ")";
            }
            report(m.c_str());
        }
        if (f != nullptr && callback_blocks(k) && !ctx_traits::may_block(f->ctx)) {
            pcpu::detail::message<message_size> m;
            m << prefix << "blocking callback " << callback_name(k) << " under an atomic context: the caller's ";
            put_context(m, f->ctx, true);
            report(m.c_str());
        }
        if (callback_blocks(k) && s.index_depth != 0) {
            pcpu::detail::message<message_size> m;
            m << prefix << "blocking callback " << callback_name(k)
              << " under the index lock: it must be dropped before anything that can sleep";
            report(m.c_str());
        }
        if (received != nullptr) {
            if (f != nullptr && !pcpu::within(*received, f->ctx)) {
                pcpu::detail::message<message_size> m;
                m << prefix << callback_name(k) << " received ";
                put_context(m, *received, false);
                m << ", wider than the caller's ";
                put_context(m, f->ctx, true);
                report(m.c_str());
            }
            if (callback_backing(k) && !detail::same_context(ctx_traits::for_backing(*received), *received)) {
                pcpu::detail::message<message_size> m;
                m << prefix << callback_name(k) << " received ";
                put_context(m, *received, false);
                m << ": nofail is never passed to a backing allocator";
                report(m.c_str());
            }
            record(table_of(k), *received);
        }
        return s;
    }

    /// checked(k, received) - enter(), then what k itself must respect: neither lock is
    /// taken twice or released unheld by one thread, and map() runs under the
    /// operation's implicit scope, because a real MMU allocates page tables in there
    /// without looking at the context, so only the scope that pcpu opened around the
    /// call keeps them within the caller's context.
    void checked(callback k, const context* received) noexcept {
        thread_state& s = enter(k, received);
        switch (k) {
        case callback::index_lock:
            if (s.index_depth != 0) report_plain(k, " taken again by the thread that holds it");
            ++s.index_depth;
            break;
        case callback::index_unlock:
            if (s.index_depth == 0) report_plain(k, " by a thread that does not hold the index lock");
            else --s.index_depth;
            break;
        case callback::slow_lock:
            if (s.slow_depth != 0) report_plain(k, " taken again by the thread that holds it");
            ++s.slow_depth;
            break;
        case callback::slow_unlock:
            if (s.slow_depth == 0) report_plain(k, " by a thread that does not hold the sleeping lock");
            else --s.slow_depth;
            break;
        case callback::map:
            if constexpr (ptraits::template has<pcpu::detail::has_current_scope>) {
                const context scope = scope_now();
                record(map_scope_table, scope);
                const op_frame* f = top(s);
                if (f != nullptr && !pcpu::within(scope, ctx_traits::scope_of(f->ctx))) {
                    pcpu::detail::message<message_size> m;
                    m << prefix << "map ran under the implicit scope ";
                    put_context(m, scope, false);
                    m << ", wider than the caller's ";
                    put_context(m, f->ctx, true);
                    m << ": the scope was not opened";
                    report(m.c_str());
                }
            }
            break;
        default:
            break;
        }
    }

    void count(callback k) noexcept { calls_[callback_index(k)].fetch_add(1, std::memory_order_relaxed); }

    template <std::size_t N>
    static void put_context(pcpu::detail::message<N>& m, context c, bool with_preset) noexcept {
        char buf[64];
        m << ctx_traits::describe(c, buf, sizeof buf);
        if (with_preset) {
            if (const char* name = detail::preset_name(c)) m << " (" << name << ")";
        }
    }
    void report_plain(callback k, const char* what) noexcept {
        pcpu::detail::message<message_size> m;
        m << prefix << callback_name(k) << what;
        report(m.c_str());
    }
    void report_depth(const char* lock, std::size_t now, std::size_t then) noexcept {
        pcpu::detail::message<message_size> m;
        m << prefix << "op_end with the " << lock << (now > then ? " still held" : " released more than taken")
          << " (depth " << now << ", "
          << then << " at op_begin)";
        report(m.c_str());
    }

    /// report(msg) - count, keep, warn, then hand to the handler (which may abort).
    void report(const char* msg) noexcept {
        const std::size_t n = nr_violations_.fetch_add(1, std::memory_order_relaxed);
        if (lock_.try_lock(record_spins)) {
            const std::size_t slot = n % kept_violations;
            std::size_t i = 0;
            for (; i + 1 < message_size && msg[i] != '\0'; ++i) messages_[slot][i] = msg[i];
            messages_[slot][i] = '\0';
            seq_[slot] = n + 1;
            lock_.unlock();
        } else {
            lost_.fetch_add(1, std::memory_order_relaxed);
        }
        ptraits::warn(this->inner(), msg);
        handler_(msg, user_);
    }

    void lock_record() const noexcept {
        while (!lock_.try_lock(record_spins)) {
        }
    }
    void unlock_record() const noexcept { lock_.unlock(); }

    void record(int t, context c) noexcept {
        if (!lock_.try_lock(record_spins)) {
            lost_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        ctx_table& tab = tables_[t];
        bool found = false;
        for (std::uint32_t i = 0; i < tab.used && !found; ++i) {
            if (detail::same_context(tab.entries[i].ctx, c)) {
                ++tab.entries[i].count;
                found = true;
            }
        }
        if (!found) {
            if (tab.used < contexts_per_callback) tab.entries[tab.used++] = ctx_count{c, 1};
            else ++tab.untracked;
        }
        tab.widest = tab.any ? detail::join(tab.widest, c) : c;
        tab.any = true;
        lock_.unlock();
    }
    std::uint32_t count_in(const ctx_table& tab, context c) const noexcept {
        lock_record();
        std::uint32_t n = 0;
        for (std::uint32_t i = 0; i < tab.used; ++i)
            if (detail::same_context(tab.entries[i].ctx, c)) n = tab.entries[i].count;
        unlock_record();
        return n;
    }
    context widest_in(const ctx_table& tab) const noexcept {
        lock_record();
        const context w = tab.widest;
        unlock_record();
        return w;
    }
    bool all_within_in(const ctx_table& tab, context bound) const noexcept {
        lock_record();
        bool ok = tab.untracked == 0 || pcpu::within(tab.widest, bound);
        for (std::uint32_t i = 0; i < tab.used; ++i) ok = ok && pcpu::within(tab.entries[i].ctx, bound);
        unlock_record();
        return ok;
    }

    violation_handler handler_ = &abort_handler;
    void* user_ = nullptr;
    std::atomic<std::size_t> nr_violations_{0};
    std::atomic<std::uint32_t> lost_{0};
    std::atomic<std::uint32_t> calls_[nr_callbacks] = {};
    mutable detail::spinlock lock_;
    std::size_t seq_[kept_violations] = {}; ///< violation number + 1 kept in each slot; 0: none
    char messages_[kept_violations][message_size] = {};
    ctx_table tables_[nr_tables] = {};
};

} // namespace pcpu::debug
