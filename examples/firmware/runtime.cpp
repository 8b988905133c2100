// SPDX-License-Identifier: MIT
// examples/firmware/runtime.cpp - everything between reset and main(), written for
// this example: the vector table, the reset handler, fault handlers that report
// through semihosting, and the four string functions the compiler may call.
//
// No libc is linked (-nostdlib, libgcc only). pcpu needs nothing from one: no heap,
// no stdio, no exceptions. The link itself is the proof: a reference to malloc, printf
// or the unwinder would fail it. It also keeps CI off the 1.5 GB newlib C++ runtime
// package; the newlib and libstdc++ *headers* (<cstring>, <new>, <type_traits>) are
// still used, and are header-only for everything pcpu includes.
//
// Built with -fno-tree-loop-distribute-patterns: otherwise GCC recognises the loops
// below as memcpy/memset and compiles them into calls to themselves.
#include "semihost.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" {
extern std::uint32_t __stack_top;
extern std::uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end;
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();

int main();

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

[[noreturn]] void reset_handler() {
    // The FPU must be on before any floating-point instruction (-mfloat-abi=hard lets
    // the compiler use its registers anywhere): CPACR, full access to CP10 and CP11.
    volatile std::uint32_t* const cpacr = reinterpret_cast<std::uint32_t*>(0xE000ED88u);
    *cpacr = *cpacr | (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    // .data from its load image, .bss zeroed, then the C++ static constructors.
    std::uint32_t* src = &__data_load;
    for (std::uint32_t* dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
    for (std::uint32_t* dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    for (void (**ctor)() = __init_array_start; ctor < __init_array_end; ++ctor) (*ctor)();

    fw::exit(static_cast<std::uint32_t>(main()));
}

// A fault is a failed run: say so and exit with a status CI cannot mistake for success.
[[noreturn]] void fault_handler() {
    fw::write("pcpu firmware: FAIL: hard fault\n");
    fw::exit(4);
}

// Vector table: initial stack pointer, then the handlers. Only the system exceptions
// are listed; the example enables no interrupt.
__attribute__((section(".vectors"), used)) void* const vector_table[16] = {
    &__stack_top,
    reinterpret_cast<void*>(&reset_handler),
    reinterpret_cast<void*>(&fault_handler), // NMI
    reinterpret_cast<void*>(&fault_handler), // HardFault
    reinterpret_cast<void*>(&fault_handler), // MemManage
    reinterpret_cast<void*>(&fault_handler), // BusFault
    reinterpret_cast<void*>(&fault_handler), // UsageFault
    nullptr, nullptr, nullptr, nullptr,
    reinterpret_cast<void*>(&fault_handler), // SVCall
    reinterpret_cast<void*>(&fault_handler), // DebugMonitor
    nullptr,
    reinterpret_cast<void*>(&fault_handler), // PendSV
    reinterpret_cast<void*>(&fault_handler), // SysTick
};
} // extern "C"
