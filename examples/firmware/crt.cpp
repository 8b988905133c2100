// SPDX-License-Identifier: MIT
// examples/firmware/crt.cpp - the C runtime every firmware image here shares: the four
// string functions the compiler may call, memory set-up before main() (.data from its
// load image, .bss zeroed, C++ static constructors), and the fault handler. The
// vector tables and reset handlers are per board (runtime.cpp, runtime_an521.cpp).
//
// No libc is linked (-nostdlib, libgcc only). pcpu needs nothing from one: no heap,
// no stdio, no exceptions. The link itself is the proof: a reference to malloc, printf
// or the unwinder would fail it. It also keeps CI off the 1.5 GB newlib C++ runtime
// package; the newlib and libstdc++ *headers* (<cstring>, <new>, <type_traits>) are
// still used, and are header-only for everything pcpu includes.
//
// Built with -fno-tree-loop-distribute-patterns: otherwise GCC recognises the loops
// below as memcpy/memset and compiles them into calls to themselves.
#include "crt.hpp"
#include "semihost.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" {
extern std::uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end;
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();

void* memcpy(void* __restrict dst, const void* __restrict src, std::size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    while (n-- != 0) *d++ = *s++;
    return dst;
}
void* memmove(void* dst, const void* src, std::size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    if (d < s) {
        while (n-- != 0) *d++ = *s++;
    } else {
        while (n != 0) {
            --n;
            d[n] = s[n];
        }
    }
    return dst;
}
void* memset(void* dst, int c, std::size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    while (n-- != 0) *d++ = static_cast<unsigned char>(c);
    return dst;
}
int memcmp(const void* a, const void* b, std::size_t n) {
    const auto* x = static_cast<const unsigned char*>(a);
    const auto* y = static_cast<const unsigned char*>(b);
    for (; n != 0; --n, ++x, ++y)
        if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}

void fw_init_memory() {
    std::uint32_t* src = &__data_load;
    for (std::uint32_t* dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
    for (std::uint32_t* dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    for (void (**ctor)() = __init_array_start; ctor < __init_array_end; ++ctor) (*ctor)();
}

// A fault is a failed run: say so and exit with a status CI cannot mistake for success.
[[noreturn]] void fault_handler() {
    fw::write("pcpu firmware: FAIL: hard fault\n");
    fw::exit(4);
}

// Static objects are never destroyed here (the run ends in main's return): registering
// a destructor is accepted and dropped, so code written with ordinary statics links.
void* __dso_handle = nullptr;
int __aeabi_atexit(void*, void (*)(void*), void*) { return 0; }

// newlib's assert() hook, for code built with plain <cassert> (the images that do not
// route PCPU_ASSERT to their own report): a failed assertion is a failed run, status 5.
[[noreturn]] void __assert_func(const char* file, int line, const char*, const char* cond) {
    fw::line l;
    l << "pcpu firmware: FAIL: assertion " << cond << " (" << file << ":" << static_cast<std::uint32_t>(line) << ")";
    l.end();
    fw::exit(5);
}
} // extern "C"
