// SPDX-License-Identifier: MIT
// tests/test_stress.cpp - concurrency stress (suite "stress"): several threads
// allocating and freeing with mixed contexts and scopes while each writes and checks
// the per-CPU copies of what it owns, one thread making only atomic allocations, one
// calling balance, all on one allocator under the context checker. Every operation is
// followed by verify(). Two platforms: the sim platform (real std::mutex locks,
// thread_local scopes, misuse recorded, threads pinned to simulated CPUs) and the real
// host platform (pcpu/platform/host.hpp: mmap reservations, mprotect population,
// sched_getcpu).
//
// Checked: every operation's result is one the contract allows; a fresh allocation is
// zero on every CPU; what a thread wrote is still there when it frees it (and at
// random checks before); no two live allocations overlap (a shared interval set,
// updated before free() and after alloc()); the checker saw no context violation on
// any thread (an atomic allocation reaching a blocking callback is one); the sim saw
// no misuse; after the threads join, verify() and the statistics agree with what the
// threads hold, and after shutdown the platform holds nothing.
//
// Bounded in operations and in time: PCPU_STRESS_OPS (operations per worker thread,
// default 600) and PCPU_STRESS_SECONDS (default 20) from the environment; the TSan
// stage of scripts/test raises the first.
#include "support/sim_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/debug/context_checker.hpp>
#include <pcpu/platform/host.hpp>
#include <pcpu/scope.hpp>

#include <doctest/doctest.h>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace ctx = pcpu::ctx;
using sim = pcpu_test::sim_platform<12, 8>;
using sim_event = pcpu_test::sim_event_platform<12, 8>;
using host = pcpu::basic_host_platform<8, 12>;
constexpr unsigned cpus = 4;

/// platform_hooks<P> - what differs between the two platforms.
template <class P>
struct platform_hooks;
template <>
struct platform_hooks<sim> {
    static constexpr const char* name = "sim";
    static void quiet(sim& p) { p.set_recording(false); }
    static void pin(unsigned cpu) { sim::set_cpu(cpu); }
    static std::string misuse(sim& p) { return p.bugs() == 0 ? "" : p.describe_bugs(); }
    static std::string outstanding(sim& p) { return p.leaks() ? p.describe_leaks() : ""; }
};
template <>
struct platform_hooks<sim_event> : platform_hooks<sim> {
    static constexpr const char* name = "sim with the population event";
};
template <>
struct platform_hooks<host> {
    static constexpr const char* name = "host";
    static void quiet(host& p) { p.set_warn_handler([](const char*, void*) {}); }
    static void pin(unsigned) {} // sched_getcpu decides; workers write every CPU's copy anyway
    static std::string misuse(host&) { return ""; }
    static std::string outstanding(host& p) {
        const pcpu::host_counters c = p.counters();
        if (c.nothing_outstanding()) return "";
        return std::to_string(c.reservations) + " reservations, " + std::to_string(c.pages) + " pages, " +
               std::to_string(c.mapped_pages) + " mapped, " + std::to_string(c.meta_blocks) + " meta blocks, " +
               std::to_string(c.units_blocks) + " unit blocks";
    }
};
constexpr std::size_t unit = 32 * 1024;
constexpr unsigned workers = 3;

std::size_t env_or(const char* name, std::size_t fallback) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return fallback;
    return static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
}

/// splitmix64, one per thread.
struct rng {
    std::uint64_t s;
    std::uint64_t next() {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

struct counts {
    std::atomic<std::uint64_t> ops{0}, allocs{0}, alloc_failures{0}, frees{0}, atomic_allocs{0}, would_block{0},
        balances{0}, checks{0}, parallel_ops{0};
};

template <class Platform, class Policy>
struct stress {
    using checked = pcpu::debug::context_checker<Platform>;
    using hooks = platform_hooks<Platform>;
    using alloc_t = pcpu::allocator<checked, Policy>;

    std::vector<unsigned char> units_storage, meta_storage;
    alloc_t a;
    std::mutex intervals_mu;
    std::map<std::uintptr_t, std::size_t> intervals; // live allocations, CPU 0 address -> size
    counts n;
    std::chrono::steady_clock::time_point deadline;
    std::size_t ops_per_worker;

    stress(std::size_t ops, std::size_t seconds) : a(cpus), ops_per_worker(ops) {
        a.platform().set_violation_handler(&checked::record_only);
        hooks::quiet(a.platform().inner());
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        units_storage.assign(cpus * unit + alloc_t::page_size, 0xA5);
        const std::size_t reserved = 1024, static_size = Policy::creates_chunks ? unit - 8 * 1024 : 256;
        const std::size_t mb = alloc_t::first_chunk_meta_bytes(unit, static_size, reserved);
        meta_storage.assign(mb + alloc_t::meta_align, 0);
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = cpus;
        cfg.units = align(units_storage.data(), alloc_t::page_size);
        cfg.unit_size = unit;
        cfg.static_size = static_size;
        cfg.reserved_size = reserved;
        cfg.meta = align(meta_storage.data(), alloc_t::meta_align);
        cfg.meta_size = mb;
        REQUIRE(a.init(cfg) == pcpu::errc::ok);
    }
    static void* align(unsigned char* p, std::size_t al) {
        const auto v = reinterpret_cast<std::uintptr_t>(p);
        return p + (al - v % al) % al;
    }
    bool expired() const { return std::chrono::steady_clock::now() > deadline; }

    struct owned {
        pcpu::handle h;
        std::size_t size;
        std::uint32_t tag;
    };
    static unsigned char byte_of(std::uint32_t tag, unsigned cpu, std::size_t i) {
        return static_cast<unsigned char>(tag * 131u + cpu * 29u + i * 7u + (i >> 8));
    }
    void write(const owned& o) {
        for (unsigned cpu = 0; cpu < cpus; ++cpu) {
            auto* p = static_cast<unsigned char*>(a.ptr(o.h, cpu));
            for (std::size_t i = 0; i < o.size; ++i) p[i] = byte_of(o.tag, cpu, i);
        }
    }
    std::string check(const owned& o) {
        n.checks.fetch_add(1, std::memory_order_relaxed);
        for (unsigned cpu = 0; cpu < cpus; ++cpu) {
            const auto* p = static_cast<const unsigned char*>(a.ptr(o.h, cpu));
            for (std::size_t i = 0; i < o.size; ++i)
                if (p[i] != byte_of(o.tag, cpu, i))
                    return "contents of an owned allocation changed on cpu " + std::to_string(cpu);
        }
        return "";
    }
    std::string zeroed(pcpu::handle h, std::size_t size) {
        for (unsigned cpu = 0; cpu < cpus; ++cpu) {
            const auto* p = static_cast<const unsigned char*>(a.ptr(h, cpu));
            for (std::size_t i = 0; i < size; ++i)
                if (p[i] != 0) return "a fresh allocation was not zero on cpu " + std::to_string(cpu);
        }
        return "";
    }
    std::string insert(pcpu::handle h, std::size_t size) {
        std::lock_guard<std::mutex> g(intervals_mu);
        const std::uintptr_t b = h.addr(), e = b + size;
        auto it = intervals.lower_bound(b);
        if (it != intervals.end() && it->first < e) return "a new allocation overlaps a live one (after it)";
        if (it != intervals.begin() && std::prev(it)->first + std::prev(it)->second > b)
            return "a new allocation overlaps a live one (before it)";
        intervals.emplace(b, size);
        return "";
    }
    void erase(pcpu::handle h) {
        std::lock_guard<std::mutex> g(intervals_mu);
        intervals.erase(h.addr());
    }
    std::string verified() {
        const pcpu::verify_report r = a.verify();
        if (r.ok) return "";
        char buf[200];
        return std::string("verify: ") + r.describe(buf, sizeof buf);
    }

    /// take(o, held) - allocation bookkeeping shared by the worker and atomic threads.
    std::string take(pcpu::handle h, std::size_t size, std::uint32_t tag, std::vector<owned>& held) {
        std::string e = insert(h, size);
        if (e.empty()) e = zeroed(h, size);
        if (!e.empty()) return e;
        held.push_back(owned{h, size, tag});
        write(held.back());
        return "";
    }
    std::string release(std::vector<owned>& held, std::size_t i) {
        const owned o = held[i];
        held[i] = held.back();
        held.pop_back();
        std::string e = check(o);
        if (!e.empty()) return e;
        erase(o.h);
        const pcpu::errc err = a.free(o.h);
        n.frees.fetch_add(1, std::memory_order_relaxed);
        if (err != pcpu::errc::ok) return std::string("free: ") + pcpu::errc_name(err);
        return "";
    }

    /// running_mark - the host CPU a worker's operation runs on, published for the
    /// duration of the operation, so the figure can show that the workers really ran at
    /// the same time on different CPUs (not time-sliced on one): an operation that began
    /// while another worker's ran on another CPU counts as parallel.
    struct running_mark {
        stress& s;
        unsigned id;
        running_mark(stress& st, unsigned i) : s(st), id(i) {
            const int cpu = ::sched_getcpu();
            if (cpu < 0) return;
            s.host_cpus_seen.fetch_or(std::uint64_t{1} << (cpu % 64), std::memory_order_relaxed);
            s.running_on[id].store(cpu + 1, std::memory_order_relaxed);
            for (unsigned j = 0; j < workers; ++j) {
                const int other = j == id ? 0 : s.running_on[j].load(std::memory_order_relaxed);
                if (other != 0 && other != cpu + 1) {
                    s.n.parallel_ops.fetch_add(1, std::memory_order_relaxed);
                    break;
                }
            }
        }
        ~running_mark() { s.running_on[id].store(0, std::memory_order_relaxed); }
        running_mark(const running_mark&) = delete;
        running_mark& operator=(const running_mark&) = delete;
    };
    std::atomic<int> running_on[workers] = {};
    std::atomic<std::uint64_t> host_cpus_seen{0};

    /// worker(id) - mixed contexts and scopes; frees its own allocations.
    std::string worker(unsigned id) {
        hooks::pin(id % cpus);
        rng r{0x5eed0000ull + id};
        std::vector<owned> held;
        std::uint32_t tag = id << 24;
        static constexpr pcpu::gfp contexts[] = {ctx::full, ctx::nofs, ctx::noio, ctx::noio | pcpu::gfp::nofail};
        static constexpr pcpu::gfp scopes[] = {ctx::full, ctx::full, ctx::nofs, ctx::noio};
        for (std::size_t op = 0; op < ops_per_worker && !expired(); ++op) {
            n.ops.fetch_add(1, std::memory_order_relaxed);
            const running_mark mark(*this, id);
            std::string e;
            if (held.empty() || (held.size() < 40 && r.below(100) < 55)) {
                const std::size_t size = 1 + (r.below(8) == 0 ? r.below(unit / 2) : r.below(512));
                const std::size_t al = std::size_t{1} << r.below(9);
                const bool reserved = r.below(20) == 0;
                const pcpu::gfp c = contexts[r.below(4)];
                pcpu::result<pcpu::handle> res = pcpu::errc::zero_size;
                {
                    pcpu::scope_guard<Platform> g(a.platform().inner(), scopes[r.below(4)]);
                    res = reserved ? a.alloc_reserved(size, al, c) : a.alloc(size, al, c);
                }
                n.allocs.fetch_add(1, std::memory_order_relaxed);
                if (res) {
                    e = take(res.value(), size, ++tag, held);
                } else {
                    n.alloc_failures.fetch_add(1, std::memory_order_relaxed);
                    // No failure is injected: a sleeping request fails only for lack of
                    // space where nothing can be created.
                    if (res.error() != pcpu::errc::no_space || (Policy::creates_chunks && !reserved))
                        e = std::string("sleeping allocation failed: ") + pcpu::errc_name(res.error());
                }
            } else if (r.below(4) == 0) {
                e = check(held[r.below(held.size())]);
            } else {
                e = release(held, r.below(held.size()));
            }
            if (e.empty()) e = verified();
            if (!e.empty()) return "worker " + std::to_string(id) + ", op " + std::to_string(op) + ": " + e;
        }
        while (!held.empty()) {
            std::string e = release(held, held.size() - 1);
            if (e.empty()) e = verified();
            if (!e.empty()) return "worker " + std::to_string(id) + ", draining: " + e;
        }
        return "";
    }

    /// atomic_thread() - only atomic allocations: populated space or would_block.
    std::string atomic_thread(const std::atomic<bool>& stop) {
        hooks::pin(cpus - 1);
        rng r{0xa70a1cull};
        std::vector<owned> held;
        std::uint32_t tag = 0xAAu << 24;
        while (!stop.load() && !expired()) {
            n.ops.fetch_add(1, std::memory_order_relaxed);
            std::string e;
            if (held.size() < 24 && r.below(100) < 60) {
                const std::size_t size = 4 + r.below(256);
                auto res = a.alloc(size, 8, r.below(2) == 0 ? ctx::atomic : ctx::nowait);
                n.atomic_allocs.fetch_add(1, std::memory_order_relaxed);
                if (res) {
                    e = take(res.value(), size, ++tag, held);
                } else if (res.error() == pcpu::errc::would_block || res.error() == pcpu::errc::no_space) {
                    n.would_block.fetch_add(1, std::memory_order_relaxed);
                    if (res.error() != (Policy::creates_chunks ? pcpu::errc::would_block : pcpu::errc::no_space))
                        e = std::string("atomic allocation: ") + pcpu::errc_name(res.error());
                } else {
                    e = std::string("atomic allocation: ") + pcpu::errc_name(res.error());
                }
            } else if (!held.empty()) {
                e = release(held, r.below(held.size()));
            }
            if (e.empty()) e = verified();
            if (!e.empty()) return "atomic thread: " + e;
        }
        while (!held.empty()) {
            std::string e = release(held, held.size() - 1);
            if (!e.empty()) return "atomic thread, draining: " + e;
        }
        return "";
    }

    /// balance_thread() - the deferred work, run as often as it likes.
    std::string balance_thread(const std::atomic<bool>& stop) {
        while (!stop.load() && !expired()) {
            n.ops.fetch_add(1, std::memory_order_relaxed);
            const pcpu::errc err = a.balance(ctx::noio);
            n.balances.fetch_add(1, std::memory_order_relaxed);
            if (err != pcpu::errc::ok) return std::string("balance: ") + pcpu::errc_name(err);
            std::string e = verified();
            if (!e.empty()) return "balance thread: " + e;
            std::this_thread::yield();
        }
        return "";
    }

    void run(const char* name) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::string> errors(workers + 2);
        std::atomic<bool> stop{false};
        std::vector<std::thread> threads;
        for (unsigned i = 0; i < workers; ++i) threads.emplace_back([&, i] { errors[i] = worker(i); });
        std::thread at([&] { errors[workers] = atomic_thread(stop); });
        std::thread bt([&] { errors[workers + 1] = balance_thread(stop); });
        for (auto& t : threads) t.join();
        stop.store(true);
        at.join();
        bt.join();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (const auto& e : errors) CHECK_MESSAGE(e.empty(), e);
        INFO("checker: " << a.platform().last_violation());
        CHECK(a.platform().violations() == 0);
        const std::string misuse = hooks::misuse(a.platform().inner());
        CHECK_MESSAGE(misuse.empty(), misuse);
        const pcpu::verify_report r = a.verify();
        char buf[200];
        INFO(r.describe(buf, sizeof buf));
        CHECK(r.ok);
        CHECK(a.stats().nr_cur_alloc == 0);
        CHECK(intervals.empty());
        CHECK(a.balance(ctx::noio) == pcpu::errc::ok);
        CHECK(a.verify().ok);
        CHECK(n.allocs.load() > 0);
        CHECK(n.frees.load() > 0);
        std::printf("figure: stress %s on %s: %u workers + atomic + balance threads, %llu operations (%llu allocations, "
                    "%llu atomic allocations of which %llu would block, %llu frees, %llu balances, %llu content "
                    "checks) in %.1f s; %d host CPUs used, %llu operations ran beside another worker's on another "
                    "CPU\n",
                    name, hooks::name, workers, static_cast<unsigned long long>(n.ops.load()),
                    static_cast<unsigned long long>(n.allocs.load()), static_cast<unsigned long long>(n.atomic_allocs.load()),
                    static_cast<unsigned long long>(n.would_block.load()), static_cast<unsigned long long>(n.frees.load()),
                    static_cast<unsigned long long>(n.balances.load()), static_cast<unsigned long long>(n.checks.load()),
                    secs, __builtin_popcountll(host_cpus_seen.load()),
                    static_cast<unsigned long long>(n.parallel_ops.load()));
        a.shutdown();
        const std::string left = hooks::outstanding(a.platform().inner());
        CHECK_MESSAGE(left.empty(), "outstanding after shutdown: " << left);
    }
};

} // namespace

TEST_SUITE("stress") {

template <class Platform, class Policy>
void run_stress() {
    const std::size_t ops = env_or("PCPU_STRESS_OPS", 600);
    const std::size_t seconds = env_or("PCPU_STRESS_SECONDS", 20);
    stress<Platform, Policy> s(ops, seconds);
    s.run(Policy::on_demand ? "lazy_mapped" : Policy::creates_chunks ? "contiguous" : "static_only");
}

TEST_CASE_TEMPLATE("concurrency stress on the sim platform: mixed contexts, atomic allocations and balance in parallel",
                   Policy, pcpu::lazy_mapped, pcpu::contiguous, pcpu::static_only) {
    run_stress<sim, Policy>();
}

TEST_CASE("concurrency stress on the sim platform with the population event: populations outside the sleeping lock") {
    run_stress<sim_event, pcpu::lazy_mapped>();
}

TEST_CASE_TEMPLATE("concurrency stress on the host platform: mixed contexts, atomic allocations and balance in parallel",
                   Policy, pcpu::lazy_mapped, pcpu::contiguous, pcpu::static_only) {
    run_stress<host, Policy>();
}

} // TEST_SUITE
