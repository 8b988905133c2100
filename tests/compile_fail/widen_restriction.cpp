// SPDX-License-Identifier: MIT
// Dropping a restriction widens too: ctx_t<nowait> (atomic, nowarn) does not convert
// to ctx_t<atomic>, whose failures are reported.
// expect: would widen a compile-time context
// expect: narrows_to<pcpu::ctx_bits::nowait, pcpu::ctx_bits::atomic>
#include <pcpu/ctx_type.hpp>

int quiet(pcpu::ctx::nowait_t c) {
#ifdef PCPU_COMPILE_FAIL
    pcpu::ctx::atomic_t loud = c;
#else
    pcpu::ctx::nowait_t loud = pcpu::ctx::atomic_t{}; // adding nowarn narrows
    (void)c;
#endif
    return static_cast<pcpu::gfp>(loud).bits;
}
