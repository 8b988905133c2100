// SPDX-License-Identifier: MIT
// bench/bench_frag.cpp - the worst single allocation under adversarial fragmentation
// (issue 16, ../shared/measurements/worst-case.md), and the worst free with 1, 16 and
// 256 chunks. Timed beside the counted bound of tests/test_fragmentation.cpp.
//
// frag/alloc/<unit>/<size>/<align>: every layout of bench/frag_layout.hpp for the
// request (3 hole families x 4 free orders x 3 fit locations), each restored byte for
// byte before every timed allocation (find-fit + claim, as the allocator makes them),
// the minimum of the repetitions taken per layout; worst_cycles is the worst layout.
// frag/free/small/<chunks>: every dynamic chunk filled with 8-byte objects; 1,024 of
// them, spread over all the chunks, freed (timed) and allocated back into the hole
// (untimed) in a scattered order: the free of worst-case.md's measurement, where the
// chunk lookup is what grows with the number of chunks.
// frag/free/chunk/<chunks>: one 20 KiB object per dynamic chunk, freed (timed) and
// allocated back (untimed, zeroing 20 KiB per CPU, which leaves the chunk metadata
// cold) in a scattered order: the free that empties a chunk, bitmap clearing included.
// worst_cycles is the worst object's median over the passes.
// frag/decoy/<unit>/<size>/<align>: as frag/alloc, on the decoy layout of
// bench/frag_layout.hpp (aligned requests only), with the stated bound in runs and
// words beside the measured worst (tests/test_fragmentation.cpp checks it by count).
// Cycles are TSC cycles with the bracket's own cost subtracted. --pcpu_short (CI) runs
// 2 repetitions instead of 50.
#include "frag_layout.hpp"
#include "impls.hpp"

#include <benchmark/benchmark.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace pcpu_frag;

bool short_mode = false;
unsigned reps() { return short_mode ? 2 : 50; }

#if defined(__x86_64__) || defined(__i386__)
inline std::uint64_t tsc_begin() {
    _mm_lfence();
    return __rdtsc();
}
inline std::uint64_t tsc_end() {
    unsigned aux;
    const std::uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}
#else
inline std::uint64_t tsc_begin() {
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}
inline std::uint64_t tsc_end() { return tsc_begin(); }
#endif

/// bracket() - the cost of an empty timed bracket (minimum of many).
std::uint64_t bracket() {
    static std::uint64_t b = [] {
        std::uint64_t best = ~std::uint64_t{0};
        for (int i = 0; i < 1000; ++i) {
            const std::uint64_t t0 = tsc_begin();
            const std::uint64_t t1 = tsc_end();
            best = std::min(best, t1 - t0);
        }
        return best;
    }();
    return b;
}
std::uint64_t net(std::uint64_t d) { return d > bracket() ? d - bracket() : 0; }

void BM_frag_alloc(benchmark::State& st, std::uint32_t pages, std::uint32_t size, std::uint32_t align, bool decoy) {
    const std::uint32_t bits = (size + 3) / 4, align_bits = align < 4 ? 1 : align / 4;
    std::uint64_t worst = 0;
    std::string worst_name;
    for (auto _ : st) {
        worst = 0;
        auto each = [&](auto&& f) {
            if (decoy)
                for_each_decoy_shape(pages, bits, align_bits, f);
            else
                for_each_shape(pages, bits, align_bits, f);
        };
        each([&](const shape& s) {
            chunk_storage cs(pages);
            cs.c.set_populated(0, pages);
            if (!build(s, cs.c)) {
                st.SkipWithError("layout could not be built");
                return;
            }
            cs.snapshot();
            std::uint64_t best = ~std::uint64_t{0};
            for (unsigned r = 0; r < reps(); ++r) {
                cs.restore();
                const std::uint64_t t0 = tsc_begin();
                const std::int32_t got = allocate(s, cs.c);
                const std::uint64_t t1 = tsc_end();
                benchmark::DoNotOptimize(got);
                if (got != static_cast<std::int32_t>(fit_of(s))) st.SkipWithError("the allocation missed the fit");
                best = std::min(best, net(t1 - t0));
            }
            if (best > worst) {
                worst = best;
                worst_name = std::string(family_names[static_cast<int>(s.fam)]) + " " +
                             order_names[static_cast<int>(s.ord)] + " " + where_names[static_cast<int>(s.at)];
            }
        });
    }
    st.counters["worst_cycles"] = static_cast<double>(worst);
    // The stated bound (include/pcpu/internal/chunk.hpp), which tests/test_fragmentation.cpp
    // checks by count on the same layouts: runs examined one by one (scan and refresh)
    // and words the scan reads.
    st.counters["bound_runs"] = 2.0 * chunk_t::scan_runs;
    st.counters["bound_scan_words"] = static_cast<double>((bits + bb) / pcpu::bitmap::word_bits + 2);
    st.SetLabel(worst_name);
}

/// worst_median(times) - the worst, over objects, of each object's median time.
std::uint64_t worst_median(std::vector<std::vector<std::uint64_t>>& times) {
    std::uint64_t worst = 0;
    for (auto& t : times) {
        if (t.empty()) continue;
        std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
        worst = std::max(worst, t[t.size() / 2]);
    }
    return worst;
}

/// time_frees(p, objs, size, align, atomic, worst) - free each of objs (timed) and
/// allocate it back (untimed), in a scattered order, reps() passes after one warm-up
/// pass; worst = the worst object's median. Allocating back reorders the slot lists, so
/// a layout cannot be restored exactly: each object's median is taken rather than its
/// minimum (which would hide a list walk behind the pass that found the chunk first).
/// False if an allocation back failed.
bool time_frees(pcpu_bench::pcpu_impl& p, std::vector<pcpu::handle>& objs, std::size_t size, std::size_t align,
                bool atomic, std::uint64_t& worst) {
    std::vector<std::vector<std::uint64_t>> times(objs.size());
    for (unsigned r = 0; r < reps() + 1; ++r) {
        for (std::size_t i = 0; i < objs.size(); ++i) {
            const std::size_t k = (i * 97) % objs.size();
            const std::uint64_t t0 = tsc_begin();
            p.free(objs[k]);
            const std::uint64_t t1 = tsc_end();
            if (r != 0) times[k].push_back(net(t1 - t0));
            if (!p.alloc(size, align, atomic, objs[k])) return false;
        }
    }
    worst = worst_median(times);
    return true;
}

/// free_geometry() - small units (32 KiB), so 256 chunks stay cheap.
pcpu_bench::geometry free_geometry() {
    pcpu_bench::geometry g;
    g.static_size = 16384;
    g.reserved_size = 0;
    g.dynamic_size = 16384;
    return g;
}

void BM_frag_free_small(benchmark::State& st, std::size_t nr_chunks) {
    const std::size_t obj = 8;
    std::uint64_t worst = 0;
    for (auto _ : st) {
        pcpu_bench::pcpu_impl p(2, free_geometry());
        if (!p.ok()) {
            st.SkipWithError("init failed");
            return;
        }
        // Sleeping allocations until there are nr_chunks dynamic chunks, then atomic
        // ones (which create no chunk) until every populated page is full.
        std::vector<pcpu::handle> all;
        pcpu::handle h;
        while (p.alloc().stats().nr_chunks < nr_chunks + 1) {
            if (!p.alloc(obj, 4, false, h)) {
                st.SkipWithError("alloc failed");
                return;
            }
            all.push_back(h);
        }
        while (p.alloc(obj, 4, true, h)) all.push_back(h);
        std::vector<pcpu::handle> objs;
        const std::size_t picks = std::min<std::size_t>(1024, all.size());
        for (std::size_t i = 0; i < picks; ++i) objs.push_back(all[i * all.size() / picks]);
        if (!time_frees(p, objs, obj, 4, true, worst)) return st.SkipWithError("alloc back failed");
    }
    st.counters["worst_cycles"] = static_cast<double>(worst);
}

void BM_frag_free_chunk(benchmark::State& st, std::size_t nr_chunks) {
    // Each object takes more than half a chunk, so every object has a chunk of its own.
    const pcpu_bench::geometry g = free_geometry();
    const std::size_t obj = 20 * 1024;
    std::uint64_t worst = 0;
    for (auto _ : st) {
        pcpu_bench::pcpu_impl p(2, g);
        if (!p.ok()) {
            st.SkipWithError("init failed");
            return;
        }
        std::vector<pcpu::handle> objs;
        while (p.alloc().stats().nr_chunks < nr_chunks + 1) {
            pcpu::handle h;
            if (!p.alloc(obj, 8, false, h)) {
                st.SkipWithError("alloc failed");
                return;
            }
            objs.push_back(h);
        }
        if (!time_frees(p, objs, obj, 8, false, worst)) return st.SkipWithError("alloc back failed");
    }
    st.counters["worst_cycles"] = static_cast<double>(worst);
}

} // namespace

int main(int argc, char** argv) {
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--pcpu_short") == 0)
            short_mode = true;
        else
            rest.push_back(argv[i]);
    }
    int n = static_cast<int>(rest.size());
    struct cell {
        std::uint32_t size, align;
    };
    const cell cells[] = {{8, 4},  {8, 8},   {16, 4},  {64, 4},   {256, 4},
                          {8, 64}, {16, 64}, {16, 256}, {8, 4096}, {16, 4096}};
    const cell decoy_cells[] = {{8, 8}, {16, 8}, {16, 64}, {64, 64}, {256, 64}, {16, 256}, {256, 256}};
    for (std::uint32_t pages : {16u, 256u}) {
        for (const cell& c : cells) {
            const std::string name = "frag/alloc/" + std::string(pages == 16 ? "64K" : "1M") + "/" +
                                     std::to_string(c.size) + "/" + std::to_string(c.align);
            benchmark::RegisterBenchmark(name.c_str(), BM_frag_alloc, pages, c.size, c.align, false)->Iterations(1);
        }
        // The decoy layout: aligned requests past a run one bit too short and a block
        // of 1-bit holes, the adversarial case of the word search's bound.
        for (const cell& c : decoy_cells) {
            const std::string name = "frag/decoy/" + std::string(pages == 16 ? "64K" : "1M") + "/" +
                                     std::to_string(c.size) + "/" + std::to_string(c.align);
            benchmark::RegisterBenchmark(name.c_str(), BM_frag_alloc, pages, c.size, c.align, true)->Iterations(1);
        }
    }
    for (std::size_t chunks : {std::size_t{1}, std::size_t{16}, std::size_t{256}}) {
        const std::string cn = std::to_string(chunks);
        benchmark::RegisterBenchmark(("frag/free/small/" + cn).c_str(), BM_frag_free_small, chunks)->Iterations(1);
        benchmark::RegisterBenchmark(("frag/free/chunk/" + cn).c_str(), BM_frag_free_chunk, chunks)->Iterations(1);
    }
    benchmark::Initialize(&n, rest.data());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
