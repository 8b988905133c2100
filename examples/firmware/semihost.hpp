// SPDX-License-Identifier: MIT
// examples/firmware/semihost.hpp - talking to the host through Arm semihosting: the
// debugger (here QEMU, -semihosting-config enable=on,target=native) services a
// `bkpt 0xab` with the operation in r0 and its argument in r1. Two operations are
// enough: write a string, and exit with a status.
#pragma once

#include <pcpu/detail/format.hpp>

#include <cstddef>
#include <cstdint>

namespace fw {

enum : int {
    sys_write0 = 0x04,        // r1: NUL-terminated string
    sys_exit_extended = 0x20, // r1: {reason, subcode}; QEMU exits with subcode
};
/// ADP_Stopped_ApplicationExit: "the program finished". SYS_EXIT_EXTENDED is used
/// rather than SYS_EXIT because on AArch32 SYS_EXIT takes the reason alone (r1 holds
/// it, not a pointer), so QEMU can only report 0 or 1; the extended call carries the
/// status itself (semihosting v2, QEMU >= 4.2).
constexpr std::uint32_t adp_stopped_application_exit = 0x20026;

inline int semihost(int op, const void* arg) noexcept {
    register int r0 __asm__("r0") = op;
    register const void* r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

inline void write(const char* s) noexcept { semihost(sys_write0, s); }

[[noreturn]] inline void exit(std::uint32_t status) noexcept {
    const std::uint32_t block[2] = {adp_stopped_application_exit, status};
    semihost(sys_exit_extended, block);
    for (;;) __asm__ volatile("wfi"); // only without a debugger attached
}

/// line - one line of output: pcpu's own fixed-buffer formatter (no printf: it would
/// cost more than pcpu), plus right-aligned columns and the semihosting write.
class line {
public:
    template <class T>
    line& operator<<(T v) noexcept {
        m_ << v;
        return *this;
    }
    /// col(v, w) - v right-aligned to w characters (numbers in tables).
    line& col(std::uint32_t v, unsigned w) noexcept {
        unsigned digits = 1;
        for (std::uint32_t t = v; t >= 10; t /= 10) ++digits;
        while (digits++ < w) m_ << " ";
        return *this << v;
    }
    /// hex(v) - v as 0x... (addresses).
    line& hex(std::uintptr_t v) noexcept {
        m_.hex(v);
        return *this;
    }
    /// end() - write the line and start again.
    void end() noexcept {
        m_ << "\n";
        write(m_.c_str());
        m_ = pcpu::detail::message<160>{};
    }

private:
    pcpu::detail::message<160> m_;
};

} // namespace fw
