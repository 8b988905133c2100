// SPDX-License-Identifier: MIT
// pcpu/platform/detail/host_memory.hpp - anonymous memory primitives for hosted
// (POSIX) platforms: address space reserved without access, made accessible page by
// page, and dropped again.
//
// Host-only: needs <sys/mman.h>. Shared by pcpu/platform/host.hpp and the tests'
// instrumented sim_platform, so both reserve, populate and depopulate memory the same
// way and a fix here reaches both.
//
// The model is the kernel's vmalloc area in miniature:
//   reserve   = a private anonymous PROT_NONE mapping: address space, no memory, any
//               touch faults;
//   populate  = mprotect read/write: the kernel supplies a zeroed page on first touch
//               (or at once, with prefault);
//   depopulate= MADV_DONTNEED then PROT_NONE: the page goes back to the kernel (the
//               range reads as zeroes if touched again) and loses access, while the
//               range stays reserved, so no other mmap can land inside a chunk;
//   release   = munmap.
#pragma once

#if !defined(__has_include)
#error "pcpu/platform/detail/host_memory.hpp is host-only (POSIX mmap)"
#elif !__has_include(<sys/mman.h>)
#error "pcpu/platform/detail/host_memory.hpp is host-only: it needs POSIX <sys/mman.h>"
#endif

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace pcpu::detail {

/// host_page_size() - the kernel's page size (sysconf), read once.
inline std::size_t host_page_size() noexcept {
    static const std::size_t size = [] {
        const long v = ::sysconf(_SC_PAGESIZE);
        return v > 0 ? static_cast<std::size_t>(v) : std::size_t{4096};
    }();
    return size;
}

/// host_map_aligned(bytes, align, prot, extra_flags) - a fresh private anonymous
/// mapping of `bytes` rounded up to the host page, starting at a multiple of `align`
/// (a power of two; at least the host page is used). Over-maps by `align` and trims
/// both ends, so exactly the rounded size stays mapped. nullptr on failure.
inline void* host_map_aligned(std::size_t bytes, std::size_t align, int prot, int extra_flags = 0) noexcept {
    const std::size_t h = host_page_size();
    if (align < h) align = h;
    const std::size_t len = (bytes == 0 ? h : (bytes + h - 1) / h * h);
    const std::size_t extra = align > h ? align : 0;
    if (len + extra < len) return nullptr; // overflow: no such mapping exists
    void* raw = ::mmap(nullptr, len + extra, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const auto b = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t a = (b + align - 1) / align * align;
    if (a > b) ::munmap(raw, a - b);
    if (b + len + extra > a + len) ::munmap(reinterpret_cast<void*>(a + len), b + len + extra - (a + len));
    return reinterpret_cast<void*>(a);
}

/// host_unmap(addr, bytes) - give a mapping from host_map_aligned() back (munmap
/// rounds the length up to the host page itself).
inline void host_unmap(std::uintptr_t addr, std::size_t bytes) noexcept {
    ::munmap(reinterpret_cast<void*>(addr), bytes);
}

/// host_make_accessible(addr, bytes) - read/write access to host pages of a reserved
/// range; addr host-page aligned. false if the kernel refused (no memory to commit,
/// too many mappings): the range may then be partly accessible, and the caller
/// drops it again with host_discard().
inline bool host_make_accessible(std::uintptr_t addr, std::size_t bytes) noexcept {
    return ::mprotect(reinterpret_cast<void*>(addr), bytes, PROT_READ | PROT_WRITE) == 0;
}

/// host_prefault(addr, bytes) - make accessible pages resident now rather than at
/// first touch, so running out of memory shows here, as a failure the caller can
/// return, instead of as a fault later. MADV_POPULATE_WRITE (Linux 5.14) reports
/// ENOMEM; where it does not exist, each page is written once (the kernel can then
/// only kill the process, which is no worse than first touch would have been).
inline bool host_prefault(std::uintptr_t addr, std::size_t bytes) noexcept {
#if defined(MADV_POPULATE_WRITE)
    if (::madvise(reinterpret_cast<void*>(addr), bytes, MADV_POPULATE_WRITE) == 0) return true;
    if (errno != EINVAL) return false; // ENOMEM, EFAULT, EHWPOISON: no page to be had
#endif
    // Older kernels: touch. The pages are fresh (zero), so writing zero changes nothing.
    const std::size_t h = host_page_size();
    for (std::size_t off = 0; off < bytes; off += h)
        *reinterpret_cast<volatile unsigned char*>(addr + off) = 0;
    return true;
}

/// host_discard(addr, bytes, keep_access) - drop the contents of host pages of a
/// reserved range (the kernel frees them; residency drops at once) and, unless
/// keep_access, their access. The range stays reserved. addr host-page aligned.
inline void host_discard(std::uintptr_t addr, std::size_t bytes, bool keep_access = false) noexcept {
    ::madvise(reinterpret_cast<void*>(addr), bytes, MADV_DONTNEED);
    if (!keep_access) ::mprotect(reinterpret_cast<void*>(addr), bytes, PROT_NONE);
}

} // namespace pcpu::detail
