// SPDX-License-Identifier: MIT
// tests/test_this_cpu_ops.cpp - the this-CPU operation set of this_cpu_ops.hpp (xchg,
// cmpxchg, try_cmpxchg, the double-width form, and/or, the raw forms, the converting
// operands) for every integer width and pointers, in every guard flavour, with boundary
// values, against a reference computed in 128-bit integers rather than in T.
//
// This file also holds the -Werror check of the kernel's silent operand conversion:
// every conversion warning is an error here, whatever the build's werror option.
#if defined(__clang__)
#pragma clang diagnostic error "-Wconstant-conversion"
#pragma clang diagnostic error "-Wconversion"
#pragma clang diagnostic error "-Wsign-conversion"
#elif defined(__GNUC__)
#pragma GCC diagnostic error "-Woverflow"
#pragma GCC diagnostic error "-Wconversion"
#pragma GCC diagnostic error "-Wsign-conversion"
#endif

#include "support/cpu_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/percpu.hpp>

#include <doctest/doctest.h>

#if !defined(NDEBUG) && defined(__unix__)
#include <sys/wait.h>

#include <csignal>
#include <unistd.h>
#define PCPU_TEST_RAW_DEATH 1
#endif

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using pcpu_test::cpu_platform;
using pcpu_test::cpus;
using pcpu_test::guard_kind;
using pcpu_test::set_cpu;

// The reference is 128 bits wide where the compiler has __int128 (64-bit hosts). A
// 32-bit target (the armhf stage) has not: there the reference is 64 bits wide and
// covers the types of at most 32 bits; its 64-bit types are checked on the 64-bit host.
#if defined(__SIZEOF_INT128__)
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;
constexpr bool wide_reference = true;
#else
typedef long long i128;
typedef unsigned long long u128;
constexpr bool wide_reference = false;
#endif

template <guard_kind K>
using alloc_t = pcpu::allocator<cpu_platform<K>>;

constexpr unsigned nr = 4;
constexpr unsigned me = 2; // the running CPU of the single-threaded checks

// ---- The 128-bit reference ---------------------------------------------------------

/// ref<T>(x) - x reduced modulo 2^bits into T's range, computed in 128 bits.
template <class T>
i128 ref(i128 x) {
    constexpr int bits = std::numeric_limits<T>::digits + (std::is_signed<T>::value ? 1 : 0);
    const i128 m = i128{1} << bits;
    i128 r = x % m;
    if (r < 0) r += m;
    if (std::is_signed<T>::value && r >= m / 2) r -= m;
    return r;
}
template <class T>
i128 wide(T v) {
    return static_cast<i128>(v);
}
template <class T>
i128 ref_and(i128 a, i128 b) {
    return ref<T>(static_cast<i128>(static_cast<u128>(a) & static_cast<u128>(b)));
}
template <class T>
i128 ref_or(i128 a, i128 b) {
    return ref<T>(static_cast<i128>(static_cast<u128>(a) | static_cast<u128>(b)));
}

/// boundary<T>() - the values every operation is tried with, as 128-bit numbers.
template <class T>
std::vector<i128> boundary() {
    const i128 lo = wide(std::numeric_limits<T>::min()), hi = wide(std::numeric_limits<T>::max());
    std::vector<i128> v = {0, 1, 2, 0x55, lo, lo + 1, hi, hi - 1, hi / 2, hi / 2 + 1};
    if (std::is_signed<T>::value) v.insert(v.end(), {-1, -2, lo / 2});
    v.push_back(ref<T>(static_cast<i128>(0x5555555555555555ull))); // alternating bits, any width
    v.push_back(ref<T>(static_cast<i128>(0xaaaaaaaaaaaaaaaaull)));
    return v;
}
/// operands() - operands of other types than T, as a caller passes them: the
/// conversion to T is part of what is checked.
std::vector<i128> operands() {
    return {0, 1, -1, 2, 127, 128, 255, 256, 300, -300, 32767, 32768, 65535, 65536, -65536,
            2147483647, static_cast<i128>(2147483648ll), -static_cast<i128>(2147483648ll),
            static_cast<i128>(4294967295ll), static_cast<i128>(4294967296ll),
            static_cast<i128>(std::numeric_limits<long long>::max()),
            static_cast<i128>(std::numeric_limits<long long>::min())};
}

// ---- Fixture -------------------------------------------------------------------------

/// ops<K, T> - nr CPUs, a T per CPU; every copy but the running CPU's keeps a
/// sentinel, so a stray write to another CPU shows.
template <guard_kind K, class T>
struct ops {
    pcpu_test::static_setup<alloc_t<K>> s{nr, 16 * 1024, 0, 0};
    pcpu::percpu<T> h;
    T sentinel;

    explicit ops(T sent) : sentinel(sent) {
        cpus().reset(nr);
        set_cpu(me);
        REQUIRE(s.init() == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        auto r = pcpu::alloc_percpu<T>(s.alloc, pcpu::ctx::full, sent);
        REQUIRE_VERIFIED(s.alloc);
        REQUIRE(r.ok());
        h = r.value();
    }
    ~ops() {
        CHECK(others_untouched());
        CHECK(pcpu::free_percpu(s.alloc, h) == pcpu::errc::ok);
        REQUIRE_VERIFIED(s.alloc);
        CHECK(cpus().bugs == 0);
        CHECK(cpus().guards_entered == cpus().guards_left);
    }
    bool others_untouched() const {
        for (unsigned c = 0; c < nr; ++c)
            if (c != me && !pcpu::detail::same_value(pcpu::per_cpu(h, c), sentinel)) return false;
        return true;
    }
    T& mine() { return pcpu::per_cpu(h, me); }
};

/// guards_for(K, n) - guards n operations enter in flavour K.
long guards_for(guard_kind k, long n) { return k == guard_kind::none ? 0 : n; }

/// check_int<K, T>() - every integer operation on every (boundary value, operand) pair.
template <guard_kind K, class T>
void check_int() {
    CAPTURE(static_cast<int>(K));
    CAPTURE(sizeof(T));
    CAPTURE(std::is_signed<T>::value);
    ops<K, T> f(static_cast<T>(0x5a));
    auto& a = f.s.alloc;
    using P = cpu_platform<K>;
    for (const i128 start : boundary<T>()) {
        const T a0 = static_cast<T>(start);
        std::vector<i128> ops_t = boundary<T>();
        for (const i128 o : operands()) ops_t.push_back(o);
        for (const i128 opnd : ops_t) {
            const T b = static_cast<T>(ref<T>(opnd)); // the operand as T, per the reference
            // The operand as a long long, modulo 2^64 (GCC converts to signed modulo).
            const long long opnd_ll = static_cast<long long>(static_cast<unsigned long long>(opnd));
            CAPTURE(static_cast<long long>(start));
            CAPTURE(opnd_ll);
            const long g0 = cpus().guards_entered;

            // add / sub with the operand as a long long: converted to T first.
            f.mine() = a0;
            pcpu::this_cpu_add(a, f.h, opnd_ll);
            CHECK(wide(f.mine()) == ref<T>(start + wide(static_cast<T>(ref<T>(opnd_ll)))));
            f.mine() = a0;
            CHECK(wide(pcpu::this_cpu_sub_return(a, f.h, opnd_ll)) == ref<T>(start - ref<T>(opnd_ll)));
            CHECK(wide(f.mine()) == ref<T>(start - ref<T>(opnd_ll)));
            f.mine() = a0;
            CHECK(wide(pcpu::this_cpu_add_return(a, f.h, b)) == ref<T>(start + wide(b)));

            // and / or
            f.mine() = a0;
            pcpu::this_cpu_and(a, f.h, b);
            CHECK(wide(f.mine()) == ref_and<T>(start, wide(b)));
            f.mine() = a0;
            pcpu::this_cpu_or(a, f.h, b);
            CHECK(wide(f.mine()) == ref_or<T>(start, wide(b)));
            f.mine() = a0;
            pcpu::this_cpu_or(a, f.h, opnd_ll); // a wider operand: its low bits only
            CHECK(wide(f.mine()) == ref_or<T>(start, ref<T>(opnd_ll)));

            // xchg returns the old value and leaves the new one.
            f.mine() = a0;
            CHECK(wide(pcpu::this_cpu_xchg(a, f.h, b)) == start);
            CHECK(wide(f.mine()) == wide(b));

            // cmpxchg: returns the old value; swaps only on a match.
            f.mine() = a0;
            CHECK(wide(pcpu::this_cpu_cmpxchg(a, f.h, a0, b)) == start);
            CHECK(wide(f.mine()) == wide(b));
            const T other = static_cast<T>(ref<T>(start + 1));
            f.mine() = a0;
            CHECK(wide(pcpu::this_cpu_cmpxchg(a, f.h, other, b)) == start);
            CHECK(wide(f.mine()) == start);

            // try_cmpxchg: true and swapped on a match; else false, expected updated.
            T expected = a0;
            f.mine() = a0;
            CHECK(pcpu::this_cpu_try_cmpxchg(a, f.h, expected, b));
            CHECK(wide(expected) == start);
            CHECK(wide(f.mine()) == wide(b));
            expected = other;
            f.mine() = a0;
            CHECK_FALSE(pcpu::this_cpu_try_cmpxchg(a, f.h, expected, b));
            CHECK(wide(expected) == start);
            CHECK(wide(f.mine()) == start);

            // One guard per operation (11 above), where the platform has one.
            CHECK(cpus().guards_entered - g0 == guards_for(K, 11));

            // The raw forms, under one guard taken by hand: the same answers, no
            // further guard.
            {
                pcpu::this_cpu_guard<P> g(a.platform());
                REQUIRE(g.cpu() == me);
                const long g1 = cpus().guards_entered;
                f.mine() = a0;
                pcpu::raw_this_cpu_add(g, f.h, opnd_ll);
                CHECK(wide(pcpu::raw_this_cpu_read(g, f.h)) == ref<T>(start + ref<T>(opnd_ll)));
                pcpu::raw_this_cpu_write(g, f.h, a0);
                CHECK(wide(pcpu::raw_this_cpu_sub_return(g, f.h, b)) == ref<T>(start - wide(b)));
                pcpu::raw_this_cpu_write(g, f.h, a0);
                CHECK(wide(pcpu::raw_this_cpu_add_return(g, f.h, b)) == ref<T>(start + wide(b)));
                pcpu::raw_this_cpu_write(g, f.h, a0);
                pcpu::raw_this_cpu_and(g, f.h, b);
                CHECK(wide(f.mine()) == ref_and<T>(start, wide(b)));
                pcpu::raw_this_cpu_write(g, f.h, a0);
                pcpu::raw_this_cpu_or(g, f.h, b);
                CHECK(wide(f.mine()) == ref_or<T>(start, wide(b)));
                pcpu::raw_this_cpu_write(g, f.h, a0);
                CHECK(wide(pcpu::raw_this_cpu_xchg(g, f.h, b)) == start);
                CHECK(wide(f.mine()) == wide(b));
                pcpu::raw_this_cpu_write(g, f.h, a0);
                CHECK(wide(pcpu::raw_this_cpu_cmpxchg(g, f.h, other, b)) == start);
                CHECK(wide(f.mine()) == start);
                CHECK(wide(pcpu::raw_this_cpu_cmpxchg(g, f.h, a0, b)) == start);
                CHECK(wide(f.mine()) == wide(b));
                expected = static_cast<T>(ref<T>(wide(b) + 1));
                CHECK_FALSE(pcpu::raw_this_cpu_try_cmpxchg(g, f.h, expected, a0));
                CHECK(wide(expected) == wide(b));
                CHECK(pcpu::raw_this_cpu_try_cmpxchg(g, f.h, expected, a0));
                CHECK(wide(f.mine()) == start);
                pcpu::raw_this_cpu_inc(g, f.h);
                CHECK(wide(pcpu::raw_this_cpu_dec_return(g, f.h)) == start);
                CHECK(wide(pcpu::raw_this_cpu_inc_return(g, f.h)) == ref<T>(start + 1));
                pcpu::raw_this_cpu_dec(g, f.h);
                CHECK(wide(f.mine()) == start);
                CHECK(cpus().guards_entered == g1);
            }
        }
    }
    f.mine() = f.sentinel;
}

template <guard_kind K>
struct flavour {
    static constexpr guard_kind kind = K;
};
using none_f = flavour<guard_kind::none>;
using preempt_f = flavour<guard_kind::preempt>;
using irq_f = flavour<guard_kind::irq>;

/// check_width<K, T>() - check_int where the reference is wider than T.
template <guard_kind K, class T>
void check_width() {
    if constexpr (wide_reference || sizeof(T) <= 4) check_int<K, T>();
    else MESSAGE("no 128-bit reference on this target: " << sizeof(T) << "-byte types checked on 64-bit hosts");
}

template <guard_kind K>
void check_all_widths() {
    check_width<K, std::int8_t>();
    check_width<K, std::uint8_t>();
    check_width<K, std::int16_t>();
    check_width<K, std::uint16_t>();
    check_width<K, std::int32_t>();
    check_width<K, std::uint32_t>();
    check_width<K, std::int64_t>();
    check_width<K, std::uint64_t>();
    check_width<K, char>();
    check_width<K, long>();
    check_width<K, unsigned long>();
}

struct node {
    node* next;
    int id;
};

/// tagged - two machine words: what cmpxchg_double swaps (a freelist head and a tag).
struct alignas(2 * sizeof(void*)) tagged {
    node* head;
    std::uintptr_t tag;
};

} // namespace

TEST_SUITE("this_cpu_ops") {

TEST_CASE_TEMPLATE("every integer width: add/sub/and/or/xchg/cmpxchg/try_cmpxchg and raw forms against a 128-bit "
                   "reference",
                   F, none_f, preempt_f, irq_f) {
    check_all_widths<F::kind>();
}

TEST_CASE_TEMPLATE("pointers: xchg, cmpxchg, try_cmpxchg and their raw forms", F, none_f, preempt_f, irq_f) {
    node objs[3] = {{nullptr, 0}, {nullptr, 1}, {nullptr, 2}};
    ops<F::kind, node*> f(&objs[2]);
    auto& a = f.s.alloc;
    f.mine() = nullptr;
    CHECK(pcpu::this_cpu_xchg(a, f.h, &objs[0]) == nullptr);
    CHECK(pcpu::this_cpu_read(a, f.h) == &objs[0]);
    CHECK(pcpu::this_cpu_cmpxchg(a, f.h, &objs[1], nullptr) == &objs[0]); // no match
    CHECK(f.mine() == &objs[0]);
    CHECK(pcpu::this_cpu_cmpxchg(a, f.h, &objs[0], &objs[1]) == &objs[0]);
    CHECK(f.mine() == &objs[1]);
    node* expected = &objs[0];
    CHECK_FALSE(pcpu::this_cpu_try_cmpxchg(a, f.h, expected, nullptr));
    CHECK(expected == &objs[1]);
    CHECK(pcpu::this_cpu_try_cmpxchg(a, f.h, expected, nullptr));
    CHECK(f.mine() == nullptr);
    {
        pcpu::this_cpu_guard<cpu_platform<F::kind>> g(a.platform());
        CHECK(pcpu::raw_this_cpu_xchg(g, f.h, &objs[1]) == nullptr);
        CHECK(pcpu::raw_this_cpu_cmpxchg(g, f.h, &objs[1], &objs[0]) == &objs[1]);
        expected = nullptr;
        CHECK_FALSE(pcpu::raw_this_cpu_try_cmpxchg(g, f.h, expected, &objs[1]));
        CHECK(expected == &objs[0]);
    }
    CHECK(f.mine() == &objs[0]);
    f.mine() = f.sentinel;
}

TEST_CASE_TEMPLATE("the double-width cmpxchg compares and swaps both words at once", F, none_f, preempt_f, irq_f) {
    node objs[2] = {{nullptr, 0}, {nullptr, 1}};
    const tagged sent{nullptr, 0xdead};
    ops<F::kind, tagged> f(sent);
    auto& a = f.s.alloc;
    const std::uintptr_t hi_tag = ~std::uintptr_t{0}; // all bits of the second word matter
    f.mine() = tagged{&objs[0], hi_tag};
    // A match in one word only is no match.
    tagged r = pcpu::this_cpu_cmpxchg_double(a, f.h, tagged{&objs[0], 0}, tagged{&objs[1], 1});
    CHECK((r.head == &objs[0] && r.tag == hi_tag));
    CHECK((f.mine().head == &objs[0] && f.mine().tag == hi_tag));
    r = pcpu::this_cpu_cmpxchg_double(a, f.h, tagged{&objs[1], hi_tag}, tagged{&objs[1], 1});
    CHECK((f.mine().head == &objs[0] && f.mine().tag == hi_tag));
    r = pcpu::this_cpu_cmpxchg_double(a, f.h, tagged{&objs[0], hi_tag}, tagged{&objs[1], 1});
    CHECK((r.head == &objs[0] && r.tag == hi_tag));
    CHECK((f.mine().head == &objs[1] && f.mine().tag == 1));
    tagged expected{&objs[1], 2};
    CHECK_FALSE(pcpu::this_cpu_try_cmpxchg_double(a, f.h, expected, tagged{nullptr, 3}));
    CHECK((expected.head == &objs[1] && expected.tag == 1));
    CHECK(pcpu::this_cpu_try_cmpxchg_double(a, f.h, expected, tagged{nullptr, 3}));
    CHECK((f.mine().head == nullptr && f.mine().tag == 3));
    // The generic forms take it too; xchg of a wide T is a CAS loop without a guard.
    const tagged old = pcpu::this_cpu_xchg(a, f.h, tagged{&objs[0], hi_tag - 1});
    CHECK((old.head == nullptr && old.tag == 3));
    CHECK((f.mine().head == &objs[0] && f.mine().tag == hi_tag - 1));
    {
        pcpu::this_cpu_guard<cpu_platform<F::kind>> g(a.platform());
        expected = tagged{&objs[0], hi_tag - 1};
        CHECK(pcpu::raw_this_cpu_try_cmpxchg_double(g, f.h, expected, tagged{&objs[1], 7}));
        r = pcpu::raw_this_cpu_cmpxchg_double(g, f.h, tagged{&objs[1], 8}, tagged{nullptr, 9});
        CHECK((r.head == &objs[1] && r.tag == 7));
    }
    CHECK((f.mine().head == &objs[1] && f.mine().tag == 7));
    f.mine() = sent;
}

TEST_CASE("kernel-style constant operands convert silently (this file turns conversion warnings into errors)") {
    ops<guard_kind::none, std::uint8_t> f(std::uint8_t{1});
    auto& a = f.s.alloc;
    f.mine() = 0;
    pcpu::this_cpu_add(a, f.h, 300); // 300 is 44 as a u8, as in the kernel
    CHECK(f.mine() == 44);
    pcpu::this_cpu_sub(a, f.h, 300);
    CHECK(f.mine() == 0);
    CHECK(pcpu::this_cpu_add_return(a, f.h, -1) == 255);
    CHECK(pcpu::this_cpu_sub_return(a, f.h, 1000) == static_cast<std::uint8_t>((255 - 1000) & 0xff));
    pcpu::this_cpu_write(a, f.h, 0x1ff);
    CHECK(f.mine() == 0xff);
    pcpu::this_cpu_and(a, f.h, 0x10f);
    CHECK(f.mine() == 0x0f);
    pcpu::this_cpu_or(a, f.h, -256); // low byte 0
    CHECK(f.mine() == 0x0f);
    CHECK(pcpu::this_cpu_xchg(a, f.h, 257) == 0x0f);
    CHECK(pcpu::this_cpu_cmpxchg(a, f.h, 1, 511) == 1);
    CHECK(f.mine() == 0xff);
    f.mine() = f.sentinel;
}

TEST_CASE_TEMPLATE("concurrent try_cmpxchg and xchg on shared copies lose nothing", F, none_f, preempt_f, irq_f) {
    // Eight threads on four CPUs (two per CPU, or every operation on another CPU in
    // migrate mode): a try_cmpxchg increment loop must count every increment, and
    // tokens passed through xchg must be neither lost nor duplicated.
    for (const bool migrate : {false, true}) {
        CAPTURE(migrate);
        ops<F::kind, std::uint64_t> f(0);
        auto& a = f.s.alloc;
        auto tokens = pcpu::alloc_percpu<std::uint32_t>(a, pcpu::ctx::full);
        REQUIRE_VERIFIED(a);
        REQUIRE(tokens.ok());
        for (unsigned c = 0; c < nr; ++c) pcpu::per_cpu(f.h, c) = 0;
        cpus().migrate = migrate;
        constexpr unsigned nr_threads = 8, per_thread = 20000;
        std::vector<std::uint64_t> kept(nr_threads, 0);
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < nr_threads; ++t)
            threads.emplace_back([&, t] {
                set_cpu(t % nr);
                std::uint64_t mine_kept = 0;
                for (unsigned i = 0; i < per_thread; ++i) {
                    if (!migrate) {
                        std::uint64_t seen = pcpu::this_cpu_read(a, f.h);
                        while (!pcpu::this_cpu_try_cmpxchg(a, f.h, seen, seen + 1)) {
                        }
                    } else {
                        // A task that moves between every two operations would chase
                        // a different copy each round: the loop names one CPU's copy
                        // through a guard and the raw forms (without a guard the
                        // guard only fixes the copy; the CAS still does the work).
                        pcpu::this_cpu_guard<cpu_platform<F::kind>> g(a.platform());
                        std::uint64_t seen = pcpu::raw_this_cpu_read(g, f.h);
                        while (!pcpu::raw_this_cpu_try_cmpxchg(g, f.h, seen, seen + 1)) {
                        }
                    }
                    // Deposit token i+1 and keep whatever was there: the sum of all
                    // kept tokens plus what is left is the sum of all deposited.
                    mine_kept += pcpu::this_cpu_xchg(a, tokens.value(), i + 1);
                }
                kept[t] = mine_kept;
            });
        for (auto& th : threads) th.join();
        cpus().migrate = false;
        CHECK(pcpu::sum(f.h) == std::uint64_t{nr_threads} * per_thread);
        std::uint64_t total = pcpu::sum(tokens.value());
        for (auto k : kept) total += k;
        CHECK(total == std::uint64_t{nr_threads} * per_thread * (per_thread + 1) / 2);
        CHECK(pcpu::free_percpu(a, tokens.value()) == pcpu::errc::ok);
        REQUIRE_VERIFIED(a);
        for (unsigned c = 0; c < nr; ++c) pcpu::per_cpu(f.h, c) = 0;
    }
}

#if defined(PCPU_TEST_RAW_DEATH)
TEST_CASE_TEMPLATE("checked builds: a raw form used where its guard no longer pins the CPU aborts", F, preempt_f,
                   irq_f) {
    ops<F::kind, long> f(7);
    auto& a = f.s.alloc;
    f.mine() = 0;
    // In a child: take the guard on CPU 2, then let the task "leave" it (the test
    // platform's record of held guards dropped, the task now on CPU 3) and use it.
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        pcpu::this_cpu_guard<cpu_platform<F::kind>> g(a.platform());
        pcpu::raw_this_cpu_add(g, f.h, 1); // held: fine
        pcpu_test::tcpu().depth = 0;
        set_cpu(3);
        pcpu::raw_this_cpu_add(g, f.h, 1); // PCPU_ASSERT fires here
        std::_Exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
    CHECK(f.mine() == 0); // the parent's copy: the child had its own memory
    f.mine() = f.sentinel;
}
#endif

} // TEST_SUITE("this_cpu_ops")
