// SPDX-License-Identifier: MIT
// examples/firmware/runtime.cpp - reset to main() on a single-core board (mps2-an386's
// Cortex-M4, microbit's Cortex-M0): the vector table and the reset handler. The rest
// of the runtime is crt.cpp.
#include "crt.hpp"
#include "semihost.hpp"

#include <cstdint>

extern "C" {
extern std::uint32_t __stack_top;

int main();

/// systick_handler() - an image that enables SysTick defines its own; without one a
/// tick is unexpected, and reported as a fault.
__attribute__((weak)) void systick_handler() { fault_handler(); }

[[noreturn]] void reset_handler() {
#if defined(__ARM_FP)
    // The FPU must be on before any floating-point instruction (-mfloat-abi=hard lets
    // the compiler use its registers anywhere): CPACR, full access to CP10 and CP11.
    volatile std::uint32_t* const cpacr = reinterpret_cast<std::uint32_t*>(0xE000ED88u);
    *cpacr = *cpacr | (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif

    fw_init_memory();

    fw::exit(static_cast<std::uint32_t>(main()));
}

// Vector table: initial stack pointer, then the handlers. Only the system exceptions
// are listed (ARMv6-M has no MemManage, BusFault, UsageFault or DebugMonitor: those
// entries are reserved there and never taken).
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
    reinterpret_cast<void*>(&systick_handler),
};
} // extern "C"
