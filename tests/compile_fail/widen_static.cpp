// SPDX-License-Identifier: MIT
// A compile-time context cannot be widened: ctx_t<noio> does not convert to ctx_t<full>.
// expect: would widen a compile-time context
// expect: narrows_to<pcpu::ctx_bits::noio, pcpu::ctx_bits::full>
#include <pcpu/ctx_type.hpp>

namespace {
// A callee that may do anything a full context allows.
int needs_full(pcpu::ctx::full_t) { return 1; }
int needs_noio(pcpu::ctx::noio_t) { return 2; }
} // namespace

int under_noio(pcpu::ctx::noio_t c) {
#ifdef PCPU_COMPILE_FAIL
    return needs_full(c);
#else
    (void)needs_full;
    return needs_noio(c) + needs_noio(pcpu::ctx::full_t{}); // narrowing is fine
#endif
}
