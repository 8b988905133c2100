// SPDX-License-Identifier: MIT
// A run-time context does not become a compile-time one: its value may be narrower.
// expect: a run-time context (pcpu::gfp) cannot become a compile-time context
// expect: runtime_narrows_to<pcpu::ctx_bits::noio>
#include <pcpu/ctx_type.hpp>

namespace {
int needs_noio(pcpu::ctx::noio_t) { return 1; }
int takes_any(pcpu::gfp c) { return c.bits; }
} // namespace

int from_runtime(pcpu::gfp c) {
#ifdef PCPU_COMPILE_FAIL
    return needs_noio(c);
#else
    return takes_any(c) + takes_any(pcpu::ctx::noio_t{}) + needs_noio(pcpu::ctx::noio_t{});
#endif
}
