// SPDX-License-Identifier: MIT
// pcpu/static_var.hpp - static per-CPU variables (DEFINE_PER_CPU, .data..percpu).
//
//     PCPU_DEFINE(std::uint32_t, irq_count, 0);        // in one .cpp
//     PCPU_DECLARE(std::uint32_t, irq_count);          // in a header, for the others
//
//     pcpu::first_chunk_config cfg = ...;
//     pcpu::use_static_section(cfg);                   // the image, and its size
//     a.init(cfg);
//     pcpu::percpu<std::uint32_t> h = pcpu::static_percpu(a, irq_count).value();
//     pcpu::this_cpu_inc(a, h);
//
// Each PCPU_DEFINE places one constant *template copy* of the variable in the linker
// section `pcpu_data`. The linker gathers every object file's copies into one block,
// and because the section name is a valid C identifier GNU ld defines
// __start_pcpu_data and __stop_pcpu_data around it by itself, on Linux and on
// arm-none-eabi alike, without a linker script. allocator::init() copies that block
// into the static area at the start of every CPU's unit (the kernel copies
// .data..percpu the same way), so every CPU's copy starts from the initialiser, and a
// variable's offset in the block is its offset in the unit: its handle is
// static_handle(offset), and from there it is reached exactly like a dynamic
// allocation, one table load plus one add.
//
// The template copy is const: nothing writes it after the build, so firmware keeps it
// in flash and only the per-CPU copies take RAM. The variables are marked `used` (the
// compiler must emit them although no code names the template copy) and `retain`
// where the toolchain knows it (SHF_GNU_RETAIN: -Wl,--gc-sections must not drop them;
// GNU ld also keeps sections named by __start_/__stop_ references, lld since 13 does
// not).
//
// Restrictions, as for the kernel's static per-CPU data: T is trivially copyable and
// trivially destructible (it is memcpy'd into every unit and never destroyed), its
// initialiser is a constant, and the type must not contain a top-level comma (use an
// alias for std::array<int, 4> and the like). Alignment is kept: the linker aligns the
// block to its most aligned member and units are page aligned.
//
// Shared objects: the boundary symbols are hidden, so each executable or library sees
// its own block; give each its own allocator.
#pragma once

#include "allocator.hpp"
#include "error.hpp"
#include "percpu.hpp"

#include <cstddef>
#include <cstdint>
#include <type_traits>

#if !defined(__GNUC__)
#error "pcpu/static_var.hpp needs GNU section attributes (GCC or Clang, ELF)"
#endif

// Weak: a program with no PCPU_DEFINE has no section, and the symbols are then null.
extern "C" {
extern const unsigned char __start_pcpu_data[] __attribute__((weak, visibility("hidden")));
extern const unsigned char __stop_pcpu_data[] __attribute__((weak, visibility("hidden")));
}

#if defined(__has_attribute)
#if __has_attribute(retain)
#define PCPU_DETAIL_RETAIN , retain
#endif
#endif
#ifndef PCPU_DETAIL_RETAIN
#define PCPU_DETAIL_RETAIN
#endif

/// PCPU_STATIC_ATTRS - what every template copy is defined with (declarations carry
/// only the section: `used` and `retain` apply to definitions).
#define PCPU_STATIC_ATTRS __attribute__((section("pcpu_data"), used PCPU_DETAIL_RETAIN))
#define PCPU_DETAIL_SECTION __attribute__((section("pcpu_data")))

// GCC accepts `retain` but ignores it, with a warning, where its assembler cannot emit
// SHF_GNU_RETAIN (Debian 12's arm-none-eabi); GNU ld keeps the section anyway.
#define PCPU_DETAIL_DEFINE(type, name, ...)                                                          \
    PCPU_DETAIL_SECTION extern const ::std::add_const_t<type> pcpu_static_##name;                    \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wattributes\"")               \
    PCPU_STATIC_ATTRS const ::std::add_const_t<type> pcpu_static_##name{__VA_ARGS__};                \
    _Pragma("GCC diagnostic pop")                                                                    \
    constexpr ::pcpu::static_var<type> name { &pcpu_static_##name }

/// PCPU_DEFINE(type, name [, initialiser...]) - define a static per-CPU variable
/// `name` (a pcpu::static_var<type>) whose every CPU copy starts as type{initialiser...}
/// (zero without one). Namespace scope, in exactly one translation unit.
// The trailing empty argument keeps `...` non-empty when no initialiser is given
// (C++17 requires one argument for it); `{5,}` is a valid initialiser list.
#define PCPU_DEFINE(...) PCPU_DETAIL_DEFINE(__VA_ARGS__, )

/// PCPU_DECLARE(type, name) - make a variable PCPU_DEFINE'd in another translation
/// unit usable here.
#define PCPU_DECLARE(type, name)                                                                     \
    PCPU_DETAIL_SECTION extern const ::std::add_const_t<type> pcpu_static_##name;                      \
    constexpr ::pcpu::static_var<type> name { &pcpu_static_##name }

namespace pcpu {

/// static_section_image() / static_section_size() - the block of template copies.
inline const void* static_section_image() noexcept {
    return __start_pcpu_data;
}
inline std::size_t static_section_size() noexcept {
    return static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(__stop_pcpu_data) -
                                    reinterpret_cast<std::uintptr_t>(__start_pcpu_data));
}

/// use_static_section(cfg) - make cfg's static area the block of template copies.
inline void use_static_section(first_chunk_config& cfg) noexcept {
    cfg.static_image = static_section_image();
    cfg.static_size = static_section_size();
}

/// static_meta_bytes_bound<Alloc>(unit_size, reserved_size) - first-chunk metadata
/// enough for *any* static size: the block's size is known only after linking, but
/// firmware declares cfg.meta at compile time. The dynamic chunk spans at most every
/// page of the unit; the reserved chunk at most one page more than its own size (when
/// the static area ends mid-page).
template <class Alloc>
constexpr std::size_t static_meta_bytes_bound(std::size_t unit_size, std::size_t reserved_size) noexcept {
    using chunk_t = typename Alloc::chunk_type;
    constexpr std::size_t page = Alloc::page_size, align = Alloc::meta_align;
    auto round = [](std::size_t v) { return (v + align - 1) / align * align; };
    const auto pages = [](std::size_t bytes) { return static_cast<std::uint32_t>((bytes + page - 1) / page); };
    return round(chunk_t::meta_bytes(pages(unit_size))) +
           (reserved_size != 0 ? round(chunk_t::meta_bytes(pages(reserved_size) + 1)) : 0);
}

/// static_var<T> - names a static per-CPU variable: where its template copy is.
template <class T>
class static_var {
    static_assert(!std::is_const<T>::value && !std::is_volatile<T>::value,
                  "pcpu: PCPU_DEFINE takes the plain type (every CPU's copy is writable)");
    static_assert(std::is_trivially_copyable<T>::value && std::is_trivially_destructible<T>::value,
                  "pcpu: static per-CPU variables are copied into every unit and never destroyed: "
                  "T must be trivially copyable and trivially destructible");

public:
    using value_type = T;
    constexpr explicit static_var(const T* image) noexcept : image_(image) {}

    /// initial() - the template copy every CPU started from.
    const T& initial() const noexcept { return *image_; }
    /// offset() - the variable's byte offset in the static area (and in the block).
    std::size_t offset() const noexcept {
        return static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(image_) -
                                        reinterpret_cast<std::uintptr_t>(__start_pcpu_data));
    }

private:
    const T* image_;
};

/// static_percpu(a, v) - the typed handle of static per-CPU variable v in allocator a.
/// Resolve it once and keep it: every access through it is one load plus one add.
/// Returns the handle, or: not_initialized; bad_config if a's static area does not
/// hold v (a was not initialised with use_static_section(), or with a smaller image).
template <class T, class Alloc>
result<percpu<T>> static_percpu(const Alloc& a, static_var<T> v) noexcept {
    if (!a.initialized()) return errc::not_initialized;
    const auto image = reinterpret_cast<std::uintptr_t>(&v.initial());
    const auto begin = reinterpret_cast<std::uintptr_t>(__start_pcpu_data);
    const auto end = reinterpret_cast<std::uintptr_t>(__stop_pcpu_data);
    if (image < begin || image + sizeof(T) > end || v.offset() + sizeof(T) > a.stats().static_size)
        return errc::bad_config;
    return percpu<T>(a.static_handle(v.offset()), a.cpu_offsets(), a.nr_cpus());
}

} // namespace pcpu
