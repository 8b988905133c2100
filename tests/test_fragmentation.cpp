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
