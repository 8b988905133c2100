// SPDX-License-Identifier: MIT
// examples/firmware/runtime_an521.cpp - reset to main() on the mps2-an521 (SSE-200,
// two Cortex-M33): one vector table per core. The rest of the runtime is crt.cpp.
//
// Both cores start in the Secure state. Core 0 runs from reset, through the table at
// INITSVTOR0's reset value (0x10000000, the start of the image). Core 1 is held by the
// SSE-200 (CPUWAIT bit 1 is set at reset) until core 0 has set up memory, pointed
// INITSVTOR1 at core 1's own table and cleared that bit (main_an521.cpp); core 1 then
// starts from reset on its own stack and never touches .data/.bss set-up.
#include "crt.hpp"
#include "semihost.hpp"

#include <cstdint>

extern "C" {
extern std::uint32_t __stack_top;
extern std::uint32_t __stack1_top;

int main();
void systick_handler();        // main_an521.cpp: the per-core tick interrupt
void nmi_handler();            // main_an521.cpp: the watchdog fired
[[noreturn]] void core1_main(); // main_an521.cpp: what core 1 runs
extern void* const vector_table_core1[16]; // main_an521.cpp writes its address to INITSVTOR1

[[noreturn]] void reset_handler() {
    fw_init_memory();
    fw::exit(static_cast<std::uint32_t>(main()));
}

[[noreturn]] void reset_handler_core1() { core1_main(); }

#define PCPU_FW_VECTORS(stack, reset)                                                             \
    {                                                                                             \
        &stack, reinterpret_cast<void*>(&reset),                                                  \
            reinterpret_cast<void*>(&nmi_handler),                                                \
            reinterpret_cast<void*>(&fault_handler), /* HardFault */                              \
            reinterpret_cast<void*>(&fault_handler), /* MemManage */                              \
            reinterpret_cast<void*>(&fault_handler), /* BusFault */                               \
            reinterpret_cast<void*>(&fault_handler), /* UsageFault */                             \
            reinterpret_cast<void*>(&fault_handler), /* SecureFault */                            \
            nullptr, nullptr, nullptr,                                                            \
            reinterpret_cast<void*>(&fault_handler), /* SVCall */                                 \
            reinterpret_cast<void*>(&fault_handler), /* DebugMonitor */                           \
            nullptr, reinterpret_cast<void*>(&fault_handler), /* PendSV */                        \
            reinterpret_cast<void*>(&systick_handler),                                            \
    }

// System exceptions only: the example's interrupts are each core's own SysTick and the
// Secure watchdog's NMI (wired to core 0).
__attribute__((section(".vectors"), used)) void* const vector_table[16] =
    PCPU_FW_VECTORS(__stack_top, reset_handler);
__attribute__((section(".vectors_core1"), used, aligned(128))) void* const vector_table_core1[16] =
    PCPU_FW_VECTORS(__stack1_top, reset_handler_core1);
#undef PCPU_FW_VECTORS
} // extern "C"
