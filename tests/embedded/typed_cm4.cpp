// SPDX-License-Identifier: MIT
// tests/embedded/typed_cm4.cpp - the typed layer as firmware uses it, for a Cortex-M4
// build check (tests/meson.build): a static-only allocator in declared storage, static
// per-CPU variables from the pcpu_data section, typed handles, this-CPU operations
// under an IRQ guard, a statistics counter, and a second platform without a guard
// (relaxed atomics, 32-bit only). No heap, no exceptions, no RTTI, no <thread>/<mutex>.
//
// Built by tests/embedded/check_typed_cm4.sh on every host (compile, link with
// --gc-sections, the pcpu_data symbols), and in the Cortex-M4 firmware build as an image
// run under qemu-system-arm -M mps2-an386 (examples/firmware/meson.build): its exit
// status is 0 only if every check below holds, and the planted-bug image must fail.
#include <pcpu/counter.hpp>
#include <pcpu/percpu.hpp>
#include <pcpu/static_var.hpp>

#include <cstdint>

namespace {

constexpr unsigned nr_cpus = 4;
unsigned current_cpu = 0; // "which core runs": the firmware switches it

/// running_cpu() - what the platforms answer for this_cpu(). The planted-bug build
/// (PCPU_TYPED_CM4_FAULT, run beside the real one under QEMU) answers CPU 0 always: a
/// per-CPU layer that ignored the running CPU would pass with it, so the checks must not.
unsigned running_cpu() noexcept {
#if defined(PCPU_TYPED_CM4_FAULT)
    return 0;
#else
    return current_cpu;
#endif
}

/// irq_platform - single-core firmware simulating nr_cpus logical CPUs: masking
/// interrupts is the this-CPU guard (PRIMASK on a real Cortex-M).
struct irq_platform {
    static constexpr std::size_t max_cpus = nr_cpus;
    static constexpr unsigned page_shift = 10;
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
    unsigned this_cpu() noexcept { return running_cpu(); }
    std::uint32_t irq_save() noexcept {
        std::uint32_t primask = 0;
#if defined(__ARM_ARCH_7EM__)
        __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
#endif
        ++depth;
        return primask;
    }
    void irq_restore(std::uint32_t primask) noexcept {
        --depth;
#if defined(__ARM_ARCH_7EM__)
        __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
#else
        (void)primask;
#endif
    }
    int depth = 0;
};

/// bare_platform - no guard: this-CPU operations are relaxed atomics (LDREX/STREX).
struct bare_platform {
    static constexpr std::size_t max_cpus = nr_cpus;
    static constexpr unsigned page_shift = 10;
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
    unsigned this_cpu() noexcept { return running_cpu(); }
};

using irq_alloc = pcpu::allocator<irq_platform>;
using bare_alloc = pcpu::allocator<bare_platform>;

constexpr std::size_t unit_size = 4096;
alignas(irq_alloc::page_size) unsigned char units_a[nr_cpus * unit_size];
alignas(irq_alloc::page_size) unsigned char units_b[nr_cpus * unit_size];
alignas(irq_alloc::meta_align) unsigned char meta_a[pcpu::static_meta_bytes_bound<irq_alloc>(unit_size, 0)];
alignas(bare_alloc::meta_align) unsigned char meta_b[pcpu::static_meta_bytes_bound<bare_alloc>(unit_size, 0)];
irq_alloc alloc_a;
bare_alloc alloc_b;

struct histogram {
    std::uint32_t bucket[8];
};

} // namespace

PCPU_DEFINE(std::uint32_t, irq_count, 100);
PCPU_DEFINE(histogram, latency, {1, 2, 3});

namespace {

template <class Alloc>
bool init(Alloc& a, void* units, void* meta, std::size_t meta_size) {
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.units = units;
    cfg.unit_size = unit_size;
    cfg.meta = meta;
    cfg.meta_size = meta_size;
    pcpu::use_static_section(cfg);
    return a.init(cfg) == pcpu::errc::ok && a.verify().ok;
}

/// tagged - two words, for the double-width cmpxchg (8 bytes here).
struct alignas(2 * sizeof(void*)) tagged {
    histogram* head;
    std::uintptr_t tag;
};

/// exercise_ops(a) - the rest of the this-CPU operation set (this_cpu_ops.hpp) and the
/// counter's init_many/limited_add/sub_local; 0 on success, else 40 + the failed check.
template <class Alloc>
int exercise_ops(Alloc& a) {
    using P = typename Alloc::platform_type;
    auto flags = pcpu::alloc_percpu<std::uint32_t>(a, pcpu::ctx::full, 0xf0u);
    auto small = pcpu::alloc_percpu<std::uint8_t>(a, pcpu::ctx::full);
    auto ptrs = pcpu::alloc_percpu<histogram*>(a, pcpu::ctx::full, nullptr);
    if (!flags || !small || !ptrs || !a.verify().ok) return 41;
    current_cpu = 1;
    pcpu::this_cpu_or(a, flags.value(), 0x0f);
    pcpu::this_cpu_and(a, flags.value(), 0x3c);
    if (pcpu::per_cpu(flags.value(), 1) != 0x3c || pcpu::per_cpu(flags.value(), 0) != 0xf0) return 42;
    if (pcpu::this_cpu_xchg(a, flags.value(), 7) != 0x3c) return 43;
    if (pcpu::this_cpu_cmpxchg(a, flags.value(), 7, 9) != 7) return 44;
    std::uint32_t expected = 1;
    if (pcpu::this_cpu_try_cmpxchg(a, flags.value(), expected, 2) || expected != 9) return 45;
    pcpu::this_cpu_add(a, small.value(), 300); // kernel-style: 44, and no -Woverflow
    if (pcpu::this_cpu_sub_return(a, small.value(), -1) != 45) return 46;
    histogram h{};
    if (pcpu::this_cpu_cmpxchg(a, ptrs.value(), nullptr, &h) != nullptr) return 47;
    if (pcpu::this_cpu_xchg(a, ptrs.value(), nullptr) != &h) return 48;
    {
        pcpu::this_cpu_guard<P> g(a.platform());
        pcpu::raw_this_cpu_add(g, flags.value(), 1);
        pcpu::raw_this_cpu_or(g, flags.value(), 0x100);
        if (pcpu::raw_this_cpu_cmpxchg(g, flags.value(), 0x10a, 0) != 0x10a) return 49;
        if (pcpu::raw_this_cpu_inc_return(g, small.value()) != 46) return 50;
    }
    if constexpr (pcpu::this_cpu_guard<P>::pins) {
        // A Cortex-M has no 8-byte CAS: under the IRQ guard the double width works
        // anyway; without a guard it is a compile error (check_typed_cm4.sh checks).
        auto pairs = pcpu::alloc_percpu<tagged>(a, pcpu::ctx::full, tagged{nullptr, 5});
        if (!pairs) return 51;
        tagged e{nullptr, 5};
        if (!pcpu::this_cpu_try_cmpxchg_double(a, pairs.value(), e, tagged{&h, 6})) return 52;
        if (pcpu::this_cpu_cmpxchg_double(a, pairs.value(), e, tagged{nullptr, 7}).tag != 6) return 53;
        if (pcpu::per_cpu(pairs.value(), 1).head != &h || pcpu::per_cpu(pairs.value(), 0).tag != 5) return 54;
        if (pcpu::free_percpu(a, pairs.value()) != pcpu::errc::ok) return 55;
    }
#if defined(PCPU_CM4_EXPECT_DWCAS_ERROR)
    else {
        auto pairs = pcpu::alloc_percpu<tagged>(a, pcpu::ctx::full, tagged{nullptr, 5});
        (void)pcpu::this_cpu_cmpxchg_double(a, pairs.value(), tagged{nullptr, 5}, tagged{nullptr, 6});
    }
#endif
    pcpu::counter<Alloc> cs[3];
    if (pcpu::counter<Alloc>::init_many(cs, 3, a, 0, pcpu::ctx::full, 4) != pcpu::errc::ok) return 56;
    for (unsigned i = 0; i < 10; ++i) cs[i % 3].add(2);
    if (!cs[0].limited_add(10, 2) || cs[0].limited_add(10, 1) || cs[0].sum() != 10) return 57;
    cs[1].sub_local(100);
    if (cs[1].sum() != 6 - 100 || cs[2].sum() != 6) return 58;
    if (pcpu::counter<Alloc>::destroy_many(cs, 3) != pcpu::errc::ok) return 59;
    if (pcpu::free_percpu(a, flags.value()) != pcpu::errc::ok || pcpu::free_percpu(a, small.value()) != pcpu::errc::ok ||
        pcpu::free_percpu(a, ptrs.value()) != pcpu::errc::ok || !a.verify().ok)
        return 60;
    return 0;
}

/// exercise(a) - 0 on success, else the number of the failed check.
template <class Alloc>
int exercise(Alloc& a) {
    auto irq = pcpu::static_percpu(a, irq_count);
    auto lat = pcpu::static_percpu(a, latency);
    auto events = pcpu::alloc_percpu<std::uint32_t>(a, pcpu::ctx::full, 5u);
    if (!irq || !lat || !events || !a.verify().ok) return 1;
    pcpu::counter<Alloc> c;
    if (c.init(a, 0, pcpu::ctx::full, 8) != pcpu::errc::ok || !a.verify().ok) return 2;

    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        current_cpu = cpu;
        if (pcpu::this_cpu_read(a, irq.value()) != 100) return 3;
        if (pcpu::per_cpu(lat.value(), cpu).bucket[2] != 3) return 4;
        for (unsigned i = 0; i <= cpu; ++i) {
            pcpu::this_cpu_inc(a, irq.value());
            pcpu::this_cpu_add(a, events.value(), 10u);
            pcpu::this_cpu_inc(a, lat.value().field(&histogram::bucket).at(i));
            c.add(3);
        }
    }
    if (pcpu::sum(irq.value()) != 4 * 100 + 10) return 5;
    if (pcpu::sum(events.value()) != 4 * 5 + 100) return 6;
    if (pcpu::per_cpu(lat.value(), 3).bucket[3] != 1 || pcpu::per_cpu(lat.value(), 3).bucket[0] != 2) return 7;
    if (c.sum() != 30 || c.compare(30) != 0 || c.compare(29) != 1) return 8;
    const std::int64_t gap = c.sum() - c.read();
    if (gap < 0 || gap >= c.error_bound()) return 9;
    if (const int r = exercise_ops(a)) return r;
    if (pcpu::free_percpu(a, events.value()) != pcpu::errc::ok || !a.verify().ok) return 10;
    if (c.destroy() != pcpu::errc::ok || !a.verify().ok) return 11;
    return a.stats().nr_cur_alloc == 0 ? 0 : 12;
}

} // namespace

int main() {
    if (!init(alloc_a, units_a, meta_a, sizeof meta_a) || !init(alloc_b, units_b, meta_b, sizeof meta_b)) return 20;
    if (const int r = exercise(alloc_a)) return r;
    if (alloc_a.platform().depth != 0) return 21;
    if (const int r = exercise(alloc_b)) return 30 + r;
    return 0;
}
