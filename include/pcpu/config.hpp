// SPDX-License-Identifier: MIT
// pcpu/config.hpp - build configuration, compile-time geometry and the assertion hook.
//
// Everything that sizes an array is decided here at compile time (page size, minimum
// allocation); everything the platform decides (CPU count, unit size, first-chunk
// sizes) is a run-time value handed to allocator::init().
#pragma once

#include <cstddef>
#include <cstdint>

/// PCPU_ASSERT(cond) - contract checks inside pcpu. Bad *input* never reaches an
/// assertion: it is reported as an error value. Assertions guard internal invariants
/// only. Override before including any pcpu header (e.g. to a firmware trap).
#ifndef PCPU_ASSERT
#include <cassert>
#define PCPU_ASSERT(cond) assert(cond)
#endif

/// PCPU_TRAP(msg) - what pcpu does, in every build, when a call has no answer it could
/// return: result<T>::value() on an error, and (with PCPU_CHECKS) a precondition that
/// failed. Never returns. The default stops at once (an undefined instruction on a
/// Cortex-M: a HardFault the firmware's handler sees); firmware overrides it before
/// including any pcpu header, e.g. to log msg and reset. msg is a static string.
#ifndef PCPU_TRAP
#define PCPU_TRAP(msg) ::pcpu::detail::trap(msg)
#endif

/// PCPU_CHECKS - 1 turns the preconditions of the calls that have no error to return
/// into PCPU_TRAP in release builds too: a CPU index in ptr(), per_cpu() and the
/// this-CPU operations; an index in percpu<T[n]>::at() and static_handle(); a counter
/// used after its allocator was shut down. It also makes free_percpu() look its handle
/// up before running destructors (see percpu.hpp). Each check is one compare on the
/// path it guards (docs/performance.md has the cost). 0 (the default) leaves them
/// preconditions, checked only by PCPU_ASSERT.
#ifndef PCPU_CHECKS
#define PCPU_CHECKS 0
#endif

/// PCPU_CHECK(cond, msg) - a precondition: PCPU_TRAP(msg) when it fails under
/// PCPU_CHECKS, else PCPU_ASSERT(cond).
#if PCPU_CHECKS
#define PCPU_CHECK(cond, msg) (__builtin_expect(!!(cond), 1) ? void(0) : PCPU_TRAP(msg))
#else
#define PCPU_CHECK(cond, msg) PCPU_ASSERT(cond)
#endif

/// PCPU_DEFAULT_PAGE_SHIFT - log2 of the page size (the bitmap block in the kernel's
/// layout) used when a platform does not name one. 12 (4 KiB) matches Linux; firmware with little RAM may
/// choose 10 (1 KiB pages, 256-bit blocks).
/// PCPU_HOT_INLINE - inline a small helper of the hot paths into every caller, except
/// when optimising for size (-Os, where a call is the smaller choice).
#if defined(__GNUC__) && !defined(__OPTIMIZE_SIZE__)
#define PCPU_HOT_INLINE inline __attribute__((always_inline))
#else
#define PCPU_HOT_INLINE inline
#endif
/// PCPU_SIZE_NOINLINE - keep a cold path of a hot function (a failure report) out of
/// line when optimising for size, where it takes its buffer off the hot function's stack
/// and lets reports share code; elsewhere the compiler decides, and leaves the hot
/// function's code as it was.
#if defined(__GNUC__) && defined(__OPTIMIZE_SIZE__)
#define PCPU_SIZE_NOINLINE __attribute__((noinline))
#else
#define PCPU_SIZE_NOINLINE
#endif

/// PCPU_FIT_WORD_SEARCH - 1: after scan_runs free runs, a find-fit (and a block refresh
/// that holds a largest run) searches the rest of its window a word at a time, so its
/// cost is bounded by the window's words whatever the holes (internal/chunk.hpp states
/// the bound). 0: run by run to the end, as the kernel does: the same first fit, about
/// 600 bytes less Cortex-M4 code, at a cost that grows with the holes in the window (up
/// to (bits + B) / 2 runs). Default 1, and 0 when optimising for size (-Os), where
/// small units keep windows short; define it to choose.
#ifndef PCPU_FIT_WORD_SEARCH
#if defined(__OPTIMIZE_SIZE__)
#define PCPU_FIT_WORD_SEARCH 0
#else
#define PCPU_FIT_WORD_SEARCH 1
#endif
#endif

/// PCPU_CACHE_LINE - the bytes of a cache line, for the layout of objects that several
/// CPUs write (counter.hpp keeps what a fold writes off the line every add reads). 64 by
/// default; 0 on a Cortex-M (M-profile), whose cores have no coherent data caches to
/// share a line between, so padding would only cost RAM. Define it to choose (128 for
/// cores with 128-byte lines, 0 for no padding).
#ifndef PCPU_CACHE_LINE
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#define PCPU_CACHE_LINE 0
#else
#define PCPU_CACHE_LINE 64
#endif
#endif

#ifndef PCPU_DEFAULT_PAGE_SHIFT
#define PCPU_DEFAULT_PAGE_SHIFT 12
#endif

namespace pcpu {

namespace detail {
/// trap(msg) - PCPU_TRAP's default. msg is there for a debugger (and for overrides).
[[noreturn]] inline void trap(const char* msg) noexcept {
    (void)msg;
    __builtin_trap();
}
} // namespace detail

/// The kernel's granule: one bitmap bit stands for this many bytes, the minimum size and
/// alignment. chunk_layout (chunk_layout.hpp) may choose a larger one; the allocator's
/// own min_alloc_size is the one in force.
inline constexpr unsigned min_alloc_shift = 2;
inline constexpr std::size_t min_alloc_size = std::size_t{1} << min_alloc_shift;

/// page_geometry<PageShift> - sizes derived from the page size. In the kernel's layout a
/// bitmap block is one page, as in Linux since 2019 (block_bits below); chunk_layout may
/// choose smaller blocks, and the chunk keeps population per page all the same.
template <unsigned PageShift>
struct page_geometry {
    static_assert(PageShift >= 7 && PageShift <= 16,
                  "pcpu: page shift must be in [7, 16] (block of 32 to 16384 bits)");
    static constexpr unsigned page_shift = PageShift;
    static constexpr std::size_t page_size = std::size_t{1} << PageShift;
    /// bits per page at the kernel's granule (one block per page in its layout)
    static constexpr std::uint32_t block_bits =
        static_cast<std::uint32_t>(page_size >> min_alloc_shift);
};

} // namespace pcpu
