// SPDX-License-Identifier: MIT
// examples/per_core_stats.cpp - the README's demo: per-core statistics.
//
// One thread per CPU, pinned to it (sched_setaffinity), counts synthetic events:
//   - a pcpu::counter (the kernel's percpu_counter) of all events,
//   - a per-CPU event count and a per-CPU latency histogram (alloc_percpu),
//   - a static per-CPU minimum latency (PCPU_DEFINE, starting at UINT32_MAX on every CPU),
// all with this-CPU operations: no shared cache line is written on the hot path. At
// the end it prints a per-core table and the totals, checks the totals against the
// number of events the threads generated, and exits non-zero on any mismatch.
//
// Usage: per_core_stats [--events N] [--simulate CPUS]
//   --events N       events per thread (default 500000)
//   --simulate CPUS  do not pin: simulate CPUS logical CPUs, one thread each
// If pinning is impossible (a restricted container, a single allowed CPU cannot be
// left...), the demo falls back to the same simulation with one logical CPU per
// allowed CPU (at least 2), and says so: each thread then *is* a logical CPU, and
// this_cpu() returns the thread's index instead of sched_getcpu().
//
// The platform is pcpu::host_platform (pcpu/platform/host.hpp), with this_cpu()
// overridden through a debug::platform_wrapper: the logical CPU is the index of the OS
// CPU the thread is pinned to (or, simulated, the thread's index) rather than
// sched_getcpu() folded onto the CPU count, so the table's rows are exactly the pinned
// CPUs whatever CPU numbers the process may use. No this-CPU guard: this-CPU
// operations are relaxed atomic RMWs (see pcpu/percpu.hpp).
#include <pcpu.hpp>
#include <pcpu/debug/platform_wrapper.hpp>
#include <pcpu/platform/host.hpp>

#include <sched.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t max_cpus = 16;
constexpr std::size_t unit_size = 16 * 1024;
constexpr unsigned nr_buckets = 8; // latency buckets: [4^b, 4^(b+1)) ns

struct histogram {
    std::uint64_t bucket[nr_buckets];
};

// The logical CPU of the calling thread in simulation mode, or when its pinning failed.
thread_local unsigned thread_cpu = 0;
bool simulated = false;
int os_to_logical[CPU_SETSIZE];

struct demo_platform : pcpu::debug::platform_wrapper<pcpu::basic_host_platform<max_cpus, 12>> {
    using platform_wrapper::platform_wrapper;
    /// this_cpu() - the running CPU's logical number. A pinned thread runs where it was
    /// pinned; should it ever be elsewhere, the atomic this-CPU operations stay exact.
    unsigned this_cpu() noexcept {
        if (simulated) return thread_cpu;
        const int os = sched_getcpu();
        if (os >= 0 && os < CPU_SETSIZE && os_to_logical[os] >= 0) return static_cast<unsigned>(os_to_logical[os]);
        return thread_cpu;
    }
};
using allocator = pcpu::allocator<demo_platform, pcpu::lazy_mapped>;

alignas(allocator::page_size) unsigned char units[max_cpus * unit_size];
alignas(allocator::meta_align) unsigned char meta[pcpu::static_meta_bytes_bound<allocator>(unit_size, 0)];
allocator pcpu_alloc;

/// xorshift32 - the synthetic event source, one per thread.
struct xorshift32 {
    std::uint32_t s;
    std::uint32_t next() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        return s;
    }
};

unsigned bucket_of(std::uint32_t latency) {
    unsigned b = 0;
    while (b + 1 < nr_buckets && latency >= (1u << (2 * (b + 1)))) ++b;
    return b;
}

} // namespace

// Every CPU's minimum starts at UINT32_MAX, from the template copy in section pcpu_data.
PCPU_DEFINE(std::uint32_t, min_latency, UINT32_MAX);

int main(int argc, char** argv) {
    unsigned long long events_per_thread = 500000;
    unsigned simulate = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
            events_per_thread = std::strtoull(argv[++i], nullptr, 10);
        } else if (std::strcmp(argv[i], "--simulate") == 0 && i + 1 < argc) {
            simulate = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
        } else {
            const bool help = std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0;
            std::fprintf(help ? stdout : stderr,
                         "usage: %s [--events N] [--simulate CPUS]\n"
                         "  --events N       events per thread (default 500000)\n"
                         "  --simulate CPUS  do not pin: CPUS logical CPUs, one thread each\n",
                         argv[0]);
            return help ? 0 : 2;
        }
    }

    // Which CPUs may we run on? One logical pcpu CPU per allowed OS CPU.
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    std::vector<int> os_cpus;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        for (std::size_t c = 0; c < CPU_SETSIZE && os_cpus.size() < max_cpus; ++c)
            if (CPU_ISSET(c, &allowed)) os_cpus.push_back(static_cast<int>(c));
    for (int& l : os_to_logical) l = -1;

    unsigned nr_cpus = 0;
    if (simulate != 0) {
        simulated = true;
        nr_cpus = simulate;
        std::printf("simulating %u logical CPUs (--simulate): one thread each, this_cpu() = thread index\n", nr_cpus);
    } else {
        // Try pinning once here (then restore the mask): if the system forbids it, every
        // thread would fail the same way.
        cpu_set_t one;
        CPU_ZERO(&one);
        if (!os_cpus.empty()) CPU_SET(static_cast<std::size_t>(os_cpus[0]), &one);
        const bool can_pin = !os_cpus.empty() && sched_setaffinity(0, sizeof one, &one) == 0 &&
                             sched_setaffinity(0, sizeof allowed, &allowed) == 0;
        if (can_pin) {
            nr_cpus = static_cast<unsigned>(os_cpus.size());
            for (unsigned i = 0; i < nr_cpus; ++i) os_to_logical[os_cpus[i]] = static_cast<int>(i);
            if (nr_cpus == 1) std::printf("pinning one thread to the only CPU this process may use\n");
            else std::printf("pinning one thread to each of %u CPUs\n", nr_cpus);
        } else {
            simulated = true;
            nr_cpus = os_cpus.size() < 2 ? 2 : static_cast<unsigned>(os_cpus.size());
            std::printf("pinning unavailable (%s): simulating %u logical CPUs, one thread each, "
                        "this_cpu() = thread index\n",
                        std::strerror(errno), nr_cpus);
        }
    }
    if (nr_cpus == 0 || nr_cpus > max_cpus) {
        std::fprintf(stderr, "per_core_stats: between 1 and %zu CPUs, please\n", max_cpus);
        return 2;
    }

    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.units = units;
    cfg.unit_size = unit_size;
    cfg.meta = meta;
    cfg.meta_size = sizeof meta;
    pcpu::use_static_section(cfg);
    if (pcpu_alloc.init(cfg) != pcpu::errc::ok) return 1;

    pcpu::counter<allocator> events;
    auto core_events = pcpu::alloc_percpu<std::uint64_t>(pcpu_alloc, pcpu::ctx::full);
    auto hist = pcpu::alloc_percpu<histogram>(pcpu_alloc, pcpu::ctx::full);
    auto min_lat = pcpu::static_percpu(pcpu_alloc, min_latency);
    if (events.init(pcpu_alloc, 0, pcpu::ctx::full) != pcpu::errc::ok || !core_events || !hist || !min_lat) {
        std::fprintf(stderr, "per_core_stats: setup failed\n");
        return 1;
    }
    const pcpu::percpu<std::uint64_t> ev = core_events.value();
    const pcpu::percpu<std::uint64_t[nr_buckets]> buckets = hist.value().field(&histogram::bucket);
    const pcpu::percpu<std::uint32_t> minl = min_lat.value();

    std::printf("threads: %u, events per thread: %llu\n\n", nr_cpus, events_per_thread);
    std::vector<std::thread> threads;
    std::vector<int> pinned(nr_cpus, 0);
    for (unsigned t = 0; t < nr_cpus; ++t)
        threads.emplace_back([&, t] {
            thread_cpu = t;
            if (!simulated) {
                cpu_set_t one;
                CPU_ZERO(&one);
                CPU_SET(static_cast<std::size_t>(os_cpus[t]), &one);
                pinned[t] = sched_setaffinity(0, sizeof one, &one) == 0;
            }
            xorshift32 rng{0x9e3779b9u * (t + 1)};
            for (unsigned long long i = 0; i < events_per_thread; ++i) {
                const std::uint32_t latency = 1 + (rng.next() >> (16 + rng.next() % 16)); // 1 .. 65536
                events.inc();
                pcpu::this_cpu_inc(pcpu_alloc, ev);
                pcpu::this_cpu_inc(pcpu_alloc, buckets.at(bucket_of(latency)));
                // A minimum is a compare-then-write, not one RMW: fine here because each
                // CPU has exactly one thread, pinned (or, simulated, the thread *is* the CPU).
                if (latency < pcpu::this_cpu_read(pcpu_alloc, minl)) pcpu::this_cpu_write(pcpu_alloc, minl, latency);
            }
        });
    for (auto& th : threads) th.join();

    // The per-core table.
    std::printf("Latencies are synthetic: each thread draws them from a fixed-seed generator (1 to\n"
                "65536 ns), so they differ between cores and repeat from run to run; the counts are real.\n"
                "events: this core's count; delta: its counter delta not yet folded into the shared\n"
                "count; min-lat: smallest latency seen (ns); then the latency histogram (ns buckets).\n\n");
    std::printf(" core  os-cpu      events  delta  min-lat");
    for (unsigned b = 0; b + 1 < nr_buckets; ++b) std::printf(" %6s", ("<" + std::to_string(1u << (2 * (b + 1)))).c_str());
    std::printf(" %6s\n", (">=" + std::to_string(1u << (2 * (nr_buckets - 1)))).c_str());
    std::uint64_t table_total = 0, hist_total = 0;
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        const std::uint64_t n = pcpu::per_cpu(ev, cpu);
        table_total += n;
        char os[16];
        if (simulated || !pinned[cpu]) std::snprintf(os, sizeof os, "sim");
        else std::snprintf(os, sizeof os, "%d", os_cpus[cpu]);
        std::printf(" %4u  %6s  %10llu  %5d  %7u", cpu, os, static_cast<unsigned long long>(n),
                    pcpu::per_cpu(events.deltas(), cpu), pcpu::per_cpu(minl, cpu));
        for (unsigned b = 0; b < nr_buckets; ++b) {
            const std::uint64_t v = pcpu::per_cpu(buckets, cpu)[b];
            hist_total += v;
            std::printf(" %6llu", static_cast<unsigned long long>(v));
        }
        std::printf("\n");
    }

    // The totals, each checked against what the threads generated.
    const std::uint64_t expected = std::uint64_t{nr_cpus} * events_per_thread;
    const std::int64_t exact = events.sum(), approx = events.read();
    const std::int64_t gap = exact > approx ? exact - approx : approx - exact;
    const bool ok_table = table_total == expected;
    const bool ok_hist = hist_total == expected;
    const bool ok_sum = exact == static_cast<std::int64_t>(expected);
    const bool ok_bound = gap < events.error_bound();
    const pcpu::verify_report rep = pcpu_alloc.verify();
    std::printf("\n");
    std::printf("total events: %llu (expected %llu)\n", static_cast<unsigned long long>(table_total),
                static_cast<unsigned long long>(expected));
    std::printf("histogram total: %llu\n", static_cast<unsigned long long>(hist_total));
    std::printf("counter: sum %lld, read %lld, error bound %lld (batch %d x %u CPUs): %s\n",
                static_cast<long long>(exact), static_cast<long long>(approx),
                static_cast<long long>(events.error_bound()), events.batch(), nr_cpus,
                ok_bound ? "within bound" : "OUT OF BOUND");
    char buf[200];
    std::printf("allocator: %u live allocations, verify: %s\n", pcpu_alloc.stats().nr_cur_alloc,
                rep.describe(buf, sizeof buf));
    const bool ok = ok_table && ok_hist && ok_sum && ok_bound && rep.ok;
    std::printf("result: %s\n", ok ? "OK" : "MISMATCH");

    (void)pcpu::free_percpu(pcpu_alloc, hist.value());
    (void)pcpu::free_percpu(pcpu_alloc, ev);
    (void)events.destroy();
    return ok ? 0 : 1;
}
