// SPDX-License-Identifier: MIT
// tests/test_fragmentation.cpp - adversarial fragmentation (issue 16), counted, never
// timed: the layouts of ../shared/measurements/worst-case.md built in one chunk, and
// the work one allocation then does, read from the find-fit debug counters
// (pcpu/debug/find_fit_stats.hpp; this binary is built with PCPU_FIND_FIT_STATS=1),
// checked against the bound stated in docs/architecture.md; and the chunks free()'s
// address lookup visits with 1, 16 and 256 chunks (pcpu/chunk_index.hpp).
//
// The layouts. Block 0 holds one whole-block object; every other block is filled,
// then holes are freed:
//   F1o / F1e - 1-bit holes at every odd / even offset;
//   F2        - runs at offsets = 1 mod align (A = align in bits), as long as they can
//               be without holding the aligned request and without being longer than
//               the fit: min(A - 1, bits - 1) bits (A = 1: bits - 1 bits, every bits
//               bits). Longer runs would make one of them the block's contig run, and
//               find-fit trusts the contig run for aligned requests (as the kernel's
//               does): the fit would then be out of reach, not slow to reach.
// The only fit, exactly the request's size, lies in block 1, the middle or the last
// block, at the last aligned offset that keeps the block's last bit allocated. Holes
// are freed ascending then the fit (asc), descending then the fit (desc), the fit
// then ascending (fasc) or descending (fdesc); finally block 0's object is freed and
// a whole-block object allocated back there (it refreshes the chunk hints). Holes lie
// in every block at 64 KiB units (16 blocks) and in blocks 1, 2, the middle two and
// the last two at 1 MiB units (256 blocks; the others stay full).
#include "support/chunk_model.hpp"
#include "support/sim_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/chunk.hpp>
#include <pcpu/chunk_index.hpp>
#include <pcpu/debug/find_fit_stats.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#if !PCPU_FIND_FIT_STATS
#error "tests/test_fragmentation.cpp counts find-fit work: build it with -DPCPU_FIND_FIT_STATS=1"
#endif

namespace {

using chunk_t = pcpu::basic_chunk<12>; // 1024-bit blocks: Linux's geometry
constexpr std::uint32_t bb = chunk_t::block_bits;

enum class family { f1o, f1e, f2 };
enum class order { asc, desc, fasc, fdesc };
enum class where { block1, middle, last };
const char* const family_names[] = {"F1o", "F1e", "F2"};
const char* const order_names[] = {"asc", "desc", "fasc", "fdesc"};
const char* const where_names[] = {"block 1", "middle", "last"};

struct shape {
    std::uint32_t pages;
    family fam;
    order ord;
    where at;
    std::uint32_t bits, align; ///< the request, in bits
};

/// holes_in(s, block, fit_block, fit_off) - the hole runs [start, end) of one block,
/// block relative, ascending.
std::vector<std::pair<std::uint32_t, std::uint32_t>> holes_in(const shape& s, std::uint32_t block,
                                                            std::uint32_t fit_block, std::uint32_t fit_off) {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
    std::uint32_t first = 0, len = 1, period = 2;
    if (s.fam == family::f1o) first = 1;
    if (s.fam == family::f2) {
        first = 1;
        if (s.align >= 2) {
            len = std::min(s.align - 1, s.bits - 1);
            period = s.align;
        } else {
            len = s.bits - 1;
            period = s.bits;
        }
    }
    for (std::uint32_t p = first; p + len <= bb; p += period) {
        if (block == fit_block) {
            // Keep the fit's neighbours and the block's last bit allocated.
            if (p + len + 1 > bb) continue;
            if (p < fit_off + s.bits + 1 && fit_off < p + len + 1) continue;
        }
        out.emplace_back(p, p + len);
    }
    return out;
}

std::uint32_t fit_block_of(const shape& s) {
    return s.at == where::block1 ? 1 : s.at == where::middle ? s.pages / 2 : s.pages - 1;
}
bool has_holes(const shape& s, std::uint32_t b, std::uint32_t fit_block) {
    if (b == 0) return false;
    if (s.pages <= 16) return true;
    const std::uint32_t mid = s.pages / 2;
    return b == 1 || b == 2 || b == mid - 1 || b == mid || b >= s.pages - 2 || b == fit_block;
}

/// chunk_verified(c) - c.verify(), reported readably on failure.
bool chunk_verified(const chunk_t& c) {
    const pcpu::chunk_verify_report r = c.verify();
    CHECK_MESSAGE(r.ok, "verify: " << (r.what ? r.what : "") << " index=" << r.index << " expected=" << r.expected
                                   << " actual=" << r.actual);
    return r.ok;
}

/// work - what one allocation cost, from the counters.
struct work {
    std::uint64_t scan_runs = 0;    ///< runs the bitmap scan examined
    std::uint64_t refresh_runs = 0; ///< runs block hint refreshes walked
    std::uint64_t blocks = 0;       ///< block metadata read: fit walk + chunk refresh walk
    std::uint64_t runs() const { return scan_runs + refresh_runs; }
};

/// build_and_measure(s, w) - build the layout, make the one allocation, check it lands
/// on the fit and that verify() holds before and after. False on a failed check.
bool build_and_measure(const shape& s, work& w) {
    pcpu_test::chunk_box<chunk_t> box(s.pages);
    chunk_t& c = box.c;
    c.set_populated(0, s.pages);
    const std::uint32_t fit_block = fit_block_of(s);
    const std::uint32_t fit_off = ((bb - 1 - s.bits) / s.align) * s.align;
    const std::uint32_t fit = fit_block * bb + fit_off;

    bool placed = true;
    auto place = [&](std::uint32_t at, std::uint32_t len) {
        placed = placed && c.alloc_area(len, 1, at) == static_cast<std::int32_t>(at);
    };
    // Fill: block 0 whole, then piece by piece (holes and the fit as objects of their
    // own, what lies between as one object), full blocks in one object per stretch.
    place(0, bb);
    std::vector<std::uint32_t> holes; // hole starts, chunk absolute, ascending
    std::uint32_t pos = bb;
    for (std::uint32_t b = 1; b < s.pages; ++b) {
        if (!has_holes(s, b, fit_block)) continue;
        const std::uint32_t base = b * bb;
        if (base > pos) place(pos, base - pos);
        pos = base;
        auto pieces = holes_in(s, b, fit_block, fit_off);
        if (b == fit_block) {
            pieces.emplace_back(fit_off, fit_off + s.bits);
            std::sort(pieces.begin(), pieces.end());
        }
        for (const auto& pc : pieces) {
            if (base + pc.first > pos) place(pos, base + pc.first - pos);
            place(base + pc.first, pc.second - pc.first);
            if (base + pc.first != fit) holes.push_back(base + pc.first);
            pos = base + pc.second;
        }
    }
    if (s.pages * bb > pos) place(pos, s.pages * bb - pos);
    REQUIRE(placed);
    if (!chunk_verified(c)) return false;

    std::vector<std::uint32_t> frees = holes;
    if (s.ord == order::desc || s.ord == order::fdesc) std::reverse(frees.begin(), frees.end());
    if (s.ord == order::fasc || s.ord == order::fdesc)
        frees.insert(frees.begin(), fit);
    else
        frees.push_back(fit);
    for (std::uint32_t off : frees) c.free_area(off);
    c.free_area(0);
    const std::int32_t st0 = c.find_fit(bb, bb, false);
    REQUIRE(st0 >= 0);
    REQUIRE(c.alloc_area(bb, bb, static_cast<std::uint32_t>(st0)) == 0);
    if (!chunk_verified(c)) return false;

    auto& k = pcpu::debug::find_fit_counters;
    k = {};
    const std::int32_t st = c.find_fit(s.bits, s.align, false);
    REQUIRE(st >= 0);
    const std::int32_t got = c.alloc_area(s.bits, s.align, static_cast<std::uint32_t>(st));
    CHECK(got == static_cast<std::int32_t>(fit));
    w.scan_runs = k.runs_examined;
    w.refresh_runs = k.refresh_runs;
    w.blocks = k.blocks_visited + k.refresh_blocks;
    return chunk_verified(c);
}

/// The stated bound (docs/architecture.md, "Bounded worst case") for these layouts,
/// where every run but the fit is shorter than the request: the bitmap scan reads one
/// run (max_before < bits sends it to the block's contig run, the fit) and the refresh
/// after the claim reads one (the runs left are bounded by max_before and max_after,
/// and the first naturally aligned run that long ends the walk).
constexpr std::uint64_t scan_run_bound = 1;
constexpr std::uint64_t refresh_run_bound = 1;

} // namespace

TEST_SUITE("frag") {

TEST_CASE("adversarial hole families: runs read per allocation stay within the stated bound") {
    const bool report = std::getenv("PCPU_FRAG_REPORT") != nullptr;
    const std::uint32_t sizes[] = {2, 3, 4, 16, 64};       // 8, 12, 16, 64, 256 B
    const std::uint32_t aligns[] = {1, 2, 16, 64, 1024};   // 4, 8, 64, 256, 4096 B
    for (std::uint32_t pages : {16u, 256u}) {
        for (std::uint32_t align : aligns) {
            std::uint64_t worst = 0;
            shape worst_shape{};
            for (std::uint32_t bits : sizes) {
                for (int f = 0; f < 3; ++f) {
                    for (int o = 0; o < 4; ++o) {
                        for (int at = 0; at < 3; ++at) {
                            const shape s{pages, static_cast<family>(f), static_cast<order>(o), static_cast<where>(at),
                                          bits, align};
                            CAPTURE(pages);
                            CAPTURE(bits);
                            CAPTURE(align);
                            INFO(std::string(family_names[f]) << " " << order_names[o] << ", fit in " << where_names[at]);
                            work w;
                            if (!build_and_measure(s, w)) return;
                            INFO("scan runs " << w.scan_runs << ", refresh runs " << w.refresh_runs);
                            CHECK(w.scan_runs <= scan_run_bound);
                            CHECK(w.refresh_runs <= refresh_run_bound);
                            // Metadata: the fit walk and one chunk refresh, each at most every block.
                            CHECK(w.blocks <= 2u * pages);
                            if (w.runs() > worst) {
                                worst = w.runs();
                                worst_shape = s;
                            }
                        }
                    }
                }
            }
            if (report)
                std::printf("%4u pages, align %4u bits: worst %llu runs (bound %llu) at %u bits %s %s %s\n", pages,
                            align, static_cast<unsigned long long>(worst),
                            static_cast<unsigned long long>(scan_run_bound + refresh_run_bound), worst_shape.bits,
                            family_names[static_cast<int>(worst_shape.fam)], order_names[static_cast<int>(worst_shape.ord)],
                            where_names[static_cast<int>(worst_shape.at)]);
        }
    }
}

TEST_CASE("the AVL bound of the chunk index") {
    CHECK(pcpu::avl_max_height(0) == 0);
    CHECK(pcpu::avl_max_height(1) == 1);
    CHECK(pcpu::avl_max_height(2) == 2);
    CHECK(pcpu::avl_max_height(16) == 5);
    CHECK(pcpu::avl_max_height(256) == 11);
}

TEST_CASE("free's chunk lookup visits at most the index's bound with 1, 16 and 256 chunks") {
    using sim = pcpu_test::sim_platform<12, 8>;
    using alloc_t = pcpu::allocator<sim, pcpu::lazy_mapped>;
    constexpr std::size_t unit = 64 * 1024;
    for (std::size_t nr_chunks : {std::size_t{1}, std::size_t{16}, std::size_t{256}}) {
        CAPTURE(nr_chunks);
        pcpu_test::static_setup<alloc_t> s(2, unit, 16 * 1024, 0);
        s.alloc.platform().set_recording(false);
        REQUIRE(s.init() == pcpu::errc::ok);
        auto& a = s.alloc;
        // More than half a unit each: one object per dynamic chunk (the first chunk's
        // dynamic area may take the first one).
        std::vector<pcpu::handle> objs;
        while (a.stats().nr_chunks < nr_chunks + 1) {
            const pcpu::result<pcpu::handle> r = a.alloc(unit / 2 + 4096, 8, pcpu::ctx::full);
            REQUIRE(r.ok());
            objs.push_back(r.value());
        }
        CHECK_VERIFIED(a);
        // Scattered (a stride of 97, prime and not a factor of the count): no free is
        // served by the last chunk found, and none finds its chunk at the head of a
        // list. Every one is an index lookup.
        REQUIRE(objs.size() % 97 != 0);
        std::uint64_t worst = 0;
        for (std::size_t i = 0; i < objs.size(); ++i) {
            pcpu::debug::find_fit_counters = {};
            REQUIRE(a.free(objs[(i * 97) % objs.size()]) == pcpu::errc::ok);
            worst = std::max<std::uint64_t>(worst, pcpu::debug::find_fit_counters.chunk_lookup_probes);
            if (i % 16 == 0) CHECK_VERIFIED(a);
        }
        CHECK_VERIFIED(a);
        INFO("worst lookup " << worst << " chunks");
        CHECK(worst >= 1);
        CHECK(worst <= pcpu::avl_max_height(nr_chunks));
    }
}

} // TEST_SUITE
