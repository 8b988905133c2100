// SPDX-License-Identifier: MIT
// bench/size/cortex_m4.cpp - the code size of the allocator on a Cortex-M4: a static_only
// allocator (no heap, trivial locks) with init, alloc, free and ptr instantiated.
// Compiled, never linked or run, by scripts/bench:
//   arm-none-eabi-g++ -std=c++17 -Os -mcpu=cortex-m4 -mthumb -fno-exceptions -fno-rtti
//       -ffunction-sections -DNDEBUG -c cortex_m4.cpp && arm-none-eabi-size cortex_m4.o
#include <pcpu/allocator.hpp>

namespace {
struct firmware_platform {
    static constexpr std::size_t max_cpus = 4;
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
};
using allocator = pcpu::allocator<firmware_platform, pcpu::static_only>;
} // namespace

// extern "C" entry points keep every function the firmware would call.
extern "C" {
int pcpu_size_init(allocator* a, void* units, void* meta, std::size_t meta_size) {
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = 4;
    cfg.units = units;
    cfg.unit_size = 32768;
    cfg.meta = meta;
    cfg.meta_size = meta_size;
    return static_cast<int>(a->init(cfg));
}
std::uintptr_t pcpu_size_alloc(allocator* a, std::size_t size, std::size_t align) {
    return a->alloc(size, align, pcpu::ctx::full).value_or(pcpu::handle{}).addr();
}
int pcpu_size_free(allocator* a, std::uintptr_t h) { return static_cast<int>(a->free(pcpu::handle(h))); }
void* pcpu_size_ptr(const allocator* a, std::uintptr_t h, unsigned cpu) { return a->ptr(pcpu::handle(h), cpu); }
}
