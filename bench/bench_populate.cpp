// SPDX-License-Identifier: MIT
// bench/bench_populate.cpp - population by several threads at once (issue 12): one
// lazy_mapped allocator on the real host platform, each allocation on pages no earlier
// one touched, so each populates for real (alloc_pages, then map: mprotect and a
// prefault of every CPU's pages) and every unit / size allocations a chunk is created.
//
// populate_threads/<impl>/size:<bytes>/threads:<n>: n threads, started together, each
// allocate per_thread areas of `size` bytes (aligned to the page). Timed: from the start
// to the last thread's end; frees and teardown are not. ns_per_alloc is wall time per
// allocation, so throughput with two threads over one thread is the one-thread figure
// over the two-thread one. <impl>: pcpu, the host platform with its population event
// (allocations populate outside the sleeping lock); pcpu_serial, the same platform with
// the event hidden (population under the sleeping lock, as Linux does it); _noguard,
// either without guard pages (host.hpp: no mprotect, whose mmap write lock serialises
// populations inside the kernel); _latency, either with map() waiting 50 us first
// (latency_host below).
//
// A binary of its own: a second allocator instantiation in pcpu_bench changes the
// compiler's inlining of the chunk helpers the trace rows measure.
#include <pcpu/allocator.hpp>
#include <pcpu/platform/host.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

bool g_short = false;   // CI: fewer allocations
unsigned g_cpus = 2;    // units per chunk
int g_errors = 0;

/// serial_host - the host platform without its population event (the deleted members
/// hide the base's from platform_traits).
struct serial_host : pcpu::host_platform {
    std::uint32_t populate_ticket() = delete;
    void populate_wait(std::uint32_t, context) = delete;
    void populate_wake() = delete;
};
/// latency_host<Base> - Base whose map() first waits 50 us without using a CPU: a
/// platform whose population waits on something else (a hypervisor's fault handler,
/// a DMA engine zeroing the pages, a remote memory pool). It separates what pcpu
/// serialises from what this machine's page-fault path serialises.
template <class Base>
struct latency_host : Base {
    bool map(std::uintptr_t addr, const pcpu::page_ref* pages, std::size_t nr, typename Base::context c) noexcept {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        return Base::map(addr, pages, nr, c);
    }
};

static_assert(pcpu::platform_traits<pcpu::host_platform>::parallel_population &&
                  !pcpu::platform_traits<serial_host>::parallel_population,
              "bench: the two population modes");

using clk = std::chrono::steady_clock;

void fail(benchmark::State& st, const char* what) {
    ++g_errors;
    st.SkipWithError(what);
}

template <class Host>
void BM_populate_threads(benchmark::State& st, unsigned threads, std::size_t size, bool guard) {
    using alloc_type = pcpu::allocator<Host, pcpu::lazy_mapped>;
    constexpr std::size_t unit = std::size_t{1} << 20, first_dyn = 4096, page = 4096;
    const std::size_t per_thread = g_short ? 32 : 512;
    const unsigned cpus = g_cpus;
    std::vector<unsigned char> units(cpus * unit + page);
    const std::size_t meta_bytes = alloc_type::first_chunk_meta_bytes(unit, unit - first_dyn, 0);
    std::vector<unsigned char> meta(meta_bytes + alloc_type::meta_align);
    auto align_up = [](unsigned char* p, std::size_t a) {
        return p + (a - reinterpret_cast<std::uintptr_t>(p) % a) % a;
    };
    for (auto _ : st) {
        auto a = std::make_unique<alloc_type>();
        if (!a->platform().set_guard_pages(guard)) return fail(st, "set_guard_pages refused");
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = cpus;
        cfg.units = align_up(units.data(), page);
        cfg.unit_size = unit;
        cfg.static_size = unit - first_dyn;
        cfg.meta = align_up(meta.data(), alloc_type::meta_align);
        cfg.meta_size = meta_bytes;
        if (a->init(cfg) != pcpu::errc::ok) return fail(st, "init failed");
        // The first chunk's one dynamic page, so that every area lands on fresh pages.
        if (!a->alloc(first_dyn, 8, pcpu::ctx::full).ok()) return fail(st, "alloc failed");
        std::vector<std::vector<pcpu::handle>> got(threads);
        std::atomic<unsigned> ready{0};
        std::atomic<bool> go{false}, failed{false};
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                got[t].reserve(per_thread);
                ready.fetch_add(1);
                while (!go.load(std::memory_order_acquire)) {
                }
                for (std::size_t i = 0; i < per_thread; ++i) {
                    const auto r = a->alloc(size, page, pcpu::ctx::full);
                    if (!r.ok()) {
                        failed.store(true);
                        return;
                    }
                    got[t].push_back(r.value());
                }
            });
        while (ready.load() != threads) {
        }
        const auto t0 = clk::now();
        go.store(true, std::memory_order_release);
        for (auto& t : ts) t.join();
        st.SetIterationTime(std::chrono::duration<double>(clk::now() - t0).count());
        if (failed.load()) return fail(st, "alloc failed");
        for (auto& v : got)
            for (pcpu::handle h : v) (void)a->free(h);
        a->shutdown();
    }
    st.counters["ns_per_alloc"] = benchmark::Counter(static_cast<double>(threads * per_thread),
                                                     benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}

template <class Host>
void reg(const char* impl, std::size_t size, unsigned threads, bool guard) {
    const std::string name = std::string("populate_threads/") + impl + (guard ? "" : "_noguard") +
                             "/size:" + std::to_string(size) + "/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(name.c_str(),
                                 [=](benchmark::State& st) { BM_populate_threads<Host>(st, threads, size, guard); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
}

} // namespace

int main(int argc, char** argv) {
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--pcpu_short") g_short = true;
        else if (a.rfind("--pcpu_cpus=", 0) == 0) g_cpus = static_cast<unsigned>(std::stoul(a.substr(12)));
        else rest.push_back(argv[i]);
    }
    if (g_cpus == 0 || g_cpus > pcpu::host_platform::max_cpus) {
        std::fprintf(stderr, "pcpu_bench_populate: --pcpu_cpus out of range\n");
        return 2;
    }
    for (const bool guard : {true, false})
        for (const std::size_t size : {std::size_t{4096}, std::size_t{16384}})
            for (const unsigned threads : {1u, 2u}) {
                reg<pcpu::host_platform>("pcpu", size, threads, guard);
                reg<serial_host>("pcpu_serial", size, threads, guard);
            }
    for (const unsigned threads : {1u, 2u}) {
        reg<latency_host<pcpu::host_platform>>("pcpu_latency", 4096, threads, true);
        reg<latency_host<serial_host>>("pcpu_serial_latency", 4096, threads, true);
    }
    int n = static_cast<int>(rest.size());
    benchmark::Initialize(&n, rest.data());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return g_errors == 0 ? 0 : 1;
}
