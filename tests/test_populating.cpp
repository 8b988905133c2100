// SPDX-License-Identifier: MIT
// tests/test_populating.cpp - population outside the sleeping lock
// (internal/populating.hpp) on the real host platform, with real threads: a gate in
// alloc_pages() holds one allocation in the middle of its population while others
// run, so each interleaving the design names happens for certain, not by chance.
// Every allocator operation is followed by verify(), in the main thread (doctest's
// assertions are not thread-safe): some while a population is still in flight.
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/debug/context_checker.hpp>
#include <pcpu/platform/host.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace {

namespace ctx = pcpu::ctx;
using pcpu::errc;
using pcpu::handle;

constexpr std::size_t unit = 32 * 1024; // 8 pages of 4 KiB
constexpr unsigned cpus = 4;
constexpr std::size_t page = 4096;

/// gated_host - the host platform with a gate in alloc_pages(): the thread it is
/// armed for stops there (inside its population, every lock pcpu holds for it
/// dropped) until the test opens it, and can be told to fail.
struct gated_host : pcpu::host_platform {
    std::mutex m;
    std::condition_variable cv;
    std::thread::id gated_thread;
    bool open = true;
    bool fail_gated = false;
    unsigned arrived = 0;
    std::atomic<unsigned> page_calls{0}; // alloc_pages() calls, one per CPU per run

    bool alloc_pages(unsigned cpu, pcpu::page_ref* out, std::size_t nr, context c) noexcept {
        page_calls.fetch_add(1);
        {
            std::unique_lock<std::mutex> g(m);
            if (!open && std::this_thread::get_id() == gated_thread) {
                ++arrived;
                cv.notify_all();
                cv.wait(g, [&] { return open; });
                if (fail_gated) return false;
            }
        }
        return pcpu::host_platform::alloc_pages(cpu, out, nr, c);
    }
    void arm(std::thread::id t, bool fail = false) {
        std::lock_guard<std::mutex> g(m);
        gated_thread = t;
        open = false;
        fail_gated = fail;
        arrived = 0;
    }
    /// wait_arrived() - the armed thread is inside alloc_pages(); false after 30 s.
    bool wait_arrived() {
        std::unique_lock<std::mutex> g(m);
        return cv.wait_for(g, std::chrono::seconds(30), [&] { return arrived != 0; });
    }
    void open_gate() {
        {
            std::lock_guard<std::mutex> g(m);
            open = true;
        }
        cv.notify_all();
    }
};

/// serial_host - gated_host without the population event: pcpu populates under the
/// sleeping lock, as the kernel does (the deleted members hide the base's).
struct serial_host : gated_host {
    std::uint32_t populate_ticket() = delete;
    void populate_wait(std::uint32_t, context) = delete;
    void populate_wake() = delete;
};

static_assert(pcpu::platform_traits<gated_host>::parallel_population, "the host platform has the event");
static_assert(!pcpu::platform_traits<serial_host>::parallel_population, "deleted members hide it");
static_assert(pcpu::platform_traits<pcpu::debug::context_checker<gated_host>>::parallel_population,
              "the checker forwards the event");

/// background - one allocation in a thread of its own, its result read after join().
struct background {
    std::atomic<bool> done{false};
    pcpu::result<handle> r{errc::no_space};
    std::thread t;
    template <class A>
    void start(A& a, std::size_t size) {
        t = std::thread([this, &a, size] {
            r = a.alloc(size, 8, ctx::full);
            done.store(true);
        });
    }
    /// finishes_within(s) - done within s seconds.
    bool finishes_within(int s) const {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(s);
        while (!done.load() && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return done.load();
    }
};

template <class Alloc>
struct fixture : pcpu_test::static_setup<Alloc> {
    // One page of dynamic space in the first chunk, filled at once: every allocation
    // of the test goes to dynamic chunks, which lazy_mapped populates on demand.
    fixture() : pcpu_test::static_setup<Alloc>(cpus, unit, unit - page, 0) {
        REQUIRE(this->init() == errc::ok);
        auto f = this->alloc.alloc(page, 8, ctx::full);
        REQUIRE(f.ok());
        REQUIRE_VERIFIED(this->alloc);
    }
    gated_host& host() { return pcpu::detail::host_unwrap<typename Alloc::platform_type>::get(this->alloc.platform()); }
    std::size_t pages() { return host().counters().pages; }
};

/// chunk_pages_populated(a, base_of) - the populated map of the chunk holding h, as
/// a bit mask of its first 32 pages.
template <class A>
std::uint32_t populated_mask(A& a, handle h) {
    std::uint32_t mask = 0;
    a.for_each_chunk_map([&](const pcpu::chunk_stats& s, const auto& ch) {
        if (h.addr() < s.base || h.addr() >= s.base + a.unit_size()) return;
        for (std::uint32_t p = 0; p < ch.nr_pages() && p < 32; ++p)
            if (ch.is_populated(p)) mask |= 1u << p;
    });
    return mask;
}

} // namespace

TEST_SUITE("populating") {

TEST_CASE("populating: two allocations that need different pages populate at once") {
    using A = pcpu::allocator<pcpu::debug::context_checker<gated_host>, pcpu::lazy_mapped>;
    fixture<A> f;
    A& a = f.alloc;
    background first, second;
    // The first allocation creates a chunk, claims its page 0 and stops in the middle
    // of populating it.
    f.host().arm(std::thread::id{});
    first.t = std::thread([&] {
        f.host().arm(std::this_thread::get_id());
        first.r = a.alloc(page, 8, ctx::full);
        first.done.store(true);
    });
    REQUIRE(f.host().wait_arrived());
    // The second needs page 1 of the same chunk: it populates and returns meanwhile.
    second.start(a, page);
    const bool overtook = second.finishes_within(30);
    CHECK(overtook);
    CHECK(!first.done.load());
    // The first holds no lock now (verify() takes the sleeping lock): the check sees
    // its area as claimed and pending.
    if (overtook) REQUIRE_VERIFIED(a);
    f.host().open_gate();
    first.t.join();
    second.t.join();
    REQUIRE(first.r.ok());
    REQUIRE(second.r.ok());
    REQUIRE_VERIFIED(a);
    CHECK(first.r.value() != second.r.value());
    CHECK(pcpu_test::zeroed(a, first.r.value(), page));
    CHECK(pcpu_test::zeroed(a, second.r.value(), page));
    CHECK(f.pages() == 2 * cpus);
    INFO("checker: " << std::string(a.platform().last_violation()));
    CHECK(a.platform().violations() == 0);
    REQUIRE(a.free(first.r.value()) == errc::ok);
    REQUIRE_VERIFIED(a);
    REQUIRE(a.free(second.r.value()) == errc::ok);
    REQUIRE_VERIFIED(a);
}

TEST_CASE("populating: without the population event the second allocation waits (the kernel's way)") {
    using A = pcpu::allocator<serial_host, pcpu::lazy_mapped>;
    fixture<A> f;
    A& a = f.alloc;
    background first, second;
    f.host().arm(std::thread::id{});
    first.t = std::thread([&] {
        f.host().arm(std::this_thread::get_id());
        first.r = a.alloc(page, 8, ctx::full);
        first.done.store(true);
    });
    REQUIRE(f.host().wait_arrived());
    second.start(a, page);
    // It queues on the sleeping lock the first one holds through its population.
    CHECK(!second.finishes_within(1));
    f.host().open_gate();
    first.t.join();
    second.t.join();
    REQUIRE(first.r.ok());
    REQUIRE(second.r.ok());
    REQUIRE_VERIFIED(a);
    REQUIRE(a.free(first.r.value()) == errc::ok);
    REQUIRE_VERIFIED(a);
    REQUIRE(a.free(second.r.value()) == errc::ok);
    REQUIRE_VERIFIED(a);
}

TEST_CASE("populating: an allocation that needs a page being populated waits for it and never populates it twice") {
    for (const bool fail : {false, true}) {
        CAPTURE(fail);
        using A = pcpu::allocator<gated_host, pcpu::lazy_mapped>;
        fixture<A> f;
        A& a = f.alloc;
        background first, second;
        f.host().arm(std::thread::id{});
        first.t = std::thread([&] {
            f.host().arm(std::this_thread::get_id(), fail);
            first.r = a.alloc(64, 8, ctx::full);
            first.done.store(true);
        });
        REQUIRE(f.host().wait_arrived());
        const unsigned calls_before = f.host().page_calls.load();
        // 64 bytes more land beside the first area, on the page in flight: returning
        // before it is mapped would fault on the zeroing, populating it again would
        // count its pages twice.
        second.start(a, 64);
        CHECK(!second.finishes_within(1));
        CHECK(f.host().page_calls.load() == calls_before);
        REQUIRE_VERIFIED(a);
        f.host().open_gate();
        first.t.join();
        second.t.join();
        REQUIRE_VERIFIED(a);
        REQUIRE(second.r.ok());
        CHECK(pcpu_test::zeroed(a, second.r.value(), 64));
        // Failed, the first gave the page up; the second then populated it itself.
        if (fail) CHECK(first.r.error() == errc::out_of_memory);
        else REQUIRE(first.r.ok());
        CHECK(f.pages() == cpus);
        CHECK((populated_mask(a, second.r.value()) & 1u) == 1u);
        if (!fail) {
            REQUIRE(a.free(first.r.value()) == errc::ok);
            REQUIRE_VERIFIED(a);
        }
        REQUIRE(a.free(second.r.value()) == errc::ok);
        REQUIRE_VERIFIED(a);
    }
}

TEST_CASE("populating: balance fills empty pages only, never a page an allocation is populating") {
    using A = pcpu::allocator<gated_host, pcpu::lazy_mapped>;
    fixture<A> f;
    A& a = f.alloc;
    background first;
    f.host().arm(std::thread::id{});
    first.t = std::thread([&] {
        f.host().arm(std::this_thread::get_id());
        first.r = a.alloc(page, 8, ctx::full);
        first.done.store(true);
    });
    REQUIRE(f.host().wait_arrived());
    // The reserve is empty: balance populates pages of the new chunk, but not page 0,
    // whose allocation is asleep in alloc_pages().
    REQUIRE(a.balance() == errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.stats().nr_empty_pop_pages >= A::empty_pop_pages_high);
    f.host().open_gate();
    first.t.join();
    REQUIRE(first.r.ok());
    REQUIRE_VERIFIED(a);
    CHECK((populated_mask(a, first.r.value()) & 1u) == 1u);
    CHECK(f.pages() == (1 + a.stats().nr_empty_pop_pages) * cpus);
    REQUIRE(a.free(first.r.value()) == errc::ok);
    REQUIRE_VERIFIED(a);
}

TEST_CASE("populating: threads allocating and freeing whole pages with balance running stay consistent") {
    using A = pcpu::allocator<pcpu::debug::context_checker<gated_host>, pcpu::lazy_mapped>;
    fixture<A> f;
    A& a = f.alloc;
    constexpr int threads = 4, rounds = 200;
    std::atomic<int> failures{0};
    std::atomic<bool> stop{false};
    std::thread balancer([&] {
        while (!stop.load()) {
            (void)a.balance();
            std::this_thread::yield();
        }
    });
    std::thread workers[threads];
    for (int t = 0; t < threads; ++t)
        workers[t] = std::thread([&, t] {
            handle live[4];
            for (int r = 0; r < rounds; ++r) {
                const std::size_t size = (r + t) % 3 == 0 ? 64 : page * static_cast<std::size_t>(1 + (r + t) % 2);
                auto res = a.alloc(size, 8, ctx::full);
                if (!res.ok() || !pcpu_test::zeroed(a, res.value(), size)) {
                    failures.fetch_add(1);
                    continue;
                }
                handle& slot = live[static_cast<std::size_t>(r % 4)];
                if (slot && a.free(slot) != errc::ok) failures.fetch_add(1);
                slot = res.value();
            }
            for (handle h : live)
                if (h && a.free(h) != errc::ok) failures.fetch_add(1);
        });
    for (auto& w : workers) w.join();
    stop.store(true);
    balancer.join();
    CHECK(failures.load() == 0);
    REQUIRE_VERIFIED(a);
    INFO("checker: " << std::string(a.platform().last_violation()));
    CHECK(a.platform().violations() == 0);
    REQUIRE(a.balance() == errc::ok);
    REQUIRE_VERIFIED(a);
}

} // TEST_SUITE
