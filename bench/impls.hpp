// SPDX-License-Identifier: MIT
// bench/impls.hpp - the allocators the benchmark compares, behind one small interface:
//
//   pcpu_impl               pcpu::allocator<bench_platform, lazy_mapped>, the kernel's
//                           first-chunk layout for a 2-CPU x86-64 machine
//   aligned_per_cpu_impl    what a user writes without pcpu: one cache-line-aligned
//                           aligned_alloc per CPU (and a free per CPU)
//   padded_array_impl       a per-core array padded to cache lines: one aligned_alloc of
//                           nr_cpus slots, each rounded up to 64 bytes
//
// Every implementation zeroes each CPU's copy on allocation, as pcpu does (a per-CPU
// counter must start at zero on every CPU), so the work compared is the same.
//
// alloc() and free() are PCPU_BENCH_OP (noinline) in every implementation: a call costs
// each the same few instructions, and callgrind can then report instructions per
// allocation and per free apart (scripts/bench).
#pragma once

#include "bench_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/populate.hpp>

#include <type_traits>

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#define PCPU_BENCH_OP __attribute__((noinline))

namespace pcpu_bench {

inline constexpr std::size_t cache_line = 64;
inline constexpr std::size_t max_cpus = 8;
inline std::size_t round_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }

using platform = bench_platform<max_cpus>;
template <class Layout>
using pcpu_alloc_of = pcpu::allocator<platform, pcpu::lazy_mapped, Layout>;
using pcpu_alloc = pcpu_alloc_of<pcpu::kernel_layout>;

/// geometry - the first chunk. Defaults: what Linux prints on a 2-CPU x86-64 machine
/// ("s192512 r8192 d28672"): 188 KiB of static per-CPU data, the 8 KiB module reserve,
/// 28 KiB of early dynamic space. Linux's unit is 1 MiB there because its boot
/// allocator works in 2 MiB atoms; pcpu's dynamic chunks share the first chunk's unit
/// size, so the unit is the tight 224 KiB (56 pages) and new chunks are 224 KiB too.
struct geometry {
    std::size_t static_size = 192512;
    std::size_t reserved_size = 8192;
    std::size_t dynamic_size = 28672;
    /// 0: the tight unit above. Otherwise the unit is this size and the first chunk's
    /// dynamic area still ends after dynamic_size bytes (first_chunk_config::dyn_size),
    /// as in Linux's boot layout with its 1 MiB units.
    std::size_t unit = 0;
    std::size_t unit_size() const { return unit != 0 ? unit : round_up(static_size + reserved_size + dynamic_size, 4096); }
    /// pages wholly taken by the static and reserved areas (never dynamic memory)
    std::size_t head_pages() const { return (static_size + reserved_size) / 4096; }
};

/// basic_pcpu_impl<Layout, Name> - an initialised allocator with chunk layout Layout
/// over storage of its own; pcpu_impl is the kernel's layout, the others are the rows
/// of the chunk_layout choices (docs/performance.md).
template <class Layout, const char* Name>
class basic_pcpu_impl {
    using alloc_type = pcpu_alloc_of<Layout>;

public:
    using handle = pcpu::handle;
    static constexpr const char* name = Name;

    explicit basic_pcpu_impl(unsigned cpus, geometry g = {}) : cpus_(cpus), g_(g), a_(std::make_unique<alloc_type>()) {
        const std::size_t unit = g.unit_size();
        units_ = std::aligned_alloc(4096, cpus * unit);
        std::memset(units_, 0, cpus * unit);
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = cpus;
        cfg.units = units_;
        cfg.unit_size = unit;
        cfg.static_size = g.static_size;
        cfg.reserved_size = g.reserved_size;
        if (g.unit != 0) cfg.dyn_size = g.dynamic_size;
        ok_ = a_->init(cfg) == pcpu::errc::ok;
        a_->platform().cpus = cpus;
    }
    ~basic_pcpu_impl() {
        a_->shutdown();
        std::free(units_);
    }
    basic_pcpu_impl(const basic_pcpu_impl&) = delete;
    basic_pcpu_impl& operator=(const basic_pcpu_impl&) = delete;

    bool ok() const { return ok_; }
    alloc_type& alloc() { return *a_; }
    platform& plat() { return a_->platform(); }
    unsigned cpus() const { return cpus_; }
    /// units()/unit_size() - the first chunk's units (nr_cpus of them, unit_size() apart).
    const void* units() const { return units_; }
    std::size_t unit_size() const { return g_.unit_size(); }

    PCPU_BENCH_OP bool alloc(std::size_t size, std::size_t align, bool atomic, handle& out) {
        const pcpu::result<pcpu::handle> r = a_->alloc(size, align, atomic ? pcpu::ctx::atomic : pcpu::ctx::full);
        out = r.value_or(pcpu::handle{});
        return r.ok();
    }
    PCPU_BENCH_OP void free(handle h) { (void)a_->free(h); }
    void* ptr(handle h, unsigned cpu) const { return a_->ptr(h, cpu); }

    bool balance_pending() const { return a_->platform().balance_requested; }
    /// balance_if_requested() - what the platform's work queue would do; true if it ran.
    bool balance_if_requested() {
        if (!a_->platform().balance_requested) return false;
        a_->platform().balance_requested = false;
        (void)a_->balance();
        return true;
    }
    /// dynamic_populated_bytes() - populated memory of the dynamic area, per unit: the
    /// first chunk's dynamic pages and every dynamic chunk's populated pages.
    std::size_t dynamic_populated_bytes() const {
        return (a_->stats().nr_populated_pages - g_.head_pages()) * alloc_type::page_size;
    }

private:
    unsigned cpus_;
    geometry g_;
    std::unique_ptr<alloc_type> a_;
    void* units_ = nullptr;
    bool ok_ = false;
};

inline constexpr char pcpu_name[] = "pcpu";
inline constexpr char pcpu_g16_name[] = "pcpu_granule16";
inline constexpr char pcpu_b256_name[] = "pcpu_block256";
inline constexpr char pcpu_scan_name[] = "pcpu_scan";
using pcpu_impl = basic_pcpu_impl<pcpu::kernel_layout, pcpu_name>;
/// 16-byte granule: a quarter of the bitmaps; every size rounds up to 16.
using pcpu_g16_impl = basic_pcpu_impl<pcpu::chunk_layout<16>, pcpu_g16_name>;
/// 256-byte blocks on 4 KiB pages: 16 block summaries per page.
using pcpu_b256_impl = basic_pcpu_impl<pcpu::chunk_layout<4, 256>, pcpu_b256_name>;
/// The firmware chunk policy: no block hints, every search a scan of the map.
using pcpu_scan_impl = basic_pcpu_impl<pcpu::scan_layout<>, pcpu_scan_name>;
/// is_pcpu<Impl> - Impl is one of the pcpu rows (they report pcpu's own counters).
template <class Impl>
struct is_pcpu : std::false_type {};
template <class Layout, const char* Name>
struct is_pcpu<basic_pcpu_impl<Layout, Name>> : std::true_type {};

/// chunk_bytes(p) - what glibc's malloc holds for the block p: its usable size plus
/// the chunk header. Free fragments that aligned_alloc splits off are not counted (they
/// can serve other requests), which favours the baselines. (mallinfo2() cannot be used:
/// it counts blocks parked in the thread cache as in use.)
inline std::size_t chunk_bytes(void* p) { return p == nullptr ? 0 : ::malloc_usable_size(p) + sizeof(std::size_t); }

/// aligned_per_cpu_impl - one cache-line-aligned block per CPU.
class aligned_per_cpu_impl {
public:
    struct handle {
        void* p[max_cpus];
    };
    static constexpr const char* name = "aligned_alloc_per_cpu";
    explicit aligned_per_cpu_impl(unsigned cpus) : cpus_(cpus) {}
    bool ok() const { return true; }
    PCPU_BENCH_OP bool alloc(std::size_t size, std::size_t align, bool, handle& out) {
        const std::size_t a = align > cache_line ? align : cache_line;
        const std::size_t bytes = round_up(size, a);
        for (unsigned c = 0; c < cpus_; ++c) {
            out.p[c] = std::aligned_alloc(a, bytes);
            if (out.p[c] == nullptr) return false;
            std::memset(out.p[c], 0, size);
        }
        return true;
    }
    PCPU_BENCH_OP void free(const handle& h) {
        for (unsigned c = 0; c < cpus_; ++c) std::free(h.p[c]);
    }
    void* ptr(const handle& h, unsigned cpu) const { return h.p[cpu]; }
    std::size_t footprint(const handle& h) const {
        std::size_t n = 0;
        for (unsigned c = 0; c < cpus_; ++c) n += chunk_bytes(h.p[c]);
        return n;
    }
    bool balance_pending() const { return false; }
    bool balance_if_requested() { return false; }

private:
    unsigned cpus_;
};

/// padded_array_impl - one aligned_alloc holding every CPU's copy, each in its own
/// cache lines (the per-core array a C programmer writes to avoid false sharing).
class padded_array_impl {
public:
    using handle = void*;
    static constexpr const char* name = "padded_array";
    explicit padded_array_impl(unsigned cpus) : cpus_(cpus) {}
    bool ok() const { return true; }
    PCPU_BENCH_OP bool alloc(std::size_t size, std::size_t align, bool, handle& out) {
        const std::size_t a = align > cache_line ? align : cache_line;
        const std::size_t stride = round_up(size, a);
        out = std::aligned_alloc(a, stride * cpus_);
        if (out == nullptr) return false;
        for (unsigned c = 0; c < cpus_; ++c) std::memset(static_cast<char*>(out) + c * stride, 0, size);
        return true;
    }
    PCPU_BENCH_OP void free(handle h) { std::free(h); }
    std::size_t footprint(handle h) const { return chunk_bytes(h); }
    bool balance_pending() const { return false; }
    bool balance_if_requested() { return false; }

private:
    unsigned cpus_;
};

} // namespace pcpu_bench
