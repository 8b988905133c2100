// SPDX-License-Identifier: MIT
// tests/test_hardening.cpp - misuse that is not a bad argument to alloc() or free()
// (issue 13): every first_chunk_config field at its boundary values (suite
// "badconfig"), and the counter in every state (suite "badcounter").
//
// A rejected init() must leave the allocator exactly as a fresh one: uninitialised,
// verify() clean, not one byte of the units or the metadata written, nothing taken from
// the platform, one warning naming the field; and a valid init() afterwards works.
#include "support/sim_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/counter.hpp>
#include <pcpu/percpu.hpp>

#include <doctest/doctest.h>

#include <climits>
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
