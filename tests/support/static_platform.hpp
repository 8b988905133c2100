// SPDX-License-Identifier: MIT
// tests/support/static_platform.hpp - a minimal platform for static_only allocators,
// plus the verify() check every test runs after every allocator operation.
#pragma once

#include <pcpu/allocator.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <vector>

namespace pcpu_test {

/// static_platform<PageShift, MaxCpus> - counts lock use and records warnings.
template <unsigned PageShift = 12, std::size_t MaxCpus = 8>
struct static_platform {
    static constexpr unsigned page_shift = PageShift;
    static constexpr std::size_t max_cpus = MaxCpus;

    int lock_depth = 0;
    int max_lock_depth = 0;
    std::size_t nr_locks = 0;
    std::vector<std::string> warnings;

    void index_lock() noexcept {
        ++nr_locks;
        if (++lock_depth > max_lock_depth) max_lock_depth = lock_depth;
    }
    void index_unlock() noexcept { --lock_depth; }
    void warn(const char* msg) noexcept { warnings.emplace_back(msg); }
};

/// zeroed(a, h, size) - the first size bytes of every CPU's copy of h are zero.
template <class A>
bool zeroed(A& a, pcpu::handle h, std::size_t size) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        const auto* p = static_cast<const unsigned char*>(a.ptr(h, cpu));
        for (std::size_t i = 0; i < size; ++i)
            if (p[i] != 0) return false;
    }
    return true;
}

/// static_setup<Alloc> - storage for a first chunk and an initialised allocator over it.
template <class Alloc>
struct static_setup {
    std::vector<unsigned char> units_storage;
    std::vector<unsigned char> meta_storage;
    Alloc alloc;
    pcpu::first_chunk_config cfg;

    static_setup(unsigned nr_cpus, std::size_t unit_size, std::size_t static_size, std::size_t reserved_size,
                 const void* image = nullptr) {
        const std::size_t page = Alloc::page_size;
        units_storage.assign(nr_cpus * unit_size + page, 0xA5);
        const std::size_t meta_bytes = Alloc::first_chunk_meta_bytes(unit_size, static_size, reserved_size);
        meta_storage.assign(meta_bytes + Alloc::meta_align, 0x5A);
        cfg.nr_cpus = nr_cpus;
        cfg.units = align_up(units_storage.data(), page);
        cfg.unit_size = unit_size;
        cfg.static_size = static_size;
        cfg.static_image = image;
        cfg.reserved_size = reserved_size;
        cfg.meta = align_up(meta_storage.data(), Alloc::meta_align);
        cfg.meta_size = meta_bytes;
    }
    pcpu::errc init() { return alloc.init(cfg); }

    static void* align_up(unsigned char* p, std::size_t a) {
        const auto v = reinterpret_cast<std::uintptr_t>(p);
        return p + ((a - v % a) % a);
    }
    /// in_unit(addr, cpu, begin, end) - addr lies in CPU cpu's unit bytes [begin, end).
    bool in_unit(const void* addr, unsigned cpu, std::size_t begin, std::size_t end) const {
        const auto a = reinterpret_cast<std::uintptr_t>(addr);
        const auto u = reinterpret_cast<std::uintptr_t>(cfg.units) + cpu * cfg.unit_size;
        return a >= u + begin && a < u + end;
    }
};

} // namespace pcpu_test

/// REQUIRE_VERIFIED(a) - the allocator's own invariant check, a.verify(), reported
/// readably; a mismatch ends the test case (a REQUIRE). A chunk's check alone is
/// CHECK_CHUNK_VERIFIED (test_chunk.cpp).
#define REQUIRE_VERIFIED(a)                                                                        \
    do {                                                                                           \
        const pcpu::verify_report rep_ = (a).verify();                                             \
        char buf_[200];                                                                            \
        INFO("verify: " << std::string(rep_.describe(buf_, sizeof buf_)));                                      \
        REQUIRE(rep_.ok);                                                                          \
    } while (0)
