// SPDX-License-Identifier: MIT
// examples/quickstart.cpp - the README's demo: a static first chunk (no heap), per-CPU
// counters and buffers, and the allocator's own statistics.
#include <pcpu.hpp>

#include <cstdint>
#include <cstdio>

namespace {

// The whole platform a static-only, single-threaded configuration needs: a lock over
// the index (empty here: nothing runs concurrently) and somewhere to print warnings.
struct demo_platform {
    static constexpr std::size_t max_cpus = 4;
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
    void warn(const char* msg) noexcept { std::printf("warning: %s\n", msg); }
};
using allocator = pcpu::allocator<demo_platform>;

constexpr unsigned nr_cpus = 4;
constexpr std::size_t unit_size = 32 * 1024;
constexpr std::size_t static_size = 256, reserved_size = 4096;

alignas(allocator::page_size) unsigned char units[nr_cpus * unit_size];
alignas(allocator::meta_align) unsigned char meta[allocator::first_chunk_meta_bytes(unit_size, static_size,
                                                                                     reserved_size)];
allocator pcpu_alloc;

const char* kind_name(pcpu::chunk_kind k) {
    return k == pcpu::chunk_kind::reserved ? "reserved" : k == pcpu::chunk_kind::first ? "first" : "dynamic";
}

} // namespace

int main() {
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.units = units;
    cfg.unit_size = unit_size;
    cfg.static_size = static_size;
    cfg.reserved_size = reserved_size;
    cfg.meta = meta;
    cfg.meta_size = sizeof meta;
    if (pcpu_alloc.init(cfg) != pcpu::errc::ok) return 1;

    // One 64-bit event counter per CPU, plus a 16-bucket histogram per CPU.
    auto counter = pcpu_alloc.alloc(sizeof(std::uint64_t), alignof(std::uint64_t), pcpu::ctx::full);
    auto histogram = pcpu_alloc.alloc(16 * sizeof(std::uint32_t), 64, pcpu::ctx::full);
    if (!counter || !histogram) return 1;

    // Each "CPU" counts events into its own copy: no sharing, no atomics.
    std::uint64_t expected = 0;
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        auto* n = static_cast<std::uint64_t*>(pcpu_alloc.ptr(counter.value(), cpu));
        auto* h = static_cast<std::uint32_t*>(pcpu_alloc.ptr(histogram.value(), cpu));
        for (unsigned e = 0; e < 1000 * (cpu + 1); ++e) {
            ++*n;
            ++h[(e * 7 + cpu) % 16];
        }
        expected += 1000 * (cpu + 1);
    }

    // Churn: many small per-CPU objects, half of them freed again.
    pcpu::handle objs[200];
    for (unsigned i = 0; i < 200; ++i) objs[i] = pcpu_alloc.alloc(4 + (i % 13) * 4, 4, pcpu::ctx::full).value_or({});
    for (unsigned i = 0; i < 200; i += 2) (void)pcpu_alloc.free(objs[i]);
    auto module_data = pcpu_alloc.alloc_reserved(512, 8, pcpu::ctx::full);

    std::printf("per-CPU counters\n  cpu   events  hist[0]  hist[15]\n");
    std::uint64_t total = 0;
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        auto n = *static_cast<std::uint64_t*>(pcpu_alloc.ptr(counter.value(), cpu));
        auto* h = static_cast<std::uint32_t*>(pcpu_alloc.ptr(histogram.value(), cpu));
        std::printf("  %3u %8llu %8u %9u\n", cpu, static_cast<unsigned long long>(n), h[0], h[15]);
        total += n;
    }
    std::printf("  sum %8llu (expected %llu)\n\n", static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(expected));

    const pcpu::alloc_stats s = pcpu_alloc.stats();
    std::printf("allocator: %u CPUs, unit %zu B (static %zu, reserved %zu, dynamic %zu)\n", s.nr_cpus,
                s.unit_size, s.static_size, s.reserved_size, s.dynamic_size);
    std::printf("  allocations %llu, frees %llu, live %u (max %u), failed %llu\n",
                static_cast<unsigned long long>(s.nr_alloc), static_cast<unsigned long long>(s.nr_dealloc),
                s.nr_cur_alloc, s.nr_max_alloc, static_cast<unsigned long long>(s.nr_failed));
    std::printf("  sizes %zu..%zu B, live %zu B per CPU, empty populated pages %zu\n", s.min_alloc_size,
                s.max_alloc_size, s.live_bytes, s.nr_empty_pop_pages);
    std::printf("\n  chunk     slot pages alloc  free B contig B  holes B\n");
    pcpu_alloc.for_each_chunk([](const pcpu::chunk_stats& c) {
        std::printf("  %-9s %4d %5u %5u %7zu %8zu %8zu\n", kind_name(c.kind), c.slot, c.nr_pages, c.nr_alloc,
                    c.free_bytes, c.contig_bytes, c.sum_frag);
    });

    const pcpu::verify_report rep = pcpu_alloc.verify();
    char buf[200];
    std::printf("\nverify: %s\n", rep.describe(buf, sizeof buf));
    return rep.ok && total == expected && module_data.ok() ? 0 : 1;
}
