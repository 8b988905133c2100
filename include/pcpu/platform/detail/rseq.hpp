// SPDX-License-Identifier: MIT
// pcpu/platform/detail/rseq.hpp - restartable sequences (Linux rseq) for this-CPU
// operations on hosted platforms: a read-modify-write of the running CPU's copy made of
// plain loads and one plain store, which the kernel restarts if the thread is preempted,
// migrated or signalled before the store.
//
// The ABI (Linux uapi linux/rseq.h, glibc sys/rseq.h). glibc 2.35 and later registers
// one struct rseq per thread at thread pointer + __rseq_offset and exports
// __rseq_size (0 where registration is off: GLIBC_TUNABLES=glibc.pthread.rseq=0, a
// kernel without rseq, valgrind). The kernel keeps its cpu_id field equal to the CPU
// the thread runs on, and before returning to a thread whose rseq_cs field points at a
// descriptor {start_ip, post_commit_offset, abort_ip} with the thread's IP in
// [start_ip, start_ip + post_commit_offset) it moves the IP to abort_ip; the four bytes
// before abort_ip must hold the process's signature RSEQ_SIG (a guard against jumping
// to an attacker's address). So a critical section is:
//
//     rseq_cs = &descriptor                 (outside: may be preempted freely)
//  start:
//     cpu  = rseq->cpu_id                   (the CPU from here on, until preempted)
//     slot = base + offsets[cpu]
//     load, compute                          plain instructions
//     store                                  the commit: one instruction, the last
//  post_commit:
//
// Preempted anywhere before the store, the thread resumes at the abort handler, which
// reports "aborted" and the caller starts again: so the store is made on the CPU whose
// copy was read, with nothing else of that CPU having run in between. That is exactly
// the pinning guard of percpu.hpp without the cost of pinning: a this-CPU add is a
// load, an add and a store, with no locked instruction. Other threads on other CPUs
// are not stopped: a copy must be written only by sections running on its CPU (see
// percpu.hpp for what that asks of the other operations).
//
// Results. Every primitive returns an rseq_result: done; changed (compare-and-store
// found another value, returned in `seen`; nothing stored); unusable (this thread has
// no rseq area, or the CPU id is not below nr: the caller falls back to atomics).
// Aborts are retried here and never returned.
//
// Where it is compiled: Linux with glibc >= 2.35 on x86-64 and AArch64, not under
// ThreadSanitizer (it cannot see through the asm, so it would see the plain store as a
// race: TSan builds keep the atomics) and not with PCPU_NO_RSEQ defined. Elsewhere
// PCPU_HOST_RSEQ is 0 and nothing here exists.
#pragma once

#include "../../platform.hpp"

#include <cstdint>
#include <type_traits>

#if !defined(PCPU_NO_RSEQ) && defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) &&            \
    defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define PCPU_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PCPU_DETAIL_TSAN 1
#endif
#endif

#if !defined(PCPU_NO_RSEQ) && !defined(PCPU_DETAIL_TSAN) && defined(RSEQ_SIG) && defined(__GLIBC__) &&            \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)) && (defined(__x86_64__) || defined(__aarch64__))
#define PCPU_HOST_RSEQ 1
#else
#define PCPU_HOST_RSEQ 0
#endif

namespace pcpu {
namespace detail {

#if PCPU_HOST_RSEQ

/// rseq_area() - the calling thread's struct rseq. Only where rseq_registered().
__attribute__((always_inline)) inline struct rseq* rseq_area() noexcept {
    return reinterpret_cast<struct rseq*>(static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset);
}

/// rseq_registered() - glibc registered rseq areas in this process.
inline bool rseq_registered() noexcept { return __rseq_size != 0; }

/// rseq_cpu() - the running CPU from the thread's rseq area: one load. An unregistered
/// thread's area holds a negative id (returned here as a huge unsigned). Only where
/// rseq_registered().
__attribute__((always_inline)) inline unsigned rseq_cpu() noexcept {
    return __atomic_load_n(&rseq_area()->cpu_id, __ATOMIC_RELAXED);
}

// The descriptor lives in section __rseq_cs (aligned 32, as struct rseq_cs asks); its
// address also goes to __rseq_cs_ptr_array, which debuggers and checkpointing tools
// read to find every critical section of a binary. The abort handler and the exits that
// leave the section without storing live in __rseq_failure, out of the hot path; each
// sets `st` and jumps back to the end. Each piece joins the section group of the code
// around it (flag "?"): where the linker drops a duplicate inline copy, the copy's
// descriptor and handler go with it. Numeric labels: 1 start, 2 post-commit, 3 the
// descriptor, 4 abort, 5 unusable, 6 changed.
#if defined(__x86_64__)
#define PCPU_RSEQ_ENTER                                                                                       \
    ".pushsection __rseq_cs, \"aw?\"\n\t"                                                                     \
    ".balign 32\n\t"                                                                                          \
    "3:\n\t"                                                                                                  \
    ".long 0, 0\n\t"                                                                                          \
    ".quad 1f, 2f - 1f, 4f\n\t"                                                                               \
    ".popsection\n\t"                                                                                         \
    ".pushsection __rseq_cs_ptr_array, \"aw?\"\n\t"                                                           \
    ".balign 8\n\t"                                                                                           \
    ".quad 3b\n\t"                                                                                            \
    ".popsection\n\t"                                                                                         \
    "xorl %k[st], %k[st]\n\t"                                                                                 \
    "leaq 3b(%%rip), %[slot]\n\t"                                                                             \
    "movq %[slot], 8(%[rs])\n\t"                                                                              \
    "1:\n\t"                                                                                                  \
    "movl 4(%[rs]), %k[slot]\n\t"                                                                             \
    "cmpl %k[nr], %k[slot]\n\t"                                                                               \
    "jae 5f\n\t"                                                                                              \
    "movq (%[offs], %[slot], 8), %[slot]\n\t"                                                                 \
    "addq %[base], %[slot]\n\t"
#define PCPU_RSEQ_LEAVE                                                                                       \
    "2:\n\t"                                                                                                  \
    ".pushsection __rseq_failure, \"ax?\"\n\t"                                                                 \
    ".long 0x53053053\n\t" /* RSEQ_SIG on x86 */                                                             \
    "4:\n\t"                                                                                                  \
    "movl $1, %k[st]\n\t"                                                                                     \
    "jmp 2b\n\t"                                                                                              \
    "5:\n\t"                                                                                                  \
    "movl $2, %k[st]\n\t"                                                                                     \
    "jmp 2b\n\t"                                                                                              \
    "6:\n\t"                                                                                                  \
    "movl $3, %k[st]\n\t"                                                                                     \
    "jmp 2b\n\t"                                                                                              \
    ".popsection\n\t"
#define PCPU_RSEQ_ADD(sfx, mod)                                                                               \
    PCPU_RSEQ_ENTER "mov" sfx " (%[slot]), %" mod "[val]\n\t"                                                 \
                    "add" sfx " %" mod "[v], %" mod "[val]\n\t"                                               \
                    "mov" sfx " %" mod "[val], (%[slot])\n\t" PCPU_RSEQ_LEAVE
#define PCPU_RSEQ_CMPXCHG(sfx, mod)                                                                           \
    PCPU_RSEQ_ENTER "mov" sfx " (%[slot]), %" mod "[val]\n\t"                                                 \
                    "cmp" sfx " %" mod "[expect], %" mod "[val]\n\t"                                          \
                    "jne 6f\n\t"                                                                              \
                    "mov" sfx " %" mod "[desired], (%[slot])\n\t" PCPU_RSEQ_LEAVE
// The bounded add: the 32-bit copy, sign-extended, plus v must lie strictly inside
// (lo, hi), computed in 64 bits so that no sum wraps; else "changed", nothing stored.
#define PCPU_RSEQ_ADD_WITHIN                                                                                  \
    PCPU_RSEQ_ENTER "movslq (%[slot]), %[val]\n\t"                                                            \
                    "leaq (%[val], %[v]), %[n]\n\t"                                                           \
                    "cmpq %[hi], %[n]\n\t"                                                                    \
                    "jge 6f\n\t"                                                                              \
                    "cmpq %[lo], %[n]\n\t"                                                                    \
                    "jle 6f\n\t"                                                                              \
                    "movl %k[n], (%[slot])\n\t" PCPU_RSEQ_LEAVE
#define PCPU_RSEQ_W32 "l", "k"
#define PCPU_RSEQ_W64 "q", "q"
#elif defined(__aarch64__)
#define PCPU_RSEQ_ENTER                                                                                       \
    ".pushsection __rseq_cs, \"aw?\"\n\t"                                                                     \
    ".balign 32\n\t"                                                                                          \
    "3:\n\t"                                                                                                  \
    ".long 0, 0\n\t"                                                                                          \
    ".quad 1f, 2f - 1f, 4f\n\t"                                                                               \
    ".popsection\n\t"                                                                                         \
    ".pushsection __rseq_cs_ptr_array, \"aw?\"\n\t"                                                           \
    ".balign 8\n\t"                                                                                           \
    ".quad 3b\n\t"                                                                                            \
    ".popsection\n\t"                                                                                         \
    "mov %w[st], #0\n\t"                                                                                      \
    "adrp %[slot], 3b\n\t"                                                                                    \
    "add %[slot], %[slot], :lo12:3b\n\t"                                                                      \
    "str %[slot], [%[rs], #8]\n\t"                                                                            \
    "1:\n\t"                                                                                                  \
    "ldr %w[slot], [%[rs], #4]\n\t"                                                                           \
    "cmp %w[slot], %w[nr]\n\t"                                                                                \
    "b.hs 5f\n\t"                                                                                             \
    "ldr %[slot], [%[offs], %[slot], lsl #3]\n\t"                                                             \
    "add %[slot], %[slot], %[base]\n\t"
#define PCPU_RSEQ_LEAVE                                                                                       \
    "2:\n\t"                                                                                                  \
    ".pushsection __rseq_failure, \"ax?\"\n\t"                                                                \
    ".balign 4\n\t"                                                                                           \
    ".long 0xd428bc00\n\t" /* RSEQ_SIG on AArch64 (brk #0x45e0) */                                           \
    "4:\n\t"                                                                                                  \
    "mov %w[st], #1\n\t"                                                                                      \
    "b 2b\n\t"                                                                                                \
    "5:\n\t"                                                                                                  \
    "mov %w[st], #2\n\t"                                                                                      \
    "b 2b\n\t"                                                                                                \
    "6:\n\t"                                                                                                  \
    "mov %w[st], #3\n\t"                                                                                      \
    "b 2b\n\t"                                                                                                \
    ".popsection\n\t"
#define PCPU_RSEQ_ADD(sfx, mod)                                                                               \
    PCPU_RSEQ_ENTER "ldr %" mod "[val], [%[slot]]\n\t"                                                        \
                    "add %" mod "[val], %" mod "[val], %" mod "[v]\n\t"                                       \
                    "str %" mod "[val], [%[slot]]\n\t" PCPU_RSEQ_LEAVE
#define PCPU_RSEQ_CMPXCHG(sfx, mod)                                                                           \
    PCPU_RSEQ_ENTER "ldr %" mod "[val], [%[slot]]\n\t"                                                        \
                    "cmp %" mod "[val], %" mod "[expect]\n\t"                                                 \
                    "b.ne 6f\n\t"                                                                             \
                    "str %" mod "[desired], [%[slot]]\n\t" PCPU_RSEQ_LEAVE
#define PCPU_RSEQ_ADD_WITHIN                                                                                  \
    PCPU_RSEQ_ENTER "ldrsw %[val], [%[slot]]\n\t"                                                             \
                    "add %[n], %[val], %[v]\n\t"                                                              \
                    "cmp %[n], %[hi]\n\t"                                                                     \
                    "b.ge 6f\n\t"                                                                             \
                    "cmp %[n], %[lo]\n\t"                                                                     \
                    "b.le 6f\n\t"                                                                             \
                    "str %w[n], [%[slot]]\n\t" PCPU_RSEQ_LEAVE
#define PCPU_RSEQ_W32 "", "w"
#define PCPU_RSEQ_W64 "", "x"
#endif

#define PCPU_RSEQ_ASM2(body, ...) body(__VA_ARGS__)
#define PCPU_RSEQ_ASM(body, width) PCPU_RSEQ_ASM2(body, width)

/// rseq_word<U> - the widths a section stores in one instruction.
template <class U>
inline constexpr bool rseq_word = std::is_same<U, std::uint32_t>::value || std::is_same<U, std::uint64_t>::value;

/// rseq_add(base, offsets, nr, v, out) - the running CPU's copy (base +
/// offsets[cpu]) += v, wrapping; out = the new value. Only where rseq_registered() (the
/// platform checks once, not every call). Inlined: the section is a few instructions.
template <class U>
__attribute__((always_inline)) inline rseq_result rseq_add(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr, U v, U& out) noexcept {
    static_assert(rseq_word<U>, "pcpu: rseq sections store 32 or 64 bits");
    struct rseq* const rs = rseq_area();
    for (;;) {
        unsigned st;
        std::uintptr_t slot;
        U val;
        if constexpr (sizeof(U) == 4)
            __asm__ __volatile__(PCPU_RSEQ_ASM(PCPU_RSEQ_ADD, PCPU_RSEQ_W32)
                                 : [st] "=&r"(st), [slot] "=&r"(slot), [val] "=&r"(val)
                                 : [rs] "r"(rs), [nr] "r"(nr), [offs] "r"(offsets), [base] "r"(base), [v] "r"(v)
                                 : "memory", "cc");
        else
            __asm__ __volatile__(PCPU_RSEQ_ASM(PCPU_RSEQ_ADD, PCPU_RSEQ_W64)
                                 : [st] "=&r"(st), [slot] "=&r"(slot), [val] "=&r"(val)
                                 : [rs] "r"(rs), [nr] "r"(nr), [offs] "r"(offsets), [base] "r"(base), [v] "r"(v)
                                 : "memory", "cc");
        if (st == 0) {
            out = val;
            return rseq_result::done;
        }
        if (st == 2) return rseq_result::unusable;
        // st == 1: aborted before the store; nothing was written. Again.
    }
}

/// rseq_cmpxchg(base, offsets, nr, expect, desired, seen) - if the running CPU's copy
/// equals expect, store desired (done); else nothing stored and seen = what it held
/// (changed). Only where rseq_registered().
template <class U>
__attribute__((always_inline)) inline rseq_result rseq_cmpxchg(std::uintptr_t base, const std::uintptr_t* offsets, unsigned nr, U expect, U desired,
                         U& seen) noexcept {
    static_assert(rseq_word<U>, "pcpu: rseq sections store 32 or 64 bits");
    struct rseq* const rs = rseq_area();
    for (;;) {
        unsigned st;
        std::uintptr_t slot;
        U val;
        if constexpr (sizeof(U) == 4)
            __asm__ __volatile__(PCPU_RSEQ_ASM(PCPU_RSEQ_CMPXCHG, PCPU_RSEQ_W32)
                                 : [st] "=&r"(st), [slot] "=&r"(slot), [val] "=&r"(val)
                                 : [rs] "r"(rs), [nr] "r"(nr), [offs] "r"(offsets), [base] "r"(base),
                                   [expect] "r"(expect), [desired] "r"(desired)
                                 : "memory", "cc");
        else
            __asm__ __volatile__(PCPU_RSEQ_ASM(PCPU_RSEQ_CMPXCHG, PCPU_RSEQ_W64)
                                 : [st] "=&r"(st), [slot] "=&r"(slot), [val] "=&r"(val)
                                 : [rs] "r"(rs), [nr] "r"(nr), [offs] "r"(offsets), [base] "r"(base),
                                   [expect] "r"(expect), [desired] "r"(desired)
                                 : "memory", "cc");
        if (st == 0) return rseq_result::done;
        if (st == 3) {
            seen = val;
            return rseq_result::changed;
        }
        if (st == 2) return rseq_result::unusable;
    }
}

/// rseq_add_within(base, offsets, nr, v, lo, hi, seen) - the running CPU's int32_t
/// copy += v if the sum lies strictly inside (lo, hi) (done); else nothing stored and
/// seen = what the copy held (changed). One section: the bounded add of a counter's
/// delta without a compare-and-store round. -2^31 <= lo < hi <= 2^31 - 1 and v within
/// int32_t, so the 64-bit sum cannot wrap. Only where rseq_registered().
__attribute__((always_inline)) inline rseq_result rseq_add_within(std::uintptr_t base, const std::uintptr_t* offsets,
                                                                  unsigned nr, std::int32_t v, std::int32_t lo,
                                                                  std::int32_t hi, std::int32_t& seen) noexcept {
    struct rseq* const rs = rseq_area();
    const std::int64_t v64 = v, lo64 = lo, hi64 = hi;
    for (;;) {
        unsigned st;
        std::uintptr_t slot;
        std::int64_t val, n;
        __asm__ __volatile__(PCPU_RSEQ_ADD_WITHIN
                             : [st] "=&r"(st), [slot] "=&r"(slot), [val] "=&r"(val), [n] "=&r"(n)
                             : [rs] "r"(rs), [nr] "r"(nr), [offs] "r"(offsets), [base] "r"(base), [v] "r"(v64),
                               [lo] "r"(lo64), [hi] "r"(hi64)
                             : "memory", "cc");
        if (st == 0) return rseq_result::done;
        if (st == 3) {
            seen = static_cast<std::int32_t>(val);
            return rseq_result::changed;
        }
        if (st == 2) return rseq_result::unusable;
    }
}

#undef PCPU_RSEQ_ENTER
#undef PCPU_RSEQ_LEAVE
#undef PCPU_RSEQ_ADD_WITHIN
#undef PCPU_RSEQ_ADD
#undef PCPU_RSEQ_CMPXCHG
#undef PCPU_RSEQ_W32
#undef PCPU_RSEQ_W64
#undef PCPU_RSEQ_ASM2
#undef PCPU_RSEQ_ASM

#endif // PCPU_HOST_RSEQ

} // namespace detail
} // namespace pcpu
