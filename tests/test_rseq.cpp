// SPDX-License-Identifier: MIT
// tests/test_rseq.cpp - this-CPU operations on the host platform from threads that
// migrate and are interrupted while they update (suite "rseq", in the stress binary):
// with restartable sections (Linux rseq, platform/detail/rseq.hpp) where the build and
// the process have them, and with them turned off (the atomic path, also what a TSan
// build runs). tests/test_rseq_section.cpp runs the sections where no kernel does.
//
// What makes a broken section show: each worker flips its CPU affinity every few
// hundred operations (so threads meet on every CPU's copy, and tasks migrate between
// reading the CPU and writing), there are more workers than CPUs (so they preempt each
// other inside sections), and an interval timer sends SIGALRM to the workers, whose
// handler updates the same copies: a signal that lands inside a section aborts it, and
// a section that did not restart would store over the handler's update (the handler
// does not touch the counter: its fold takes a spinlock the interrupted thread may
// hold, as an ISR would on a platform without irq_save). Everything
// checked is an exact sum, never a timing.
#include "support/racing_sums.hpp"

#include <pcpu/counter.hpp>
#include <pcpu/percpu.hpp>
#include <pcpu/platform/host.hpp>

#include <doctest/doctest.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using host = pcpu::host_platform;
using alloc_t = pcpu::allocator<host, pcpu::contiguous>;

/// fixture - a host allocator over a first chunk in a vector (contiguous: no chunks
/// created, so nothing here depends on mmap).
struct fixture {
    alloc_t a;
    std::vector<unsigned char> units, meta;
    bool ok = false;
    fixture() {
        constexpr std::size_t unit = 4 * alloc_t::page_size;
        const unsigned n = a.platform().nr_cpus();
        units.resize(n * unit + alloc_t::page_size);
        meta.resize(alloc_t::first_chunk_meta_bytes(unit, 64, 256) + alloc_t::meta_align);
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = n;
        cfg.units = align(units.data(), alloc_t::page_size);
        cfg.unit_size = unit;
        cfg.static_size = 64;
        cfg.reserved_size = 256;
        cfg.meta = align(meta.data(), alloc_t::meta_align);
        cfg.meta_size = meta.size() - alloc_t::meta_align;
        ok = a.init(cfg) == pcpu::errc::ok;
    }
    static void* align(void* p, std::size_t n) {
        return reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(p) + n - 1) / n * n);
    }
};

// What the signal handler updates (set before the timer starts).
fixture* g_fix = nullptr;
pcpu::percpu<std::uint64_t> g_h64;
pcpu::percpu<std::uint32_t> g_h32;
std::atomic<std::uint64_t> g_signals{0};

void on_alarm(int) {
    pcpu::this_cpu_add(g_fix->a, g_h64, std::uint64_t{1});
    pcpu::this_cpu_add(g_fix->a, g_h32, std::uint32_t{1});
    g_signals.fetch_add(1, std::memory_order_relaxed);
}

unsigned online_cpus() {
    cpu_set_t s;
    CPU_ZERO(&s);
    if (sched_getaffinity(0, sizeof s, &s) != 0) return 1;
    return static_cast<unsigned>(CPU_COUNT(&s));
}

/// pin_to(k) - move the calling thread to the k-th CPU it may run on (mod their number).
void pin_to(unsigned k, const cpu_set_t& allowed) {
    const unsigned n = static_cast<unsigned>(CPU_COUNT(&allowed));
    unsigned want = k % n;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &allowed)) continue;
        if (want-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            (void)sched_setaffinity(0, sizeof one, &one);
            return;
        }
    }
}

std::uint64_t steps() {
    const char* e = std::getenv("PCPU_RSEQ_STEPS");
    return e != nullptr ? std::strtoull(e, nullptr, 10) : 400000;
}

/// run(rseq) - the workload; every sum must come out exact.
void run(bool rseq) {
    fixture f;
    REQUIRE(f.ok);
    const bool on = f.a.platform().set_rseq(rseq);
    const std::string state = on ? "on" : "off";
    MESSAGE("restartable sections " << state << " (asked " << rseq << ", PCPU_HOST_RSEQ "
                                    << PCPU_HOST_RSEQ << "), " << f.a.platform().nr_cpus() << " CPUs");
    if (!rseq) CHECK(!on);

    auto h64 = pcpu::alloc_percpu<std::uint64_t>(f.a, pcpu::ctx::full);
    auto h32 = pcpu::alloc_percpu<std::uint32_t>(f.a, pcpu::ctx::full);
    auto moved = pcpu::alloc_percpu<std::uint64_t>(f.a, pcpu::ctx::full);
    auto ptrs = pcpu::alloc_percpu<std::uintptr_t>(f.a, pcpu::ctx::full);
    REQUIRE((h64 && h32 && moved && ptrs));
    CHECK(f.a.verify().ok);
    pcpu::counter<alloc_t> c;
    REQUIRE(c.init(f.a, 0, pcpu::ctx::full, 8) == pcpu::errc::ok);
    CHECK(f.a.verify().ok);
    g_fix = &f;
    g_h64 = h64.value();
    g_h32 = h32.value();
    g_signals = 0;

    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    REQUIRE(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
    const unsigned workers = 2 * online_cpus() + 1;
    const std::uint64_t n = steps();
    std::atomic<std::uint64_t> xchg_adds{0}, cas_adds{0}, raw_adds{0};

    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    struct sigaction old_sa {};
    REQUIRE(sigaction(SIGALRM, &sa, &old_sa) == 0);

    std::vector<std::thread> ts;
    for (unsigned w = 0; w < workers; ++w) {
        ts.emplace_back([&, w] {
            std::uint64_t my_cas = 0, my_xchg = 0, my_raw = 0;
            for (std::uint64_t i = 0; i < n; ++i) {
                if (i % 256 == 0) {
                    // A raw add with a guard taken before the move: on a host the guard
                    // pins nothing, so the add must still land on a copy no other CPU's
                    // section is writing (the running CPU's), never on g.cpu()'s with an
                    // atomic while that CPU's threads store to it plainly.
                    pcpu::this_cpu_guard<host> g(f.a.platform());
                    pin_to(w + static_cast<unsigned>(i / 256), allowed);
                    pcpu::raw_this_cpu_add(g, h64.value(), std::uint64_t{1});
                    ++my_raw;
                }
                pcpu::this_cpu_add(f.a, h64.value(), std::uint64_t{1});
                pcpu::this_cpu_inc(f.a, h32.value());
                c.add(1);
                if (i % 4 == 0) c.add(-3); // downward too: the lower bound folds
                if (i % 64 == 0) c.add(100); // beyond the batch: always a fold
                if (i % 16 == 0) {
                    // Move this CPU's h64 count into `moved`: the exchange and the adds
                    // above must never both win (sum(h64) + sum(moved) stays exact).
                    const std::uint64_t taken = pcpu::this_cpu_xchg(f.a, h64.value(), std::uint64_t{0});
                    pcpu::this_cpu_add(f.a, moved.value(), taken);
                    ++my_xchg;
                }
                if (i % 8 == 0) {
                    // A compare-and-exchange increment.
                    std::uintptr_t e = pcpu::this_cpu_read(f.a, ptrs.value());
                    while (!pcpu::this_cpu_try_cmpxchg(f.a, ptrs.value(), e, e + 1)) {
                    }
                    ++my_cas;
                }
            }
            xchg_adds += my_xchg;
            raw_adds += my_raw;
            cas_adds += my_cas;
        });
    }
    // Only the workers take the signal from now on.
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    REQUIRE(pthread_sigmask(SIG_BLOCK, &block, nullptr) == 0);
    itimerval it{};
    it.it_interval.tv_usec = 200;
    it.it_value.tv_usec = 200;
    REQUIRE(setitimer(ITIMER_REAL, &it, nullptr) == 0);
    for (auto& t : ts) t.join();
    itimerval off{};
    REQUIRE(setitimer(ITIMER_REAL, &off, nullptr) == 0);
    // A signal still pending for the process is dropped, not delivered to the default
    // action (which ends the process).
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    REQUIRE(sigaction(SIGALRM, &ign, nullptr) == 0);
    REQUIRE(pthread_sigmask(SIG_UNBLOCK, &block, nullptr) == 0);
    REQUIRE(sigaction(SIGALRM, &old_sa, nullptr) == 0);

    const std::uint64_t sig = g_signals.load();
    MESSAGE(workers << " workers x " << n << " steps, " << sig << " signals");
    const std::uint64_t total = workers * n + sig;
    CHECK(pcpu::sum(h64.value()) + pcpu::sum(moved.value()) == total + raw_adds.load());
    CHECK(pcpu::sum(h32.value()) == total);
    const std::int64_t per_worker = static_cast<std::int64_t>(n) - 3 * static_cast<std::int64_t>((n + 3) / 4) +
                                    100 * static_cast<std::int64_t>((n + 63) / 64);
    CHECK(c.sum() == static_cast<std::int64_t>(workers) * per_worker);
    // Every delta stayed inside (-batch, batch): read() is within the error bound.
    const std::int64_t drift = c.read() - c.sum();
    CHECK((drift < c.error_bound() && -drift < c.error_bound()));
    CHECK(pcpu::sum(ptrs.value()) == cas_adds.load());
    CHECK(xchg_adds.load() > 0);
    CHECK(c.destroy() == pcpu::errc::ok);
    CHECK(pcpu::free_percpu(f.a, h64.value()) == pcpu::errc::ok);
    CHECK(pcpu::free_percpu(f.a, h32.value()) == pcpu::errc::ok);
    CHECK(pcpu::free_percpu(f.a, moved.value()) == pcpu::errc::ok);
    CHECK(pcpu::free_percpu(f.a, ptrs.value()) == pcpu::errc::ok);
    CHECK(f.a.verify().ok);
}

/// run_racing_sum(rseq) - sum() and read() taken while migrating threads add and fold:
/// every sum lies between the adds finished before it and the adds started before it
/// returned (a fold seen half done would lose a delta or count it twice).
void run_racing_sum(bool rseq) {
    fixture f;
    REQUIRE(f.ok);
    const bool on = f.a.platform().set_rseq(rseq);
    if (!rseq) CHECK(!on);
    pcpu::counter<alloc_t> c;
    constexpr std::int32_t batch = 4;
    REQUIRE(c.init(f.a, 0, pcpu::ctx::full, batch) == pcpu::errc::ok);
    CHECK(f.a.verify().ok);
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    REQUIRE(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
    const unsigned workers = 2 * online_cpus();
    const std::uint64_t n = steps() / 2;
    pcpu_test::racing_sums race;
    std::atomic<unsigned> running{workers};
    std::vector<std::thread> ts;
    for (unsigned w = 0; w < workers; ++w)
        ts.emplace_back([&, w] {
            for (std::uint64_t i = 0; i < n; ++i) {
                if (i % 512 == 0) pin_to(w + static_cast<unsigned>(i / 512), allowed);
                race.add([&] { c.add(1); });
            }
            running.fetch_sub(1);
        });
    // Adds in flight may hold a delta they took and have not stored in the count yet.
    const std::int64_t slack = std::int64_t{workers} * batch;
    while (running.load() != 0) race.check(c, 0, slack);
    for (auto& t : ts) t.join();
    MESSAGE("sections " << std::string(on ? "on" : "off") << ", " << workers << " workers x " << n << " adds, " << race.sums << " racing sums");
    CHECK(race.sums > 0);
    CHECK(race.bad_sums == 0);
    CHECK(race.bad_reads == 0);
    CHECK(c.sum() == static_cast<std::int64_t>(workers * n));
    CHECK(c.destroy() == pcpu::errc::ok);
    CHECK(f.a.verify().ok);
}

} // namespace

TEST_SUITE("rseq") {

TEST_CASE("rseq: the host platform turns restartable sections on exactly where the build and process have them") {
    host all;
#if PCPU_HOST_RSEQ
    // On wherever glibc registered areas (a build that should have them and silently
    // does not fails here).
    const bool expect = pcpu::detail::rseq_registered() && sysconf(_SC_NPROCESSORS_CONF) <= long(all.nr_cpus());
#else
    const bool expect = false;
#endif
    CHECK(all.rseq_enabled() == expect);
    // A platform with fewer CPUs than the system folds CPUs onto one copy: no sections.
    if (online_cpus() > 1) {
        host one(1);
        CHECK(!one.rseq_enabled());
        CHECK(!one.set_rseq(true));
    }
    CHECK(!all.set_rseq(false));
    CHECK(!all.rseq_enabled());
}

TEST_CASE("rseq: the bounded add stores exactly when the sum stays strictly inside the bounds") {
    host p;
    if (!p.rseq_enabled()) {
        MESSAGE("no restartable sections here: nothing to check");
        return;
    }
#if PCPU_HOST_RSEQ
    fixture f;
    REQUIRE(f.ok);
    REQUIRE(f.a.platform().rseq_enabled());
    auto h = pcpu::alloc_percpu<std::int32_t>(f.a, pcpu::ctx::full);
    REQUIRE(h);
    CHECK(f.a.verify().ok);
    const pcpu::percpu<std::int32_t> d = h.value();
    // The thread stays on one CPU: only then is "the running CPU's copy" one copy.
    cpu_set_t allowed;
    REQUIRE(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
    pin_to(0, allowed);
    const unsigned cpu = f.a.platform().this_cpu();
    auto add = [&](std::int32_t v, std::int32_t lo, std::int32_t hi, std::int32_t& seen) {
        return f.a.platform().rseq_add_within(d.raw().addr(), d.cpu_offsets(), d.nr_cpus(), v, lo, hi, seen);
    };
    std::int32_t seen = 12345;
    CHECK(add(5, -8, 8, seen) == pcpu::rseq_result::done);
    CHECK(*d.ptr(cpu) == 5);
    CHECK(add(2, -8, 8, seen) == pcpu::rseq_result::done); // 7 < 8
    CHECK(*d.ptr(cpu) == 7);
    CHECK(add(1, -8, 8, seen) == pcpu::rseq_result::changed); // 8 is not inside
    CHECK(seen == 7);
    CHECK(*d.ptr(cpu) == 7);
    CHECK(add(-15, -8, 8, seen) == pcpu::rseq_result::changed); // -8 is not inside
    CHECK(add(-14, -8, 8, seen) == pcpu::rseq_result::done);
    CHECK(*d.ptr(cpu) == -7);
    // Extremes: no wrap in the sum (computed in 64 bits).
    *d.ptr(cpu) = INT32_MAX - 1;
    CHECK(add(INT32_MAX - 1, INT32_MIN, INT32_MAX, seen) == pcpu::rseq_result::changed);
    CHECK(seen == INT32_MAX - 1);
    *d.ptr(cpu) = INT32_MIN + 1;
    CHECK(add(INT32_MIN + 1, INT32_MIN, INT32_MAX, seen) == pcpu::rseq_result::changed);
    CHECK(add(1, INT32_MIN, INT32_MAX, seen) == pcpu::rseq_result::done);
    CHECK(*d.ptr(cpu) == INT32_MIN + 2);
    for (unsigned c = 0; c < d.nr_cpus(); ++c)
        if (c != cpu) CHECK(*d.ptr(c) == 0); // only the running CPU's copy
    REQUIRE(sched_setaffinity(0, sizeof allowed, &allowed) == 0);
    CHECK(pcpu::free_percpu(f.a, d) == pcpu::errc::ok);
    CHECK(f.a.verify().ok);
#endif
}

TEST_CASE("rseq: this-CPU add, xchg, cmpxchg and counter::add from migrating, interrupted threads sum exactly") {
    SUBCASE("restartable sections where available") { run(true); }
    SUBCASE("atomic path") { run(false); }
}

TEST_CASE("rseq: sum() racing with migrating threads' adds and folds sees each add whole") {
    SUBCASE("restartable sections where available") { run_racing_sum(true); }
    SUBCASE("atomic path") { run_racing_sum(false); }
}

} // TEST_SUITE
