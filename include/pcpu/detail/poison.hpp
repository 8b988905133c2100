// SPDX-License-Identifier: MIT
// pcpu/detail/poison.hpp - making a freed per-CPU area visible to the tools people run.
//
// A per-CPU area is nr_cpus copies at h + cpu_offsets[cpu]; a stale ptr(h, cpu) after
// free() writes into one of them, which no allocator-level check can see. Two ways to
// catch it, each applied to every CPU's copy:
//
//   AddressSanitizer   a freed area is poisoned (the sanitizer's manual poisoning
//                      interface), so the stale access itself is the ASan report.
//                      alloc() unpoisons the area before zeroing it; memory that
//                      leaves pcpu (depopulated pages, destroyed chunks, the first
//                      chunk at shutdown) is unpoisoned before it is handed back.
//                      Automatic under -fsanitize=address (PCPU_ASAN to force).
//   PCPU_FREE_PATTERN  a byte value (e.g. 0x6b, the kernel's POISON_FREE): free space
//                      holds that byte on every CPU (filled by free(), and when free
//                      space is born: init() and page population), and alloc()
//                      checks it before zeroing; a byte that differs is a write after
//                      free, reported by warn() and stopped with PCPU_TRAP. Debug
//                      only: it costs a fill per free and a scan per allocation.
//
// ASan poisons in 8-byte granules: the head of a granule cannot be poisoned while its
// tail stays addressable, so a 4-byte area sharing a granule with a live neighbour
// after it stays unpoisoned (no false report; the write goes unseen). Areas of 8
// bytes and more are poisoned whole, up to their alignment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#ifndef PCPU_ASAN
#if defined(__SANITIZE_ADDRESS__)
#define PCPU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PCPU_ASAN 1
#endif
#endif
#endif
#ifndef PCPU_ASAN
#define PCPU_ASAN 0
#endif
#if PCPU_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef PCPU_FREE_PATTERN
#define PCPU_FREE_PATTERN 0
#endif

namespace pcpu {
namespace detail {

/// freed_area(addr, offsets, nr_cpus, bytes) - free() is about to release [addr,
/// addr + bytes) of every CPU: fill it with the pattern, then poison it. Called under
/// the index lock, before the area becomes claimable, so no new owner can have
/// unpoisoned it yet.
inline void freed_area(std::uintptr_t addr, const std::uintptr_t* offsets, unsigned nr_cpus,
                       std::size_t bytes) noexcept {
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        void* p = reinterpret_cast<void*>(addr + offsets[cpu]);
        if (PCPU_FREE_PATTERN != 0) std::memset(p, PCPU_FREE_PATTERN, bytes);
#if PCPU_ASAN
        __asan_poison_memory_region(p, bytes);
#endif
        (void)p;
    }
}

/// born_free(addr, offsets, nr_cpus, bytes) - free space that never held an
/// allocation (init(), newly populated pages): give it the pattern.
inline void born_free(std::uintptr_t addr, const std::uintptr_t* offsets, unsigned nr_cpus,
                      std::size_t bytes) noexcept {
    if (PCPU_FREE_PATTERN != 0)
        for (unsigned cpu = 0; cpu < nr_cpus; ++cpu)
            std::memset(reinterpret_cast<void*>(addr + offsets[cpu]), PCPU_FREE_PATTERN, bytes);
    (void)addr, (void)offsets, (void)nr_cpus, (void)bytes;
}

/// released(addr, offsets, nr_cpus, bytes) - memory leaving pcpu: addressable again.
inline void released(std::uintptr_t addr, const std::uintptr_t* offsets, unsigned nr_cpus,
                     std::size_t bytes) noexcept {
#if PCPU_ASAN
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu)
        __asan_unpoison_memory_region(reinterpret_cast<void*>(addr + offsets[cpu]), bytes);
#endif
    (void)addr, (void)offsets, (void)nr_cpus, (void)bytes;
}

/// reused_area(addr, offsets, nr_cpus, bytes, bad_cpu) - alloc() took [addr, addr +
/// bytes) of every CPU: unpoison it; with a pattern, false (bad_cpu set) if some CPU's
/// copy no longer holds it.
inline bool reused_area(std::uintptr_t addr, const std::uintptr_t* offsets, unsigned nr_cpus, std::size_t bytes,
                        unsigned& bad_cpu) noexcept {
    bool intact = true;
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        const auto* p = reinterpret_cast<const unsigned char*>(addr + offsets[cpu]);
#if PCPU_ASAN
        __asan_unpoison_memory_region(p, bytes);
#endif
        if (PCPU_FREE_PATTERN != 0 && intact)
            for (std::size_t i = 0; i < bytes; ++i)
                if (p[i] != static_cast<unsigned char>(PCPU_FREE_PATTERN)) {
                    intact = false;
                    bad_cpu = cpu;
                    break;
                }
        (void)p;
    }
    return intact;
}

} // namespace detail
} // namespace pcpu
