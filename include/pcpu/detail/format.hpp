// SPDX-License-Identifier: MIT
// pcpu/detail/format.hpp - a fixed-buffer message builder for warnings and verify
// reports. Firmware has no printf to spare and pcpu never allocates for a message.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pcpu::detail {

template <std::size_t N>
class message {
public:
    message() noexcept { buf_[0] = '\0'; }

    message& operator<<(const char* s) noexcept {
        for (; s != nullptr && *s != '\0'; ++s) put(*s);
        return *this;
    }
    // Each unsigned type is formatted in its own width: on a 32-bit target a 32-bit value
    // never pulls in the C runtime's 64-bit division.
    message& operator<<(unsigned long long v) noexcept { return decimal(v); }
    message& operator<<(unsigned long v) noexcept { return decimal(v); }
    message& operator<<(unsigned v) noexcept { return decimal(v); }
    message& operator<<(int v) noexcept {
        if (v < 0) put('-');
        // 0u - v is |v| for every int, INT_MIN included.
        return decimal(v < 0 ? 0u - static_cast<unsigned>(v) : static_cast<unsigned>(v));
    }
    /// hex(v) - "0x..." for addresses.
    message& hex(std::uintptr_t v) noexcept {
        *this << "0x";
        bool started = false;
        for (int shift = static_cast<int>(sizeof(v) * 8) - 4; shift >= 0; shift -= 4) {
            const unsigned d = static_cast<unsigned>(v >> shift) & 0xfu;
            if (d == 0 && !started && shift != 0) continue;
            started = true;
            put(static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10));
        }
        return *this;
    }
    const char* c_str() const noexcept { return buf_; }

private:
    template <class U>
    message& decimal(U v) noexcept {
        char tmp[24]; // 20 digits hold any 64-bit value
        std::size_t n = 0;
        do {
            tmp[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (n != 0) put(tmp[--n]);
        return *this;
    }
    void put(char c) noexcept {
        if (len_ + 1 < N) {
            buf_[len_++] = c;
            buf_[len_] = '\0';
        }
    }
    char buf_[N];
    std::size_t len_ = 0;
};

} // namespace pcpu::detail
