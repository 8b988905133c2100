// SPDX-License-Identifier: MIT
// tests/test_static_var.cpp - static per-CPU variables (static_var.hpp): every CPU's copy
// starts from its initialiser, copies never alias, alignment is kept, and they are
// reached like dynamic allocations.
#include "support/cpu_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/static_var.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace sv {

struct point {
    std::int16_t x, y, z;
};
struct alignas(64) line {
    std::uint8_t bytes[64];
};
struct table {
    std::uint16_t v[5];
};

PCPU_DEFINE(std::uint32_t, answer, 42);
PCPU_DEFINE(std::uint64_t, big, 0x0123456789abcdefull);
PCPU_DEFINE(point, origin, 1, -2, 3);
PCPU_DEFINE(std::uint32_t, zero);
PCPU_DEFINE(line, cacheline, {7, 8, 9});
PCPU_DEFINE(table, tab, {10, 20, 30, 40, 50});
PCPU_DEFINE(std::uint8_t, byte, 0xab);

} // namespace sv

PCPU_DECLARE(std::int32_t, sv_other); // defined in static_var_other.cpp

namespace {

using pcpu_test::cpu_platform;
using pcpu_test::cpus;
using pcpu_test::guard_kind;
using alloc_t = pcpu::allocator<cpu_platform<guard_kind::none>>;
using setup_t = pcpu_test::static_setup<alloc_t>;
constexpr unsigned nr = 4;
constexpr std::size_t unit = 16 * 1024;

struct section_setup : setup_t {
    section_setup() : setup_t(nr, unit, pcpu::static_section_size(), 0, pcpu::static_section_image()) {
        cpus().reset(nr);
    }
};

template <class T>
pcpu::percpu<T> resolve(alloc_t& a, pcpu::static_var<T> v) {
    auto r = pcpu::static_percpu(a, v);
    REQUIRE(r.ok());
    return r.value();
}

} // namespace

TEST_SUITE("static") {

TEST_CASE("the section holds every template copy, from both translation units") {
    const auto begin = reinterpret_cast<std::uintptr_t>(pcpu::static_section_image());
    const std::size_t size = pcpu::static_section_size();
    REQUIRE(begin != 0);
    CHECK(size >= sizeof(std::uint32_t) * 2 + sizeof(std::uint64_t) + sizeof(sv::point) + sizeof(sv::line) +
                      sizeof(sv::table) + 1 + sizeof(std::int32_t));
    auto inside = [&](const void* p, std::size_t n) {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        return a >= begin && a + n <= begin + size;
    };
    CHECK(inside(&sv::answer.initial(), 4));
    CHECK(inside(&sv::cacheline.initial(), 64));
    CHECK(inside(&sv_other.initial(), 4));
    CHECK(sv::cacheline.offset() % 64 == 0);
    CHECK(sv::big.offset() % alignof(std::uint64_t) == 0);
    // The template copies hold the initialisers (they are what init() copies).
    CHECK(sv::answer.initial() == 42);
    CHECK(sv_other.initial() == -17);
    CHECK(sv::zero.initial() == 0);
}

TEST_CASE("every CPU's copy starts from its initialiser") {
    section_setup s;
    pcpu::use_static_section(s.cfg);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(s.alloc.stats().static_size >= pcpu::static_section_size());

    const auto answer = resolve(s.alloc, sv::answer);
    const auto big = resolve(s.alloc, sv::big);
    const auto origin = resolve(s.alloc, sv::origin);
    const auto zero = resolve(s.alloc, sv::zero);
    const auto cacheline = resolve(s.alloc, sv::cacheline);
    const auto tab = resolve(s.alloc, sv::tab);
    const auto byte = resolve(s.alloc, sv::byte);
    const auto other = resolve(s.alloc, sv_other);
    for (unsigned cpu = 0; cpu < nr; ++cpu) {
        CAPTURE(cpu);
        CHECK(pcpu::per_cpu(answer, cpu) == 42u);
        CHECK(pcpu::per_cpu(big, cpu) == 0x0123456789abcdefull);
        CHECK(pcpu::per_cpu(origin, cpu).x == 1);
        CHECK(pcpu::per_cpu(origin, cpu).y == -2);
        CHECK(pcpu::per_cpu(origin, cpu).z == 3);
        CHECK(pcpu::per_cpu(zero, cpu) == 0u);
        const sv::line& l = pcpu::per_cpu(cacheline, cpu);
        CHECK(l.bytes[0] == 7);
        CHECK(l.bytes[1] == 8);
        CHECK(l.bytes[2] == 9);
        for (unsigned i = 3; i < 64; ++i) CHECK(l.bytes[i] == 0);
        CHECK(reinterpret_cast<std::uintptr_t>(&l) % 64 == 0);
        for (unsigned i = 0; i < 5; ++i) CHECK(pcpu::per_cpu(tab, cpu).v[i] == 10 * (i + 1));
        CHECK(pcpu::per_cpu(byte, cpu) == 0xab);
        CHECK(pcpu::per_cpu(other, cpu) == -17);
        // Each copy sits in its own CPU's static area.
        CHECK(s.in_unit(pcpu::per_cpu_ptr(answer, cpu), cpu, 0, pcpu::static_section_size()));
        CHECK(s.in_unit(pcpu::per_cpu_ptr(other, cpu), cpu, 0, pcpu::static_section_size()));
        // Same resolution as a dynamic handle: handle plus the CPU's offset.
        CHECK(static_cast<void*>(pcpu::per_cpu_ptr(big, cpu)) == s.alloc.ptr(big.raw(), cpu));
    }
}

TEST_CASE("copies of different CPUs never alias, and writes leave the template alone") {
    section_setup s;
    pcpu::use_static_section(s.cfg);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    const auto answer = resolve(s.alloc, sv::answer);
    const auto other = resolve(s.alloc, sv_other);
    pcpu::per_cpu(answer, 2) = 7;
    pcpu::per_cpu(other, 0) = 5;
    for (unsigned cpu = 0; cpu < nr; ++cpu) {
        CHECK(pcpu::per_cpu(answer, cpu) == (cpu == 2 ? 7u : 42u));
        CHECK(pcpu::per_cpu(other, cpu) == (cpu == 0 ? 5 : -17));
    }
    CHECK(sv::answer.initial() == 42);
    CHECK(sv_other.initial() == -17);

    // this-CPU operations reach them like dynamic variables.
    pcpu_test::set_cpu(3);
    pcpu::this_cpu_add(s.alloc, answer, 8u);
    CHECK(pcpu::per_cpu(answer, 3) == 50u);
    CHECK(pcpu::sum<std::uint64_t>(answer) == 42u + 7u + 42u + 50u);

    // Dynamic allocations land after the static area, never on it.
    std::vector<pcpu::handle> hs;
    for (int i = 0; i < 50; ++i) {
        auto h = s.alloc.alloc(4 + static_cast<std::size_t>(i % 5) * 4, 4, pcpu::ctx::full);
        REQUIRE_VERIFIED(s.alloc);
        REQUIRE(h.ok());
        hs.push_back(h.value());
        for (unsigned cpu = 0; cpu < nr; ++cpu)
            CHECK(s.in_unit(s.alloc.ptr(h.value(), cpu), cpu, pcpu::static_section_size(), unit));
    }
    for (auto h : hs) {
        CHECK(s.alloc.free(h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
    }
    CHECK(pcpu::per_cpu(answer, 2) == 7u);

    // A second allocator over the same section starts from the initialisers again.
    section_setup s2;
    pcpu::use_static_section(s2.cfg);
    REQUIRE(s2.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s2.alloc);
    const auto answer2 = resolve(s2.alloc, sv::answer);
    for (unsigned cpu = 0; cpu < nr; ++cpu) CHECK(pcpu::per_cpu(answer2, cpu) == 42u);
}

TEST_CASE("static_percpu reports an allocator that does not hold the section") {
    cpus().reset(nr);
    setup_t none(nr, unit, 0, 0);
    CHECK(pcpu::static_percpu(none.alloc, sv::answer).error() == pcpu::errc::not_initialized);
    REQUIRE(none.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(none.alloc);
    CHECK(pcpu::static_percpu(none.alloc, sv::answer).error() == pcpu::errc::bad_config);
    // A static area smaller than the block does not hold its last variables.
    setup_t small(nr, unit, 4, 0, pcpu::static_section_image());
    REQUIRE(small.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(small.alloc);
    CHECK(pcpu::static_percpu(small.alloc, sv::cacheline).error() ==
          (sv::cacheline.offset() + 64 > 4 ? pcpu::errc::bad_config : pcpu::errc::ok));
}

TEST_CASE("static_meta_bytes_bound covers every static size") {
    for (std::size_t r : {std::size_t{0}, std::size_t{100}, std::size_t{4096}, std::size_t{5000}}) {
        const std::size_t bound = pcpu::static_meta_bytes_bound<alloc_t>(unit, r);
        std::size_t worst = 0;
        for (std::size_t st = 0; st + r + 4 < unit; st += 4) {
            const std::size_t need = alloc_t::first_chunk_meta_bytes(unit, st, r);
            if (need > worst) worst = need;
        }
        CAPTURE(r);
        CHECK(worst <= bound);
        // ...and is not wildly above what the worst case needs.
        CHECK(bound <= worst + 2 * alloc_t::chunk_type::meta_bytes(1) + 2 * alloc_t::meta_align);
    }
    static_assert(pcpu::static_meta_bytes_bound<alloc_t>(unit, 0) > 0, "usable at compile time");
}

} // TEST_SUITE("static")
