// SPDX-License-Identifier: MIT
// tests/test_percpu.cpp - typed handles (percpu.hpp): construction and destruction on
// every CPU, no aliasing, projections, iteration; this-CPU operations in every guard
// flavour, including the arithmetic traps lib/percpu_test.c checks in the kernel.
#include "support/cpu_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/percpu.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using pcpu_test::cpu_platform;
using pcpu_test::cpus;
using pcpu_test::guard_kind;
using pcpu_test::set_cpu;

constexpr pcpu::gfp full = pcpu::ctx::full;

template <guard_kind K>
using alloc_t = pcpu::allocator<cpu_platform<K>>;
template <guard_kind K>
using setup_t = pcpu_test::static_setup<alloc_t<K>>;

/// tracked - records every construction and destruction by address.
struct tracked {
    static inline std::vector<std::uintptr_t> constructed;
    static inline std::vector<std::uintptr_t> destroyed;
    static void reset() {
        constructed.clear();
        destroyed.clear();
    }
    int value;
    std::uint64_t pad;
    explicit tracked(int v) noexcept : value(v), pad(~std::uint64_t{0}) {
        constructed.push_back(reinterpret_cast<std::uintptr_t>(this));
    }
    ~tracked() { destroyed.push_back(reinterpret_cast<std::uintptr_t>(this)); }
    tracked(const tracked&) = delete;
    tracked& operator=(const tracked&) = delete;
};

std::vector<std::uintptr_t> sorted(std::vector<std::uintptr_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

} // namespace

TEST_SUITE("percpu") {

TEST_CASE("alloc_percpu constructs T once per CPU and free_percpu destroys each copy once") {
    cpus().reset(5);
    setup_t<guard_kind::none> s(5, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    tracked::reset();

    auto r = pcpu::alloc_percpu<tracked>(s.alloc, full, 42);
    REQUIRE_VERIFIED(s.alloc);
    REQUIRE(r.ok());
    const pcpu::percpu<tracked> h = r.value();
    REQUIRE(tracked::constructed.size() == 5);
    CHECK(tracked::destroyed.empty());
    // Exactly one construction per CPU's copy, at that copy's address, in its unit.
    std::vector<std::uintptr_t> expect;
    for (unsigned cpu = 0; cpu < 5; ++cpu) {
        expect.push_back(reinterpret_cast<std::uintptr_t>(pcpu::per_cpu_ptr(h, cpu)));
        CHECK(s.in_unit(pcpu::per_cpu_ptr(h, cpu), cpu, 0, 16 * 1024));
        CHECK(pcpu::per_cpu(h, cpu).value == 42);
    }
    CHECK(sorted(tracked::constructed) == sorted(expect));
    CHECK(std::set<std::uintptr_t>(expect.begin(), expect.end()).size() == 5);

    CHECK(pcpu::free_percpu(s.alloc, h) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(tracked::constructed.size() == 5);
    CHECK(sorted(tracked::destroyed) == sorted(expect));
    CHECK(s.alloc.stats().nr_cur_alloc == 0);

    // A null handle is a no-op and destroys nothing.
    CHECK(pcpu::free_percpu(s.alloc, pcpu::percpu<tracked>()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(tracked::destroyed.size() == 5);
}

TEST_CASE("a failed alloc_percpu constructs nothing and reports the allocator's error") {
    cpus().reset(2);
    setup_t<guard_kind::none> s(2, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    struct too_big {
        unsigned char bytes[20 * 1024];
    };
    auto r = pcpu::alloc_percpu<too_big>(s.alloc, full);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(r.error() == pcpu::errc::size_too_large);

    // Fill the unit, then a T that no longer fits: no_space, nothing constructed.
    tracked::reset();
    std::vector<pcpu::percpu<tracked>> hs;
    for (;;) {
        auto t = pcpu::alloc_percpu<tracked>(s.alloc, pcpu::ctx::full | pcpu::gfp::nowarn, 1);
        REQUIRE_VERIFIED(s.alloc);
        if (!t) {
            CHECK(t.error() == pcpu::errc::no_space);
            break;
        }
        hs.push_back(t.value());
        REQUIRE(hs.size() < 16 * 1024 / sizeof(tracked) + 1);
    }
    CHECK(tracked::constructed.size() == 2 * hs.size());
    for (auto h : hs) {
        CHECK(pcpu::free_percpu(s.alloc, h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
    }
    CHECK(tracked::destroyed.size() == tracked::constructed.size());
}

TEST_CASE("values of different CPUs and different handles never alias") {
    cpus().reset(4);
    setup_t<guard_kind::none> s(4, 16 * 1024, 64, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    struct rec {
        std::uint32_t a[5];
    };
    auto h8 = pcpu::alloc_percpu<std::uint8_t>(s.alloc, full);
    REQUIRE_VERIFIED(s.alloc);
    auto h64 = pcpu::alloc_percpu<std::uint64_t>(s.alloc, full);
    REQUIRE_VERIFIED(s.alloc);
    auto hr = pcpu::alloc_percpu<rec>(s.alloc, full);
    REQUIRE_VERIFIED(s.alloc);
    auto h32 = pcpu::alloc_percpu<std::int32_t>(s.alloc, full, -7);
    REQUIRE_VERIFIED(s.alloc);
    REQUIRE((h8.ok() && h64.ok() && hr.ok() && h32.ok()));

    // Every (handle, CPU) byte range is disjoint from every other one.
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
    auto add = [&](auto h) {
        using T = typename decltype(h)::value_type;
        for (unsigned cpu = 0; cpu < 4; ++cpu) {
            const auto p = reinterpret_cast<std::uintptr_t>(pcpu::per_cpu_ptr(h, cpu));
            CHECK(p % alignof(T) == 0);
            ranges.emplace_back(p, p + sizeof(T));
        }
    };
    add(h8.value());
    add(h64.value());
    add(hr.value());
    add(h32.value());
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i) CHECK(ranges[i - 1].second <= ranges[i].first);

    // Write a pattern naming (handle, CPU) everywhere, then read all of it back.
    for (unsigned cpu = 0; cpu < 4; ++cpu) {
        pcpu::per_cpu(h8.value(), cpu) = static_cast<std::uint8_t>(0x10 + cpu);
        pcpu::per_cpu(h64.value(), cpu) = 0x6400000000ull + cpu;
        for (unsigned i = 0; i < 5; ++i) pcpu::per_cpu(hr.value(), cpu).a[i] = 1000 * cpu + i;
        pcpu::per_cpu(h32.value(), cpu) -= static_cast<std::int32_t>(cpu);
    }
    for (unsigned cpu = 0; cpu < 4; ++cpu) {
        CHECK(pcpu::per_cpu(h8.value(), cpu) == 0x10 + cpu);
        CHECK(pcpu::per_cpu(h64.value(), cpu) == 0x6400000000ull + cpu);
        for (unsigned i = 0; i < 5; ++i) CHECK(pcpu::per_cpu(hr.value(), cpu).a[i] == 1000 * cpu + i);
        CHECK(pcpu::per_cpu(h32.value(), cpu) == -7 - static_cast<std::int32_t>(cpu));
    }
    CHECK(pcpu::free_percpu(s.alloc, h8.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(pcpu::free_percpu(s.alloc, h64.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(pcpu::free_percpu(s.alloc, hr.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(pcpu::free_percpu(s.alloc, h32.value()) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
}

TEST_CASE("per_cpu_ptr is the allocator's ptr: the handle plus the CPU's table entry") {
    cpus().reset(3);
    setup_t<guard_kind::none> s(3, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    auto raw = s.alloc.alloc(24, 8, full);
    REQUIRE_VERIFIED(s.alloc);
    REQUIRE(raw.ok());
    const auto h = pcpu::typed<std::uint64_t>(s.alloc, raw.value());
    CHECK(h.raw() == raw.value());
    CHECK(h.nr_cpus() == 3);
    for (unsigned cpu = 0; cpu < 3; ++cpu) {
        CHECK(static_cast<void*>(pcpu::per_cpu_ptr(h, cpu)) == s.alloc.ptr(raw.value(), cpu));
        CHECK(reinterpret_cast<std::uintptr_t>(pcpu::per_cpu_ptr(h, cpu)) ==
              raw.value().addr() + s.alloc.cpu_offsets()[cpu]);
    }
    // A typed handle of a plain alloc() frees through free_percpu like any other.
    CHECK(pcpu::free_percpu(s.alloc, h) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    CHECK(pcpu::free_percpu(s.alloc, h) == pcpu::errc::double_free);
    REQUIRE_VERIFIED(s.alloc);
}

TEST_CASE("field() and at() reach members and elements of every CPU's copy") {
    cpus().reset(3);
    setup_t<guard_kind::none> s(3, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    struct stats {
        std::uint32_t hits;
        std::uint64_t bytes;
        std::uint16_t hist[8];
    };
    auto r = pcpu::alloc_percpu<stats>(s.alloc, full);
    REQUIRE_VERIFIED(s.alloc);
    REQUIRE(r.ok());
    const auto h = r.value();
    const pcpu::percpu<std::uint64_t> bytes = h.field(&stats::bytes);
    const pcpu::percpu<std::uint16_t> b5 = h.field(&stats::hist).at(5);
    for (unsigned cpu = 0; cpu < 3; ++cpu) {
        pcpu::per_cpu(bytes, cpu) = 100 + cpu;
        pcpu::per_cpu(b5, cpu) = static_cast<std::uint16_t>(50 + cpu);
    }
    for (unsigned cpu = 0; cpu < 3; ++cpu) {
        const stats& st = pcpu::per_cpu(h, cpu);
        CHECK(st.hits == 0); // zeroed by the allocator, value-initialised by T()
        CHECK(st.bytes == 100 + cpu);
        for (unsigned i = 0; i < 8; ++i) CHECK(st.hist[i] == (i == 5 ? 50 + cpu : 0));
        CHECK(&pcpu::per_cpu(bytes, cpu) == &pcpu::per_cpu(h, cpu).bytes);
    }
    CHECK(pcpu::free_percpu(s.alloc, h) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
}

TEST_CASE("for_each_cpu visits every CPU once, in order; sum adds every copy") {
    cpus().reset(6);
    setup_t<guard_kind::none> s(6, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    auto r = pcpu::alloc_percpu<std::uint32_t>(s.alloc, full);
    REQUIRE_VERIFIED(s.alloc);
    REQUIRE(r.ok());
    const auto h = r.value();
    std::vector<unsigned> seen;
    pcpu::for_each_cpu(h, [&](unsigned cpu, std::uint32_t& v) {
        seen.push_back(cpu);
        v = 4000000000u - cpu; // past UINT32_MAX: the default sum is 64 bits wide
    });
    CHECK(seen == std::vector<unsigned>{0, 1, 2, 3, 4, 5});
    const std::uint64_t wide = pcpu::sum<std::uint64_t>(h);
    CHECK(wide == 23999999985ull);
    CHECK(pcpu::sum(h) == 23999999985ull);
    static_assert(std::is_same<decltype(pcpu::sum(h)), std::uint64_t>::value, "sum() widens by default");
    // Summing in T is still there, by name, and wraps.
    CHECK(pcpu::sum<std::uint32_t>(h) == static_cast<std::uint32_t>(23999999985ull % (std::uint64_t{1} << 32)));
    CHECK(pcpu::free_percpu(s.alloc, h) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
}

} // TEST_SUITE("percpu")

namespace {

/// ops_fixture<K> - an allocator over 4 CPUs with a long and an unsigned long per CPU,
/// every copy set to a sentinel so that a stray write to another CPU shows.
template <guard_kind K>
struct ops_fixture {
    static constexpr long sentinel = 0x5a5a;
    setup_t<K> s{4, 16 * 1024, 0, 0};
    pcpu::percpu<long> l;
    pcpu::percpu<unsigned long> ul;

    ops_fixture() {
        cpus().reset(4);
        REQUIRE(s.init() == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        l = pcpu::alloc_percpu<long>(s.alloc, full, sentinel).value();
        REQUIRE_VERIFIED(s.alloc);
        ul = pcpu::alloc_percpu<unsigned long>(s.alloc, full, static_cast<unsigned long>(sentinel)).value();
        REQUIRE_VERIFIED(s.alloc);
    }
    ~ops_fixture() {
        CHECK(pcpu::free_percpu(s.alloc, l) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(pcpu::free_percpu(s.alloc, ul) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(cpus().bugs == 0);
    }
    /// others_untouched(cpu) - every other CPU's copies still hold the sentinel.
    bool others_untouched(unsigned cpu) const {
        for (unsigned c = 0; c < 4; ++c)
            if (c != cpu && (pcpu::per_cpu(l, c) != sentinel ||
                             pcpu::per_cpu(ul, c) != static_cast<unsigned long>(sentinel)))
                return false;
        return true;
    }
};

template <guard_kind K>
struct flavour {
    static constexpr guard_kind kind = K;
};
using none_f = flavour<guard_kind::none>;
using preempt_f = flavour<guard_kind::preempt>;
using irq_f = flavour<guard_kind::irq>;

} // namespace

TEST_SUITE("percpu_ops") {

TEST_CASE_TEMPLATE("this-CPU operations touch only the running CPU's copy, under one guard each", F, none_f,
                   preempt_f, irq_f) {
    ops_fixture<F::kind> f;
    auto& a = f.s.alloc;
    using P = cpu_platform<F::kind>;
    CHECK(pcpu::this_cpu_guard<P>::pins == (F::kind != guard_kind::none));
    for (unsigned cpu = 0; cpu < 4; ++cpu) {
        set_cpu(cpu);
        const long before_guards = cpus().guards_entered;
        pcpu::this_cpu_write(a, f.l, 10);
        pcpu::this_cpu_add(a, f.l, 5);
        pcpu::this_cpu_inc(a, f.l);
        pcpu::this_cpu_sub(a, f.l, 4);
        pcpu::this_cpu_dec(a, f.l);
        CHECK(pcpu::this_cpu_add_return(a, f.l, 100) == 111);
        CHECK(pcpu::this_cpu_sub_return(a, f.l, 11) == 100);
        CHECK(pcpu::this_cpu_inc_return(a, f.l) == 101);
        CHECK(pcpu::this_cpu_dec_return(a, f.l) == 100);
        CHECK(pcpu::this_cpu_read(a, f.l) == 100);
        CHECK(pcpu::per_cpu(f.l, cpu) == 100);
        // The platform works as well as the allocator.
        pcpu::this_cpu_add(a.platform(), f.l, 1);
        CHECK(pcpu::per_cpu(f.l, cpu) == 101);
        // Eleven operations: each under exactly one guard where there is one.
        const long guards = cpus().guards_entered - before_guards;
        CHECK(guards == (F::kind == guard_kind::none ? 0 : 11));
        CHECK(cpus().guards_entered == cpus().guards_left);
        CHECK(f.others_untouched(cpu));
        pcpu::per_cpu(f.l, cpu) = ops_fixture<F::kind>::sentinel;
    }
    // A guard taken by hand pins the copy this_cpu_ptr() names.
    set_cpu(2);
    {
        pcpu::this_cpu_guard<P> g(a.platform());
        CHECK(g.cpu() == 2);
        CHECK(pcpu::this_cpu_ptr(a, f.l) == pcpu::per_cpu_ptr(f.l, 2));
    }
    CHECK(cpus().guards_entered == cpus().guards_left);
}

// lib/percpu_test.c, for this accessor layer: this-CPU add, sub, inc and dec on long and
// unsigned long against plain arithmetic, including the sign- and zero-extension traps.
// The operand is converted to the variable's type first (then negated, for sub): the
// implicit conversions below are the point of the test.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"
#endif
TEST_CASE_TEMPLATE("percpu_test: long and unsigned long arithmetic, sign and zero extension", F, none_f,
                   preempt_f, irq_f) {
    ops_fixture<F::kind> f;
    auto& a = f.s.alloc;
    constexpr bool lp64 = sizeof(long) > sizeof(unsigned int);
    const unsigned int ui_one = 1;
    set_cpu(1);

    // long
    pcpu::this_cpu_write(a, f.l, 0);
    pcpu::this_cpu_add(a, f.l, -1);
    CHECK(pcpu::per_cpu(f.l, 1) == -1L);

    pcpu::this_cpu_write(a, f.l, 0);
    pcpu::this_cpu_add(a, f.l, -ui_one); // -1u is 4294967295 before it reaches the long
    if (lp64) CHECK(pcpu::per_cpu(f.l, 1) == 4294967295L);
    else CHECK(pcpu::per_cpu(f.l, 1) == -1L);

    pcpu::this_cpu_write(a, f.l, 0);
    pcpu::this_cpu_sub(a, f.l, ui_one); // negated as a long: -1, on every ABI
    CHECK(pcpu::per_cpu(f.l, 1) == -1L);

    pcpu::this_cpu_write(a, f.l, 0);
    pcpu::this_cpu_add(a, f.l, UINT_MAX);
    if (lp64) CHECK(pcpu::per_cpu(f.l, 1) == 4294967295L);
    else CHECK(pcpu::per_cpu(f.l, 1) == -1L);

    pcpu::this_cpu_write(a, f.l, 0);
    pcpu::this_cpu_dec(a, f.l);
    CHECK(pcpu::per_cpu(f.l, 1) == -1L);
    pcpu::this_cpu_inc(a, f.l);
    CHECK(pcpu::per_cpu(f.l, 1) == 0L);
    CHECK(pcpu::this_cpu_sub_return(a, f.l, 1) == -1L);
    CHECK(pcpu::this_cpu_add_return(a, f.l, -static_cast<long>(ui_one)) == -2L);

    pcpu::this_cpu_write(a, f.l, LONG_MAX); // wraps, never undefined
    pcpu::this_cpu_inc(a, f.l);
    CHECK(pcpu::per_cpu(f.l, 1) == LONG_MIN);
    pcpu::this_cpu_dec(a, f.l);
    CHECK(pcpu::per_cpu(f.l, 1) == LONG_MAX);

    // unsigned long
    pcpu::this_cpu_write(a, f.ul, 0);
    pcpu::this_cpu_dec(a, f.ul);
    CHECK(pcpu::per_cpu(f.ul, 1) == ULONG_MAX);
    pcpu::this_cpu_inc(a, f.ul);
    CHECK(pcpu::per_cpu(f.ul, 1) == 0UL);

    pcpu::this_cpu_write(a, f.ul, 0);
    pcpu::this_cpu_sub(a, f.ul, 1);
    CHECK(pcpu::per_cpu(f.ul, 1) == ULONG_MAX);

    pcpu::this_cpu_write(a, f.ul, 0);
    pcpu::this_cpu_add(a, f.ul, -1); // int -1 sign-extends to ULONG_MAX
    CHECK(pcpu::per_cpu(f.ul, 1) == ULONG_MAX);

    pcpu::this_cpu_write(a, f.ul, 0);
    pcpu::this_cpu_add(a, f.ul, -ui_one); // zero-extends: 0xffffffff, not ULONG_MAX on LP64
    CHECK(pcpu::per_cpu(f.ul, 1) == 0xffffffffUL);
    if (lp64) CHECK(pcpu::per_cpu(f.ul, 1) != ULONG_MAX);

    pcpu::this_cpu_write(a, f.ul, 0);
    pcpu::this_cpu_add(a, f.ul, UINT_MAX);
    CHECK(pcpu::per_cpu(f.ul, 1) == 0xffffffffUL);

    pcpu::this_cpu_write(a, f.ul, 0);
    pcpu::this_cpu_sub(a, f.ul, -ui_one); // 0 - 0xffffffff in unsigned long
    if (lp64) CHECK(pcpu::per_cpu(f.ul, 1) == 0xffffffff00000001UL);
    else CHECK(pcpu::per_cpu(f.ul, 1) == 1UL);

    pcpu::this_cpu_write(a, f.ul, ULONG_MAX);
    CHECK(pcpu::this_cpu_add_return(a, f.ul, 1) == 0UL);
    CHECK(pcpu::this_cpu_sub_return(a, f.ul, ui_one) == ULONG_MAX);
    CHECK(pcpu::this_cpu_dec_return(a, f.ul) == ULONG_MAX - 1);

    // Plain arithmetic agrees over a sweep of mixed operands.
    long model_l = 0;
    unsigned long model_ul = 0;
    pcpu::this_cpu_write(a, f.l, 0);
    pcpu::this_cpu_write(a, f.ul, 0);
    for (int i = -300; i <= 300; i += 7) {
        const long li = static_cast<long>(i) * 1000003L;
        pcpu::this_cpu_add(a, f.l, li);
        model_l += li;
        pcpu::this_cpu_sub(a, f.ul, static_cast<unsigned long>(li));
        model_ul -= static_cast<unsigned long>(li);
        CHECK(pcpu::per_cpu(f.l, 1) == model_l);
        CHECK(pcpu::per_cpu(f.ul, 1) == model_ul);
    }
    pcpu::per_cpu(f.l, 1) = ops_fixture<F::kind>::sentinel;
    pcpu::per_cpu(f.ul, 1) = static_cast<unsigned long>(ops_fixture<F::kind>::sentinel);
    CHECK(f.others_untouched(1));
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

TEST_CASE_TEMPLATE("concurrent this-CPU adds from more threads than CPUs are never lost", F, none_f, preempt_f,
                   irq_f) {
    ops_fixture<F::kind> f;
    auto& a = f.s.alloc;
    for (unsigned c = 0; c < 4; ++c) pcpu::per_cpu(f.l, c) = 0;
    // Without a guard, the worst case: every this_cpu() of a thread names another CPU.
    for (const bool migrate : {false, true}) {
        CAPTURE(migrate);
        for (unsigned c = 0; c < 4; ++c) pcpu::per_cpu(f.l, c) = 0;
        cpus().migrate = migrate;
        constexpr unsigned nr_threads = 8, per_thread = 20000;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < nr_threads; ++t)
            threads.emplace_back([&a, &f, t] {
                set_cpu(t % 4);
                for (unsigned i = 0; i < per_thread; ++i) {
                    pcpu::this_cpu_add(a, f.l, static_cast<long>(t + 1));
                    if (i % 4 == 0) pcpu::this_cpu_dec(a, f.l);
                }
            });
        for (auto& th : threads) th.join();
        cpus().migrate = false;
        long expected = 0;
        for (unsigned t = 0; t < nr_threads; ++t) expected += static_cast<long>(t + 1) * static_cast<long>(per_thread) - static_cast<long>(per_thread / 4);
        CHECK(pcpu::sum(f.l) == expected);
        if (!migrate) {
            // Pinned threads only ever touch their own CPU's copy.
            for (unsigned c = 0; c < 4; ++c) {
                long want = 0;
                for (unsigned t = c; t < nr_threads; t += 4)
                    want += static_cast<long>(t + 1) * static_cast<long>(per_thread) - static_cast<long>(per_thread / 4);
                CHECK(pcpu::per_cpu(f.l, c) == want);
            }
        }
        CHECK(cpus().guards_entered == cpus().guards_left);
    }
    for (unsigned c = 0; c < 4; ++c) pcpu::per_cpu(f.l, c) = ops_fixture<F::kind>::sentinel;
}

TEST_CASE_TEMPLATE("threads sharing one CPU's copy lose no update", F, none_f, preempt_f, irq_f) {
    // Many tasks on one CPU: the guard serialises them, or without one the atomic RMW
    // does. A plain load-add-store would lose updates here within a few thousand.
    cpus().reset(1);
    set_cpu(0);
    setup_t<F::kind> s(1, 16 * 1024, 0, 0);
    REQUIRE(s.init() == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
    auto r = pcpu::alloc_percpu<std::uint64_t>(s.alloc, full);
    REQUIRE_VERIFIED(s.alloc);
    REQUIRE(r.ok());
    const auto h = r.value();
    constexpr unsigned nr_threads = 4, per_thread = 1000000;
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < nr_threads; ++t)
        threads.emplace_back([&s, h] {
            set_cpu(0);
            for (unsigned i = 0; i < per_thread; ++i) pcpu::this_cpu_add(s.alloc, h, std::uint64_t{3});
        });
    for (auto& th : threads) th.join();
    CHECK(pcpu::per_cpu(h, 0) == std::uint64_t{3} * nr_threads * per_thread);
    CHECK(cpus().guards_entered == cpus().guards_left);
    CHECK(cpus().bugs == 0);
    CHECK(pcpu::free_percpu(s.alloc, h) == pcpu::errc::ok);
    REQUIRE_VERIFIED(s.alloc);
}

} // TEST_SUITE("percpu_ops")
