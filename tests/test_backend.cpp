// SPDX-License-Identifier: MIT
// tests/test_backend.cpp - the back ends as types (pcpu/backend/): each policy's
// backend<Platform> holds exactly the state its work needs (lazy_mapped: the page
// array, allocated by the first population with that population's context, kept, and
// released once), and the index lock guard the core's slow paths drop and retake.
// The allocator-level behaviour of every back end is in test_dynamic, test_checker and
// the reliability suites; these are the pieces on their own.
#include "support/sim_platform.hpp"

#include <pcpu/detail/index_lock.hpp>
#include <pcpu/internal/bitmap.hpp>
#include <pcpu/populate.hpp>

#include <doctest/doctest.h>

#include <type_traits>

namespace {

namespace ctx = pcpu::ctx;
using sim = pcpu_test::sim_platform<12, 8>;
using cb = pcpu::debug::callback;
constexpr std::size_t page = 4096;

// Back ends without demand paging hold no state: the allocator pays nothing for them.
static_assert(std::is_empty<pcpu::static_only::backend<sim>>::value, "static_only's back end has no state");
static_assert(std::is_empty<pcpu::contiguous::backend<sim>>::value, "contiguous's back end has no state");
static_assert(pcpu::contiguous::backend<sim>::populated_on_create && !pcpu::contiguous::backend<sim>::depopulates,
              "a contiguous chunk is populated from creation and given back only whole");
static_assert(!pcpu::lazy_mapped::backend<sim>::populated_on_create && pcpu::lazy_mapped::backend<sim>::depopulates,
              "a lazy_mapped chunk is populated on demand and reclaimed page by page");
static_assert(!pcpu::static_only::backend<sim>::creates_chunks && pcpu::contiguous::backend<sim>::creates_chunks &&
                  pcpu::lazy_mapped::backend<sim>::creates_chunks,
              "only static_only never creates a chunk");

/// counting_lock - an index lock that counts, and knows whether it is held.
struct counting_lock {
    int locks = 0, unlocks = 0, depth = 0;
    void index_lock() noexcept { ++locks, ++depth; }
    void index_unlock() noexcept { ++unlocks, --depth; }
};

/// fake_chunk - what lazy_mapped_backend::destroy() reads of a chunk: its populated map.
struct fake_chunk {
    pcpu::bitmap::word map[1] = {};
    std::uint32_t nr_pages = 0;
    const pcpu::bitmap::word* populated_map() const noexcept { return map; }
    void set_depopulated(std::uint32_t b, std::uint32_t e) noexcept {
        for (std::uint32_t i = b; i < e; ++i) pcpu::bitmap::clear(map, i);
    }
};

/// fake_node - what should_reclaim() reads of a chunk in use.
struct fake_node {
    struct {
        std::uint32_t empty = 0, pages = 16;
        std::uint32_t nr_empty_pop_pages() const noexcept { return empty; }
        std::uint32_t nr_pages() const noexcept { return pages; }
    } chunk;
    bool immutable = false;
};

/// fresh_chunk - a lazy_mapped back end over a simulated MMU and one chunk's address
/// space: 4 CPUs, 4 pages each.
struct fresh_chunk {
    sim p{4};
    const pcpu::unit_layout u{4, 4 * page, 4, page};
    pcpu::lazy_mapped::backend<sim> b;
    const std::uintptr_t base = b.create(p, u, ctx::noio);
};

} // namespace

TEST_SUITE("backend") {

TEST_CASE("index_lock: every exit releases exactly what is held") {
    counting_lock p;
    {
        pcpu::detail::index_lock<counting_lock> lock(p);
        CHECK(p.depth == 1);
        lock.unlock();
        CHECK(p.depth == 0);
        CHECK(!lock.held());
        lock.relock();
        CHECK(p.depth == 1);
    }
    CHECK(p.depth == 0);
    CHECK(p.locks == 2);
    CHECK(p.unlocks == 2);
    {
        // An exit while the lock is dropped (a failed population) must not unlock again.
        pcpu::detail::index_lock<counting_lock> lock(p);
        lock.unlock();
    }
    CHECK(p.depth == 0);
    CHECK(p.unlocks == 3);
}

TEST_CASE("should_reclaim: a quarter of the chunk empty, and the reserve full without it") {
    using lazy = pcpu::lazy_mapped::backend<sim>;
    constexpr std::size_t high = 4;
    fake_node c;
    c.chunk.empty = 4; // a quarter of 16 pages
    CHECK(lazy::should_reclaim(c, high + 4 + 1, high));
    CHECK(!lazy::should_reclaim(c, high + 4, high)); // the others hold only the high mark
    c.chunk.empty = 3;
    CHECK(!lazy::should_reclaim(c, 100, high)); // less than a quarter
    c.chunk.empty = 8;
    c.immutable = true;
    CHECK(!lazy::should_reclaim(c, 100, high)); // the first chunk stays mapped
    c.immutable = false;
    CHECK(lazy::should_reclaim(c, 100, high));
    // Pages that cannot be unmapped one by one are never worth isolating.
    CHECK(!pcpu::contiguous::backend<sim>::should_reclaim(c, 100, high));
}

TEST_CASE_FIXTURE(fresh_chunk, "lazy_mapped back end: the page array comes with the first population's context and stays") {
    REQUIRE(base != 0);
    CHECK(p.calls(cb::alloc_meta) == 0); // address space only

    REQUIRE(b.populate(p, u, base, 1, 3, ctx::noio));
    CHECK(p.calls(cb::alloc_meta) == 1); // the page array, nr_cpus * unit_pages entries
    const pcpu_test::call_record* meta = nullptr;
    for (const auto& r : p.log())
        if (r.kind == cb::alloc_meta) meta = &r;
    REQUIRE(meta != nullptr);
    CHECK(meta->size == 16 * sizeof(pcpu::page_ref));
    CHECK(meta->ctx == ctx::noio);
    CHECK(p.mapped_pages() == 8);

    REQUIRE(b.populate(p, u, base, 0, 1, ctx::full));
    CHECK(p.calls(cb::alloc_meta) == 1); // kept: depopulation never has to allocate
    CHECK(p.mapped_pages() == 12);

    b.depopulate(p, u, base, 0, 1, ctx::noio);
    CHECK(p.mapped_pages() == 8);

    // destroy() depopulates what the chunk says is still populated, then releases.
    fake_chunk c;
    pcpu::bitmap::set(c.map, 1);
    pcpu::bitmap::set(c.map, 2);
    b.destroy(p, u, c, base, ctx::noio);
    CHECK(p.mapped_pages() == 0);
    CHECK(c.map[0] == 0);
    CHECK(p.calls(cb::release) == 1);

    b.release(p, u, ctx::noio);
    CHECK(p.calls(cb::free_meta) == 1);
    b.release(p, u, ctx::noio); // once
    CHECK(p.calls(cb::free_meta) == 1);
    CHECK(!p.leaks());
    CHECK(p.bugs() == 0);
}

TEST_CASE_FIXTURE(fresh_chunk, "lazy_mapped back end: a failed population leaves nothing behind but the page array") {
    REQUIRE(base != 0);
    p.fail_nth(pcpu_test::fault::map, 2); // CPU 1: CPU 0 is mapped already and must be undone
    CHECK(!b.populate(p, u, base, 0, 2, ctx::noio));
    CHECK(p.mapped_pages() == 0);
    CHECK(p.frames() == 0);
    fake_chunk c;
    b.destroy(p, u, c, base, ctx::noio);
    b.release(p, u, ctx::noio);
    CHECK(!p.leaks());
    CHECK(p.bugs() == 0);
}

} // TEST_SUITE
