// SPDX-License-Identifier: MIT
// tests/test_rseq_section.cpp - the restartable sections of platform/detail/rseq.hpp
// (suite "rseq_section") run exactly as the host platform runs them, on an rseq area
// whose kernel half the test plays itself.
//
// Why: where glibc registered no area (__rseq_size 0) the host platform never enters a
// section, and that is where some targets are tested: qemu-aarch64 (QEMU 7.2 user
// mode) answers the rseq system call with ENOSYS, so on AArch64 CI would otherwise
// never execute the AArch64 sections at all. glibc still reserves the thread's struct
// rseq at thread pointer + __rseq_offset, holding the registration-failed CPU id; the
// test writes a CPU id of its choosing into cpu_id (the kernel's job) and calls the
// sections of detail/rseq.hpp directly, so rseq_area(), the CPU-id check, the choice
// of the copy through offsets[cpu] and base, the load, the arithmetic and the commit
// store all run for real, on every CPU id. Only while no kernel writes that area:
// where glibc did register one, every case here says so and checks nothing (meson
// runs the suite with GLIBC_TUNABLES=glibc.pthread.rseq=0, which keeps glibc from
// registering, so the native builds check it too).
//
// The abort path needs a kernel to stop the thread inside a section. A fault plays
// that part: a copy on a PROT_NONE page makes the section's load fault, and the
// SIGSEGV handler does what the kernel does on preemption inside the section (check
// the signature before abort_ip, clear rseq_cs, resume at abort_ip), then opens the
// page; the section's abort handler and the retry run for real, and the copy must be
// stored exactly once. What this cannot show is the kernel's side itself (that it
// honours the descriptor on preemption, migration and signals): that is
// tests/test_rseq.cpp's stress, wherever a kernel registers the area. Checked too:
// the descriptor each section publishes in rseq_cs (version, flags, alignment, the
// abort handler outside the section and the signature before it) and, on AArch64,
// that the commit store is the section's last instruction.
#include <pcpu/platform/detail/rseq.hpp>

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

// The fault case needs SIGSEGV, which AddressSanitizer keeps for itself.
#if defined(__SANITIZE_ADDRESS__)
#define PLAY_FAULTS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PLAY_FAULTS 0
#endif
#endif
#if !defined(PLAY_FAULTS)
#define PLAY_FAULTS PCPU_HOST_RSEQ
#endif

#if PCPU_HOST_RSEQ
namespace {

using pcpu::rseq_result;
using pcpu::detail::rseq_add;
using pcpu::detail::rseq_add_within;
using pcpu::detail::rseq_cmpxchg;

constexpr unsigned nr = 4;

/// played_cpu - the kernel's half of the calling thread's unregistered rseq area:
/// cpu_id set by the test, everything restored when the case ends (glibc's
/// sched_getcpu() reads cpu_id too once it is not negative).
struct played_cpu {
    struct rseq* rs = pcpu::detail::rseq_area();
    std::uint32_t id_start = rs->cpu_id_start, id = rs->cpu_id;
    std::uint64_t cs = rs->rseq_cs;
    played_cpu() = default;
    played_cpu(const played_cpu&) = delete;
    played_cpu& operator=(const played_cpu&) = delete;
    ~played_cpu() {
        rs->rseq_cs = cs;
        rs->cpu_id = id;
        rs->cpu_id_start = id_start;
    }
    void set(std::uint32_t cpu) {
        rs->cpu_id_start = cpu;
        rs->cpu_id = cpu;
    }
};

/// copies<U> - nr copies of a U, each followed by a guard word a wider store would
/// overwrite, at offsets that are not in CPU order (so an offsets[] index scaled or
/// taken wrong lands on another copy), above a base that is not the buffer's start.
template <class U>
struct copies {
    static constexpr U guard = static_cast<U>(0x5a5a5a5a5a5a5a5aULL);
    alignas(64) U mem[1 + 4 * nr]{};
    std::uintptr_t offsets[nr]{};
    copies() {
        const unsigned order[nr] = {2, 0, 3, 1};
        for (unsigned c = 0; c < nr; ++c) offsets[c] = order[c] * 4 * sizeof(U);
        for (U& w : mem) w = guard;
        for (unsigned c = 0; c < nr; ++c) at(c) = 0;
    }
    std::uintptr_t base() const { return reinterpret_cast<std::uintptr_t>(&mem[1]); }
    U& at(unsigned cpu) { return mem[1 + offsets[cpu] / sizeof(U)]; }
    /// untouched(except) - every guard word intact and every copy but except's still v.
    bool untouched(unsigned except, U v) {
        for (unsigned c = 0; c < nr; ++c)
            if (c != except && at(c) != v) return false;
        unsigned guards = 0;
        for (const U& w : mem) guards += w == guard;
        return guards == 1 + 3 * nr;
    }
};

bool registered_here() {
    if (!pcpu::detail::rseq_registered()) return false;
    MESSAGE("glibc registered an rseq area: the kernel owns cpu_id, nothing to play (run with "
            "GLIBC_TUNABLES=glibc.pthread.rseq=0)");
    return true;
}

template <class U>
void check_add() {
    copies<U> m;
    played_cpu k;
    // Large enough that an add of the wrong width, or a 32-bit one, gives another sum.
    const U big = static_cast<U>(0x0000000180000001ULL);
    for (unsigned c = 0; c < nr; ++c) {
        CAPTURE(c);
        k.set(c);
        m.at(c) = static_cast<U>(c * 1000u);
        U out = 0;
        REQUIRE(rseq_add(m.base(), m.offsets, nr, big, out) == rseq_result::done);
        CHECK(out == static_cast<U>(static_cast<U>(c * 1000u) + big));
        CHECK(m.at(c) == out);
        // Wrapping, as the atomic path does.
        m.at(c) = static_cast<U>(~U{0});
        REQUIRE(rseq_add(m.base(), m.offsets, nr, U{3}, out) == rseq_result::done);
        CHECK(out == U{2});
        CHECK(m.at(c) == U{2});
        m.at(c) = 0;
        CHECK(m.untouched(nr, 0));
    }
    // A CPU id at or above nr, and the id of a thread whose registration failed (what
    // the area held before the test wrote it): unusable, nothing stored.
    for (std::uint32_t id : {std::uint32_t{nr}, std::uint32_t{nr + 100}, k.id}) {
        CAPTURE(id);
        k.set(id);
        U out = 7;
        CHECK(rseq_add(m.base(), m.offsets, nr, U{1}, out) == rseq_result::unusable);
        CHECK(out == U{7});
        CHECK(m.untouched(nr, 0));
    }
}

template <class U>
void check_cmpxchg() {
    copies<U> m;
    played_cpu k;
    for (unsigned c = 0; c < nr; ++c) {
        CAPTURE(c);
        k.set(c);
        const U v = static_cast<U>(0x1111111122222222ULL + c);
        m.at(c) = v;
        U seen = 0;
        // Differs from the copy only in bit 0, then (64 bits) only in the high half.
        CHECK(rseq_cmpxchg(m.base(), m.offsets, nr, static_cast<U>(v ^ 1u), U{9}, seen) == rseq_result::changed);
        CHECK(seen == v);
        CHECK(m.at(c) == v);
        if (sizeof(U) == 8) {
            seen = 0;
            const U hi = static_cast<U>(v ^ static_cast<U>(0x100000000ULL));
            CHECK(rseq_cmpxchg(m.base(), m.offsets, nr, hi, U{9}, seen) == rseq_result::changed);
            CHECK(seen == v);
        }
        CHECK(rseq_cmpxchg(m.base(), m.offsets, nr, v, static_cast<U>(~v), seen) == rseq_result::done);
        CHECK(m.at(c) == static_cast<U>(~v));
        m.at(c) = 0;
        CHECK(m.untouched(nr, 0));
    }
    k.set(nr);
    U seen = 5;
    CHECK(rseq_cmpxchg(m.base(), m.offsets, nr, U{0}, U{1}, seen) == rseq_result::unusable);
    CHECK(seen == U{5});
    CHECK(m.untouched(nr, 0));
}

/// descriptor - struct rseq_cs as the kernel reads it from rseq_cs.
struct descriptor {
    std::uint32_t version, flags;
    std::uint64_t start_ip, post_commit_offset, abort_ip;
};

/// check_descriptor(rs) - what a kernel would check of (and jump to from) the section
/// the thread ran last.
void check_descriptor(const struct rseq* rs) {
    const std::uint64_t at = rs->rseq_cs;
    REQUIRE(at != 0);
    CHECK(at % 32 == 0);
    descriptor d;
    std::memcpy(&d, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(at)), sizeof d);
    CHECK(d.version == 0);
    CHECK(d.flags == 0);
    CHECK(d.post_commit_offset > 0);
    CHECK(d.post_commit_offset < 256); // a few instructions
    // The abort handler lies outside [start_ip, start_ip + post_commit_offset).
    CHECK(d.abort_ip - d.start_ip >= d.post_commit_offset);
    std::uint32_t sig;
    std::memcpy(&sig, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(d.abort_ip - 4)), sizeof sig);
    CHECK(sig == static_cast<std::uint32_t>(RSEQ_SIG));
#if defined(__aarch64__)
    // The commit is the last instruction: an STR (immediate, unsigned offset) of a W
    // or X register, 4 bytes before the end.
    std::uint32_t last;
    std::memcpy(&last, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(d.start_ip + d.post_commit_offset - 4)),
                sizeof last);
    CAPTURE(last);
    CHECK((last & 0xbfc00000u) == 0xb9000000u);
#endif
}

#if PLAY_FAULTS
/// fault_play - the kernel's fixup, played by a SIGSEGV handler: a section that faults
/// on its load from a PROT_NONE copy is a thread stopped inside the section, which
/// the kernel would resume at abort_ip (after checking the signature before it,
/// clearing rseq_cs). The handler does that, then makes the page accessible, so the
/// section's retry completes.
struct fault_play {
    void* page = nullptr;
    std::size_t size = 0;
    unsigned aborts = 0;        // faults inside a section, moved to its abort handler
    unsigned strays = 0;        // faults anywhere else (only made accessible)
    unsigned bad_signatures = 0;
};
fault_play g_play;

void on_fault(int, siginfo_t* si, void* ucv) {
    auto* uc = static_cast<ucontext_t*>(ucv);
#if defined(__x86_64__)
    std::uint64_t ip = static_cast<std::uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
#else
    std::uint64_t ip = uc->uc_mcontext.pc;
#endif
    struct rseq* rs = pcpu::detail::rseq_area();
    const auto at = static_cast<std::uintptr_t>(si->si_addr != nullptr ? reinterpret_cast<std::uintptr_t>(si->si_addr) : 0);
    const auto page = reinterpret_cast<std::uintptr_t>(g_play.page);
    descriptor d{};
    if (rs->rseq_cs != 0)
        std::memcpy(&d, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(rs->rseq_cs)), sizeof d);
    if (rs->rseq_cs != 0 && ip - d.start_ip < d.post_commit_offset && at - page < g_play.size) {
        std::uint32_t sig;
        std::memcpy(&sig, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(d.abort_ip - 4)), sizeof sig);
        if (sig != static_cast<std::uint32_t>(RSEQ_SIG)) ++g_play.bad_signatures;
        ip = d.abort_ip;
        rs->rseq_cs = 0;
        ++g_play.aborts;
    } else {
        ++g_play.strays;
    }
#if defined(__x86_64__)
    uc->uc_mcontext.gregs[REG_RIP] = static_cast<greg_t>(ip);
#else
    uc->uc_mcontext.pc = ip;
#endif
    (void)mprotect(g_play.page, g_play.size, PROT_READ | PROT_WRITE);
}

/// fault_page - one page of copies (at offsets not in CPU order) with the SIGSEGV
/// handler above installed while it lives.
template <class U>
struct fault_page {
    std::uintptr_t offsets[nr]{};
    struct sigaction old {};
    bool ok = false;
    fault_page() {
        g_play = fault_play{};
        g_play.size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        g_play.page = mmap(nullptr, g_play.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (g_play.page == MAP_FAILED) return;
        const unsigned order[nr] = {3, 1, 0, 2};
        for (unsigned c = 0; c < nr; ++c) offsets[c] = 64 + order[c] * 8 * sizeof(U);
        struct sigaction sa {};
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        ok = sigaction(SIGSEGV, &sa, &old) == 0;
    }
    fault_page(const fault_page&) = delete;
    fault_page& operator=(const fault_page&) = delete;
    ~fault_page() {
        if (ok) (void)sigaction(SIGSEGV, &old, nullptr);
        if (g_play.page != MAP_FAILED) (void)munmap(g_play.page, g_play.size);
    }
    std::uintptr_t base() const { return reinterpret_cast<std::uintptr_t>(g_play.page); }
    U& at(unsigned cpu) { return *reinterpret_cast<U*>(base() + offsets[cpu]); }
    /// arm() - the next access to the page faults.
    bool arm() { return mprotect(g_play.page, g_play.size, PROT_NONE) == 0; }
};

template <class U>
void check_abort() {
    fault_page<U> fp;
    REQUIRE(fp.ok);
    played_cpu k;
    for (unsigned c = 0; c < nr; ++c) {
        CAPTURE(c);
        k.set(c);
        fp.at(c) = static_cast<U>(40 + c);
        U out = 0, seen = 0;
        unsigned aborts = g_play.aborts;
        REQUIRE(fp.arm());
        CHECK(rseq_add(fp.base(), fp.offsets, nr, U{2}, out) == rseq_result::done);
        CHECK(g_play.aborts == aborts + 1);
        CHECK(out == static_cast<U>(42 + c)); // stored once, by the retry
        CHECK(fp.at(c) == static_cast<U>(42 + c));
        aborts = g_play.aborts;
        REQUIRE(fp.arm());
        CHECK(rseq_cmpxchg(fp.base(), fp.offsets, nr, static_cast<U>(42 + c), U{7}, seen) == rseq_result::done);
        CHECK(g_play.aborts == aborts + 1);
        CHECK(fp.at(c) == U{7});
        aborts = g_play.aborts;
        REQUIRE(fp.arm());
        CHECK(rseq_cmpxchg(fp.base(), fp.offsets, nr, U{8}, U{9}, seen) == rseq_result::changed);
        CHECK(g_play.aborts == aborts + 1);
        CHECK(seen == U{7});
        CHECK(fp.at(c) == U{7});
        if (sizeof(U) == 4) {
            fp.at(c) = 5;
            std::int32_t s32 = 0;
            aborts = g_play.aborts;
            REQUIRE(fp.arm());
            CHECK(rseq_add_within(fp.base(), fp.offsets, nr, 2, -8, 8, s32) == rseq_result::done);
            CHECK(g_play.aborts == aborts + 1);
            CHECK(fp.at(c) == U{7});
            aborts = g_play.aborts;
            REQUIRE(fp.arm());
            CHECK(rseq_add_within(fp.base(), fp.offsets, nr, 1, -8, 8, s32) == rseq_result::changed);
            CHECK(g_play.aborts == aborts + 1);
            CHECK(s32 == 7);
        }
        fp.at(c) = 0;
    }
    CHECK(g_play.strays == 0);
    CHECK(g_play.bad_signatures == 0);
    for (unsigned c = 0; c < nr; ++c) CHECK(fp.at(c) == 0);
}
#endif // PLAY_FAULTS

} // namespace
#endif // PCPU_HOST_RSEQ

TEST_SUITE("rseq_section") {

TEST_CASE("rseq section: add on the copy of the CPU in cpu_id, 32 and 64 bits, every CPU; unusable ids store nothing") {
#if PCPU_HOST_RSEQ
    if (registered_here()) return;
    check_add<std::uint32_t>();
    check_add<std::uint64_t>();
#else
    MESSAGE("PCPU_HOST_RSEQ is 0 in this build: no sections");
#endif
}

TEST_CASE("rseq section: compare-and-store stores only on an exact match, on the running CPU's copy") {
#if PCPU_HOST_RSEQ
    if (registered_here()) return;
    check_cmpxchg<std::uint32_t>();
    check_cmpxchg<std::uint64_t>();
#else
    MESSAGE("PCPU_HOST_RSEQ is 0 in this build: no sections");
#endif
}

TEST_CASE("rseq section: the bounded add stores exactly when the sum stays strictly inside the bounds") {
#if PCPU_HOST_RSEQ
    if (registered_here()) return;
    copies<std::int32_t> m;
    played_cpu k;
    for (unsigned c = 0; c < nr; ++c) {
        CAPTURE(c);
        k.set(c);
        auto add = [&](std::int32_t v, std::int32_t lo, std::int32_t hi, std::int32_t& seen) {
            return rseq_add_within(m.base(), m.offsets, nr, v, lo, hi, seen);
        };
        std::int32_t seen = 12345;
        CHECK(add(5, -8, 8, seen) == rseq_result::done);
        CHECK(m.at(c) == 5);
        CHECK(add(2, -8, 8, seen) == rseq_result::done); // 7 < 8
        CHECK(m.at(c) == 7);
        CHECK(add(1, -8, 8, seen) == rseq_result::changed); // 8 is not inside
        CHECK(seen == 7);
        CHECK(m.at(c) == 7);
        CHECK(add(-15, -8, 8, seen) == rseq_result::changed); // -8 is not inside
        CHECK(add(-14, -8, 8, seen) == rseq_result::done);
        CHECK(m.at(c) == -7);
        // Extremes: the copy is sign-extended and the sum taken in 64 bits, so nothing
        // wraps into the bounds.
        m.at(c) = INT32_MAX - 1;
        CHECK(add(INT32_MAX - 1, INT32_MIN, INT32_MAX, seen) == rseq_result::changed);
        CHECK(seen == INT32_MAX - 1);
        m.at(c) = INT32_MIN + 1;
        CHECK(add(INT32_MIN + 1, INT32_MIN, INT32_MAX, seen) == rseq_result::changed);
        CHECK(seen == INT32_MIN + 1);
        CHECK(add(1, INT32_MIN, INT32_MAX, seen) == rseq_result::done);
        CHECK(m.at(c) == INT32_MIN + 2);
        m.at(c) = 0;
        CHECK(m.untouched(nr, 0));
    }
    k.set(nr);
    std::int32_t seen = 3;
    CHECK(rseq_add_within(m.base(), m.offsets, nr, 1, -8, 8, seen) == rseq_result::unusable);
    CHECK(seen == 3);
    CHECK(m.untouched(nr, 0));
#else
    MESSAGE("PCPU_HOST_RSEQ is 0 in this build: no sections");
#endif
}

TEST_CASE("rseq section: each section publishes a descriptor a kernel would accept") {
#if PCPU_HOST_RSEQ
    if (registered_here()) return;
    copies<std::uint64_t> m64;
    copies<std::uint32_t> m32;
    copies<std::int32_t> mi;
    played_cpu k;
    k.set(1);
    std::uint64_t o64 = 0;
    std::uint32_t o32 = 0;
    std::int32_t si = 0;
    std::uint64_t descs[5];
    REQUIRE(rseq_add(m64.base(), m64.offsets, nr, std::uint64_t{1}, o64) == rseq_result::done);
    check_descriptor(k.rs);
    descs[0] = k.rs->rseq_cs;
    REQUIRE(rseq_add(m32.base(), m32.offsets, nr, std::uint32_t{1}, o32) == rseq_result::done);
    check_descriptor(k.rs);
    descs[1] = k.rs->rseq_cs;
    REQUIRE(rseq_cmpxchg(m64.base(), m64.offsets, nr, std::uint64_t{1}, std::uint64_t{2}, o64) == rseq_result::done);
    check_descriptor(k.rs);
    descs[2] = k.rs->rseq_cs;
    REQUIRE(rseq_cmpxchg(m32.base(), m32.offsets, nr, std::uint32_t{1}, std::uint32_t{2}, o32) == rseq_result::done);
    check_descriptor(k.rs);
    descs[3] = k.rs->rseq_cs;
    REQUIRE(rseq_add_within(mi.base(), mi.offsets, nr, 1, -8, 8, si) == rseq_result::done);
    check_descriptor(k.rs);
    descs[4] = k.rs->rseq_cs;
    // One descriptor per section.
    for (unsigned i = 0; i < 5; ++i)
        for (unsigned j = i + 1; j < 5; ++j) CHECK(descs[i] != descs[j]);
    CHECK(m64.at(1) == 2);
    CHECK(m32.at(1) == 2);
    CHECK(mi.at(1) == 1);
#else
    MESSAGE("PCPU_HOST_RSEQ is 0 in this build: no sections");
#endif
}

TEST_CASE("rseq section: stopped inside, each section resumes at its abort handler, stores nothing, and the retry stores once") {
#if PLAY_FAULTS
    if (registered_here()) return;
    check_abort<std::uint32_t>();
    check_abort<std::uint64_t>();
#else
    MESSAGE("no sections here, or AddressSanitizer owns SIGSEGV");
#endif
}

} // TEST_SUITE
