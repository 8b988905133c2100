// SPDX-License-Identifier: MIT
// tests/test_fragmentation.cpp - adversarial fragmentation (issue 16), counted, never
// timed: the layouts of ../shared/measurements/worst-case.md built in one chunk, and
// the work one allocation then does, read from the find-fit debug counters
// (pcpu/debug/find_fit_stats.hpp; this binary is built with PCPU_FIND_FIT_STATS=1),
// checked against the bound stated in docs/architecture.md; and the chunks free()'s
// address lookup visits with 1, 16 and 256 chunks (pcpu/internal/chunk_index.hpp).
//
// The layouts (F1o/F1e/F2, four free orders, three fit locations) are described and
// built in bench/frag_layout.hpp, shared with the timed benchmark bench/bench_frag.cpp.
#include "../bench/frag_layout.hpp"
#include "support/sim_platform.hpp"
#include "support/static_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/internal/chunk.hpp>
#include <pcpu/internal/chunk_index.hpp>
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

using namespace pcpu_frag;

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
    chunk_storage st(s.pages);
    chunk_t& c = st.c;
    c.set_populated(0, s.pages);
    REQUIRE(build(s, c));
    if (!chunk_verified(c)) return false;
    auto& k = pcpu::debug::find_fit_counters;
    k = {};
    CHECK(allocate(s, c) == static_cast<std::int32_t>(fit_of(s)));
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
                for_each_shape(pages, bits, align, [&](const shape& s) {
                    CAPTURE(pages);
                    CAPTURE(bits);
                    CAPTURE(align);
                    INFO(std::string(family_names[static_cast<int>(s.fam)]) << " " << order_names[static_cast<int>(s.ord)]
                                                                            << ", fit in " << where_names[static_cast<int>(s.at)]);
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
                });
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

TEST_CASE("aligned requests past a decoy and a block of 1-bit holes: the scan and the refresh stay within the stated bound") {
    // The bound stated in include/pcpu/internal/chunk.hpp: the scan examines at most
    // scan_runs runs one by one and reads at most (bits + block_bits) / word_bits + 2
    // words of its window; the refresh after the claim walks at most scan_runs runs
    // before its own word search. Run by run (the kernel's pcpu_find_zero_area) this
    // layout costs a run per hole: about block_bits / 2.
    const bool report = std::getenv("PCPU_FRAG_REPORT") != nullptr;
    const std::uint32_t sizes[] = {2, 3, 4, 16, 64};   // 8, 12, 16, 64, 256 B
    const std::uint32_t aligns[] = {2, 16, 64};        // 8, 64, 256 B
    constexpr std::uint64_t w = pcpu::bitmap::word_bits;
    for (std::uint32_t pages : {16u, 256u}) {
        for (std::uint32_t align : aligns) {
            for (std::uint32_t bits : sizes) {
                const std::uint64_t word_bound = (bits + bb) / w + 2;
                std::uint64_t worst_runs = 0, worst_words = 0, worst_refresh = 0;
                for_each_decoy_shape(pages, bits, align, [&](const shape& s) {
                    CAPTURE(pages);
                    CAPTURE(bits);
                    CAPTURE(align);
                    INFO(order_names[static_cast<int>(s.ord)] << ", fit in " << where_names[static_cast<int>(s.at)]);
                    chunk_storage st(s.pages);
                    chunk_t& c = st.c;
                    c.set_populated(0, s.pages);
                    REQUIRE(build(s, c));
                    if (!chunk_verified(c)) return;
                    auto& k = pcpu::debug::find_fit_counters;
                    k = {};
                    CHECK(allocate(s, c) == static_cast<std::int32_t>(fit_of(s)));
                    if (!chunk_verified(c)) return;
                    INFO("scan runs " << k.runs_examined << ", words " << k.words_scanned << ", refresh runs "
                                      << k.refresh_runs);
#if PCPU_FIT_WORD_SEARCH
                    CHECK(k.runs_examined <= chunk_t::scan_runs);
                    CHECK(k.words_scanned <= word_bound);
                    CHECK(k.refresh_runs <= chunk_t::scan_runs);
#else
                    // Run by run (config.hpp): the window's runs, at most (bits + B) / 2 + 1.
                    CHECK(k.runs_examined <= (bits + bb) / 2 + 1);
#endif
                    CHECK(k.blocks_visited + k.refresh_blocks <= 2u * pages);
                    worst_runs = std::max<std::uint64_t>(worst_runs, k.runs_examined);
                    worst_words = std::max<std::uint64_t>(worst_words, k.words_scanned);
                    worst_refresh = std::max<std::uint64_t>(worst_refresh, k.refresh_runs);
                });
                if (report)
                    std::printf("decoy %3u pages, %2u bits at align %2u: scan %llu runs (bound %u) + %llu words (bound %llu), "
                                "refresh %llu runs (bound %u)\n",
                                pages, bits, align, static_cast<unsigned long long>(worst_runs), chunk_t::scan_runs,
                                static_cast<unsigned long long>(worst_words), static_cast<unsigned long long>(word_bound),
                                static_cast<unsigned long long>(worst_refresh), chunk_t::scan_runs);
            }
        }
    }
}

TEST_CASE("alloc_area claims the first aligned fit a bit-by-bit search names, in random layouts") {
    // Random objects and frees in a 4-page chunk, then requests of every size class
    // and alignment from random starts: alloc_area() must claim the first aligned fit
    // of its window, which a bit-by-bit search names.
    std::uint64_t seed = 12345;
    auto next = [&seed](std::uint32_t n) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<std::uint32_t>((seed >> 33) % n);
    };
    const std::uint32_t pages = 4;
    std::uint64_t word_searches = 0;
    for (int layout = 0; layout < 40; ++layout) {
        chunk_storage st(pages);
        chunk_t& c = st.c;
        c.set_populated(0, pages);
        // Small objects, packed, then about half of them freed: holes of every length.
        std::vector<std::int32_t> objs;
        for (;;) {
            const std::uint32_t len = 1 + next(layout % 2 == 0 ? 4 : 40);
            const std::int32_t st0 = c.find_fit(len, 1, false);
            if (st0 < 0) break;
            const std::int32_t off = c.alloc_area(len, 1, static_cast<std::uint32_t>(st0));
            REQUIRE(off >= 0);
            objs.push_back(off);
            if (objs.size() % 64 == 0) REQUIRE(chunk_verified(c));
        }
        for (std::int32_t off : objs)
            if (next(2) == 0) c.free_area(static_cast<std::uint32_t>(off));
        REQUIRE(chunk_verified(c));
        st.snapshot();
        for (int q = 0; q < 60; ++q) {
            const std::uint32_t bits = 1 + next(q % 3 == 0 ? 200 : 24);
            const std::uint32_t align = 1u << next(8);
            const std::uint32_t start = next(c.map_bits());
            const std::uint32_t end = std::min<std::uint32_t>(c.map_bits(), start + bits + bb);
            // The reference: the first aligned p >= start with [p, p + bits) clear.
            std::int32_t want = -1;
            for (std::uint32_t p = pcpu::align_up(start, align); p + bits <= end; p += align) {
                if (pcpu::bitmap::all_clear(c.alloc_map(), p, p + bits)) {
                    want = static_cast<std::int32_t>(p);
                    break;
                }
            }
            CAPTURE(layout);
            CAPTURE(bits);
            CAPTURE(align);
            CAPTURE(start);
            pcpu::debug::find_fit_counters = {};
            CHECK(c.alloc_area(bits, align, start) == want);
            word_searches += pcpu::debug::find_fit_counters.word_searches;
            REQUIRE(chunk_verified(c));
            st.restore();
        }
    }
    // The layouts are fragmented enough that most requests go on by words (none
    // where the word search is compiled out: the run-by-run scan is what is checked).
#if PCPU_FIT_WORD_SEARCH
    CHECK(word_searches > 1000);
#else
    CHECK(word_searches == 0);
#endif
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
        REQUIRE_VERIFIED(a);
        // Scattered (a stride of 97, prime and not a factor of the count): no free is
        // served by the last chunk found, and none finds its chunk at the head of a
        // list. Every one is an index lookup.
        REQUIRE(objs.size() % 97 != 0);
        std::uint64_t worst = 0;
        for (std::size_t i = 0; i < objs.size(); ++i) {
            pcpu::debug::find_fit_counters = {};
            REQUIRE(a.free(objs[(i * 97) % objs.size()]) == pcpu::errc::ok);
            worst = std::max<std::uint64_t>(worst, pcpu::debug::find_fit_counters.chunk_lookup_probes);
            if (i % 16 == 0) REQUIRE_VERIFIED(a);
        }
        REQUIRE_VERIFIED(a);
        INFO("worst lookup " << worst << " chunks");
        CHECK(worst >= 1);
        CHECK(worst <= pcpu::avl_max_height(nr_chunks));
    }
}

} // TEST_SUITE
