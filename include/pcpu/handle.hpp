// SPDX-License-Identifier: MIT
// pcpu/handle.hpp - the per-CPU pointer every allocation returns.
#pragma once

#include <cstdint>

namespace pcpu {

/// handle - a per-CPU pointer: the address of CPU 0's copy. Never dereference it
/// directly on another CPU; resolve it with allocator::ptr(h, cpu). A default
/// constructed handle is null.
class handle {
public:
    constexpr handle() noexcept = default;
    constexpr explicit handle(std::uintptr_t cpu0_addr) noexcept : addr_(cpu0_addr) {}
    constexpr std::uintptr_t addr() const noexcept { return addr_; }
    constexpr explicit operator bool() const noexcept { return addr_ != 0; }
    friend constexpr bool operator==(handle a, handle b) noexcept { return a.addr_ == b.addr_; }
    friend constexpr bool operator!=(handle a, handle b) noexcept { return a.addr_ != b.addr_; }

private:
    std::uintptr_t addr_ = 0;
};

} // namespace pcpu
