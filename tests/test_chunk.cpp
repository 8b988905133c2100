// SPDX-License-Identifier: MIT
// tests/test_chunk.cpp - one chunk's bitmap allocator (pcpu/internal/chunk.hpp): randomized
// alloc/free against an interval model (suite "chunk") and hand-built hint cases
// (suite "hints"). Every chunk operation is followed by verify().
//
// Small pages make block boundaries dense: basic_chunk<7> has 32-bit blocks,
// basic_chunk<8> 64-bit blocks; basic_chunk<12> is the Linux geometry (1024 bits).
#include "support/chunk_model.hpp"
#include "support/test_scale.hpp"

#include <pcpu/internal/chunk.hpp>
#include <pcpu/internal/scan_chunk.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

/// CHECK_CHUNK_VERIFIED(c) - run the chunk's c.verify(); a mismatch fails the test with
/// the report (what, index, expected, actual) and the test case goes on (a CHECK): it
/// evaluates to true when the chunk is consistent, so loops can stop at the first
/// failure. The allocator's check is REQUIRE_VERIFIED (support/static_platform.hpp).
#define CHECK_CHUNK_VERIFIED(c)                                                                                \
    [&]() {                                                                                                    \
        const ::pcpu::chunk_verify_report verify_report_ = (c).verify();                                       \
        CHECK_MESSAGE(verify_report_.ok, "verify: " << std::string(verify_report_.what ? verify_report_.what : "") \
                                                    << " index=" << verify_report_.index                       \
                                                    << " expected=" << verify_report_.expected                 \
                                                    << " actual=" << verify_report_.actual);                   \
        return verify_report_.ok;                                                                              \
    }()

using pcpu_test::chunk_box;
using pcpu_test::chunk_model;
using pcpu_test::rng;

namespace {

/// try_alloc(c, bits, align, pop_only) - find_fit then alloc_area, as the allocator
/// does; a start from find_fit must always lead to a successful claim.
template <class Chunk>
std::int32_t try_alloc(Chunk& c, std::uint32_t bits, std::uint32_t align, bool pop_only) {
    const std::int32_t start = c.find_fit(bits, align, pop_only);
    if (start < 0) return -1;
    const std::int32_t off = c.alloc_area(bits, align, static_cast<std::uint32_t>(start));
    CHECK_MESSAGE(off >= 0, "find_fit returned " << start << " but alloc_area found nothing for " << bits
                                                 << " bits, align " << align);
    return off;
}

/// place(c, off, bits) - claim exactly [off, off + bits) (free, so the first fit from
/// off is off itself).
template <class Chunk>
bool place(Chunk& c, std::uint32_t off, std::uint32_t bits) {
    const std::int32_t got = c.alloc_area(bits, 1, off);
    CHECK(got == static_cast<std::int32_t>(off));
    return CHECK_CHUNK_VERIFIED(c) && got == static_cast<std::int32_t>(off);
}

template <class Chunk>
bool map_matches(const Chunk& c, const chunk_model& m) {
    for (std::uint32_t i = 0; i < c.map_bits(); ++i)
        if (pcpu::bitmap::test(c.alloc_map(), i) != (m.owner[i] != 0)) return false;
    return true;
}

struct random_params {
    std::uint32_t nr_pages;
    std::uint64_t seed;
    int ops;
    unsigned nr_cpus;
    bool partial_population; ///< some pages unpopulated, pop_only requests, page toggling
    bool hidden;             ///< hide a head and tail like a first chunk
};

template <class Chunk>
constexpr std::uint32_t block_bits_of() {
    if constexpr (pcpu_test::is_scan_chunk<Chunk>::value) return Chunk::page_bits;
    else return Chunk::block_bits;
}

/// random_run<PageShift, Chunk>(p) - p.ops random operations against the model. Returns
/// the number of aligned requests that failed although some aligned fit existed (the
/// kernel's hint-only search does not look at every run; never for align == 1).
/// Chunk: another layout (granule, block) of the same page size.
template <unsigned PageShift, class Chunk = pcpu::basic_chunk<PageShift>>
std::uint32_t random_run(const random_params& p) {
    using chunk_t = Chunk;
    constexpr bool scan = pcpu_test::is_scan_chunk<Chunk>::value;
    // A scan chunk has no blocks: requests are drawn against its pages.
    constexpr std::uint32_t bb = block_bits_of<Chunk>();
    constexpr std::uint32_t pb = chunk_t::page_bits; // population is per page
    std::uint32_t log2_bb = 0;
    while ((1u << log2_bb) < bb) ++log2_bb;

    chunk_box<chunk_t> box(p.nr_pages);
    chunk_t& c = box.c;
    chunk_model m(c.map_bits(), bb, p.nr_cpus, pb);
    rng r(p.seed);
    std::uint32_t aligned_misses = 0;
    INFO("seed " << p.seed << ", " << p.nr_pages << " pages of " << pb << " bits, blocks of " << bb);

    for (std::uint32_t pg = 0; pg < p.nr_pages; ++pg) {
        if (p.partial_population && r.below(3) == 0) continue;
        c.set_populated(pg, pg + 1);
        m.populated[pg] = true;
    }
    if (p.hidden) {
        const std::uint32_t begin = r.range(1, bb + bb / 2), end = c.map_bits() - r.range(1, bb + bb / 2);
        c.hide(begin, end);
        m.hide(begin, end);
    }
    if (!CHECK_CHUNK_VERIFIED(c)) return aligned_misses;

    for (int op = 0, ops = pcpu_test::scaled(p.ops); op < ops; ++op) {
        INFO("op " << op);
        const std::uint32_t k = r.below(100);
        const bool mostly_free = c.free_bits() * 10 > c.map_bits() * 4;
        if (p.partial_population && k < 6) {
            // Population changes, as the allocator makes them: populate any page,
            // depopulate only an empty one.
            const std::uint32_t pg = r.below(p.nr_pages);
            bool empty = true;
            for (std::uint32_t i = pg * pb; i < (pg + 1) * pb; ++i) empty = empty && m.owner[i] == 0;
            if (!m.populated[pg]) {
                c.set_populated(pg, pg + 1);
                m.populated[pg] = true;
            } else if (empty) {
                c.set_depopulated(pg, pg + 1);
                m.populated[pg] = false;
            }
        } else if (m.live.empty() || k < (mostly_free ? 70u : 45u)) {
            const std::uint32_t ks = r.below(100);
            std::uint32_t bits = ks < 45 ? r.range(1, 4)
                                 : ks < 70 ? r.range(1, bb / 4)
                                 : ks < 88 ? r.range(1, bb)
                                           : r.range(1, 3 * (pb > bb ? pb : bb));
            if (bits > c.map_bits()) bits = c.map_bits();
            const std::uint32_t align = r.below(2) == 0 ? 1 : 1u << r.below(log2_bb + 1);
            const bool pop_only = p.partial_population ? r.below(2) == 0 : r.below(4) == 0;
            INFO("alloc " << bits << " bits, align " << align << (pop_only ? ", pop_only" : ""));

            const bool any = m.any_fit(bits, align, pop_only);
            const bool visible = m.hint_visible_fit(c, bits, align, pop_only);
            if (align == 1) CHECK(visible == any); // exact contig hints: nothing is missed
            const std::int32_t off = try_alloc(c, bits, align, pop_only);
            // A scan chunk claims exactly the first aligned fit, and fails only without one.
            if (scan) CHECK(off == m.first_fit(bits, align, pop_only));
            if (off >= 0) {
                const auto o = static_cast<std::uint32_t>(off);
                CHECK(o % align == 0);
                CHECK_MESSAGE(m.add(o, bits), "overlap or out of range at " << o);
                if (pop_only)
                    for (std::uint32_t pg = o / pb; pg <= (o + bits - 1) / pb; ++pg) CHECK(m.populated[pg]);
                CHECK(visible);
            } else {
                // Fails only when the hints, kept exact, show no fit: for align == 1
                // that means no fit at all.
                CHECK_MESSAGE(!visible, "allocation failed although the hints show a fit");
                if (any) ++aligned_misses;
            }
        } else {
            auto it = m.live.begin();
            std::advance(it, static_cast<long>(r.below(static_cast<std::uint32_t>(m.live.size()))));
            const std::uint32_t off = it->first, bits = it->second;
            INFO("free " << bits << " bits at " << off);
            CHECK(c.area_size(off) == bits);
            CHECK(c.free_area(off) == bits);
            REQUIRE(m.remove(off));
        }

        if (!CHECK_CHUNK_VERIFIED(c)) break;
        const std::uint32_t probe = r.below(c.map_bits() + 8);
        CHECK(c.area_size(probe) == m.expected_area_size(probe));
        CHECK(c.nr_alloc() == m.live.size());
        CHECK(c.free_bits() == m.free_bits());
        CHECK(c.contig_bits() == m.largest_run());
        std::uint32_t empty_pages = 0; // populated pages with no bit allocated, from the model
        for (std::uint32_t pg = 0; pg < p.nr_pages; ++pg) {
            bool empty = m.populated[pg];
            for (std::uint32_t i = pg * pb; empty && i < (pg + 1) * pb; ++i) empty = m.owner[i] == 0;
            empty_pages += empty;
        }
        CHECK(c.nr_empty_pop_pages() == empty_pages);
        if (!map_matches(c, m) || !m.contents_intact()) {
            CHECK_MESSAGE(false, "alloc_map or per-CPU contents differ from the model");
            break;
        }
    }

    // Drain in random order; the chunk must end up as it began.
    while (!m.live.empty()) {
        auto it = m.live.begin();
        std::advance(it, static_cast<long>(r.below(static_cast<std::uint32_t>(m.live.size()))));
        CHECK(c.free_area(it->first) == it->second);
        REQUIRE(m.remove(it->first));
        if (!CHECK_CHUNK_VERIFIED(c)) break;
    }
    CHECK(c.nr_alloc() == 0);
    if (!p.hidden) {
        CHECK(c.is_empty());
        CHECK(c.contig_bits() == c.map_bits());
        CHECK(c.nr_empty_pop_pages() == c.nr_populated());
    }
    CHECK(box.guard_intact());
    return aligned_misses;
}

} // namespace

TEST_SUITE("chunk") {

TEST_CASE("init: entirely free, unpopulated, metadata exactly meta_bytes()") {
    using chunk_t = pcpu::basic_chunk<8>;
    chunk_box<chunk_t> box(5);
    const chunk_t& c = box.c;
    CHECK(c.nr_pages() == 5);
    CHECK(c.map_bits() == 5 * 64);
    CHECK(c.free_bits() == c.map_bits());
    CHECK(c.contig_bits() == c.map_bits());
    CHECK(c.first_free() == 0);
    CHECK(c.nr_populated() == 0);
    CHECK(c.nr_empty_pop_pages() == 0);
    CHECK(c.nr_alloc() == 0);
    CHECK(c.is_empty());
    CHECK(CHECK_CHUNK_VERIFIED(c));
    // The block array is the last thing in the metadata and ends exactly there.
    const auto meta = reinterpret_cast<std::uintptr_t>(box.storage.data());
    CHECK(reinterpret_cast<std::uintptr_t>(&c.block(4) + 1) == meta + chunk_t::meta_bytes(5));
    CHECK(box.guard_intact());
    CHECK(chunk_t::meta_align >= alignof(pcpu::block_md));
    CHECK(chunk_t::meta_bytes(5) >= 5 * sizeof(pcpu::block_md) + 2 * sizeof(pcpu::bitmap::word));
}

TEST_CASE("alloc and free restore the chunk; sizes come from bound_map") {
    using chunk_t = pcpu::basic_chunk<7>;
    chunk_box<chunk_t> box(4);
    chunk_t& c = box.c;
    c.set_populated(0, 4);
    const std::int32_t a = try_alloc(c, 5, 1, false);
    const std::int32_t b = try_alloc(c, 40, 8, false);
    const std::int32_t d = try_alloc(c, 1, 1, true);
    REQUIRE(a == 0);
    REQUIRE(b == 8);
    REQUIRE(d == 5);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_alloc() == 3);
    CHECK(c.max_alloc_bits() == 40);
    CHECK(c.area_size(0) == 5);
    CHECK(c.area_size(8) == 40);
    CHECK(c.area_size(9) == 0);   // interior
    CHECK(c.area_size(47) == 0);  // interior, last bit
    CHECK(c.area_size(48) == 0);  // free (its bound bit is set: the end of b)
    CHECK(c.area_size(128) == 0); // out of range
    CHECK(c.free_area(8) == 40);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.area_size(8) == 0);   // double free is visible
    CHECK(c.free_area(0) == 5);
    CHECK(c.free_area(5) == 1);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.is_empty());
    CHECK(c.nr_empty_pop_pages() == 4);
    CHECK(c.max_alloc_bits() == 40);
}

TEST_CASE("alloc_area's window is bounded: [start, start + bits + block_bits)") {
    using chunk_t = pcpu::basic_chunk<7>; // 32-bit blocks
    chunk_box<chunk_t> box(8);
    chunk_t& c = box.c;
    REQUIRE(place(c, 0, 200));
    CHECK(c.alloc_area(10, 1, 0) == -1);   // window [0, 42)
    CHECK(c.alloc_area(10, 1, 150) == -1); // window [150, 192)
    CHECK(c.alloc_area(10, 1, 160) == -1); // window [160, 202): [200, 210) does not end by 202
    CHECK(c.alloc_area(10, 1, 170) == 200); // window [170, 212)
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.alloc_area(10, 1, 250) == -1); // window clipped to map_bits: [250, 256)
    CHECK(c.alloc_area(6, 1, 250) == 250);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.alloc_area(1, 1, 256) == -1); // start past the end
}

TEST_CASE("randomized alloc/free against the model, 32-bit blocks") {
    for (std::uint64_t seed : {1ull, 2ull, 3ull}) {
        CAPTURE(seed);
        random_run<7>({24, seed, 3000, 3, false, false});
    }
}

TEST_CASE("randomized alloc/free against the model, 64-bit blocks") {
    for (std::uint64_t seed : {11ull, 12ull, 13ull}) {
        CAPTURE(seed);
        random_run<8>({16, seed, 3000, 2, false, false});
    }
}

TEST_CASE("randomized alloc/free against the model, 1024-bit blocks (Linux geometry)") {
    for (std::uint64_t seed : {21ull, 22ull}) {
        CAPTURE(seed);
        random_run<12>({5, seed, 2000, 2, false, false});
    }
}

TEST_CASE("randomized with partial population and pop_only requests") {
    for (std::uint64_t seed : {31ull, 32ull, 33ull}) {
        CAPTURE(seed);
        random_run<7>({20, seed, 2500, 2, true, false});
        random_run<8>({12, seed, 2500, 2, true, false});
    }
}

TEST_CASE("randomized on a first chunk with hidden head and tail") {
    for (std::uint64_t seed : {41ull, 42ull}) {
        CAPTURE(seed);
        random_run<7>({16, seed, 2500, 3, false, true});
        random_run<8>({10, seed, 2500, 2, true, true});
    }
}

TEST_CASE("single-page chunk") {
    for (std::uint64_t seed : {51ull, 52ull}) {
        CAPTURE(seed);
        random_run<7>({1, seed, 1500, 2, false, false});
        random_run<8>({1, seed, 1500, 2, true, false});
    }
}

TEST_CASE("layouts: blocks smaller than pages, granules above 4 bytes, against the model") {
    // 4 KiB pages of 256-byte blocks (16 per page), 4-byte granule: population per page,
    // hints per block.
    using small_blocks = pcpu::basic_chunk<12, 2, 8>;
    // 4 KiB pages, 16-byte granule: 256 bits per page, one block.
    using granule16 = pcpu::basic_chunk<12, 4>;
    // 1 KiB pages, 8-byte granule, 256-byte blocks (4 of 32 bits per page).
    using g8_small = pcpu::basic_chunk<10, 3, 8>;
    static_assert(small_blocks::blocks_per_page == 16 && small_blocks::block_bits == 64);
    static_assert(granule16::page_bits == 256 && granule16::blocks_per_page == 1);
    static_assert(g8_small::page_bits == 128 && g8_small::block_bits == 32);
    for (std::uint64_t seed : {61ull, 62ull}) {
        CAPTURE(seed);
        random_run<12, small_blocks>({4, seed, 2500, 2, false, false});
        random_run<12, small_blocks>({4, seed, 2500, 2, true, true});
        random_run<12, granule16>({6, seed, 2500, 2, true, false});
        random_run<12, granule16>({4, seed, 1500, 2, false, true});
        random_run<10, g8_small>({8, seed, 2500, 3, true, true});
        random_run<10, g8_small>({1, seed, 1500, 2, true, false});
    }
}

TEST_CASE("layouts: a page is empty only when every block of it is") {
    using chunk_t = pcpu::basic_chunk<12, 2, 8>; // 1024-bit pages of 64-bit blocks
    chunk_box<chunk_t> box(3);
    chunk_t& c = box.c;
    CHECK(c.nr_blocks() == 48);
    c.set_populated(0, 3);
    CHECK(c.nr_empty_pop_pages() == 3);
    // One bit in the last block of page 0: page 0 is no longer empty.
    REQUIRE(place(c, 1023, 1));
    CHECK(c.nr_empty_pop_pages() == 2);
    CHECK(!c.page_is_free(0));
    CHECK(c.page_is_free(1));
    // An area from the middle of page 1 through page 2's first block.
    REQUIRE(place(c, 1500, 1100));
    CHECK(c.nr_empty_pop_pages() == 0);
    CHECK(c.free_area(1023) == 1);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 1);
    CHECK(c.free_area(1500) == 1100);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 3);
    // An unpopulated page in the middle of an area is not counted either way.
    c.set_depopulated(1, 2);
    REQUIRE(place(c, 900, 1200));
    CHECK(c.nr_empty_pop_pages() == 0);
    CHECK(c.free_area(900) == 1200);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 2);
    // pop_only never lands on the unpopulated page: 64 bits aligned to a block fit in
    // page 0's last block, then only on page 2.
    REQUIRE(place(c, 0, 960));
    const std::int32_t off = try_alloc(c, 100, 64, true);
    CHECK(off >= 2048);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(box.guard_intact());
}

} // TEST_SUITE("chunk")

TEST_SUITE("hints") {

TEST_CASE("allocations that straddle block boundaries") {
    using chunk_t = pcpu::basic_chunk<7>; // 32-bit blocks
    chunk_box<chunk_t> box(8);
    chunk_t& c = box.c;
    c.set_populated(0, 8);
    REQUIRE(place(c, 28, 8)); // [28, 36): blocks 0 and 1
    CHECK(c.block(0).right_free == 0);
    CHECK(c.block(0).left_free == 28);
    CHECK(c.block(0).contig_hint == 28);
    CHECK(c.block(1).left_free == 0);
    CHECK(c.block(1).right_free == 28);
    CHECK(c.block(1).contig_hint_start == 4);
    CHECK(c.chunk_md().contig_hint == 256 - 36);
    CHECK(c.chunk_md().contig_hint_start == 36);
    CHECK(c.nr_empty_pop_pages() == 6);

    REQUIRE(place(c, 60, 10));  // [60, 70): blocks 1 and 2
    REQUIRE(place(c, 95, 2));   // [95, 97): blocks 2 and 3
    REQUIRE(place(c, 127, 34)); // [127, 161): blocks 3, 4 and 5
    CHECK(c.block(4).contig_hint == 0);
    CHECK(c.nr_empty_pop_pages() == 2);
    CHECK(c.chunk_md().contig_hint == 256 - 161);

    // Frees that re-join runs across the boundaries.
    CHECK(c.free_area(60) == 10);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.block(1).right_free == 32 - 4);
    CHECK(c.block(2).left_free == 31);
    CHECK(c.chunk_md().contig_hint == 256 - 161); // [36, 95) is 59 bits < 95
    CHECK(c.free_area(127) == 34);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.chunk_md().contig_hint == 256 - 97);
    CHECK(c.free_area(95) == 2);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.chunk_md().contig_hint == 256 - 36);
    CHECK(c.free_area(28) == 8);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.is_empty());
    CHECK(c.nr_empty_pop_pages() == 8);
}

TEST_CASE("small frees at block edges lengthen cross-block runs (exact chunk contig hint)") {
    // The kernel's single-block chunk merge misses this; here the chunk hint follows.
    using chunk_t = pcpu::basic_chunk<7>;
    chunk_box<chunk_t> box(4);
    chunk_t& c = box.c;
    REQUIRE(place(c, 0, 20));
    REQUIRE(place(c, 20, 10)); // [20, 30)
    REQUIRE(place(c, 30, 4));  // [30, 34): crosses into block 1
    REQUIRE(place(c, 34, 26)); // [34, 60)
    REQUIRE(place(c, 60, 4));  // [60, 64): block 1's tail
    REQUIRE(place(c, 64, 10)); // [64, 74)
    REQUIRE(place(c, 74, 54)); // [74, 128): the rest
    CHECK(c.contig_bits() == 0);
    CHECK(c.free_area(20) == 10); // run [20, 30): inside block 0
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.contig_bits() == 10);
    CHECK(c.free_area(60) == 4); // [60, 64): touches block 2's left edge? no, [64, 74) is allocated
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.contig_bits() == 10);
    CHECK(c.free_area(64) == 10); // [60, 74): crosses the 64 edge, merged from the neighbour
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.contig_bits() == 14);
    CHECK(c.chunk_md().contig_hint_start == 60);
    CHECK(c.free_area(30) == 4); // [20, 34): grows across the 32 edge from block 1's side
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.contig_bits() == 14);
    // Equal length and equally aligned (20 and 60 both have 4 as lowest set bit): the
    // contig hint stays, the new run becomes the (equal) scan hint. The free merges
    // the one run it creates instead of walking every block.
    CHECK(c.chunk_md().contig_hint_start == 60);
    CHECK(c.chunk_md().scan_hint == 14);
    CHECK(c.chunk_md().scan_hint_start == 20);
}

TEST_CASE("allocations spanning several whole blocks") {
    using chunk_t = pcpu::basic_chunk<7>;
    chunk_box<chunk_t> box(8);
    chunk_t& c = box.c;
    c.set_populated(0, 8);
    REQUIRE(place(c, 20, 130)); // [20, 150): blocks 0 .. 4
    for (std::uint32_t b = 1; b <= 3; ++b) CHECK(c.block(b).contig_hint == 0);
    CHECK(c.block(0).contig_hint == 20);
    CHECK(c.block(0).right_free == 0);
    CHECK(c.block(4).left_free == 0);
    CHECK(c.block(4).contig_hint == 160 - 150);
    CHECK(c.chunk_md().contig_hint == 256 - 150);
    CHECK(c.chunk_md().contig_hint_start == 150);
    CHECK(c.nr_empty_pop_pages() == 3);

    const std::int32_t big = try_alloc(c, 96, 32, false); // three aligned blocks
    CHECK(big == 160);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 0);
    CHECK(try_alloc(c, 11, 1, false) == 150 - 150 + 0); // first fit: [0, 20)
    CHECK(CHECK_CHUNK_VERIFIED(c));

    CHECK(c.free_area(20) == 130);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 4); // blocks 1..4
    CHECK(c.free_area(160) == 96);
    CHECK(c.free_area(0) == 11);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.is_empty());
    CHECK(c.contig_bits() == 256);
    CHECK(c.nr_empty_pop_pages() == 8);
}

TEST_CASE("fill a chunk completely, then free in forward, reverse and alternating order") {
    using chunk_t = pcpu::basic_chunk<8>; // 64-bit blocks
    for (int order = 0; order < 3; ++order) {
        CAPTURE(order);
        chunk_box<chunk_t> box(6);
        chunk_t& c = box.c;
        c.set_populated(0, 6);
        std::vector<std::uint32_t> offs;
        static const std::uint32_t sizes[] = {1, 3, 7, 64, 5, 100, 2, 30, 17, 64, 9};
        static const std::uint32_t aligns[] = {1, 1, 4, 64, 1, 8, 2, 1, 1, 16, 4};
        for (std::size_t i = 0; i < 200; ++i) {
            const std::int32_t off = try_alloc(c, sizes[i % 11], aligns[i % 11], false);
            if (off >= 0) offs.push_back(static_cast<std::uint32_t>(off));
            if (!CHECK_CHUNK_VERIFIED(c)) return;
        }
        // Then single bits into every hole that is left.
        for (std::int32_t off; (off = try_alloc(c, 1, 1, false)) >= 0;) {
            offs.push_back(static_cast<std::uint32_t>(off));
            if (!CHECK_CHUNK_VERIFIED(c)) return;
        }
        CHECK(c.free_bits() == 0);
        CHECK(c.contig_bits() == 0);
        CHECK(c.first_free() == c.map_bits());
        CHECK(c.nr_empty_pop_pages() == 0);
        CHECK(c.find_fit(1, 1, false) == -1);
        CHECK(c.find_fit(1, 1, true) == -1);

        std::vector<std::uint32_t> seq;
        if (order == 0) seq = offs;
        if (order == 1) seq.assign(offs.rbegin(), offs.rend());
        if (order == 2) {
            for (std::size_t i = 0; i < offs.size(); i += 2) seq.push_back(offs[i]);
            for (std::size_t i = 1; i < offs.size(); i += 2) seq.push_back(offs[i]);
        }
        for (std::uint32_t off : seq) {
            CHECK(c.area_size(off) != 0);
            c.free_area(off);
            if (!CHECK_CHUNK_VERIFIED(c)) return;
        }
        CHECK(c.is_empty());
        CHECK(c.contig_bits() == c.map_bits());
        CHECK(c.nr_empty_pop_pages() == 6);
    }
}

TEST_CASE("a skipped fragmented prefix becomes a scan hint the next search jumps over") {
    using chunk_t = pcpu::basic_chunk<8>;
    chunk_box<chunk_t> box(2);
    chunk_t& c = box.c;
    // 1-bit objects at 2-bit alignment leave 1-bit holes at odd offsets.
    for (int i = 0; i < 10; ++i) {
        CHECK(try_alloc(c, 1, 2, false) == 2 * i);
        REQUIRE(CHECK_CHUNK_VERIFIED(c));
    }
    // Objects at 0, 2, ..., 18: the first 2-bit run starts at 19, after the 1-bit
    // holes 1, 3, ..., 17, which the scan skipped.
    CHECK(try_alloc(c, 2, 1, false) == 19);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.block(0).scan_hint == 1);
    CHECK(c.block(0).scan_hint_start >= 15); // one of the latest equal holes
    CHECK(c.block(0).max_before == 1);       // no run before the contig hint is longer
    CHECK(c.find_fit(2, 1, false) == 21);    // so a 2-bit search begins on the contig hint
    CHECK(c.find_fit(1, 1, false) == 1);     // a 1-bit request still fills the holes
}

TEST_CASE("pop_only fits avoid unpopulated pages") {
    using chunk_t = pcpu::basic_chunk<8>; // 64-bit blocks
    chunk_box<chunk_t> box(6);
    chunk_t& c = box.c;
    c.set_populated(0, 2);
    c.set_populated(3, 5); // pages 2 and 5 unpopulated
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 4);

    CHECK(try_alloc(c, 100, 1, true) == 0); // pages 0-1
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    // [100, 128) is too short; the run goes on through unpopulated page 2, so the
    // search restarts on page 3 and finds the run from that page's left edge.
    CHECK(c.find_fit(40, 1, true) == 192);
    CHECK(try_alloc(c, 40, 1, true) == 192);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    // 60 bits: the first fit overall is [100, 160) over page 2; pop_only must not
    // take it.
    const std::int32_t p = try_alloc(c, 60, 1, true);
    CHECK(p == 232);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.free_area(232) == 60);
    CHECK(try_alloc(c, 60, 1, false) == 100);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    // The longest populated free run is now [232, 320): 100 bits fit only over
    // unpopulated page 5, so pop_only fails and the normal path does not.
    CHECK(try_alloc(c, 100, 1, true) == -1);
    CHECK(c.find_fit(100, 1, false) >= 0);
    // Populating page 5 opens [232, 384).
    c.set_populated(5, 6);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(try_alloc(c, 140, 4, true) == 232);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 0);
}

TEST_CASE("hide() a first chunk's head and tail; area_size rejects what is not a live start") {
    using chunk_t = pcpu::basic_chunk<8>; // 64-bit blocks
    chunk_box<chunk_t> box(4);
    chunk_t& c = box.c;
    c.set_populated(0, 4);
    CHECK(c.nr_empty_pop_pages() == 4);
    c.hide(13, 250); // neither end page aligned
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.usable_begin() == 13);
    CHECK(c.usable_end() == 250);
    CHECK(c.nr_alloc() == 0); // hidden areas are not allocations
    CHECK_FALSE(c.is_empty());
    CHECK(c.free_bits() == 250 - 13);
    CHECK(c.first_free() == 13);
    CHECK(c.contig_bits() == 250 - 13);
    CHECK(c.nr_empty_pop_pages() == 2); // pages 1 and 2

    for (std::uint32_t off : {0u, 1u, 12u, 250u, 251u, 255u, 256u, 1000u}) {
        CAPTURE(off);
        CHECK(c.area_size(off) == 0);
    }
    const std::int32_t a = try_alloc(c, 20, 1, false);
    CHECK(a == 13);
    const std::int32_t b = try_alloc(c, 64, 64, false);
    CHECK(b == 64);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_alloc() == 2);
    CHECK(c.area_size(13) == 20);
    CHECK(c.area_size(14) == 0);  // interior
    CHECK(c.area_size(33) == 0);  // free (bound bit of a's end)
    CHECK(c.area_size(64) == 64);
    CHECK(c.area_size(127) == 0); // interior
    CHECK(c.area_size(12) == 0);  // hidden
    CHECK(c.nr_empty_pop_pages() == 1);

    // Fill the rest, up to the hidden tail, then empty the chunk again.
    std::vector<std::uint32_t> offs{13, 64};
    for (std::int32_t off; (off = try_alloc(c, 7, 1, false)) >= 0;) offs.push_back(static_cast<std::uint32_t>(off));
    for (std::int32_t off; (off = try_alloc(c, 1, 1, false)) >= 0;) offs.push_back(static_cast<std::uint32_t>(off));
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.free_bits() == 0);
    CHECK(c.area_size(249) != 0); // the last usable bit is a live allocation's start or interior
    for (std::uint32_t off : offs) {
        c.free_area(off);
        REQUIRE(CHECK_CHUNK_VERIFIED(c));
    }
    CHECK(c.nr_alloc() == 0);
    CHECK(c.free_bits() == 250 - 13);
    CHECK(c.contig_bits() == 250 - 13);
    CHECK(c.nr_empty_pop_pages() == 2);
}

TEST_CASE("hide() with page-aligned bounds and with nothing hidden at one end") {
    using chunk_t = pcpu::basic_chunk<7>;
    chunk_box<chunk_t> box(4);
    chunk_t& c = box.c;
    c.set_populated(0, 4);
    c.hide(64, 128);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 2);
    CHECK(try_alloc(c, 64, 1, true) == 64);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.free_bits() == 0);

    chunk_box<chunk_t> box2(4);
    box2.c.set_populated(0, 4);
    box2.c.hide(0, 100);
    REQUIRE(CHECK_CHUNK_VERIFIED(box2.c));
    CHECK(box2.c.first_free() == 0);
    CHECK(box2.c.contig_bits() == 100);
    CHECK(box2.c.area_size(100) == 0);
    CHECK(box2.c.nr_empty_pop_pages() == 3);
}

TEST_CASE("nr_empty_pop_pages is exact through populate, depopulate, alloc and free") {
    using chunk_t = pcpu::basic_chunk<8>; // 64-bit blocks
    chunk_box<chunk_t> box(8);
    chunk_t& c = box.c;
    REQUIRE(place(c, 10, 10)); // in an unpopulated page: nothing to take away
    CHECK(c.nr_empty_pop_pages() == 0);
    c.set_populated(0, 4);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_populated() == 4);
    CHECK(c.nr_empty_pop_pages() == 3); // page 0 holds [10, 20)
    REQUIRE(place(c, 100, 200)); // pages 1 .. 4, page 4 unpopulated
    CHECK(c.nr_empty_pop_pages() == 0);
    c.set_populated(4, 8);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 3); // pages 5, 6, 7
    CHECK(c.free_area(100) == 200);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 7);
    c.set_depopulated(6, 8);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 5);
    CHECK(c.nr_populated() == 6);
    CHECK(c.free_area(10) == 10);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 6);
    c.set_depopulated(0, 1);
    REQUIRE(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 5);
    REQUIRE(place(c, 0, 64)); // unpopulated page 0: still 5
    CHECK(c.nr_empty_pop_pages() == 5);
    REQUIRE(place(c, 64, 1));
    CHECK(c.nr_empty_pop_pages() == 4);
}

} // TEST_SUITE("hints")

TEST_SUITE("scan_chunk") {

// basic_scan_chunk (internal/scan_chunk.hpp): the same model runs, with the stronger
// expectation random_run() applies to it: the claim is the brute-force first fit,
// for every alignment, so no aligned request fails while a fit exists.
TEST_CASE("scan chunk: randomized against the model, exact first fit") {
    for (std::uint64_t seed : {71ull, 72ull, 73ull}) {
        CAPTURE(seed);
        CHECK(random_run<7, pcpu::basic_scan_chunk<7>>({24, seed, 3000, 3, false, false}) == 0);
        CHECK(random_run<8, pcpu::basic_scan_chunk<8>>({12, seed, 2500, 2, true, false}) == 0);
        CHECK(random_run<7, pcpu::basic_scan_chunk<7>>({16, seed, 2500, 3, false, true}) == 0);
        CHECK(random_run<8, pcpu::basic_scan_chunk<8>>({10, seed, 2500, 2, true, true}) == 0);
        CHECK(random_run<12, pcpu::basic_scan_chunk<12, 4>>({4, seed, 2000, 2, true, false}) == 0);
        CHECK(random_run<7, pcpu::basic_scan_chunk<7>>({1, seed, 1500, 2, true, false}) == 0);
    }
}

TEST_CASE("scan chunk: metadata is the bitmaps alone") {
    using scan_t = pcpu::basic_scan_chunk<12>;
    using hinted_t = pcpu::basic_chunk<12>;
    CHECK(hinted_t::meta_bytes(8) - scan_t::meta_bytes(8) == 8 * sizeof(pcpu::block_md));
    chunk_box<scan_t> box(3);
    CHECK(box.c.map_bits() == 3 * 1024);
    CHECK(box.c.contig_bits() == box.c.map_bits());
    CHECK(CHECK_CHUNK_VERIFIED(box.c));
    CHECK(box.guard_intact());
}

TEST_CASE("scan chunk: an aligned fit in the middle of a block is found") {
    // The hinted chunk looks inside a block only at its contig run and the runs at its
    // edges; the scan looks at every run.
    using chunk_t = pcpu::basic_scan_chunk<8>; // 64-bit pages
    chunk_box<chunk_t> box(2);
    chunk_t& c = box.c;
    c.set_populated(0, 2);
    // Page 0: [0, 9) used, [9, 20) free (8 aligned at 16: too short), [20, 24) used,
    // [24, 40) free (holds 8 at 32), [40, 64) used; page 1 entirely free.
    REQUIRE(place(c, 0, 9));
    REQUIRE(place(c, 20, 4));
    REQUIRE(place(c, 40, 24));
    CHECK(c.contig_bits() == 64);
    CHECK(c.find_fit(8, 16, false) == 32);
    CHECK(try_alloc(c, 8, 16, false) == 32);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    // The longest run (page 1) is untouched by that claim; taking from it rescans.
    CHECK(c.contig_bits() == 64);
    CHECK(try_alloc(c, 60, 64, false) == 64);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.contig_bits() == 11);
    // A free merges its run with both neighbours.
    CHECK(c.free_area(20) == 4);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.contig_bits() == 23); // [9, 32)
    CHECK(c.nr_empty_pop_pages() == 0);
    CHECK(c.free_area(64) == 60);
    CHECK(CHECK_CHUNK_VERIFIED(c));
    CHECK(c.nr_empty_pop_pages() == 1);
    CHECK(c.contig_bits() == 64);
}

} // TEST_SUITE("scan_chunk")
