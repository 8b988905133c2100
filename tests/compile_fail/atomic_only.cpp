// SPDX-License-Identifier: MIT
// An allocator used only with a compile-time atomic context instantiates no sleeping
// path: the platform's sleeping-path members (the sleeping lock, chunk creation,
// population, scopes) refuse to be instantiated, and the program still compiles for
// both policies that create chunks; so do counters initialised with one. Each case
// does one thing with the run-time atomic context instead, whose atomic-ness is known
// only at run time, so the sleeping path is compiled in and the platform rejects it:
// case 1 allocates, case 2 initialises a counter, case 3 a group of counters.
// expect 1: sleeping-path member instantiated
// expect 2: sleeping-path member instantiated
// expect 3: sleeping-path member instantiated
#include <pcpu/allocator.hpp>
#include <pcpu/counter.hpp>
#include <pcpu/percpu.hpp>

#include <cstdlib>

#ifndef PCPU_COMPILE_FAIL
#define PCPU_COMPILE_FAIL 0
#endif

namespace {

template <class T>
struct never : std::false_type {};

/// atomic_only_platform<Tag> - every member a policy that creates chunks asks for; the
/// bodies of those only the sleeping path calls fail to compile when instantiated (a
/// class template, so that a body is compiled only when something uses it).
template <class Tag>
struct atomic_only_platform {
#define PCPU_SLEEPING(what) static_assert(never<Tag>::value, "sleeping-path member instantiated: " what)
    static constexpr std::size_t max_cpus = 4;
    unsigned this_cpu() noexcept { return 0; }
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
    void slow_lock() noexcept { PCPU_SLEEPING("slow_lock"); }
    void slow_unlock() noexcept { PCPU_SLEEPING("slow_unlock"); }
    // init() takes the first chunk's metadata here when the config brings none, so it
    // is compiled whatever alloc() does; it is not on the allocation path.
    void* alloc_meta(std::size_t bytes, std::size_t, pcpu::gfp) noexcept { return std::malloc(bytes); }
    void free_meta(void* p, std::size_t) noexcept { std::free(p); }
    void* alloc_units(std::size_t, pcpu::gfp) noexcept { PCPU_SLEEPING("alloc_units"); return nullptr; }
    void free_units(void*, std::size_t) noexcept {}
    std::uintptr_t reserve(std::size_t, pcpu::gfp) noexcept { PCPU_SLEEPING("reserve"); return 0; }
    void release(std::uintptr_t, std::size_t) noexcept {}
    bool alloc_pages(unsigned, pcpu::page_ref*, std::size_t, pcpu::gfp) noexcept {
        PCPU_SLEEPING("alloc_pages");
        return false;
    }
    void free_pages(unsigned, const pcpu::page_ref*, std::size_t) noexcept {}
    bool map(std::uintptr_t, const pcpu::page_ref*, std::size_t, pcpu::gfp) noexcept {
        PCPU_SLEEPING("map");
        return false;
    }
    void unmap(std::uintptr_t, pcpu::page_ref*, std::size_t) noexcept {}
    pcpu::gfp scope_apply(pcpu::gfp c) noexcept { PCPU_SLEEPING("scope_apply"); return c; }
    void scope_restore(pcpu::gfp) noexcept { PCPU_SLEEPING("scope_restore"); }
    pcpu::gfp current_scope() noexcept { return pcpu::ctx::full; }
#undef PCPU_SLEEPING
};

template <class Policy>
std::uintptr_t use(const pcpu::first_chunk_config& cfg) {
    static pcpu::allocator<atomic_only_platform<Policy>, Policy> a;
    if (a.init(cfg) != pcpu::errc::ok) return 0;
#if PCPU_COMPILE_FAIL == 1
    const auto h = a.alloc(16, 8, pcpu::ctx::atomic);
#else
    const auto h = a.alloc(16, 8, pcpu::ctx::atomic_t{});
    (void)a.alloc_reserved(16, 8, pcpu::ctx::nowait_t{});
    (void)pcpu::alloc_percpu<std::uint32_t>(a, pcpu::ctx::atomic_t{}, 7u);
#endif
    static pcpu::counter<decltype(a)> one, group[2];
#if PCPU_COMPILE_FAIL == 2
    (void)one.init(a, 0, pcpu::ctx::atomic);
#else
    (void)one.init(a, 0, pcpu::ctx::atomic_t{});
#endif
#if PCPU_COMPILE_FAIL == 3
    (void)pcpu::counter<decltype(a)>::init_many(group, 2, a, 0, pcpu::ctx::nowait);
#else
    (void)pcpu::counter<decltype(a)>::init_many(group, 2, a, 0, pcpu::ctx::nowait_t{});
#endif
    one.add(1);
    if (!h) return 0;
    const auto addr = reinterpret_cast<std::uintptr_t>(a.ptr(h.value(), 1));
    (void)a.free(h.value());
    return addr;
}

} // namespace

std::uintptr_t use_contiguous(const pcpu::first_chunk_config& cfg) { return use<pcpu::contiguous>(cfg); }
std::uintptr_t use_lazy_mapped(const pcpu::first_chunk_config& cfg) { return use<pcpu::lazy_mapped>(cfg); }
