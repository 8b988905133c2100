// SPDX-License-Identifier: MIT
// tests/support/test_scale.hpp - the size of randomized tests.
//
// PCPU_TEST_SCALE=N (default 1) divides the iteration counts of the randomized suites:
// the same cases, the same kinds of operations, fewer of them. The armhf stage sets it
// (tests/meson.build), because under qemu-arm emulation every instruction costs ~10x
// and the native run already covers the full counts on every commit.
#pragma once

#include <cstdlib>

namespace pcpu_test {

/// test_scale() - the divisor, at least 1.
inline unsigned test_scale() noexcept {
    const char* v = std::getenv("PCPU_TEST_SCALE");
    const long n = v != nullptr ? std::strtol(v, nullptr, 10) : 1;
    return n >= 1 ? static_cast<unsigned>(n) : 1u;
}

/// scaled(n) - n divided by the scale, never below 1.
template <class T>
T scaled(T n) noexcept {
    const T s = static_cast<T>(n / static_cast<T>(test_scale()));
    return s >= 1 ? s : T{1};
}

} // namespace pcpu_test
