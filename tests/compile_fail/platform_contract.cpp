// SPDX-License-Identifier: MIT
// The platform contract is checked where it is stated (platform.hpp, populate.hpp):
// a platform that lacks a member the policy needs is rejected at compile time with a
// message naming the member and its signature, not with an error deep inside the
// allocator. The platform below has every member; case N leaves one out.
// expect 1: a policy that creates chunks needs `void slow_lock(
// expect 2: a policy that creates chunks needs `void* alloc_meta(
// expect 3: the contiguous policy needs `void* alloc_units(
// expect 4: the lazy_mapped policy needs `std::uintptr_t reserve(
// expect 5: the lazy_mapped policy needs `bool alloc_pages(
// expect 6: the lazy_mapped policy needs `bool map(
// expect 7: the lazy_mapped policy needs `scope_token scope_apply(
// expect 8: the platform must provide `void index_lock() noexcept`
// expect 9: platform max_cpus must be at least 1
#include <pcpu/allocator.hpp>

#include <cstdlib>

#ifndef PCPU_COMPILE_FAIL
#define PCPU_COMPILE_FAIL 0
#endif

namespace {

struct full_platform {
#if PCPU_COMPILE_FAIL == 9
    static constexpr std::size_t max_cpus = 0;
#else
    static constexpr std::size_t max_cpus = 4;
#endif
#if PCPU_COMPILE_FAIL != 8
    void index_lock() noexcept {}
#endif
    void index_unlock() noexcept {}
#if PCPU_COMPILE_FAIL != 1
    void slow_lock() noexcept {}
#endif
    void slow_unlock() noexcept {}
#if PCPU_COMPILE_FAIL != 2
    void* alloc_meta(std::size_t bytes, std::size_t, pcpu::gfp) noexcept { return std::malloc(bytes); }
#endif
    void free_meta(void* p, std::size_t) noexcept { std::free(p); }
#if PCPU_COMPILE_FAIL != 3
    void* alloc_units(std::size_t bytes, pcpu::gfp) noexcept { return std::malloc(bytes); }
#endif
    void free_units(void* p, std::size_t) noexcept { std::free(p); }
#if PCPU_COMPILE_FAIL != 4
    std::uintptr_t reserve(std::size_t, pcpu::gfp) noexcept { return 0; }
#endif
    void release(std::uintptr_t, std::size_t) noexcept {}
#if PCPU_COMPILE_FAIL != 5
    bool alloc_pages(unsigned, pcpu::page_ref*, std::size_t, pcpu::gfp) noexcept { return false; }
#endif
    void free_pages(unsigned, const pcpu::page_ref*, std::size_t) noexcept {}
#if PCPU_COMPILE_FAIL != 6
    bool map(std::uintptr_t, const pcpu::page_ref*, std::size_t, pcpu::gfp) noexcept { return false; }
#endif
    void unmap(std::uintptr_t, pcpu::page_ref*, std::size_t) noexcept {}
#if PCPU_COMPILE_FAIL != 7
    pcpu::gfp scope_apply(pcpu::gfp c) noexcept { return c; }
#endif
    void scope_restore(pcpu::gfp) noexcept {}
    pcpu::gfp current_scope() noexcept { return pcpu::ctx::full; }
};

template <class Policy>
bool use(const pcpu::first_chunk_config& cfg) {
    static pcpu::allocator<full_platform, Policy> a;
    return a.init(cfg) == pcpu::errc::ok && a.alloc(16, 8, pcpu::ctx::full).ok();
}

} // namespace

// Case 3 concerns contiguous alone, cases 4-7 lazy_mapped alone, the others both.
#if PCPU_COMPILE_FAIL < 4 || PCPU_COMPILE_FAIL > 7
bool use_contiguous(const pcpu::first_chunk_config& cfg) { return use<pcpu::contiguous>(cfg); }
#endif
#if PCPU_COMPILE_FAIL != 3
bool use_lazy_mapped(const pcpu::first_chunk_config& cfg) { return use<pcpu::lazy_mapped>(cfg); }
#endif
