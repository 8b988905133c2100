// SPDX-License-Identifier: MIT
// examples/firmware/runtime.cpp - reset to main() on the mps2-an386 (Cortex-M4): the
// vector table and the reset handler. The rest of the runtime is crt.cpp.
#include "crt.hpp"
#include "semihost.hpp"

#include <cstdint>

extern "C" {
extern std::uint32_t __stack_top;

int main();

[[noreturn]] void reset_handler() {
    // The FPU must be on before any floating-point instruction (-mfloat-abi=hard lets
    // the compiler use its registers anywhere): CPACR, full access to CP10 and CP11.
    volatile std::uint32_t* const cpacr = reinterpret_cast<std::uint32_t*>(0xE000ED88u);
    *cpacr = *cpacr | (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    fw_init_memory();

    fw::exit(static_cast<std::uint32_t>(main()));
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
