// SPDX-License-Identifier: MIT
// tests/support/sim_platform.hpp - an instrumented platform implementing every member
// of the contract (contiguous and lazy_mapped), for the allocator's tests.
//
// It is a host platform with the safety catches on:
//
//   - Real memory with real protection, through the same primitives as
//     pcpu/platform/host.hpp (pcpu/platform/detail/host_memory.hpp). reserve() is a
//     PROT_NONE mapping and map() makes pages readable and writable, so pcpu
//     touching a page it did not populate faults on the spot instead of reading
//     someone else's data. Page "frames" are numbers from a counter; map() records
//     which frame sits at which address so unmap() can hand them back, and
//     unmapping drops the contents (DONTNEED) and the access. Fresh metadata, units
//     and mapped pages are filled with 0xA5, as a real kernel's are filled with
//     whatever was there: nothing may rely on zeroes.
//   - Bookkeeping of everything outstanding (metadata blocks and bytes, unit blocks,
//     reservations, frames, mapped pages), so a test can assert leaks() == false
//     after teardown or after a failed operation, and of misuse pcpu could commit
//     (freeing what it does not own, mapping over a mapping, releasing address space
//     that still has pages, a blocking callback under the index lock, taking a lock
//     twice): each is recorded as a "bug" rather than crashing, and tests assert
//     bugs() == 0.
//   - Real locks (std::mutex), so concurrency tests exercise real exclusion.
//   - A thread_local implicit scope, like a task's memalloc flags.
//   - A log of every call: member, context received, scope in force.
//   - Fault injection per kind (fail the n-th alloc_pages) and across kinds (fail the
//     k-th failable call, for exhaustive sweeps over every failure point of one
//     operation). A failing member leaves nothing behind.
//   - The reclaim deadlock model of the GFP_NOIO bug pcpu exists to fix: see
//     set_reclaim_lock().
//
// Page sizes other than the host's work: above it, reservations are aligned to the
// simulated page; below it, protection is per host page (a host page is accessible
// while any simulated page in it is mapped), so small-page tests lose some of the
// fault coverage but none of the bookkeeping.
#pragma once

#include <pcpu/context.hpp>
#include <pcpu/debug/platform_wrapper.hpp>
#include <pcpu/platform.hpp>
#include <pcpu/platform/detail/host_memory.hpp>
#include <pcpu/scope.hpp>

#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace pcpu_test {

/// fault - the failable members, for fault injection.
enum class fault : unsigned { meta, units, reserve, pages, map };
inline constexpr std::size_t nr_faults = 5;

inline const char* fault_name(fault f) noexcept {
    switch (f) {
    case fault::meta: return "alloc_meta";
    case fault::units: return "alloc_units";
    case fault::reserve: return "reserve";
    case fault::pages: return "alloc_pages";
    case fault::map: return "map";
    }
    return "?";
}

/// call_record - one logged call.
struct call_record {
    pcpu::debug::callback kind;
    const char* name;          ///< pcpu::debug::callback_name(kind)
    bool has_ctx = false;      ///< the member received a context (or op_begin's)
    pcpu::gfp ctx{};           ///< that context, if has_ctx
    pcpu::gfp scope{};         ///< the calling thread's implicit scope at the call
    std::uintptr_t addr = 0;   ///< address (map, unmap, release, flush_*: begin), or the cpu (alloc/free_pages)
    std::size_t size = 0;      ///< bytes (alloc_*, reserve, release, free_*), pages (map, unmap, *_pages), flush end
    bool failed = false;       ///< a failable member returned failure
};

inline std::string describe(pcpu::gfp c) {
    char buf[64];
    return pcpu::context_traits<pcpu::gfp>::describe(c, buf, sizeof buf);
}

/// sim_platform<PageShift, MaxCpus> - see the file comment.
template <unsigned PageShift = 12, std::size_t MaxCpus = 8>
class sim_platform {
public:
    using context = pcpu::gfp;
    using scope_token = pcpu::scope_state<pcpu::gfp>::token;
    using callback = pcpu::debug::callback;
    static constexpr unsigned page_shift = PageShift;
    static constexpr std::size_t max_cpus = MaxCpus;
    static constexpr std::size_t page_size = std::size_t{1} << PageShift;
    /// garbage - fill byte of fresh metadata, units and mapped pages.
    static constexpr unsigned char garbage = 0xA5;
    /// poison - fill byte of freed metadata and of unmapped pages that stay
    /// accessible because they share a host page with a mapped one.
    static constexpr unsigned char poison = 0x5A;

    explicit sim_platform(unsigned nr_cpus = 4) : nr_cpus_(nr_cpus) {}
    sim_platform(const sim_platform&) = delete;
    sim_platform& operator=(const sim_platform&) = delete;

    /// ~sim_platform() - returns whatever is still outstanding to the host, so a leak
    /// found by leaks() does not also leak out of the test process.
    ~sim_platform() {
        if (index_owner_.load() == std::this_thread::get_id()) index_mu_.unlock();
        if (slow_owner_.load() == std::this_thread::get_id()) slow_mu_.unlock();
        for (auto& r : reservations_) ::munmap(reinterpret_cast<void*>(r.first), r.second);
        for (auto& u : units_) ::munmap(reinterpret_cast<void*>(u.first), u.second);
        for (auto& m : metas_) ::operator delete(m.first, std::align_val_t(m.second.align));
    }

    unsigned nr_cpus() const noexcept { return nr_cpus_; }

    // ---- Locks ----------------------------------------------------------------------

    void index_lock() noexcept {
        const auto me = std::this_thread::get_id();
        note_locked(callback::index_lock);
        if (index_owner_.load() == me) {
            report_bug("index_lock taken again by the thread that holds it (it does not nest)");
            ++index_depth_;
            return;
        }
        index_mu_.lock();
        index_owner_.store(me);
        index_depth_ = 1;
    }
    void index_unlock() noexcept {
        note_locked(callback::index_unlock);
        if (index_owner_.load() != std::this_thread::get_id()) {
            report_bug("index_unlock by a thread that does not hold the index lock");
            return;
        }
        if (--index_depth_ == 0) {
            index_owner_.store(std::thread::id{});
            index_mu_.unlock();
        }
    }
    void slow_lock() noexcept {
        const auto me = std::this_thread::get_id();
        note_locked(callback::slow_lock);
        if (slow_owner_.load() == me) {
            report_bug("slow_lock taken again by the thread that holds it: a real sleeping lock deadlocks here");
            ++slow_depth_;
            return;
        }
        slow_mu_.lock();
        slow_owner_.store(me);
        slow_depth_ = 1;
    }
    void slow_unlock() noexcept {
        note_locked(callback::slow_unlock);
        if (slow_owner_.load() != std::this_thread::get_id()) {
            report_bug("slow_unlock by a thread that does not hold the sleeping lock");
            return;
        }
        if (--slow_depth_ == 0) {
            slow_owner_.store(std::thread::id{});
            slow_mu_.unlock();
        }
    }
    /// holds_index_lock(), holds_slow_lock(), index_lock_depth() - the calling thread's view.
    bool holds_index_lock() const noexcept { return index_owner_.load() == std::this_thread::get_id(); }
    bool holds_slow_lock() const noexcept { return slow_owner_.load() == std::this_thread::get_id(); }
    unsigned index_lock_depth() const noexcept { return holds_index_lock() ? index_depth_ : 0; }

    // ---- Topology, diagnostics, deferred work ------------------------------------------

    /// this_cpu() - the calling thread's simulated CPU: set_cpu()'s, else one handed
    /// out round-robin when the thread first asks.
    unsigned this_cpu() noexcept {
        note_locked(callback::this_cpu);
        int& cpu = thread_cpu();
        if (cpu < 0) cpu = static_cast<int>(next_cpu().fetch_add(1) % max_cpus);
        return static_cast<unsigned>(cpu) % nr_cpus_;
    }
    /// set_cpu(cpu) - pin the calling thread to a simulated CPU.
    static void set_cpu(unsigned cpu) noexcept { thread_cpu() = static_cast<int>(cpu); }

    void warn(const char* msg) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::warn, nullptr, 0, 0);
        warnings_.emplace_back(msg != nullptr ? msg : "(null)");
    }
    void request_balance() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::request_balance, nullptr, 0, 0);
        ++balance_requests_;
    }
    context background_context() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::background_context, nullptr, 0, 0);
        return background_;
    }
    void set_background_context(context c) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        background_ = c;
    }
    /// sleeping_lock_cap() - the cap set by set_sleeping_lock_cap(), else the background
    /// context (the allocator's default when a platform has no such member).
    context sleeping_lock_cap() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::sleeping_lock_cap, nullptr, 0, 0);
        return cap_set_ ? cap_ : background_;
    }
    void set_sleeping_lock_cap(context c) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        cap_ = c;
        cap_set_ = true;
    }
    void op_begin(context effective) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::op_begin, &effective, 0, 0);
    }
    void op_end() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::op_end, nullptr, 0, 0);
    }

    // ---- Implicit scope ------------------------------------------------------------

    scope_token scope_apply(context c) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::scope_apply, &c, 0, 0);
        const scope_token t = scope().apply(c);
        scope_stack().push_back(t);
        return t;
    }
    void scope_restore(scope_token t) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::scope_restore, nullptr, 0, 0);
        auto& st = scope_stack();
        if (st.empty()) bug("scope_restore without scope_apply");
        else if (st.back() != t) bug("scope_restore out of order: the token is not the last scope_apply's");
        if (!st.empty()) st.pop_back();
        scope().restore(t);
    }
    context current_scope() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::current_scope, nullptr, 0, 0);
        return scope().current();
    }
    /// reset_scope() - the calling thread back to the full scope, for a test that
    /// left one open on purpose.
    static void reset_scope() noexcept {
        scope().restore(pcpu::ctx::full);
        scope_stack().clear();
    }

    // ---- Metadata ------------------------------------------------------------------------

    void* alloc_meta(std::size_t bytes, std::size_t align, context c) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        const std::size_t rec = note(callback::alloc_meta, &c, 0, bytes);
        if (align == 0 || (align & (align - 1)) != 0) {
            bug("alloc_meta with an alignment that is not a power of two: " + std::to_string(align));
            return failed(rec), nullptr;
        }
        if (decide_failure(fault::meta, callback::alloc_meta, c, false)) return failed(rec), nullptr;
        const std::size_t a = std::max(align, alignof(std::max_align_t));
        void* p = ::operator new(bytes == 0 ? 1 : bytes, std::align_val_t(a), std::nothrow);
        if (p == nullptr) return failed(rec), nullptr;
        std::memset(p, garbage, bytes);
        metas_.emplace(p, meta_block{bytes, a});
        meta_bytes_ += bytes;
        return p;
    }
    /// free_meta(p, bytes) - p == nullptr is a no-op, as kvfree(NULL) is.
    void free_meta(void* p, std::size_t bytes) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::free_meta, nullptr, reinterpret_cast<std::uintptr_t>(p), bytes);
        if (p == nullptr) return;
        const auto it = metas_.find(p);
        if (it == metas_.end()) {
            bug("free_meta of a block that is not allocated (double free?) at " + hex(p));
            return;
        }
        if (it->second.bytes != bytes)
            bug("free_meta of " + std::to_string(bytes) + " bytes at " + hex(p) + ", allocated with " +
                std::to_string(it->second.bytes));
        std::memset(p, poison, it->second.bytes);
        meta_bytes_ -= it->second.bytes;
        ::operator delete(p, std::align_val_t(it->second.align));
        metas_.erase(it);
    }

    // ---- contiguous ----------------------------------------------------------------------

    void* alloc_units(std::size_t bytes, context c) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        const std::size_t rec = note(callback::alloc_units, &c, 0, bytes);
        if (bytes == 0 || bytes % page_size != 0)
            bug("alloc_units of " + std::to_string(bytes) + " bytes, not a positive page multiple");
        if (decide_failure(fault::units, callback::alloc_units, c, false)) return failed(rec), nullptr;
        void* p = map_aligned(bytes, PROT_READ | PROT_WRITE);
        if (p == nullptr) return failed(rec), nullptr;
        std::memset(p, garbage, bytes);
        units_.emplace(reinterpret_cast<std::uintptr_t>(p), bytes);
        return p;
    }
    void free_units(void* p, std::size_t bytes) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::free_units, nullptr, reinterpret_cast<std::uintptr_t>(p), bytes);
        const auto it = units_.find(reinterpret_cast<std::uintptr_t>(p));
        if (it == units_.end()) {
            bug("free_units of units that are not allocated at " + hex(p));
            return;
        }
        if (it->second != bytes)
            bug("free_units of " + std::to_string(bytes) + " bytes at " + hex(p) + ", allocated with " +
                std::to_string(it->second));
        ::munmap(p, it->second);
        units_.erase(it);
    }

    // ---- lazy_mapped ---------------------------------------------------------------------

    std::uintptr_t reserve(std::size_t bytes, context c) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        const std::size_t rec = note(callback::reserve, &c, 0, bytes);
        if (bytes == 0 || bytes % page_size != 0)
            bug("reserve of " + std::to_string(bytes) + " bytes, not a positive page multiple");
        if (decide_failure(fault::reserve, callback::reserve, c, false)) return failed(rec), 0;
        void* p = map_aligned(bytes, PROT_NONE);
        if (p == nullptr) return failed(rec), 0;
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        reservations_.emplace(a, bytes);
        return a;
    }
    void release(std::uintptr_t addr, std::size_t bytes) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::release, nullptr, addr, bytes);
        const auto it = reservations_.find(addr);
        if (it == reservations_.end()) {
            bug("release of address space that is not reserved at " + hex(addr));
            return;
        }
        if (it->second != bytes)
            bug("release of " + std::to_string(bytes) + " bytes at " + hex(addr) + ", reserved with " +
                std::to_string(it->second));
        // The contract says everything is unmapped by now; forget what is not (its
        // frames stay allocated, so leaks() shows them).
        std::size_t still = 0;
        for (auto m = mapped_.lower_bound(addr); m != mapped_.end() && m->first < addr + it->second;) {
            const auto f = frames_.find(m->second);
            if (f != frames_.end()) f->second.mapped = false;
            m = mapped_.erase(m);
            ++still;
        }
        if (still != 0)
            bug("release of " + hex(addr) + " with " + std::to_string(still) + " pages still mapped");
        ::munmap(reinterpret_cast<void*>(addr), it->second);
        reservations_.erase(it);
    }
    bool alloc_pages(unsigned cpu, pcpu::page_ref* out, std::size_t nr, context c) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        const std::size_t rec = note(callback::alloc_pages, &c, cpu, nr);
        if (cpu >= nr_cpus_) bug("alloc_pages for cpu " + std::to_string(cpu) + " of " + std::to_string(nr_cpus_));
        if (decide_failure(fault::pages, callback::alloc_pages, c, false)) return failed(rec), false;
        for (std::size_t i = 0; i < nr; ++i) {
            const pcpu::page_ref f = next_frame_++;
            frames_.emplace(f, frame{cpu, false});
            out[i] = f;
        }
        return true;
    }
    void free_pages(unsigned cpu, const pcpu::page_ref* pages, std::size_t nr) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::free_pages, nullptr, cpu, nr);
        for (std::size_t i = 0; i < nr; ++i) {
            const auto it = frames_.find(pages[i]);
            if (it == frames_.end()) {
                bug("free_pages of frame " + std::to_string(pages[i]) + ", which is not allocated (double free?)");
                continue;
            }
            if (it->second.mapped) bug("free_pages of frame " + std::to_string(pages[i]) + ", which is still mapped");
            if (it->second.cpu != cpu)
                bug("free_pages of frame " + std::to_string(pages[i]) + " for cpu " + std::to_string(cpu) +
                    ", allocated for cpu " + std::to_string(it->second.cpu));
            frames_.erase(it);
        }
    }
    bool map(std::uintptr_t addr, const pcpu::page_ref* pages, std::size_t nr, context c) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        const context scope_now = scope().current();
        const std::size_t rec = note(callback::map, &c, addr, nr);
        const std::uintptr_t end = addr + nr * page_size;
        if (addr % page_size != 0) {
            bug("map at " + hex(addr) + ", not page aligned");
            return failed(rec), false;
        }
        if (!reserved(addr, end)) {
            bug("map of [" + hex(addr) + ", " + hex(end) + ") outside any reservation");
            return failed(rec), false;
        }
        std::set<pcpu::page_ref> seen;
        for (std::size_t i = 0; i < nr; ++i) {
            const std::uintptr_t pa = addr + i * page_size;
            const auto f = frames_.find(pages[i]);
            std::string why;
            if (mapped_.count(pa) != 0) why = "over the page mapped at " + hex(pa);
            else if (f == frames_.end()) why = "of frame " + std::to_string(pages[i]) + ", which is not allocated";
            else if (f->second.mapped || !seen.insert(pages[i]).second)
                why = "of frame " + std::to_string(pages[i]) + ", which is mapped already";
            if (!why.empty()) {
                bug("map " + why);
                return failed(rec), false;
            }
        }
        if (decide_failure(fault::map, callback::map, c, pcpu::context_traits<context>::may_io(scope_now)))
            return failed(rec), false;
        if (nr == 0) return true;
        const std::uintptr_t hb = round_down(addr, host_page());
        const std::uintptr_t he = round_up(end, host_page());
        if (!pcpu::detail::host_make_accessible(hb, he - hb)) {
            reprotect(addr, end); // back to exactly what was accessible before
            return failed(rec), false;
        }
        for (std::size_t i = 0; i < nr; ++i) {
            mapped_.emplace(addr + i * page_size, pages[i]);
            frames_[pages[i]].mapped = true;
        }
        std::memset(reinterpret_cast<void*>(addr), garbage, nr * page_size);
        return true;
    }
    void unmap(std::uintptr_t addr, pcpu::page_ref* out, std::size_t nr) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(callback::unmap, nullptr, addr, nr);
        const std::uintptr_t end = addr + nr * page_size;
        for (std::size_t i = 0; i < nr; ++i) {
            const auto it = mapped_.find(addr + i * page_size);
            if (it == mapped_.end()) {
                bug("unmap of " + hex(addr + i * page_size) + ", which is not mapped");
                out[i] = 0;
                continue;
            }
            out[i] = it->second;
            const auto f = frames_.find(it->second);
            if (f != frames_.end()) f->second.mapped = false;
            mapped_.erase(it);
        }
        if (nr != 0 && addr % page_size == 0 && reserved(addr, end)) reprotect(addr, end);
    }
    void flush_after_map(std::uintptr_t begin, std::uintptr_t end) noexcept { flush(callback::flush_after_map, begin, end); }
    void flush_before_unmap(std::uintptr_t begin, std::uintptr_t end) noexcept {
        flush(callback::flush_before_unmap, begin, end);
    }
    void flush_tlb(std::uintptr_t begin, std::uintptr_t end) noexcept { flush(callback::flush_tlb, begin, end); }

    // ---- Fault injection -------------------------------------------------------------

    /// fail_nth(k, n) - the n-th call of kind k from now on fails (n = 1: the next);
    /// n = 0 disarms.
    void fail_nth(fault k, std::size_t n) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        faults_[static_cast<std::size_t>(k)].countdown = n;
    }
    /// fail_always(k, on) - every call of kind k fails while on.
    void fail_always(fault k, bool on = true) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        faults_[static_cast<std::size_t>(k)].always = on;
    }
    /// fail_call(n) - the n-th failable call of any kind from now on fails; 0 disarms.
    /// Sweep: run an operation once and read the failable_calls() it made, then for
    /// each n in [1, that] run it again on a fresh setup with fail_call(n).
    void fail_call(std::size_t n) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        any_countdown_ = n;
    }
    void clear_faults() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        for (auto& f : faults_) f = fault_state{};
        any_countdown_ = 0;
    }
    /// failable_calls() - calls of alloc_meta, alloc_units, reserve, alloc_pages and
    /// map so far (each counts, failed or not).
    std::size_t failable_calls() const noexcept { return locked_read(failable_); }
    /// injected_failures() - failures caused by fail_nth/fail_always/fail_call.
    std::size_t injected_failures() const noexcept { return locked_read(injected_); }

    // ---- The reclaim deadlock model --------------------------------------------------

    /// set_reclaim_lock(m) - m stands for a lock that IO reclaim needs (a file system
    /// or block-layer lock) and that a GFP_NOIO caller may hold while it allocates.
    /// Whenever a member receives a context that allows IO, or map() runs while the
    /// implicit scope allows IO, the simulated memory is "under pressure" and reclaim
    /// starts IO, which needs m: if m is held, by the caller as the deadlock scenario
    /// sets up, the real system would hang there. The platform records a deadlock
    /// instead and fails the call. nullptr turns the model off.
    void set_reclaim_lock(std::mutex* m) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        reclaim_ = m;
    }
    std::size_t deadlocks() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return deadlock_messages_.size();
    }
    std::vector<std::string> deadlock_messages() const {
        std::lock_guard<std::mutex> g(mu_);
        return deadlock_messages_;
    }

    // ---- Counters, leaks, bugs -----------------------------------------------------

    std::size_t meta_blocks() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return metas_.size();
    }
    std::size_t meta_bytes() const noexcept { return locked_read(meta_bytes_); }
    std::size_t units_blocks() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return units_.size();
    }
    std::size_t reservations() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return reservations_.size();
    }
    /// frames() - pages allocated and not freed, mapped or not.
    std::size_t frames() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return frames_.size();
    }
    std::size_t mapped_pages() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return mapped_.size();
    }
    /// is_mapped(addr) / frame_at(addr) - the page holding addr (0: none).
    bool is_mapped(std::uintptr_t addr) const noexcept { return frame_at(addr) != 0; }
    pcpu::page_ref frame_at(std::uintptr_t addr) const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        const auto it = mapped_.find(round_down(addr, page_size));
        return it == mapped_.end() ? 0 : it->second;
    }
    /// leaks() - anything outstanding.
    bool leaks() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return !metas_.empty() || !units_.empty() || !reservations_.empty() || !frames_.empty() || !mapped_.empty();
    }
    std::string describe_leaks() const {
        std::lock_guard<std::mutex> g(mu_);
        return std::to_string(metas_.size()) + " meta blocks (" + std::to_string(meta_bytes_) + " bytes), " +
               std::to_string(units_.size()) + " unit blocks, " + std::to_string(reservations_.size()) +
               " reservations, " + std::to_string(frames_.size()) + " frames, " + std::to_string(mapped_.size()) +
               " mapped pages";
    }
    std::size_t bugs() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return bug_messages_.size();
    }
    std::vector<std::string> bug_messages() const {
        std::lock_guard<std::mutex> g(mu_);
        return bug_messages_;
    }
    std::string describe_bugs() const {
        std::lock_guard<std::mutex> g(mu_);
        std::string s;
        for (const auto& b : bug_messages_) s += b + "\n";
        return s.empty() ? "none" : s;
    }
    std::vector<std::string> warnings() const {
        std::lock_guard<std::mutex> g(mu_);
        return warnings_;
    }
    std::size_t balance_requests() const noexcept { return locked_read(balance_requests_); }
    /// calls(k) - calls of member k since construction or clear_counts().
    std::size_t calls(callback k) const noexcept { return locked_read(calls_[pcpu::debug::callback_index(k)]); }
    void clear_counts() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        for (auto& c : calls_) c = 0;
        failable_ = injected_ = balance_requests_ = 0;
    }

    // ---- The call log ------------------------------------------------------------------

    /// log() - every call since the last clear_log(), in order. Read it while no other
    /// thread is calling in.
    const std::vector<call_record>& log() const noexcept { return log_; }
    void clear_log() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        log_.clear();
    }
    /// set_recording(on) - stop logging (long stress tests); counting goes on.
    void set_recording(bool on) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        recording_ = on;
    }

    // ---- The context-taking forms of the blocking members ----------------------------
    // pcpu calls these where a platform has them (platform.hpp: a blocking member may
    // be declared with or without the context); the forms above stay for tests that
    // call the members by hand. Each records the context it was given.
    void slow_lock(context c) noexcept { got_context(c), slow_lock(); }
    void free_meta(void* p, std::size_t bytes, context c) noexcept { got_context(c), free_meta(p, bytes); }
    void free_units(void* p, std::size_t bytes, context c) noexcept { got_context(c), free_units(p, bytes); }
    void release(std::uintptr_t addr, std::size_t bytes, context c) noexcept { got_context(c), release(addr, bytes); }
    void free_pages(unsigned cpu, const pcpu::page_ref* pages, std::size_t nr, context c) noexcept {
        got_context(c), free_pages(cpu, pages, nr);
    }
    void unmap(std::uintptr_t addr, pcpu::page_ref* out, std::size_t nr, context c) noexcept {
        got_context(c), unmap(addr, out, nr);
    }
    /// freeing_calls_with_context() - calls of those forms since construction.
    std::size_t freeing_calls_with_context() const noexcept { return with_context_.load(); }

protected: // sim_event_platform adds members that report as these do
    void got_context(context) noexcept { ++with_context_; }
    std::atomic<std::size_t> with_context_{0};
    using tr = pcpu::context_traits<context>;
    struct meta_block {
        std::size_t bytes;
        std::size_t align;
    };
    struct frame {
        unsigned cpu;
        bool mapped;
    };
    struct fault_state {
        std::size_t countdown = 0;
        bool always = false;
    };

    static pcpu::scope_state<context>& scope() noexcept {
        static thread_local pcpu::scope_state<context> s;
        return s;
    }
    static std::vector<scope_token>& scope_stack() noexcept {
        static thread_local std::vector<scope_token> s;
        return s;
    }
    static int& thread_cpu() noexcept {
        static thread_local int cpu = -1;
        return cpu;
    }
    static std::atomic<unsigned>& next_cpu() noexcept {
        static std::atomic<unsigned> n{0};
        return n;
    }
    static std::size_t host_page() noexcept { return pcpu::detail::host_page_size(); }
    static std::uintptr_t round_down(std::uintptr_t v, std::size_t a) noexcept { return v - v % a; }
    static std::uintptr_t round_up(std::uintptr_t v, std::size_t a) noexcept { return round_down(v + a - 1, a); }
    static std::string hex(std::uintptr_t v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
        return buf;
    }
    static std::string hex(const void* p) { return hex(reinterpret_cast<std::uintptr_t>(p)); }


    template <class T>
    T locked_read(const T& v) const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return v;
    }

    /// note(k, c, addr, size) - count and log a call; mu_ held. Returns the log index
    /// (or SIZE_MAX when not recording) for failed().
    std::size_t note(callback k, const context* c, std::uintptr_t addr, std::size_t size) {
        ++calls_[pcpu::debug::callback_index(k)];
        if (pcpu::debug::callback_blocks(k) && index_owner_.load() == std::this_thread::get_id())
            bug(std::string(pcpu::debug::callback_name(k)) + " called under the index lock; it can sleep");
        if (!recording_) return SIZE_MAX;
        call_record r{k, pcpu::debug::callback_name(k)};
        r.has_ctx = c != nullptr;
        if (c != nullptr) r.ctx = *c;
        r.scope = scope().current();
        r.addr = addr;
        r.size = size;
        log_.push_back(r);
        return log_.size() - 1;
    }
    void note_locked(callback k) {
        std::lock_guard<std::mutex> g(mu_);
        note(k, nullptr, 0, 0);
    }
    void failed(std::size_t rec) noexcept {
        if (rec < log_.size()) log_[rec].failed = true;
    }
    /// bug(what) - record misuse; mu_ held.
    void bug(const std::string& what) { bug_messages_.push_back("sim_platform: " + what); }
    /// report_bug(what) - the same from the lock members, which run without mu_.
    void report_bug(const char* what) {
        std::lock_guard<std::mutex> g(mu_);
        bug_messages_.push_back(std::string("sim_platform: ") + what);
    }

    /// decide_failure(f, k, c, scope_io) - one failable call: count it, apply the
    /// injected faults and the reclaim model. mu_ held.
    bool decide_failure(fault f, callback k, context c, bool scope_io) {
        ++failable_;
        fault_state& fs = faults_[static_cast<std::size_t>(f)];
        bool fail = fs.always;
        if (fs.countdown != 0 && --fs.countdown == 0) fail = true;
        if (any_countdown_ != 0 && --any_countdown_ == 0) fail = true;
        if (fail) ++injected_;
        if (reclaim_ != nullptr && (tr::may_io(c) || scope_io)) {
            if (reclaim_->try_lock()) {
                reclaim_->unlock();
            } else {
                deadlock_messages_.push_back(
                    std::string("sim_platform: ") + pcpu::debug::callback_name(k) +
                    (tr::may_io(c) ? " received " + describe(c) : " ran under the implicit scope " + describe(scope().current())) +
                    " and entered IO reclaim, which needs the reclaim lock the caller holds: deadlock");
                fail = true;
            }
        }
        return fail;
    }

    void flush(callback k, std::uintptr_t begin, std::uintptr_t end) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        note(k, nullptr, begin, end);
        if (end < begin) bug(std::string(pcpu::debug::callback_name(k)) + " of an inverted range " + hex(begin) + ".." + hex(end));
    }

    /// reserved(b, e) - [b, e) lies inside one reservation. mu_ held.
    bool reserved(std::uintptr_t b, std::uintptr_t e) const noexcept {
        auto it = reservations_.upper_bound(b);
        if (it == reservations_.begin()) return false;
        --it;
        return b >= it->first && e <= it->first + it->second;
    }
    /// reprotect(b, e) - after pages in [b, e) were unmapped (or a map failed): every
    /// host page there with no simulated page mapped loses its contents and access;
    /// unmapped simulated pages in a host page that stays accessible are poisoned.
    void reprotect(std::uintptr_t b, std::uintptr_t e) noexcept {
        const std::size_t h = host_page();
        for (std::uintptr_t hp = round_down(b, h); hp < e; hp += h) {
            const auto m = mapped_.lower_bound(hp);
            if (m == mapped_.end() || m->first >= hp + h) {
                pcpu::detail::host_discard(hp, h);
            } else {
                for (std::uintptr_t p = std::max(hp, b); p < std::min(hp + h, e); p += page_size)
                    if (mapped_.count(p) == 0) std::memset(reinterpret_cast<void*>(p), poison, page_size);
            }
        }
    }
    /// map_aligned(bytes, prot) - a fresh anonymous mapping aligned to the simulated
    /// page (trimmed so it is exactly the rounded size), or nullptr.
    static void* map_aligned(std::size_t bytes, int prot) noexcept {
        return pcpu::detail::host_map_aligned(bytes, std::max(page_size, host_page()), prot, MAP_NORESERVE);
    }

    const unsigned nr_cpus_;
    mutable std::mutex mu_; ///< guards all bookkeeping below; never held while waiting on another lock

    std::mutex index_mu_;
    std::atomic<std::thread::id> index_owner_{};
    unsigned index_depth_ = 0; ///< touched only by the owner
    std::mutex slow_mu_;
    std::atomic<std::thread::id> slow_owner_{};
    unsigned slow_depth_ = 0;

    std::map<void*, meta_block> metas_;
    std::size_t meta_bytes_ = 0;
    std::map<std::uintptr_t, std::size_t> units_;
    std::map<std::uintptr_t, std::size_t> reservations_;
    std::map<pcpu::page_ref, frame> frames_;
    std::map<std::uintptr_t, pcpu::page_ref> mapped_; ///< page address -> frame
    pcpu::page_ref next_frame_ = 1;

    fault_state faults_[nr_faults];
    std::size_t any_countdown_ = 0;
    std::size_t failable_ = 0;
    std::size_t injected_ = 0;
    std::mutex* reclaim_ = nullptr;
    std::vector<std::string> deadlock_messages_;

    std::size_t calls_[pcpu::debug::nr_callbacks] = {};
    std::size_t balance_requests_ = 0;
    context background_ = pcpu::ctx::noio;
    context cap_ = pcpu::ctx::noio; // sleeping_lock_cap(), once set
    bool cap_set_ = false;
    std::vector<std::string> warnings_;
    std::vector<std::string> bug_messages_;
    std::vector<call_record> log_;
    bool recording_ = true;
};

/// sim_event_platform - sim_platform with the population event (platform.hpp), so
/// that pcpu populates outside the sleeping lock (internal/populating.hpp): the fault
/// sweeps and the model run that path too. A real eventcount, for tests with threads.
template <unsigned PageShift = 12, std::size_t MaxCpus = 8>
class sim_event_platform : public sim_platform<PageShift, MaxCpus> {
public:
    using context = typename sim_platform<PageShift, MaxCpus>::context;
    using sim_platform<PageShift, MaxCpus>::sim_platform;

    std::uint32_t populate_ticket() noexcept { return events_.load(std::memory_order_acquire); }
    void populate_wait(std::uint32_t ticket, context) noexcept {
        if (this->holds_index_lock()) this->report_bug("populate_wait under the index lock");
        if (this->holds_slow_lock()) this->report_bug("populate_wait under the sleeping lock: its waker may need it");
        ++waits_;
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait(g, [&] { return events_.load(std::memory_order_acquire) != ticket; });
    }
    void populate_wake() noexcept {
        {
            std::lock_guard<std::mutex> g(mu_);
            events_.fetch_add(1, std::memory_order_release);
        }
        cv_.notify_all();
    }
    /// waits() - populate_wait() calls so far.
    std::size_t waits() const noexcept { return waits_.load(); }

private:
    std::atomic<std::uint32_t> events_{0};
    std::atomic<std::size_t> waits_{0};
    std::mutex mu_;
    std::condition_variable cv_;
};

} // namespace pcpu_test

/// SIM_CHECK_CLEAN(p) - nothing outstanding and no misuse recorded, said readably.
#define SIM_CHECK_CLEAN(p)                                                                         \
    do {                                                                                           \
        INFO("outstanding: " << (p).describe_leaks());                                             \
        INFO("bugs: " << (p).describe_bugs());                                                     \
        CHECK_FALSE((p).leaks());                                                                  \
        CHECK((p).bugs() == 0);                                                                    \
    } while (0)
