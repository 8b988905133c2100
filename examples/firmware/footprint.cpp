// SPDX-License-Identifier: MIT
// examples/firmware/footprint.cpp - what pcpu costs in flash on a Cortex-M: one
// object that instantiates init, alloc, free and per-CPU access through percpu<T> (a
// this-CPU add under the interrupt guard, and another CPU's copy) for one policy
// (FOOTPRINT_CONTIGUOUS selects contiguous over the static arena, with balance and
// shutdown, which that policy needs; otherwise static_only). FOOTPRINT_ATOMIC makes
// alloc take the compile-time atomic context (pcpu/ctx_type.hpp), as firmware that
// allocates only from interrupt-safe code would: the sleeping path is not compiled.
// CI prints its size with arm-none-eabi-size in every run.
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
// FOOTPRINT_LAYOUT: another chunk layout (docs/performance.md, "Chunk layouts").
#ifndef FOOTPRINT_LAYOUT
#define FOOTPRINT_LAYOUT pcpu::kernel_layout
#endif
#ifdef FOOTPRINT_CONTIGUOUS
using footprint_alloc = pcpu::allocator<platform, pcpu::contiguous, FOOTPRINT_LAYOUT>;
#else
using footprint_alloc = pcpu::allocator<platform, pcpu::static_only, FOOTPRINT_LAYOUT>;
#endif

// External linkage, so nothing is inlined away or discarded. FOOTPRINT_OP selects one
// operation alone (1 init, 2 alloc, 3 free, 4 ptr, 5 this-CPU add): the object then
// holds exactly what that operation pulls in, which is its cost in a real image. 6: the
// five together, without the typed accessors, balance and shutdown that 0 adds (the
// set issue 12's budget names).
#ifndef FOOTPRINT_OP
#define FOOTPRINT_OP 0
#endif
#define FOOTPRINT_HAS(op) (FOOTPRINT_OP == 0 || FOOTPRINT_OP == 6 || FOOTPRINT_OP == (op))
#if FOOTPRINT_HAS(1)
pcpu::errc footprint_init(footprint_alloc& a, const pcpu::first_chunk_config& cfg) { return a.init(cfg); }
#endif
#if FOOTPRINT_HAS(2)
pcpu::result<pcpu::handle> footprint_alloc_fn(footprint_alloc& a, std::size_t size, std::size_t align) {
#ifdef FOOTPRINT_ATOMIC
    return a.alloc(size, align, pcpu::ctx::atomic_t{});
#else
    return a.alloc(size, align, pcpu::ctx::full);
#endif
}
#endif
#if FOOTPRINT_HAS(3)
pcpu::errc footprint_free(footprint_alloc& a, pcpu::handle h) { return a.free(h); }
#endif
#if FOOTPRINT_HAS(4)
void* footprint_ptr(const footprint_alloc& a, pcpu::handle h, unsigned cpu) { return a.ptr(h, cpu); }
#endif
#if FOOTPRINT_HAS(5)
void footprint_this_cpu_add(footprint_alloc& a, pcpu::percpu<std::uint32_t> h, std::uint32_t v) {
    pcpu::this_cpu_add(a, h, v);
}
#endif
#if FOOTPRINT_OP == 0
pcpu::percpu<std::uint32_t> footprint_typed(const footprint_alloc& a, pcpu::handle h) {
    return pcpu::typed<std::uint32_t>(a, h);
}
std::uint32_t footprint_per_cpu(pcpu::percpu<std::uint32_t> h, unsigned cpu) { return pcpu::per_cpu(h, cpu); }
#ifdef FOOTPRINT_CONTIGUOUS
pcpu::errc footprint_balance(footprint_alloc& a) { return a.balance(); }
void footprint_shutdown(footprint_alloc& a) { a.shutdown(); }
#endif
#endif
