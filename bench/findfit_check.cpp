// SPDX-License-Identifier: MIT
// bench/findfit_check.cpp - "find-fit never scans a block whose hints say it cannot
// fit", measured. Built with PCPU_FIND_FIT_STATS=1 (pcpu/debug/find_fit_stats.hpp), it
// replays the recorded trace, the mixed synthetic trace and a fragmented chunk with
// aligned and unaligned requests, prints what find-fit and the bitmap scans did, and
// fails if any scan examined a run in a block whose hints rule the request out, or if a
// scan came back empty after find-fit promised a fit. Deterministic: a test, not timed.
#include "impls.hpp"
#include "workload.hpp"

#include <pcpu/debug/find_fit_stats.hpp>

#include <cstdio>
#include <vector>

namespace {

using namespace pcpu_bench;
using pcpu::debug::find_fit_counters;

struct result {
    const char* name;
    pcpu::debug::find_fit_stats s;
    bool verified;
};

template <class F>
result run(const char* name, F&& body) {
    find_fit_counters = {};
    pcpu_impl impl(2);
    const bool ok = impl.ok() && body(impl);
    const bool verified = ok && impl.alloc().verify().ok;
    return {name, find_fit_counters, verified};
}

bool replay(pcpu_impl& impl, const trace& t) {
    std::vector<pcpu::handle> slots(t.nr_slots);
    for (const op& o : t.ops) {
        if (o.alloc) {
            if (!impl.alloc(o.size, o.align, o.atomic, slots[o.slot])) return false;
        } else {
            impl.free(slots[o.slot]);
        }
        impl.balance_if_requested();
    }
    return true;
}

/// fragmented(impl, size, align) - 16384 four-byte objects, every other one freed, then
/// 2000 alloc/free pairs of (size, align), each followed by an atomic one.
bool fragmented(pcpu_impl& impl, std::size_t size, std::size_t align) {
    std::vector<pcpu::handle> keep(16384);
    for (auto& h : keep)
        if (!impl.alloc(4, 4, false, h)) return false;
    for (std::size_t i = 0; i < keep.size(); i += 2) impl.free(keep[i]);
    impl.balance_if_requested();
    for (int i = 0; i < 2000; ++i) {
        pcpu::handle h;
        if (!impl.alloc(size, align, false, h)) return false;
        impl.free(h);
        if (impl.alloc(size, align, true, h)) impl.free(h);
        impl.balance_if_requested();
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    const trace real = load_trace(argc > 1 ? argv[1] : PCPU_BENCH_TRACE);
    if (real.ops.empty()) {
        std::fprintf(stderr, "findfit_check: cannot read the trace\n");
        return 2;
    }
    const trace mixed = mixed_trace(real, 20000, 10, 2024);
    std::vector<result> results;
    results.push_back(run("trace replay", [&](pcpu_impl& i) { return replay(i, real); }));
    results.push_back(run("mixed synthetic", [&](pcpu_impl& i) { return replay(i, mixed); }));
    static constexpr std::size_t sizes[] = {4, 8, 64, 256, 1024, 4096};
    static constexpr std::size_t aligns[] = {4, 64};
    for (const std::size_t size : sizes)
        for (const std::size_t align : aligns) {
            static char names[64][48];
            static int k = 0;
            std::snprintf(names[k], sizeof names[k], "fragmented %zu B align %zu", size, align);
            const char* name = names[k++];
            results.push_back(run(name, [=](pcpu_impl& i) { return fragmented(i, size, align); }));
        }

    std::printf("%-28s %10s %10s %10s %10s %10s %10s %12s %9s\n", "workload", "find_fit", "chunk_rej",
                "blocks", "scans", "runs", "words", "hopeless_blk", "failed");
    int bad = 0;
    for (const result& r : results) {
        std::printf("%-28s %10llu %10llu %10llu %10llu %10llu %10llu %12llu %9llu%s\n", r.name,
                    static_cast<unsigned long long>(r.s.find_fit_calls),
                    static_cast<unsigned long long>(r.s.chunk_rejects),
                    static_cast<unsigned long long>(r.s.blocks_visited), static_cast<unsigned long long>(r.s.scans),
                    static_cast<unsigned long long>(r.s.runs_examined),
                    static_cast<unsigned long long>(r.s.words_scanned),
                    static_cast<unsigned long long>(r.s.hopeless_blocks_scanned),
                    static_cast<unsigned long long>(r.s.failed_scans), r.verified ? "" : "  (FAILED or verify broken)");
        if (!r.verified || r.s.hopeless_blocks_scanned != 0 || r.s.failed_scans != 0) ++bad;
    }
    std::printf("%s\n", bad == 0 ? "find-fit scanned no block whose hints rule the request out"
                                 : "FAILED: see the rows above");
    return bad == 0 ? 0 : 1;
}
