// SPDX-License-Identifier: MIT
// examples/firmware/checks.hpp - what every firmware image's checks share: the failure
// count of a single-core run, check() and check_verified() that report through
// semihosting, the deterministic random numbers, and the closing PASS/FAIL line whose
// exit status the QEMU scripts read.
#pragma once

#include "semihost.hpp"

#include <pcpu/allocator.hpp>

#include <cstdint>

namespace fw {

/// failures - checks failed so far (single-core images; the SMP image keeps one count
/// per core and adds them up).
inline unsigned failures = 0;

/// check(ok, what, expected, actual) - count and report a failed check.
inline void check(bool ok, const char* what, std::uint32_t expected = 0, std::uint32_t actual = 0) {
    if (ok) return;
    ++failures;
    line l;
    l << "FAIL: " << what << " (expected " << expected << ", got " << actual << ")";
    l.end();
}

/// check_verified(a, after) - the allocator's full self-check, reported as a failure
/// naming the operation it followed.
template <class A>
void check_verified(const A& a, const char* after) {
    const pcpu::verify_report rep = a.verify();
    if (rep.ok) return;
    char buf[160];
    line l;
    l << "FAIL: verify after " << after << ": " << rep.describe(buf, sizeof buf);
    l.end();
    ++failures;
}

/// xorshift32 - deterministic pseudo-random numbers: a run is the same every time.
struct xorshift32 {
    std::uint32_t s;
    std::uint32_t next() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        return s;
    }
};

/// finish(image, failed) - the closing line ("<image>: PASS" or "<image>: FAIL (n
/// checks)") and the exit status: 0 or 3.
inline int finish(const char* image, unsigned failed) {
    line r;
    r << image << (failed == 0 ? ": PASS" : ": FAIL (");
    if (failed != 0) r << failed << " checks)";
    r.end();
    return failed == 0 ? 0 : 3;
}

} // namespace fw
