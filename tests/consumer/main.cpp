// SPDX-License-Identifier: MIT
// tests/consumer/main.cpp - a static-only allocator built from the installed/subproject
// headers alone, with exceptions and RTTI off: allocates on every CPU, checks the
// copies, frees, verifies. Exit status 0 only if everything held.
#include <pcpu.hpp>

#include <cstdint>
#include <cstdio>

namespace {
struct platform {
    static constexpr std::size_t max_cpus = 4;
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
};
using allocator = pcpu::allocator<platform>;
constexpr std::size_t unit = 16 * 1024;
alignas(allocator::page_size) unsigned char units[4 * unit];
alignas(allocator::meta_align) unsigned char meta[allocator::first_chunk_meta_bytes(unit, 0, 0)];
} // namespace

int main() {
    allocator a;
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = 4;
    cfg.units = units;
    cfg.unit_size = unit;
    cfg.meta = meta;
    cfg.meta_size = sizeof meta;
    if (a.init(cfg) != pcpu::errc::ok) return 1;
    auto h = a.alloc(sizeof(std::uint64_t), 8, pcpu::ctx::full);
    if (!h) return 2;
    for (unsigned cpu = 0; cpu < 4; ++cpu) *static_cast<std::uint64_t*>(a.ptr(h.value(), cpu)) = cpu + 1;
    std::uint64_t sum = 0;
    for (unsigned cpu = 0; cpu < 4; ++cpu) sum += *static_cast<std::uint64_t*>(a.ptr(h.value(), cpu));
    if (sum != 10 || a.free(h.value()) != pcpu::errc::ok || !a.verify().ok) return 3;
    std::puts("consumer: ok");
    return 0;
}
