// SPDX-License-Identifier: MIT
// pcpu/error.hpp - errors are values: an enum and a small result type. No exceptions.
#pragma once

#include "config.hpp"

namespace pcpu {

/// errc - why an operation failed. Every bad input has its own value and leaves the
/// allocator exactly as it was.
enum class errc : std::uint8_t {
    ok = 0,
    zero_size,        ///< alloc of 0 bytes
    size_too_large,   ///< alloc larger than the unit (or than any chunk could hold)
    bad_alignment,    ///< alignment not a power of two, or above the page size
    no_space,         ///< no chunk has a fitting free region and none may be created
    would_block,      ///< context may not block and only unpopulated space would fit
    out_of_memory,    ///< a platform callback (metadata, pages, address space, map) failed
    invalid_pointer,  ///< free of an address pcpu never returned (or not its start)
    double_free,      ///< free of an area that is not allocated (already freed)
    bad_config,       ///< init() with an impossible geometry
    not_initialized,  ///< operation before a successful init()
};

/// errc_name(e) - a short, stable, human-readable name.
constexpr const char* errc_name(errc e) noexcept {
    switch (e) {
    case errc::ok: return "ok";
    case errc::zero_size: return "zero size";
    case errc::size_too_large: return "size too large";
    case errc::bad_alignment: return "bad alignment";
    case errc::no_space: return "no space";
    case errc::would_block: return "would block (atomic context, no populated space)";
    case errc::out_of_memory: return "out of memory";
    case errc::invalid_pointer: return "invalid pointer";
    case errc::double_free: return "double free";
    case errc::bad_config: return "bad configuration";
    case errc::not_initialized: return "not initialized";
    }
    return "?";
}

/// result<T> - a value or an error. T must be trivially copyable and default
/// constructible (handles, offsets); this keeps result usable without exceptions.
template <class T>
class [[nodiscard]] result {
public:
    constexpr result(T v) noexcept : value_(v), err_(errc::ok) {}
    constexpr result(errc e) noexcept : value_(), err_(e) { PCPU_ASSERT(e != errc::ok); }

    constexpr bool ok() const noexcept { return err_ == errc::ok; }
    constexpr explicit operator bool() const noexcept { return ok(); }
    constexpr errc error() const noexcept { return err_; }
    /// value() - the value; on an error, PCPU_ASSERT fails, then PCPU_TRAP (config.hpp)
    /// in every build: a default T would only move the fault to its first use (a null
    /// percpu<T> dereferences a null offset table). Test ok() first, or use value_or().
    constexpr T value() const noexcept {
        if (!ok()) {
            PCPU_ASSERT(ok());
            PCPU_TRAP("pcpu: result::value() on an error");
        }
        return value_;
    }
    /// value_or(fallback) - the value, or fallback on an error.
    constexpr T value_or(T fallback) const noexcept { return ok() ? value_ : fallback; }

private:
    T value_;
    errc err_;
};

} // namespace pcpu
