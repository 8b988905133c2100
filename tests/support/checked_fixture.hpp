// SPDX-License-Identifier: MIT
// tests/support/checked_fixture.hpp - a small-geometry allocator over the simulated
// platform wrapped in the context checker, as the dynamic and compile-time-context suites
// use it: a first chunk with little dynamic space, so allocations soon create chunks.
#pragma once

#include "sim_platform.hpp"
#include "static_platform.hpp"

#include <pcpu/debug/context_checker.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace pcpu_test {

using checked_sim = pcpu::debug::context_checker<sim_platform<12, 8>>;

constexpr std::size_t checked_unit = 32 * 1024; // 8 pages
constexpr unsigned checked_cpus = 4;

/// checked_fixture<Alloc> - a first chunk with only `dyn` bytes of dynamic space; the
/// checker records violations instead of stopping.
template <class Alloc>
struct checked_fixture : static_setup<Alloc> {
    explicit checked_fixture(std::size_t dyn = 8 * 1024)
        : static_setup<Alloc>(checked_cpus, checked_unit, checked_unit - dyn, 0) {
        this->alloc.platform().set_violation_handler(&checked_sim::record_only);
    }
};

/// sim_of(a) - the simulated platform under the checker.
template <class A>
auto& sim_of(A& a) {
    return a.platform().inner();
}

/// grow_to_chunks(a, n, size, ctx) - allocate `size` bytes at a time with ctx until the
/// allocator has n chunks, verify() after each; the allocations made.
template <class A, class Ctx>
std::vector<pcpu::handle> grow_to_chunks(A& a, std::size_t n, std::size_t size, Ctx ctx) {
    std::vector<pcpu::handle> live;
    while (a.stats().nr_chunks < n) {
        auto r = a.alloc(size, 8, ctx);
        REQUIRE(r.ok());
        live.push_back(r.value());
        REQUIRE_VERIFIED(a);
    }
    return live;
}

/// free_verified(a, live) - free each of live, verify() after each.
template <class A>
void free_verified(A& a, const std::vector<pcpu::handle>& live) {
    for (pcpu::handle h : live) {
        CHECK(a.free(h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
    }
}

} // namespace pcpu_test

/// CHECK_CLEAN(a) - verify(), no violation seen by the checker, no misuse seen by the sim.
#define CHECK_CLEAN(a)                                                                             \
    do {                                                                                           \
        REQUIRE_VERIFIED(a);                                                                       \
        INFO("checker: " << std::string((a).platform().last_violation()));                         \
        CHECK((a).platform().violations() == 0);                                                   \
        INFO("sim bugs: " << std::string(pcpu_test::sim_of(a).describe_bugs()));                   \
        CHECK(pcpu_test::sim_of(a).bugs() == 0);                                                   \
    } while (0)
