// SPDX-License-Identifier: MIT
// tests/test_hardening.cpp - misuse that is not a bad argument to alloc() or free()
// (issue 13): every first_chunk_config field at its boundary values (suite
// "badconfig"), the counter in every state and at the ends of its range (suite
// "badcounter"), and the calls that have no error to return (suite "checks"):
// result::value() on an error, and with PCPU_CHECKS a CPU index out of range or a
// counter outliving its allocator's life, each of which must stop the program
// (PCPU_TRAP) rather than touch memory.
//
// Built twice (tests/meson.build), both with NDEBUG, as release firmware is:
// `hardening` as is and `hardening_checked` with PCPU_CHECKS=1; both with signed
// overflow trapping (-fsanitize=signed-integer-overflow, trap on error), so that
// arithmetic the counter promises to wrap cannot pass by overflowing quietly.
// Death tests fork: the child makes the call, the parent expects it killed by a signal
// (SIGILL from __builtin_trap()), not a normal exit.
//
// A rejected init() must leave the allocator exactly as a fresh one: uninitialised,
// verify() clean, not one byte of the units or the metadata written, nothing taken from
// the platform, one warning naming the field; and a valid init() afterwards works.
#include "support/cpu_platform.hpp"
#include "support/sim_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/counter.hpp>
#include <pcpu/percpu.hpp>

#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

using sim = pcpu_test::sim_platform<12, 8>;
constexpr std::size_t page = 4096;
constexpr unsigned max_cpus = 8;
constexpr unsigned cpus = 2;
constexpr std::size_t unit = 4 * page;
constexpr std::size_t meta_room = 64 * 1024;
constexpr unsigned char fill = 0xA5;

/// storage - units for max_cpus CPUs and generous metadata, filled with a pattern so
/// that any write by a rejected init() shows.
struct storage {
    std::vector<unsigned char> units_buf = std::vector<unsigned char>(max_cpus * unit + page, fill);
    std::vector<unsigned char> meta_buf = std::vector<unsigned char>(meta_room + 64, fill);
    unsigned char image[unit] = {};
    void* units() { return align(units_buf.data(), page); }
    void* meta() { return align(meta_buf.data(), 64); }
    static void* align(unsigned char* p, std::size_t a) {
        const auto v = reinterpret_cast<std::uintptr_t>(p);
        return reinterpret_cast<void*>((v + a - 1) / a * a);
    }
    bool untouched() const {
        for (unsigned char c : units_buf)
            if (c != fill) return false;
        for (unsigned char c : meta_buf)
            if (c != fill) return false;
        return true;
    }
    pcpu::first_chunk_config valid() {
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = cpus;
        cfg.units = units();
        cfg.unit_size = unit;
        cfg.static_size = 100;
        cfg.static_image = image;
        cfg.reserved_size = 512;
        cfg.meta = meta();
        cfg.meta_size = meta_room;
        return cfg;
    }
};

enum class field { nr_cpus, units, unit_size, static_size, static_image, reserved_size, meta, meta_size };
const char* name(field f) {
    switch (f) {
    case field::nr_cpus: return "nr_cpus";
    case field::units: return "units";
    case field::unit_size: return "unit_size";
    case field::static_size: return "static_size";
    case field::static_image: return "static_image";
    case field::reserved_size: return "reserved_size";
    case field::meta: return "meta";
    case field::meta_size: return "meta_size";
    }
    return "?";
}

/// row - one field set to one value (an integer, or an address relative to `rel`).
enum class rel { abs, units, meta, image };
struct row {
    field f;
    rel base;
    std::uintptr_t value;
    bool ok;          ///< init() must accept it (for a policy that creates chunks)
    bool ok_static;   ///< ... and for static_only
    const char* blame; ///< field the warning must name (nullptr: that of the row)
};

constexpr std::uintptr_t umax = UINTPTR_MAX;
constexpr std::size_t smax = SIZE_MAX;
constexpr std::size_t max_unit = std::size_t{1} << 30;

// clang-format off
const row rows[] = {
    // nr_cpus: 0, 1, max, max + 1, UINT_MAX
    {field::nr_cpus, rel::abs, 0, false, false, nullptr},
    {field::nr_cpus, rel::abs, 1, true, true, nullptr},
    {field::nr_cpus, rel::abs, max_cpus, true, true, nullptr},
    {field::nr_cpus, rel::abs, max_cpus + 1, false, false, nullptr},
    {field::nr_cpus, rel::abs, UINT_MAX, false, false, nullptr},
    // unit_size: 0, 1, page - 1, page, unit, unit + 1, above max_unit_size, SIZE_MAX - k
    {field::unit_size, rel::abs, 0, false, false, nullptr},
    {field::unit_size, rel::abs, 1, false, false, nullptr},
    {field::unit_size, rel::abs, page - 1, false, false, nullptr},
    {field::unit_size, rel::abs, page, true, true, nullptr},
    {field::unit_size, rel::abs, unit, true, true, nullptr},
    {field::unit_size, rel::abs, unit + 1, false, false, nullptr},
    {field::unit_size, rel::abs, max_unit + page, false, false, nullptr},
    {field::unit_size, rel::abs, smax - page + 1, false, false, nullptr}, // a page multiple
    {field::unit_size, rel::abs, smax - 3, false, false, nullptr},
    {field::unit_size, rel::abs, smax, false, false, nullptr},
    // static_size (reserved 512): 0, 1, page - 1, page, room - 1, unit - 1, unit, unit + 1, SIZE_MAX - k
    {field::static_size, rel::abs, 0, true, true, nullptr},
    {field::static_size, rel::abs, 1, true, true, nullptr},
    {field::static_size, rel::abs, page - 1, true, true, nullptr},
    {field::static_size, rel::abs, page, true, true, nullptr},
    {field::static_size, rel::abs, unit - 512 - 4, true, true, nullptr}, // 4 bytes of dynamic space left
    {field::static_size, rel::abs, unit - 512 - 3, false, false, "reserved_size"}, // rounds to no space
    {field::static_size, rel::abs, unit - 1, false, false, "reserved_size"},
    {field::static_size, rel::abs, unit, false, false, nullptr},
    {field::static_size, rel::abs, unit + 1, false, false, nullptr},
    {field::static_size, rel::abs, smax - 3, false, false, nullptr}, // rounding to 4 wraps to 0
    {field::static_size, rel::abs, smax - 2, false, false, nullptr},
    {field::static_size, rel::abs, smax, false, false, nullptr},
    // reserved_size (static 100): the same values
    {field::reserved_size, rel::abs, 0, true, true, nullptr},
    {field::reserved_size, rel::abs, 1, true, true, nullptr},
    {field::reserved_size, rel::abs, page - 1, true, true, nullptr},
    {field::reserved_size, rel::abs, page, true, true, nullptr},
    {field::reserved_size, rel::abs, unit - 100 - 4, true, true, nullptr},
    {field::reserved_size, rel::abs, unit - 100 - 3, false, false, nullptr},
    {field::reserved_size, rel::abs, unit - 1, false, false, nullptr},
    {field::reserved_size, rel::abs, unit, false, false, nullptr},
    {field::reserved_size, rel::abs, unit + 1, false, false, nullptr},
    {field::reserved_size, rel::abs, smax - 3, false, false, nullptr},
    {field::reserved_size, rel::abs, smax, false, false, nullptr},
    // units: null, aligned, +1, + page - 1, an aligned address whose units wrap
    {field::units, rel::abs, 0, false, false, nullptr},
    {field::units, rel::units, 0, true, true, nullptr},
    {field::units, rel::units, 1, false, false, nullptr},
    {field::units, rel::units, page - 1, false, false, nullptr},
    {field::units, rel::abs, umax - page + 1, false, false, nullptr},
    {field::units, rel::abs, umax - unit + 1, false, false, nullptr},
    // static_image: null (zero fill), elsewhere, inside CPU 0's / CPU 1's unit, wrapping
    {field::static_image, rel::abs, 0, true, true, nullptr},
    {field::static_image, rel::image, 0, true, true, nullptr},
    {field::static_image, rel::units, 0, false, false, nullptr},
    {field::static_image, rel::units, unit + 8, false, false, nullptr},
    {field::static_image, rel::abs, umax - 63, false, false, nullptr},
    // meta: null (allocated by pcpu where the policy can), aligned, misaligned, inside
    // the units, an aligned address that wraps
    {field::meta, rel::abs, 0, true, false, nullptr},
    {field::meta, rel::meta, 0, true, true, nullptr},
    {field::meta, rel::meta, 1, false, false, nullptr},
    {field::meta, rel::meta, pcpu::allocator<sim>::meta_align - 1, false, false, nullptr},
    {field::meta, rel::units, unit, false, false, nullptr},
    {field::meta, rel::abs, umax - 63, false, false, nullptr},
    // meta_size: 0, 1, need - 1 (need computed in the test), need, SIZE_MAX
    {field::meta_size, rel::abs, 0, false, false, nullptr},
    {field::meta_size, rel::abs, 1, false, false, nullptr},
    {field::meta_size, rel::abs, smax, true, true, nullptr},
};
// clang-format on

template <class Alloc>
void apply(pcpu::first_chunk_config& cfg, storage& st, const row& r) {
    std::uintptr_t v = r.value;
    if (r.base == rel::units) v += reinterpret_cast<std::uintptr_t>(st.units());
    if (r.base == rel::meta) v += reinterpret_cast<std::uintptr_t>(st.meta());
    if (r.base == rel::image) v += reinterpret_cast<std::uintptr_t>(st.image);
    switch (r.f) {
    case field::nr_cpus: cfg.nr_cpus = static_cast<unsigned>(v); break;
    case field::units: cfg.units = reinterpret_cast<void*>(v); break;
    case field::unit_size: cfg.unit_size = v; break;
    case field::static_size: cfg.static_size = v; break;
    case field::static_image: cfg.static_image = reinterpret_cast<const void*>(v); break;
    case field::reserved_size: cfg.reserved_size = v; break;
    case field::meta: cfg.meta = reinterpret_cast<void*>(v); break;
    case field::meta_size: cfg.meta_size = v; break;
    }
}

/// expect_rejected(a, st, blame) - the allocator is a fresh one and can still start.
template <class Alloc>
void expect_rejected(Alloc& a, storage& st, const char* blame) {
    CHECK_FALSE(a.initialized());
    CHECK(a.verify().ok);
    CHECK(st.untouched());
    CHECK_FALSE(a.platform().leaks());
    CHECK(a.platform().failable_calls() == 0);
    const auto w = a.platform().warnings();
    REQUIRE(w.size() == 1);
    CAPTURE(w[0]);
    CHECK(w[0].find(std::string("first_chunk_config.") + blame) != std::string::npos);
    CHECK(a.stats().nr_alloc == 0);
    // ...and nothing stops a valid start.
    REQUIRE(a.init(st.valid()) == pcpu::errc::ok);
    const pcpu::result<pcpu::handle> h = a.alloc(64, 8, pcpu::ctx::full);
    REQUIRE(h.ok());
    CHECK(a.verify().ok);
    CHECK(a.free(h.value()) == pcpu::errc::ok);
    CHECK(a.verify().ok);
    a.shutdown();
    CHECK_FALSE(a.platform().leaks());
}

#define POLICIES pcpu::static_only, pcpu::contiguous, pcpu::lazy_mapped

} // namespace

TEST_SUITE("badconfig") {

TEST_CASE_TEMPLATE("bad config: every first_chunk_config field at its boundaries", Policy, POLICIES) {
    using alloc_t = pcpu::allocator<sim, Policy>;
    for (const row& r : rows) {
        storage st;
        alloc_t a(max_cpus);
        a.platform().set_recording(false);
        pcpu::first_chunk_config cfg = st.valid();
        apply<alloc_t>(cfg, st, r);
        const bool want_ok = Policy::creates_chunks ? r.ok : r.ok_static;
        const std::string field_name = name(r.f);
        CAPTURE(field_name);
        CAPTURE(r.value);
        CAPTURE(static_cast<int>(r.base));
        const pcpu::errc got = a.init(cfg);
        CHECK(got == (want_ok ? pcpu::errc::ok : pcpu::errc::bad_config));
        if (got == pcpu::errc::ok) {
            CHECK(a.initialized());
            CHECK(a.verify().ok);
            const pcpu::result<pcpu::handle> h = a.alloc(4, 4, pcpu::ctx::full); // 4 bytes: the least room a row leaves
            CHECK(h.ok());
            CHECK(a.verify().ok);
            a.shutdown();
            CHECK_FALSE(a.platform().leaks());
        } else {
            expect_rejected(a, st, r.blame != nullptr ? r.blame : name(r.f));
        }
    }
}

TEST_CASE_TEMPLATE("bad config: meta_size one below first_chunk_meta_bytes() -> bad_config", Policy, POLICIES) {
    using alloc_t = pcpu::allocator<sim, Policy>;
    storage st;
    alloc_t a(max_cpus);
    a.platform().set_recording(false);
    pcpu::first_chunk_config cfg = st.valid();
    const std::size_t need = alloc_t::first_chunk_meta_bytes(cfg.unit_size, cfg.static_size, cfg.reserved_size);
    REQUIRE(need != 0);
    cfg.meta_size = need - 1;
    CHECK(a.init(cfg) == pcpu::errc::bad_config);
    expect_rejected(a, st, "meta_size");
    cfg.meta_size = need;
    CHECK(a.init(cfg) == pcpu::errc::ok);
    CHECK(a.verify().ok);
}

TEST_CASE("bad config: first_chunk_meta_bytes() is 0 for geometries init() rejects, never a wrapped size") {
    using alloc_t = pcpu::allocator<sim, pcpu::static_only>;
    CHECK(alloc_t::first_chunk_meta_bytes(unit, 100, 512) != 0);
    CHECK(alloc_t::first_chunk_meta_bytes(unit, smax - 3, 8) == 0);
    CHECK(alloc_t::first_chunk_meta_bytes(unit, 8, smax) == 0);
    CHECK(alloc_t::first_chunk_meta_bytes(smax - page + 1, 8, 8) == 0);
    CHECK(alloc_t::first_chunk_meta_bytes(unit, unit, 0) == 0);
}

TEST_CASE_TEMPLATE("bad config: the warning names the field, and why where the field alone does not say", Policy,
                   POLICIES) {
    using alloc_t = pcpu::allocator<sim, Policy>;
    struct wording {
        void (*mutate)(pcpu::first_chunk_config&, storage&);
        const char* text; ///< the whole warning
    };
    static const void* const fake_addrs[cpus] = {nullptr, nullptr};
    // clang-format off
    const wording cases[] = {
        {[](pcpu::first_chunk_config& c, storage&) { c.nr_cpus = 0; }, "nr_cpus"},
        {[](pcpu::first_chunk_config& c, storage&) { c.unit_size = page - 1; }, "unit_size"},
        {[](pcpu::first_chunk_config& c, storage&) { c.units = nullptr; }, "units"},
        {[](pcpu::first_chunk_config& c, storage&) { c.unit_addrs = fake_addrs; }, "units (given with unit_addrs)"},
        {[](pcpu::first_chunk_config& c, storage&) { c.units = nullptr; c.unit_addrs = fake_addrs; }, "unit_addrs"},
        {[](pcpu::first_chunk_config& c, storage&) { c.units = reinterpret_cast<void*>(umax - page + 1); }, "units (wraps)"},
        {[](pcpu::first_chunk_config& c, storage&) { c.static_size = unit; }, "static_size"},
        {[](pcpu::first_chunk_config& c, storage&) { c.reserved_size = unit; }, "reserved_size"},
        {[](pcpu::first_chunk_config& c, storage&) { c.static_size = unit - 512; }, "reserved_size (no dynamic space)"},
        {[](pcpu::first_chunk_config& c, storage&) { c.dyn_size = unit; }, "dyn_size (past the unit's end)"},
        {[](pcpu::first_chunk_config& c, storage&) { c.static_image = reinterpret_cast<const void*>(umax - 63); },
         "static_image (wraps)"},
        {[](pcpu::first_chunk_config& c, storage& st) { c.static_image = st.units(); }, "static_image (overlaps units)"},
        {[](pcpu::first_chunk_config& c, storage& st) { c.meta = static_cast<unsigned char*>(st.meta()) + 1; },
         "meta (alignment)"},
        {[](pcpu::first_chunk_config& c, storage&) { c.meta_size = 1; }, "meta_size"},
        {[](pcpu::first_chunk_config& c, storage& st) { c.meta = st.units(); }, "meta (overlaps units)"},
        {[](pcpu::first_chunk_config& c, storage&) { c.meta = nullptr; },
         Policy::creates_chunks ? nullptr : "meta (null)"}, // allocated by pcpu where the policy can
    };
    // clang-format on
    for (const wording& w : cases) {
        if (w.text == nullptr) continue;
        storage st;
        alloc_t a(max_cpus);
        a.platform().set_recording(false);
        pcpu::first_chunk_config cfg = st.valid();
        w.mutate(cfg, st);
        const std::string want = std::string("pcpu: init: bad first_chunk_config.") + w.text;
        CAPTURE(want);
        CHECK(a.init(cfg) == pcpu::errc::bad_config);
        const auto warnings = a.platform().warnings();
        REQUIRE(warnings.size() == 1);
        CHECK(warnings[0] == want);
    }
}

TEST_CASE_TEMPLATE("bad config: init twice -> bad_config, the live allocator intact", Policy, POLICIES) {
    using alloc_t = pcpu::allocator<sim, Policy>;
    storage st;
    alloc_t a(max_cpus);
    a.platform().set_recording(false);
    REQUIRE(a.init(st.valid()) == pcpu::errc::ok);
    const pcpu::result<pcpu::handle> h = a.alloc(64, 8, pcpu::ctx::full);
    REQUIRE(h.ok());
    std::memset(a.ptr(h.value(), 1), 0x3C, 64);
    storage other;
    CHECK(a.init(other.valid()) == pcpu::errc::bad_config);
    CHECK(other.untouched());
    CHECK(a.initialized());
    CHECK(a.verify().ok);
    CHECK(static_cast<unsigned char*>(a.ptr(h.value(), 1))[63] == 0x3C);
    CHECK(a.free(h.value()) == pcpu::errc::ok);
    CHECK(a.verify().ok);
}

} // TEST_SUITE

namespace {

/// killed_by(f) - run f in a child process; the signal that ended it, or 0 if it
/// returned (the child then exits normally).
template <class F>
int killed_by(F&& f) {
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        const rlimit no_core{0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        // doctest's crash handlers would report the child's death as a test failure.
        for (int sig : {SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGTRAP}) std::signal(sig, SIG_DFL);
        f();
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

using counter_alloc = pcpu::allocator<sim, pcpu::contiguous>;
using counter_t = pcpu::counter<counter_alloc>;

/// started - an allocator over `storage`, initialised, two CPUs.
struct started {
    storage st;
    counter_alloc a{max_cpus};
    started() {
        a.platform().set_recording(false);
        REQUIRE(a.init(st.valid()) == pcpu::errc::ok);
    }
};

/// reads_as_nothing(c) - the answers of a counter that is not initialised, and every
/// write ignored.
void reads_as_nothing(counter_t& c) {
    CHECK_FALSE(c.initialized());
    c.add(5);
    c.sub(3);
    c.inc();
    c.dec();
    c.add_local(7);
    c.add_batch(9, 4);
    c.set(11);
    c.sync();
    CHECK(c.read() == 0);
    CHECK(c.read_positive() == 0);
    CHECK(c.sum() == 0);
    CHECK(c.sum_positive() == 0);
    CHECK(c.compare(0) == 0);
    CHECK(c.compare(1) == -1);
    CHECK(c.compare(-1) == 1);
    CHECK(c.compare(INT64_MIN, 7) == 1);
    CHECK(c.error_bound() == 0);
    CHECK(c.destroy() == pcpu::errc::ok);
    CHECK_FALSE(c.initialized());
}

} // namespace

TEST_SUITE("badcounter") {

TEST_CASE("counter: every call before init(), after destroy() and after a second destroy() has an answer") {
    started s;
    sim::set_cpu(0);
    counter_t c;
    reads_as_nothing(c);
    CHECK(s.a.stats().nr_alloc == 0); // none of it allocated
    for (int life = 0; life < 3; ++life) {
        CAPTURE(life);
        REQUIRE(c.init(s.a, 40, pcpu::ctx::full) == pcpu::errc::ok);
        CHECK(c.init(s.a, 0, pcpu::ctx::full) == pcpu::errc::bad_config); // already initialised
        CHECK(s.a.verify().ok);
        c.add(2);
        CHECK(c.sum() == 42);
        CHECK(c.destroy() == pcpu::errc::ok);
        CHECK(s.a.verify().ok);
        CHECK(s.a.stats().nr_cur_alloc == 0);
        reads_as_nothing(c); // destroyed; destroying again is a no-op
    }
    counter_t n;
    CHECK(n.init(s.a, 0, pcpu::ctx::full, -1) == pcpu::errc::bad_config);
    reads_as_nothing(n);
}

/// wraps(c) - the ends of the int64_t range through every add path of counter c (on
/// the running CPU, whatever the platform's this-CPU guard).
template <class Counter>
void wraps(Counter& c) {
    c.add(INT64_MAX);
    c.add(INT64_MAX);
    CHECK(c.sum() == -2);
    CHECK(c.read() == -2);
    c.set(0);
    c.sub(INT64_MIN); // -INT64_MIN is INT64_MIN again, modulo 2^64
    CHECK(c.sum() == INT64_MIN);
    CHECK(c.compare(INT64_MAX) == -1); // a distance of 2^64 - 1, taken without overflow
    CHECK(c.compare(INT64_MIN) == 0);
    c.add(-1);
    CHECK(c.sum() == INT64_MAX);
    CHECK(c.compare(INT64_MIN) == 1);
    // A delta near the batch plus an amount near the int64_t ends.
    c.set(0);
    c.add(c.batch() - 1);
    c.add(INT64_MAX);
    CHECK(c.sum() == static_cast<std::int64_t>(std::uint64_t(c.batch() - 1) + std::uint64_t(INT64_MAX)));
    c.set(0);
    c.add(-(c.batch() - 1));
    c.add(INT64_MIN);
    CHECK(c.sum() == static_cast<std::int64_t>(std::uint64_t(-(c.batch() - 1)) + std::uint64_t(INT64_MIN)));
    // add_local keeps up to INT32_MAX in the delta: the fold must wrap as well.
    c.set(INT64_MAX);
    c.add_local(INT32_MAX - 1);
    c.add_local(INT32_MAX);
    CHECK(c.sum() == static_cast<std::int64_t>(std::uint64_t(INT64_MAX) + 2 * std::uint64_t(INT32_MAX) - 1));
    c.add_batch(1, 0); // a batch below 1 folds every add
    c.add_batch(1, -5);
    CHECK(c.sum() == static_cast<std::int64_t>(std::uint64_t(INT64_MAX) + 2 * std::uint64_t(INT32_MAX) + 1));
    // sync() folds a delta into a count at the end of the range.
    c.set(INT64_MAX);
    c.add(3);
    c.sync();
    CHECK(c.read() == static_cast<std::int64_t>(std::uint64_t(INT64_MAX) + 3));
}

TEST_CASE("counter: the count wraps modulo 2^64 like the this-CPU operations (no signed overflow)") {
    started s;
    for (unsigned cpu : {0u, 1u}) {
        CAPTURE(cpu);
        sim::set_cpu(cpu);
        counter_t c;
        REQUIRE(c.init(s.a, 0, pcpu::ctx::full) == pcpu::errc::ok);
        wraps(c);
        CHECK(c.destroy() == pcpu::errc::ok);
        CHECK(s.a.verify().ok);
    }
}

template <pcpu_test::guard_kind K>
void wraps_guarded() {
    using alloc_t = pcpu::allocator<pcpu_test::cpu_platform<K>>;
    pcpu_test::static_setup<alloc_t> s(2, unit, 0, 0);
    pcpu_test::cpus().reset(2);
    pcpu_test::set_cpu(1);
    REQUIRE(s.init() == pcpu::errc::ok);
    pcpu::counter<alloc_t> c;
    REQUIRE(c.init(s.alloc, 0, pcpu::ctx::full) == pcpu::errc::ok);
    wraps(c);
    CHECK(c.destroy() == pcpu::errc::ok);
    CHECK(s.alloc.verify().ok);
    CHECK(pcpu_test::cpus().bugs == 0);
    pcpu_test::set_cpu(0);
}

TEST_CASE("counter: the count wraps under an irq or preempt this-CPU guard too (plain load/store path)") {
    wraps_guarded<pcpu_test::guard_kind::irq>();
    wraps_guarded<pcpu_test::guard_kind::preempt>();
}

TEST_CASE("counter: destroyed after its allocator's shutdown() and init(), it frees nothing of the new life") {
    started s;
    sim::set_cpu(0);
    counter_t c;
    REQUIRE(c.init(s.a, 1, pcpu::ctx::full) == pcpu::errc::ok);
    const pcpu::handle old = c.deltas().raw();
    s.a.shutdown();
    REQUIRE(s.a.init(s.st.valid()) == pcpu::errc::ok);
    // The new life hands the same address to a new owner.
    const pcpu::result<pcpu::handle> mine = s.a.alloc(sizeof(std::int32_t), alignof(std::int32_t), pcpu::ctx::full);
    REQUIRE(mine.ok());
    REQUIRE(mine.value() == old);
    CHECK(c.destroy() == pcpu::errc::not_initialized);
    CHECK_FALSE(c.initialized());
    CHECK(s.a.verify().ok);
    CHECK(s.a.stats().nr_cur_alloc == 1);
    CHECK(s.a.allocation_size(mine.value()).value_or(0) == 4);
    CHECK(s.a.free(mine.value()) == pcpu::errc::ok); // still the owner's to free
    CHECK(s.a.verify().ok);
    // Shut down and not started again: the same answer.
    REQUIRE(c.init(s.a, 1, pcpu::ctx::full) == pcpu::errc::ok);
    s.a.shutdown();
    CHECK(c.destroy() == pcpu::errc::not_initialized);
}

TEST_CASE("sized free: a stale handle whose area a new owner took with another size frees nothing") {
    started s;
    const pcpu::result<pcpu::handle> h = s.a.alloc(4, 4, pcpu::ctx::full);
    REQUIRE(h.ok());
    REQUIRE(s.a.free(h.value(), 4) == pcpu::errc::ok);
    const pcpu::result<pcpu::handle> owner = s.a.alloc(64, 4, pcpu::ctx::full);
    REQUIRE(owner.ok());
    REQUIRE(owner.value() == h.value()); // the same address, another owner
    CHECK(s.a.free(h.value(), 4) == pcpu::errc::invalid_pointer);
    CHECK(s.a.verify().ok);
    CHECK(s.a.allocation_size(owner.value()).value_or(0) == 64);
    CHECK(s.a.free(h.value(), 61) == pcpu::errc::ok); // 61 rounds to the owner's 64
    CHECK(s.a.free(h.value(), 64) == pcpu::errc::double_free);
    CHECK(s.a.allocation_size(h.value()).error() == pcpu::errc::double_free);
    CHECK(s.a.verify().ok);
}

} // TEST_SUITE

TEST_SUITE("checks") {

TEST_CASE("result::value() on an error stops the program in a release build; value_or() is the fallback") {
    counter_alloc never_started(max_cpus);
    const pcpu::result<pcpu::handle> r = never_started.alloc(8, 8, pcpu::ctx::full);
    REQUIRE(r.error() == pcpu::errc::not_initialized);
    CHECK(r.value_or(pcpu::handle(0x40)) == pcpu::handle(0x40));
    CHECK(killed_by([&] { (void)r.value(); }) == SIGILL);
    const auto typed = pcpu::alloc_percpu<int>(never_started, pcpu::ctx::full);
    CHECK(killed_by([&] { (void)typed.value(); }) == SIGILL);
    CHECK_FALSE(typed.value_or(pcpu::percpu<int>()));
    // A result that holds a value gives it, as always.
    started s;
    const auto ok = pcpu::alloc_percpu<int>(s.a, pcpu::ctx::full, 3);
    REQUIRE(ok.ok());
    CHECK(*pcpu::per_cpu_ptr(ok.value(), 1) == 3);
    CHECK(pcpu::free_percpu(s.a, ok.value()) == pcpu::errc::ok);
}

#if PCPU_CHECKS
TEST_CASE("PCPU_CHECKS: a CPU index not below nr_cpus stops ptr(), per_cpu() and the this-CPU operations") {
    started s; // 2 CPUs of the platform's 8
    const auto h = pcpu::alloc_percpu<long>(s.a, pcpu::ctx::full, 0L);
    REQUIRE(h.ok());
    const pcpu::percpu<long> p = h.value();
    for (unsigned cpu : {2u, 7u, 8u, 1000u, UINT_MAX}) {
        CAPTURE(cpu);
        CHECK(killed_by([&] { *static_cast<long*>(s.a.ptr(p.raw(), cpu)) = 1; }) == SIGILL);
        CHECK(killed_by([&] { pcpu::per_cpu(p, cpu) = 1; }) == SIGILL);
        CHECK(killed_by([&] { *pcpu::per_cpu_ptr(p, cpu) = 1; }) == SIGILL);
    }
    // The sim platform reports a running CPU modulo its own 8 CPUs.
    for (unsigned cpu : {2u, 7u}) {
        CAPTURE(cpu);
        CHECK(killed_by([&] {
                  sim::set_cpu(cpu);
                  pcpu::this_cpu_add(s.a, p, 1L);
              }) == SIGILL);
        CHECK(killed_by([&] {
                  sim::set_cpu(cpu);
                  (void)pcpu::this_cpu_read(s.a, p);
              }) == SIGILL);
        CHECK(killed_by([&] {
                  sim::set_cpu(cpu);
                  (void)pcpu::this_cpu_ptr(s.a, p);
              }) == SIGILL);
    }
    // In range, nothing changes.
    for (unsigned cpu = 0; cpu < 2; ++cpu) {
        sim::set_cpu(cpu);
        pcpu::this_cpu_add(s.a, p, 5L);
        CHECK(pcpu::per_cpu(p, cpu) == 5);
    }
    CHECK(pcpu::sum(p) == 10);
    CHECK(pcpu::free_percpu(s.a, p) == pcpu::errc::ok);
    CHECK(s.a.verify().ok);
    // The other indices of the typed layer: an array element, a static area offset.
    const auto arr = pcpu::alloc_percpu<int[4]>(s.a, pcpu::ctx::full);
    REQUIRE(arr.ok());
    CHECK(pcpu::per_cpu(arr.value().at(3), 1) == 0);
    CHECK(killed_by([&] { (void)arr.value().at(4); }) == SIGILL);
    CHECK(killed_by([&] { (void)s.a.static_handle(100); }) == SIGILL); // static_size 100
    (void)s.a.static_handle(99);
    CHECK(pcpu::free_percpu(s.a, arr.value()) == pcpu::errc::ok);
}

TEST_CASE("PCPU_CHECKS: a counter used after its allocator's shutdown() stops the program") {
    started s;
    sim::set_cpu(0);
    counter_t c;
    REQUIRE(c.init(s.a, 1, pcpu::ctx::full) == pcpu::errc::ok);
    s.a.shutdown();
    CHECK(killed_by([&] { c.add(1); }) == SIGILL);
    CHECK(killed_by([&] { (void)c.sum(); }) == SIGILL);
    REQUIRE(s.a.init(s.st.valid()) == pcpu::errc::ok);
    CHECK(killed_by([&] { c.inc(); }) == SIGILL); // a new life is not the counter's either
    CHECK(c.destroy() == pcpu::errc::not_initialized);
}

TEST_CASE("PCPU_CHECKS: free_percpu() of a stale handle runs no destructor and frees nothing") {
    struct tracked { // larger than the 4-byte owner below on every target (long is 4 bytes on armhf)
        std::int64_t v = 0;
        std::int64_t w = 0;
        ~tracked() { v = w = -1; }
    };
    static_assert(sizeof(tracked) > 4, "the stale handle must name a larger area than the new owner's");
    started s;
    const auto h = pcpu::alloc_percpu<tracked>(s.a, pcpu::ctx::full);
    REQUIRE(h.ok());
    const pcpu::percpu<tracked> stale = h.value();
    REQUIRE(pcpu::free_percpu(s.a, stale) == pcpu::errc::ok);
    // The area goes to a smaller owner, then to nobody: neither is the stale handle's.
    const pcpu::result<pcpu::handle> small = s.a.alloc(4, alignof(tracked), pcpu::ctx::full);
    REQUIRE(small.ok());
    REQUIRE(small.value() == stale.raw());
    *static_cast<std::int32_t*>(s.a.ptr(small.value(), 1)) = 77;
    CHECK(pcpu::free_percpu(s.a, stale) == pcpu::errc::invalid_pointer);
    CHECK(*static_cast<std::int32_t*>(s.a.ptr(small.value(), 1)) == 77);
    CHECK(s.a.free(small.value()) == pcpu::errc::ok);
    CHECK(pcpu::free_percpu(s.a, stale) == pcpu::errc::double_free);
    CHECK(s.a.verify().ok);
}
#endif

#if PCPU_FREE_PATTERN
template <class Policy>
void churn_with_pattern() {
    using alloc_t = pcpu::allocator<sim, Policy>;
    storage st;
    alloc_t a(max_cpus);
    a.platform().set_recording(false);
    REQUIRE(a.init(st.valid()) == pcpu::errc::ok);
    // Every allocation, fresh or reused, first chunk, reserved or new chunk, passes the
    // check (no false report), comes back zeroed, and its owner's writes stay its own.
    std::vector<pcpu::handle> live;
    for (int round = 0; round < 300; ++round) {
        const std::size_t size = 4 + static_cast<std::size_t>(round * 53) % (unit / 2);
        const pcpu::result<pcpu::handle> r = round % 5 == 0 ? a.alloc_reserved(12, 4, pcpu::ctx::full)
                                                            : a.alloc(size, 4, pcpu::ctx::full);
        if (r) {
            for (unsigned cpu = 0; cpu < cpus; ++cpu) {
                CHECK(static_cast<unsigned char*>(a.ptr(r.value(), cpu))[0] == 0);
                std::memset(a.ptr(r.value(), cpu), 0x42, 4);
            }
            live.push_back(r.value());
        }
        if (round % 2 == 0 && !live.empty()) {
            CHECK(a.free(live.front()) == pcpu::errc::ok);
            live.erase(live.begin());
        }
        if (round % 40 == 0) (void)a.balance(pcpu::ctx::full);
        REQUIRE(a.verify().ok);
    }
    for (pcpu::handle h : live) CHECK(a.free(h) == pcpu::errc::ok);
    (void)a.balance(pcpu::ctx::full);
    CHECK(a.verify().ok);
    for (const std::string& w : a.platform().warnings()) CHECK(w.find("after free") == std::string::npos);
}

TEST_CASE("PCPU_FREE_PATTERN: allocation and free churn in every policy reports nothing") {
    churn_with_pattern<pcpu::static_only>();
    churn_with_pattern<pcpu::contiguous>();
    churn_with_pattern<pcpu::lazy_mapped>();
}

TEST_CASE("PCPU_FREE_PATTERN: a write through a stale handle is caught when the area is reused") {
    for (unsigned writer : {0u, 1u}) {
        CAPTURE(writer);
        started s;
        const pcpu::result<pcpu::handle> h = s.a.alloc(64, 8, pcpu::ctx::full);
        REQUIRE(h.ok());
        REQUIRE(s.a.free(h.value()) == pcpu::errc::ok);
        // Under ASan the freed area is poisoned too, and these deliberate accesses would
        // be its report (asan_uaf tests that): open it for them first.
        const auto freed = [&](unsigned cpu) {
            auto* p = static_cast<unsigned char*>(s.a.ptr(h.value(), cpu));
#if PCPU_ASAN
            __asan_unpoison_memory_region(p, 64);
#endif
            return p;
        };
        for (unsigned cpu = 0; cpu < cpus; ++cpu) CHECK(freed(cpu)[63] == PCPU_FREE_PATTERN);
        // Without a stale write, reuse is silent.
        const pcpu::result<pcpu::handle> again = s.a.alloc(64, 8, pcpu::ctx::full);
        REQUIRE(again.ok());
        REQUIRE(again.value() == h.value());
        REQUIRE(s.a.free(again.value()) == pcpu::errc::ok);
        // One stale byte on one CPU, then the area's next allocation stops the program.
        freed(writer)[40] = 0x01;
        CHECK(killed_by([&] { (void)s.a.alloc(64, 8, pcpu::ctx::full); }) == SIGILL);
        CHECK(s.a.verify().ok); // (the parent never reused it)
    }
}
#endif

} // TEST_SUITE

TEST_SUITE("badconfig") {

// relocate(): a chunk whose largest free region shrinks joins its new slot at the
// tail, one that grows at the front (the kernel's pcpu_chunk_relocate). With two chunks
// in one slot, the one that was there first serves next.
TEST_CASE("slot lists: a chunk that moves down a slot queues behind the chunk already there") {
    using alloc_t = pcpu::allocator<sim, pcpu::contiguous>;
    storage st;
    alloc_t a(max_cpus);
    a.platform().set_recording(false);
    REQUIRE(a.init(st.valid()) == pcpu::errc::ok);
    const auto ctx = pcpu::ctx::full;
    // Fill the first chunk's dynamic area exactly: it drops to slot 0.
    const pcpu::result<pcpu::handle> first = a.alloc(unit - 100 - 512, 4, ctx);
    REQUIRE(first.ok());
    // Chunk A: a new chunk with 9000 bytes taken leaves a 7384-byte run (slot 10).
    const pcpu::result<pcpu::handle> in_a = a.alloc(9000, 4, ctx);
    REQUIRE(in_a.ok());
    // Chunk B: 9000 bytes do not fit A's 7384, so another new chunk, which drops from
    // the free slot to slot 10 too, where A already is.
    const pcpu::result<pcpu::handle> in_b = a.alloc(9000, 4, ctx);
    REQUIRE(in_b.ok());
    struct seen {
        int slot;
        std::uintptr_t base;
    };
    std::vector<seen> order;
    a.for_each_chunk([&](const pcpu::chunk_stats& c) {
        if (c.kind == pcpu::chunk_kind::dynamic) order.push_back({c.slot, c.base});
    });
    REQUIRE(order.size() == 2);
    REQUIRE(order[0].slot == order[1].slot);
    const auto chunk_of = [&](pcpu::handle h) {
        return h.addr() >= order[0].base && h.addr() < order[0].base + unit ? 0 : 1;
    };
    CHECK(chunk_of(in_a.value()) == 0); // A first in the slot, B behind it
    CHECK(chunk_of(in_b.value()) == 1);
    // So A serves the next allocation that fits both.
    const pcpu::result<pcpu::handle> next = a.alloc(4000, 4, ctx);
    REQUIRE(next.ok());
    CHECK(chunk_of(next.value()) == chunk_of(in_a.value()));
    CHECK(a.verify().ok);
}

} // TEST_SUITE
