// SPDX-License-Identifier: MIT
// examples/firmware/footprint.cpp - what pcpu costs in flash on a Cortex-M4: one
// object that instantiates init, alloc, free and per-CPU access through percpu<T> (a
// this-CPU add under the interrupt guard, and another CPU's copy) for one policy
// (FOOTPRINT_CONTIGUOUS selects contiguous over the static arena, with balance and
// shutdown, which that policy needs; otherwise static_only). CI prints its size with
// arm-none-eabi-size in every run.
//
// Assertions are compiled out, as in a release image: the figure is the allocator,
// not its self-checks. verify() is not instantiated either (a debugging aid; the
// firmware example shows its cost on top).
#define PCPU_ASSERT(cond) static_cast<void>(sizeof(cond))

#include <pcpu/allocator.hpp>
#include <pcpu/percpu.hpp>
#include <pcpu/platform/static_arena.hpp>

using platform =
    pcpu::static_arena<4, 10, pcpu::cortex_m_irq_lock, pcpu::no_lock, pcpu::cortex_m_irq_guard>;
#ifdef FOOTPRINT_CONTIGUOUS
using footprint_alloc = pcpu::allocator<platform, pcpu::contiguous>;
#else
using footprint_alloc = pcpu::allocator<platform, pcpu::static_only>;
#endif

// External linkage, so nothing is inlined away or discarded.
pcpu::errc footprint_init(footprint_alloc& a, const pcpu::first_chunk_config& cfg) { return a.init(cfg); }
pcpu::result<pcpu::handle> footprint_alloc_fn(footprint_alloc& a, std::size_t size, std::size_t align) {
    return a.alloc(size, align, pcpu::ctx::full);
}
pcpu::errc footprint_free(footprint_alloc& a, pcpu::handle h) { return a.free(h); }
pcpu::percpu<std::uint32_t> footprint_typed(const footprint_alloc& a, pcpu::handle h) {
    return pcpu::typed<std::uint32_t>(a, h);
}
void footprint_this_cpu_add(footprint_alloc& a, pcpu::percpu<std::uint32_t> h, std::uint32_t v) {
    pcpu::this_cpu_add(a, h, v);
}
std::uint32_t footprint_per_cpu(pcpu::percpu<std::uint32_t> h, unsigned cpu) { return pcpu::per_cpu(h, cpu); }
#ifdef FOOTPRINT_CONTIGUOUS
pcpu::errc footprint_balance(footprint_alloc& a) { return a.balance(); }
void footprint_shutdown(footprint_alloc& a) { a.shutdown(); }
#endif
