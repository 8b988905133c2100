// SPDX-License-Identifier: MIT
// The typed layer's rules are compile-time rules (percpu.hpp): each misuse below is
// rejected with a message that says what the type or the platform lacks. The program
// as it is uses every operation correctly; case N puts one misuse in.
// expect 1: percpu<T>::at() needs an array T
// expect 2: alloc_percpu<T> needs T(args...) to be noexcept
// expect 3: alloc_percpu<T> needs a noexcept ~T()
// expect 4: this-CPU operations need the platform member `unsigned this_cpu() noexcept`
// expect 5: without a platform this-CPU guard
// expect 6: this-CPU arithmetic needs an integral T (not bool)
// expect 7: sum() needs arithmetic types
#include <pcpu/allocator.hpp>
#include <pcpu/percpu.hpp>

#include <cstdint>

#ifndef PCPU_COMPILE_FAIL
#define PCPU_COMPILE_FAIL 0
#endif

namespace {

/// A platform with no this-CPU guard: this-CPU operations are single atomic
/// instructions on the running CPU's copy, so they need lock-free types.
struct plain_platform {
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
#if PCPU_COMPILE_FAIL != 4
    unsigned this_cpu() noexcept { return 0; }
#endif
};
using alloc_t = pcpu::allocator<plain_platform, pcpu::static_only>;

struct wide {
    std::uint64_t w[4]; // no lock-free atomic this wide
};
struct may_throw {
    explicit may_throw(int v) : v_(v) {} // not noexcept
    int v_;
};
struct throwing_dtor {
    ~throwing_dtor() noexcept(false) {}
};

long use(alloc_t& a) {
    const auto h = pcpu::alloc_percpu<long>(a, pcpu::ctx::atomic);
    const auto arr = pcpu::alloc_percpu<long[4]>(a, pcpu::ctx::atomic);
    const auto w = pcpu::alloc_percpu<wide>(a, pcpu::ctx::atomic);
    if (!h || !arr || !w) return 0;
#if PCPU_COMPILE_FAIL == 1
    (void)h.value().at(0);
#else
    (void)arr.value().at(0);
#endif
#if PCPU_COMPILE_FAIL == 2
    (void)pcpu::alloc_percpu<may_throw>(a, pcpu::ctx::atomic, 1);
#endif
#if PCPU_COMPILE_FAIL == 3
    (void)pcpu::alloc_percpu<throwing_dtor>(a, pcpu::ctx::atomic);
#endif
    pcpu::this_cpu_add(a, h.value(), 1L);
#if PCPU_COMPILE_FAIL == 5
    (void)pcpu::this_cpu_read(a, w.value());
#endif
#if PCPU_COMPILE_FAIL == 6
    const auto b = pcpu::alloc_percpu<bool>(a, pcpu::ctx::atomic);
    if (b) pcpu::this_cpu_add(a, b.value(), true);
#endif
#if PCPU_COMPILE_FAIL == 7
    (void)pcpu::sum(w.value());
#endif
    return static_cast<long>(pcpu::sum(h.value()));
}

} // namespace

long use_static_only() {
    static alloc_t a;
    return use(a);
}
