// SPDX-License-Identifier: MIT
// tests/test_host.cpp - pcpu on the real host platform (pcpu/platform/host.hpp):
// lazy_mapped and contiguous chunks in real process memory, residency checked with
// mincore(), mappings checked in /proc/self/maps, the context checker wrapped around
// the host, threads, and the balance worker. Every allocator operation is followed by
// verify().
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/debug/context_checker.hpp>
#include <pcpu/debug/platform_wrapper.hpp>
#include <pcpu/platform/host.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using host = pcpu::host_platform;
using checked_host = pcpu::debug::context_checker<host>;
using cb = pcpu::debug::callback;
namespace ctx = pcpu::ctx;

constexpr std::size_t unit = 32 * 1024; // 8 pages of 4 KiB
constexpr unsigned cpus = 4;            // units, not threads: any machine has four

/// host_setup<Alloc> - a first chunk with `dyn` bytes of dynamic space in caller
/// storage (the host platform counts the machine's CPUs; the units are four whatever
/// it has: this_cpu() folds onto them).
template <class Alloc>
struct host_setup : pcpu_test::static_setup<Alloc> {
    explicit host_setup(std::size_t dyn = 8 * 1024) : pcpu_test::static_setup<Alloc>(cpus, unit, unit - dyn, 0) {}
};

template <class A>
host& host_of(A& a) {
    return pcpu::detail::host_unwrap<typename A::platform_type>::get(a.platform());
}

/// CHECK_CHECKED(a) - verify(), and no violation seen by the checker around the host.
#define CHECK_CHECKED(a)                                                                           \
    do {                                                                                           \
        REQUIRE_VERIFIED(a);                                                                         \
        INFO("checker: " << std::string((a).platform().last_violation()));                         \
        CHECK((a).platform().violations() == 0);                                                   \
    } while (0)

/// pattern(tag, cpu, i) - the byte a test writes at offset i of CPU cpu's copy of the
/// allocation tagged `tag`: differs per allocation, per CPU and along the area.
unsigned char pattern(std::uint32_t tag, unsigned cpu, std::size_t i) {
    return static_cast<unsigned char>((tag * 131u) ^ (cpu * 29u) ^ static_cast<unsigned>(i * 7u));
}
template <class A>
void fill(A& a, pcpu::handle h, std::size_t size, std::uint32_t tag) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        auto* p = static_cast<unsigned char*>(a.ptr(h, cpu));
        for (std::size_t i = 0; i < size; ++i) p[i] = pattern(tag, cpu, i);
    }
}
template <class A>
bool holds(A& a, pcpu::handle h, std::size_t size, std::uint32_t tag) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        const auto* p = static_cast<const unsigned char*>(a.ptr(h, cpu));
        for (std::size_t i = 0; i < size; ++i)
            if (p[i] != pattern(tag, cpu, i)) return false;
    }
    return true;
}
using pcpu_test::zeroed;

/// resident(addr, bytes) - host pages of [addr, addr + bytes) in memory, by mincore();
/// -1 if part of the range is not mapped at all (ENOMEM).
long resident(std::uintptr_t addr, std::size_t bytes) {
    const std::size_t h = pcpu::detail::host_page_size();
    const std::uintptr_t b = addr - addr % h;
    const std::size_t len = (addr + bytes - b + h - 1) / h * h;
    std::vector<unsigned char> vec(len / h);
    if (::mincore(reinterpret_cast<void*>(b), len, vec.data()) != 0) return errno == ENOMEM ? -1 : -2;
    long n = 0;
    for (unsigned char v : vec) n += v & 1;
    return n;
}

/// chunk_range - one dynamic chunk's address space: every CPU's unit.
struct chunk_range {
    std::uintptr_t begin;
    std::uintptr_t end;
    std::uint32_t nr_populated;
};
template <class A>
std::vector<chunk_range> dynamic_chunks(A& a) {
    std::vector<chunk_range> out;
    a.for_each_chunk([&](const pcpu::chunk_stats& s) {
        if (s.kind == pcpu::chunk_kind::dynamic) out.push_back({s.base, s.base + cpus * unit, s.nr_populated});
    });
    return out;
}

/// mapping_overlaps(b, e) - some mapping in /proc/self/maps overlaps [b, e). Reads
/// with a fixed buffer and no heap, so the check itself cannot create a mapping.
bool mapping_overlaps(std::uintptr_t b, std::uintptr_t e) {
    const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    char buf[4096];
    char line[512];
    std::size_t len = 0;
    bool found = false;
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] != '\n') {
                if (len + 1 < sizeof line) line[len++] = buf[i];
                continue;
            }
            line[len] = '\0';
            len = 0;
            char* dash = nullptr;
            const unsigned long long lo = std::strtoull(line, &dash, 16);
            const unsigned long long hi = dash != nullptr && *dash == '-' ? std::strtoull(dash + 1, nullptr, 16) : 0;
            if (lo < e && hi > b) found = true;
        }
    }
    ::close(fd);
    return found;
}

/// collect(msg, user) - a warn handler that keeps the messages in a
/// std::vector<std::string> (tests assert on them instead of printing them).
void collect(const char* msg, void* user) { static_cast<std::vector<std::string>*>(user)->emplace_back(msg); }

/// shared_log - a warn handler's target that several threads may write at once.
struct shared_log {
    std::mutex mu;
    std::vector<std::string> messages;
    static void handler(const char* msg, void* user) {
        auto& log = *static_cast<shared_log*>(user);
        std::lock_guard<std::mutex> g(log.mu);
        log.messages.emplace_back(msg);
    }
};

/// widen_map<Inner> - a deliberately wrong layer that passes full to map: the checker
/// under it must catch it on the host as it does on the sim.
template <class Inner>
struct widen_map : pcpu::debug::platform_wrapper<Inner> {
    using pcpu::debug::platform_wrapper<Inner>::platform_wrapper;
    bool map(std::uintptr_t addr, const pcpu::page_ref* pages, std::size_t n, pcpu::gfp) noexcept {
        return this->inner().map(addr, pages, n, ctx::full);
    }
};

} // namespace

TEST_SUITE("host") {

TEST_CASE("host platform: CPUs, per-thread scopes, background context, polled balance requests") {
    host p(3);
    CHECK(p.nr_cpus() == 3);
    for (int i = 0; i < 100; ++i) CHECK(p.this_cpu() < 3);
    host detected;
    CHECK(detected.nr_cpus() >= 1);
    CHECK(detected.nr_cpus() <= host::max_cpus);
    CHECK(detected.nr_cpus() == std::min<std::size_t>(static_cast<std::size_t>(::sysconf(_SC_NPROCESSORS_CONF)),
                                                      host::max_cpus));

    CHECK(p.current_scope() == ctx::full);
    {
        pcpu::scope_guard<host> nofs(p, ctx::nofs);
        CHECK(p.current_scope() == ctx::nofs);
        {
            pcpu::scope_guard<host> noio(p, ctx::noio);
            CHECK(p.current_scope() == ctx::noio);
            pcpu::scope_guard<host> nofs2(p, ctx::nofs);
            CHECK(p.current_scope() == ctx::noio); // NOIO wins
            CHECK(detected.current_scope() == ctx::noio); // the thread's, not the platform's
            pcpu::gfp other = ctx::atomic;
            std::thread([&] { other = p.current_scope(); }).join();
            CHECK(other == ctx::full); // another thread has its own
        }
        CHECK(p.current_scope() == ctx::nofs);
    }
    CHECK(p.current_scope() == ctx::full);

    CHECK(p.background_context() == ctx::noio);
    p.set_background_context(ctx::nofs);
    CHECK(p.background_context() == ctx::nofs);

    CHECK_FALSE(p.take_balance_request());
    p.request_balance();
    CHECK(p.balance_requested());
    CHECK(p.take_balance_request());
    CHECK_FALSE(p.take_balance_request());
    CHECK(p.counters().balance_requests == 1);

    // A waiter sleeps until a request comes, and a stop wakes it with false.
    std::atomic<bool> stop{false};
    std::atomic<int> woken{0};
    std::thread waiter([&] {
        while (p.wait_balance_request(stop)) woken.fetch_add(1);
    });
    p.request_balance();
    for (int i = 0; i < 1000 && woken.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(woken.load() == 1);
    stop.store(true);
    p.wake_balance_waiters();
    waiter.join();
    CHECK(woken.load() == 1);

    std::vector<std::string> seen;
    p.set_warn_handler(&collect, &seen);
    p.warn("hello");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == "hello");
    CHECK(p.counters().warnings == 1);
    CHECK(p.counters().nothing_outstanding());
}

TEST_CASE("host platform: reserve, map, unmap and release are real; a page below the host's is refused") {
    host p(2);
    const std::size_t bytes = 2 * unit;
    const std::uintptr_t base = p.reserve(bytes, ctx::noio);
    REQUIRE(base != 0);
    CHECK(base % host::page_size == 0);
    CHECK(mapping_overlaps(base, base + bytes));
    CHECK(resident(base, bytes) == 0);
    pcpu::page_ref pages[3] = {};
    REQUIRE(p.alloc_pages(1, pages, 3, ctx::noio));
    CHECK(p.counters().pages == 3);
    const std::uintptr_t at = base + unit + host::page_size;
    REQUIRE(p.map(at, pages, 3, ctx::noio));
    CHECK(resident(at, 3 * host::page_size) == static_cast<long>(3 * host::page_size / pcpu::detail::host_page_size()));
    CHECK(*reinterpret_cast<unsigned char*>(at) == 0); // fresh anonymous pages read as zero
    std::memset(reinterpret_cast<void*>(at), 0x77, 3 * host::page_size);
    CHECK(p.counters().mapped_pages == 3);
    pcpu::page_ref back[3] = {};
    p.unmap(at, back, 3);
    CHECK(resident(at, 3 * host::page_size) == 0);
    CHECK(std::all_of(back, back + 3, [](pcpu::page_ref r) { return r == pcpu::host_page_marker; }));
    // Still reserved, still ours: mapping it again gives zeroes, not the old contents.
    REQUIRE(p.map(at, back, 1, ctx::noio));
    CHECK(*reinterpret_cast<unsigned char*>(at) == 0);
    p.unmap(at, back, 1);
    p.free_pages(1, back, 3);
    p.release(base, bytes);
    CHECK_FALSE(mapping_overlaps(base, base + bytes));
    CHECK(p.counters().nothing_outstanding());

    // A page limit makes alloc_pages fail without taking anything.
    p.set_page_limit(4);
    pcpu::page_ref five[5];
    CHECK_FALSE(p.alloc_pages(0, five, 5, ctx::full));
    CHECK(p.counters().pages == 0);
    CHECK(p.alloc_pages(0, five, 4, ctx::full));
    CHECK_FALSE(p.alloc_pages(0, five + 4, 1, ctx::full));
    p.free_pages(0, five, 4);
    CHECK(p.counters().nothing_outstanding());

    // Without guard pages the reservation is read/write: an unpopulated page reads as
    // zero instead of faulting, and the setting cannot change under a reservation.
    REQUIRE(p.set_guard_pages(false));
    const std::uintptr_t open_base = p.reserve(bytes, ctx::noio);
    REQUIRE(open_base != 0);
    CHECK_FALSE(p.set_guard_pages(true));
    CHECK(*reinterpret_cast<volatile unsigned char*>(open_base + unit) == 0);
    REQUIRE(p.alloc_pages(0, pages, 1, ctx::noio));
    REQUIRE(p.map(open_base, pages, 1, ctx::noio));
    CHECK(resident(open_base, host::page_size) == static_cast<long>(host::page_size / pcpu::detail::host_page_size()));
    std::memset(reinterpret_cast<void*>(open_base), 0x77, host::page_size);
    p.unmap(open_base, back, 1);
    CHECK(resident(open_base, host::page_size) == 0);
    CHECK(*reinterpret_cast<volatile unsigned char*>(open_base) == 0); // contents dropped
    p.free_pages(0, back, 1);
    p.release(open_base, bytes);
    CHECK(p.counters().nothing_outstanding());
    CHECK(p.set_guard_pages(true));

    if (pcpu::detail::host_page_size() > 1024) {
        pcpu::basic_host_platform<4, 10> small(1); // 1 KiB pages cannot be protected one by one
        std::vector<std::string> seen;
        small.set_warn_handler(&collect, &seen);
        CHECK(small.reserve(4 * 1024, ctx::full) == 0);
        CHECK(small.reserve(4 * 1024, ctx::full) == 0);
        CHECK(seen.size() == 1); // warned once
    }
}

/// lazy_mapped_real_pages(guard) - the case below, with guard pages on or off.
static void lazy_mapped_real_pages(bool guard) {
    using alloc_t = pcpu::allocator<host, pcpu::lazy_mapped>;
    host_setup<alloc_t> f;
    auto& a = f.alloc;
    REQUIRE(a.platform().set_guard_pages(guard));
    REQUIRE(f.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    const std::size_t hpages_per_page = host::page_size / pcpu::detail::host_page_size();

    // 16 KiB areas: two per 32 KiB unit, so seven of them need four dynamic chunks.
    struct live_area {
        pcpu::handle h;
        std::size_t size;
        std::uint32_t tag;
    };
    std::vector<live_area> live;
    std::vector<std::size_t> sizes = {16 * 1024, 12 * 1024, 16 * 1024, 100, 16 * 1024, 20 * 1024, 16 * 1024};
    std::uint32_t tag = 1;
    for (std::size_t size : sizes) {
        auto r = a.alloc(size, 64, ctx::full);
        REQUIRE(r.ok());
        REQUIRE_VERIFIED(a);
        CHECK(zeroed(a, r.value(), size));
        fill(a, r.value(), size, tag);
        // Every CPU's copy is in memory now.
        for (unsigned cpu = 0; cpu < cpus; ++cpu)
            CHECK(resident(reinterpret_cast<std::uintptr_t>(a.ptr(r.value(), cpu)), size) > 0);
        live.push_back({r.value(), size, tag++});
    }
    auto chunks = dynamic_chunks(a);
    CHECK(chunks.size() >= 3);
    // What pcpu believes is populated is exactly what the process has accessible and
    // resident in each chunk (prefault): mapping really happened, and only there.
    std::size_t populated = 0;
    for (const auto& c : chunks) {
        CAPTURE(c.begin);
        CHECK(resident(c.begin, c.end - c.begin) == static_cast<long>(c.nr_populated * cpus * hpages_per_page));
        populated += c.nr_populated;
    }
    CHECK(a.platform().counters().mapped_pages == populated * cpus);
    CHECK(a.platform().counters().pages == populated * cpus);
    CHECK(a.platform().counters().reservations == chunks.size());
    for (const auto& l : live) CHECK(holds(a, l.h, l.size, l.tag)); // no two areas overlap

    // Free all but one; balance destroys the surplus chunks and unmaps empty pages.
    const long before = [&] {
        long n = 0;
        for (const auto& c : chunks) n += resident(c.begin, c.end - c.begin);
        return n;
    }();
    for (std::size_t i = 1; i < live.size(); ++i) {
        REQUIRE(a.free(live[i].h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    CHECK(a.platform().counters().balance_requests >= 1);
    REQUIRE(a.balance() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    const auto after_chunks = dynamic_chunks(a);
    CHECK(after_chunks.size() < chunks.size());
    long after = 0;
    std::size_t populated_after = 0;
    for (const auto& c : after_chunks) {
        const long r = resident(c.begin, c.end - c.begin);
        CHECK(r == static_cast<long>(c.nr_populated * cpus * hpages_per_page));
        after += r;
        populated_after += c.nr_populated;
    }
    CHECK(after < before); // residency really dropped
    CHECK(a.platform().counters().mapped_pages == populated_after * cpus);
    CHECK(a.stats().nr_empty_pop_pages >= 2);
    CHECK(a.stats().nr_empty_pop_pages <= 4);
    // Destroyed chunks are gone from the address space.
    for (const auto& c : chunks) {
        const bool kept = std::any_of(after_chunks.begin(), after_chunks.end(),
                                      [&](const chunk_range& k) { return k.begin == c.begin; });
        if (!kept) CHECK(resident(c.begin, c.end - c.begin) < 0);
    }
    CHECK(holds(a, live[0].h, live[0].size, live[0].tag));
    REQUIRE(a.free(live[0].h) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);

    const auto last = dynamic_chunks(a);
    REQUIRE_FALSE(last.empty());
    for (const auto& c : last) CHECK(mapping_overlaps(c.begin, c.end));
    a.shutdown();
    for (const auto& c : last) CHECK_FALSE(mapping_overlaps(c.begin, c.end));
    CHECK(a.platform().counters().nothing_outstanding());
}

TEST_CASE("lazy_mapped on the host: real pages mapped on demand, unmapped by balance, nothing left after teardown") {
    lazy_mapped_real_pages(true);
}

TEST_CASE("lazy_mapped on the host: real pages without guard pages (read/write reservations)") {
    lazy_mapped_real_pages(false);
}

TEST_CASE("lazy_mapped on the host: a page limit fails population cleanly") {
    using alloc_t = pcpu::allocator<host, pcpu::lazy_mapped>;
    host_setup<alloc_t> f;
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    // Three pages per CPU, and four more in all: the next four-page population gets
    // CPU 0's pages, fails on CPU 1's, and must give CPU 0's back.
    a.platform().set_page_limit(3 * cpus + 4);
    std::vector<std::string> warnings;
    a.platform().set_warn_handler(&collect, &warnings);
    auto small = a.alloc(12 * 1024, 8, ctx::noio); // a new chunk, three pages: fits the budget
    REQUIRE(small.ok());
    REQUIRE_VERIFIED(a);
    CHECK(a.platform().counters().pages == 3 * cpus);
    auto big = a.alloc(16 * 1024, 8, ctx::noio); // four more pages per CPU: does not
    CHECK(big.error() == pcpu::errc::out_of_memory);
    REQUIRE_VERIFIED(a);
    CHECK(warnings.size() == 1);
    CHECK(a.platform().counters().pages == 3 * cpus); // CPU 0's four were given back
    CHECK(a.platform().counters().mapped_pages == 3 * cpus);
    REQUIRE(a.free(small.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    a.shutdown();
    CHECK(a.platform().counters().nothing_outstanding());
}

TEST_CASE("contiguous on the host: chunks are whole anonymous mappings, returned by balance and teardown") {
    using alloc_t = pcpu::allocator<host, pcpu::contiguous>;
    host_setup<alloc_t> f(4 * 1024);
    auto& a = f.alloc;
    REQUIRE(f.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    auto r1 = a.alloc(16 * 1024, 64, ctx::noio);
    REQUIRE(r1.ok());
    REQUIRE_VERIFIED(a);
    auto r2 = a.alloc(unit, 8, ctx::full); // a whole unit: a second chunk
    REQUIRE(r2.ok());
    REQUIRE_VERIFIED(a);
    auto at = a.alloc(4 * 1024, 8, ctx::atomic); // contiguous chunks are populated throughout
    REQUIRE(at.ok());
    REQUIRE_VERIFIED(a);
    CHECK(a.platform().counters().units_blocks == 2);
    CHECK(a.platform().counters().reservations == 0);
    CHECK(zeroed(a, r2.value(), unit));
    fill(a, r1.value(), 16 * 1024, 1);
    fill(a, r2.value(), unit, 2);
    fill(a, at.value(), 4 * 1024, 3);
    CHECK(holds(a, r1.value(), 16 * 1024, 1));
    CHECK(holds(a, r2.value(), unit, 2));
    CHECK(holds(a, at.value(), 4 * 1024, 3));
    const auto chunks = dynamic_chunks(a);
    REQUIRE(chunks.size() == 2);
    for (auto h : {r1.value(), r2.value(), at.value()}) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
    REQUIRE(a.balance() == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.platform().counters().units_blocks == 1); // one spare kept
    const auto spare = dynamic_chunks(a);
    REQUIRE(spare.size() == 1);
    for (const auto& c : chunks)
        if (c.begin != spare[0].begin) CHECK_FALSE(mapping_overlaps(c.begin, c.end));
    a.shutdown();
    CHECK_FALSE(mapping_overlaps(spare[0].begin, spare[0].end));
    CHECK(a.platform().counters().nothing_outstanding());
}

TEST_CASE("the context checker around the host: full, nofs, noio and atomic callers, no widening") {
    using alloc_t = pcpu::allocator<checked_host, pcpu::lazy_mapped>;
    host_setup<alloc_t> f;
    auto& a = f.alloc;
    a.platform().set_violation_handler(&checked_host::record_only);
    // Background full: nothing caps the callbacks, so each caller's own context is
    // what reaches the host, and must be exactly that.
    host_of(a).set_background_context(ctx::full);
    REQUIRE(f.init() == pcpu::errc::ok);
    CHECK_CHECKED(a);

    const auto blocking = [&] {
        std::uint32_t n = 0;
        for (cb k : {cb::slow_lock, cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map}) n += a.platform().calls(k);
        return n;
    };
    std::vector<pcpu::handle> live;
    for (pcpu::gfp c : {ctx::full, ctx::nofs, ctx::noio}) {
        a.platform().clear_calls();
        auto r = a.alloc(12 * 1024, 8, c); // a new chunk or new pages every time
        REQUIRE(r.ok());
        CHECK_CHECKED(a);
        fill(a, r.value(), 12 * 1024, c.bits);
        live.push_back(r.value());
        CHECK(a.platform().calls(cb::alloc_pages, c) == a.platform().calls(cb::alloc_pages));
        CHECK(a.platform().calls(cb::alloc_pages) > 0);
        CHECK(a.platform().calls(cb::map, c) == a.platform().calls(cb::map));
        CHECK(a.platform().map_scopes_within(c));
    }
    {
        const std::uint32_t before = blocking();
        auto r = a.alloc(256, 8, ctx::atomic);
        CHECK(blocking() == before);
        CHECK_CHECKED(a);
        if (r) live.push_back(r.value());
        else CHECK(r.error() == pcpu::errc::would_block);
    }
    // A noio scope makes a full request noio, all the way into the host.
    host_of(a).set_background_context(ctx::full);
    {
        pcpu::scope_guard<host> noio(host_of(a), ctx::noio);
        a.platform().clear_calls();
        auto r = a.alloc(20 * 1024, 8, ctx::full);
        REQUIRE(r.ok());
        CHECK_CHECKED(a);
        live.push_back(r.value());
        for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map}) CHECK(a.platform().all_within(k, ctx::noio));
        CHECK(a.platform().map_scopes_within(ctx::noio));
    }
    // The default background cap: a full caller's callbacks under the lock are noio.
    host_of(a).set_background_context(ctx::noio);
    a.platform().clear_calls();
    auto r = a.alloc(24 * 1024, 8, ctx::full);
    REQUIRE(r.ok());
    CHECK_CHECKED(a);
    live.push_back(r.value());
    CHECK(a.platform().all_within(cb::alloc_pages, ctx::noio));
    CHECK(a.platform().calls(cb::alloc_pages) > 0);

    for (auto h : live) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        CHECK_CHECKED(a);
    }
    a.platform().clear_calls();
    REQUIRE(a.balance(ctx::full) == pcpu::errc::ok);
    CHECK_CHECKED(a);
    for (cb k : {cb::alloc_meta, cb::reserve, cb::alloc_pages, cb::map}) CHECK(a.platform().all_within(k, ctx::noio));
    a.shutdown();
    CHECK(a.platform().violations() == 0);
    CHECK(host_of(a).counters().nothing_outstanding());
}

TEST_CASE("the checker around the host catches a layer that passes full to map") {
    using alloc_t = pcpu::allocator<widen_map<checked_host>, pcpu::lazy_mapped>;
    host_setup<alloc_t> f;
    auto& chk = f.alloc.platform().inner();
    chk.set_violation_handler(&checked_host::record_only);
    std::vector<std::string> warnings; // the checker also warns through the host
    chk.inner().set_warn_handler(&collect, &warnings);
    REQUIRE(f.init() == pcpu::errc::ok);
    auto r = f.alloc.alloc(12 * 1024, 8, ctx::noio);
    REQUIRE(r.ok()); // the host cannot deadlock; only the checker can tell
    REQUIRE_VERIFIED(f.alloc);
    REQUIRE(chk.violations() >= 1);
    const std::string msg = chk.violation(0);
    INFO(msg);
    CHECK(msg.find("map received block|io|fs") != std::string::npos);
    CHECK(warnings.size() == chk.violations());
    REQUIRE(f.alloc.free(r.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(f.alloc);
    f.alloc.shutdown();
    CHECK(chk.inner().counters().nothing_outstanding());
}

TEST_CASE("threads on the host: mixed contexts allocate, check and free their per-CPU areas while one balances") {
    using alloc_t = pcpu::allocator<checked_host, pcpu::lazy_mapped>;
    host_setup<alloc_t> f;
    auto& a = f.alloc;
    a.platform().set_violation_handler(&checked_host::record_only);
    shared_log warnings; // atomic failures warn
    host_of(a).set_warn_handler(&shared_log::handler, &warnings);
    REQUIRE(f.init() == pcpu::errc::ok);
    CHECK_CHECKED(a);

    constexpr unsigned nr_workers = 3;
    constexpr int ops = 300;
    std::atomic<unsigned> running{nr_workers};
    std::atomic<unsigned> verify_failures{0}, clobbered{0}, unexpected_errors{0}, balance_errors{0};
    std::atomic<unsigned> blocking_ok{0}, atomic_ok{0}, atomic_would_block{0}, balances{0};
    std::mutex first_mu;
    std::string first_problem;
    const auto problem = [&](std::atomic<unsigned>& counter, const std::string& what) {
        counter.fetch_add(1);
        std::lock_guard<std::mutex> g(first_mu);
        if (first_problem.empty()) first_problem = what;
    };
    const auto verified = [&](const char* after) {
        const pcpu::verify_report rep = a.verify();
        if (!rep.ok) {
            char buf[200];
            problem(verify_failures, std::string("verify after ") + after + ": " + rep.describe(buf, sizeof buf));
        }
    };

    const auto worker = [&](unsigned id) {
        std::mt19937 rng(1234 + id);
        const pcpu::gfp contexts[] = {ctx::full, ctx::nofs, ctx::noio, ctx::atomic, ctx::nowait};
        const std::size_t sizes[] = {4, 24, 256, 1000, 4096, 12 * 1024};
        struct area {
            pcpu::handle h;
            std::size_t size;
            std::uint32_t tag;
        };
        std::vector<area> mine;
        for (int op = 0; op < ops; ++op) {
            const bool do_alloc = mine.empty() || (mine.size() < 12 && rng() % 3 != 0);
            if (do_alloc) {
                const pcpu::gfp c = contexts[rng() % 5];
                const std::size_t size = sizes[rng() % 6];
                const bool scoped = rng() % 4 == 0; // sometimes inside a noio scope
                pcpu::result<pcpu::handle> r = pcpu::errc::no_space;
                if (scoped) {
                    pcpu::scope_guard<host> noio(host_of(a), ctx::noio);
                    r = a.alloc(size, 8, c);
                } else {
                    r = a.alloc(size, 8, c);
                }
                verified("alloc");
                const bool may_block = pcpu::context_traits<pcpu::gfp>::may_block(c);
                if (r) {
                    (may_block ? blocking_ok : atomic_ok).fetch_add(1);
                    if (!zeroed(a, r.value(), size)) problem(clobbered, "a fresh allocation was not zeroed");
                    const std::uint32_t tag = id * 100000u + static_cast<std::uint32_t>(op);
                    fill(a, r.value(), size, tag);
                    mine.push_back({r.value(), size, tag});
                } else if (!may_block && r.error() == pcpu::errc::would_block) {
                    atomic_would_block.fetch_add(1);
                } else {
                    problem(unexpected_errors, std::string("alloc failed: ") + pcpu::errc_name(r.error()));
                }
            } else {
                const std::size_t i = rng() % mine.size();
                if (!holds(a, mine[i].h, mine[i].size, mine[i].tag))
                    problem(clobbered, "another thread wrote into this thread's per-CPU area");
                const pcpu::errc e = a.free(mine[i].h);
                verified("free");
                if (e != pcpu::errc::ok) problem(unexpected_errors, std::string("free failed: ") + pcpu::errc_name(e));
                mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(i));
            }
        }
        for (const auto& m : mine) {
            if (!holds(a, m.h, m.size, m.tag)) problem(clobbered, "another thread wrote into this thread's area");
            if (a.free(m.h) != pcpu::errc::ok) problem(unexpected_errors, "final free failed");
            verified("final free");
        }
        running.fetch_sub(1);
    };

    std::thread balancer([&] {
        while (running.load() != 0) {
            const pcpu::errc e = a.balance();
            verified("balance");
            if (e != pcpu::errc::ok) problem(balance_errors, std::string("balance: ") + pcpu::errc_name(e));
            balances.fetch_add(1);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    std::vector<std::thread> workers;
    for (unsigned id = 0; id < nr_workers; ++id) workers.emplace_back(worker, id);
    for (auto& t : workers) t.join();
    balancer.join();

    INFO("first problem: " << first_problem);
    CHECK(verify_failures.load() == 0);
    CHECK(clobbered.load() == 0);
    CHECK(unexpected_errors.load() == 0);
    CHECK(balance_errors.load() == 0);
    CHECK(balances.load() >= 1);
    CHECK(blocking_ok.load() > 0);
    CHECK(atomic_ok.load() + atomic_would_block.load() > 0);
    MESSAGE("threads: " << blocking_ok.load() << " sleeping and " << atomic_ok.load() << " atomic allocations, "
                        << atomic_would_block.load() << " atomic would_block, " << balances.load() << " balance passes");
    CHECK_CHECKED(a);
    CHECK(a.stats().nr_cur_alloc == 0);
    REQUIRE(a.balance() == pcpu::errc::ok);
    CHECK_CHECKED(a);
    a.shutdown();
    CHECK(a.platform().violations() == 0);
    CHECK(host_of(a).counters().nothing_outstanding());
}

TEST_CASE("warnings are rate-limited across threads: ten, then the last word, then silence") {
    using alloc_t = pcpu::allocator<host, pcpu::lazy_mapped>;
    host_setup<alloc_t> f(4 * 1024);
    auto& a = f.alloc;
    shared_log log;
    a.platform().set_warn_handler(&shared_log::handler, &log);
    REQUIRE(f.init() == pcpu::errc::ok);
    auto full = a.alloc(4 * 1024, 4, ctx::full); // no populated free space left
    REQUIRE(full.ok());
    REQUIRE_VERIFIED(a);
    // Many threads fail atomic allocations at once; each failure wants a warning.
    constexpr unsigned nr_threads = 4;
    constexpr int tries = 200;
    std::atomic<unsigned> ready{0};
    std::atomic<unsigned> failed{0};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < nr_threads; ++t)
        threads.emplace_back([&] {
            ready.fetch_add(1);
            while (ready.load() != nr_threads) std::this_thread::yield();
            for (int i = 0; i < tries; ++i)
                if (a.alloc(64, 4, ctx::atomic).error() == pcpu::errc::would_block) failed.fetch_add(1);
        });
    for (auto& t : threads) t.join();
    REQUIRE_VERIFIED(a);
    CHECK(failed.load() == nr_threads * tries);
    // The order across threads is not defined; the count is.
    CHECK(log.messages.size() == 11);
    CHECK(std::count(log.messages.begin(), log.messages.end(), "pcpu: limit reached, disable warning") == 1);
    REQUIRE(a.free(full.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(a);
}

TEST_CASE("balance_worker: an atomic failure wakes the worker, which refills the reserve") {
    using alloc_t = pcpu::allocator<checked_host, pcpu::lazy_mapped>;
    host_setup<alloc_t> f(4 * 1024);
    auto& a = f.alloc;
    a.platform().set_violation_handler(&checked_host::record_only);
    REQUIRE(f.init() == pcpu::errc::ok);
    CHECK_CHECKED(a);
    std::vector<std::string> warnings;
    host_of(a).set_warn_handler(&collect, &warnings);

    auto fill_first = a.alloc(4 * 1024, 4, ctx::full); // the first chunk's dynamic area, all of it
    REQUIRE(fill_first.ok());
    CHECK_CHECKED(a);
    CHECK(a.stats().nr_empty_pop_pages == 0);
    host_of(a).take_balance_request(); // start from no pending request

    pcpu::balance_worker<alloc_t> worker(a);
    REQUIRE(worker.start() == pcpu::errc::ok);
    CHECK(worker.running());
    auto fails = a.alloc(256, 4, ctx::nowait); // nothing populated is free
    CHECK(fails.error() == pcpu::errc::would_block);
    CHECK_CHECKED(a);
    for (int i = 0; i < 2000 && worker.runs() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(worker.runs() >= 1);
    CHECK(worker.failures() == 0);
    CHECK_CHECKED(a);
    CHECK(a.stats().nr_empty_pop_pages >= 2);
    auto now_ok = a.alloc(256, 4, ctx::atomic);
    REQUIRE(now_ok.ok());
    CHECK_CHECKED(a);
    worker.stop();
    CHECK_FALSE(worker.running());
    CHECK(warnings.empty()); // nowait failed silently

    for (auto h : {fill_first.value(), now_ok.value()}) {
        REQUIRE(a.free(h) == pcpu::errc::ok);
        CHECK_CHECKED(a);
    }
    a.shutdown();
    CHECK(host_of(a).counters().nothing_outstanding());
}

} // TEST_SUITE
