// SPDX-License-Identifier: MIT
// examples/firmware/footprint.cpp - what pcpu costs in flash on a Cortex-M4: one
// object that instantiates init, alloc, free and per-CPU access for one policy
// (FOOTPRINT_CONTIGUOUS selects contiguous over the static arena, with balance and
// shutdown, which that policy needs; otherwise static_only). CI prints its size with
// arm-none-eabi-size in every run.
//
// Assertions are compiled out, as in a release image: the figure is the allocator,
// not its self-checks. verify() is not instantiated either (a debugging aid; the
// firmware example shows its cost on top).
#define PCPU_ASSERT(cond) static_cast<void>(sizeof(cond))

#include <pcpu/allocator.hpp>
#include <pcpu/platform/static_arena.hpp>

using platform = pcpu::static_arena<4, 10, pcpu::cortex_m_irq_lock>;
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
void* footprint_this_cpu_ptr(footprint_alloc& a, pcpu::handle h) { return a.ptr(h, a.platform().this_cpu()); }
#ifdef FOOTPRINT_CONTIGUOUS
pcpu::errc footprint_balance(footprint_alloc& a) { return a.balance(); }
void footprint_shutdown(footprint_alloc& a) { a.shutdown(); }
#endif
