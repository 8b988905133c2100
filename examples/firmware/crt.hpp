// SPDX-License-Identifier: MIT
// examples/firmware/crt.hpp - what the board runtimes take from crt.cpp.
#pragma once

extern "C" {
/// fw_init_memory() - .data from its load image, .bss zeroed, static constructors.
void fw_init_memory();
/// fault_handler() - reports the fault through semihosting and exits with status 4.
[[noreturn]] void fault_handler();
}
