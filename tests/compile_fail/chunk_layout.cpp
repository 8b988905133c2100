// SPDX-License-Identifier: MIT
// A chunk layout the bitmap allocator cannot use is a compile error naming the rule
// (chunk_layout.hpp, internal/chunk.hpp, internal/scan_chunk.hpp). The program as it is uses valid layouts; case
// N puts one invalid one in.
// expect 1: the granule must be a power of two of at least 4 bytes
// expect 2: the granule must be a power of two of at least 4 bytes
// expect 3: the block must be a power of two
// expect 4: a block must be a power of two no larger than the page
// expect 5: a block must hold at least 32 granules
// expect 6: scan_layout: the granule must be a power of two of at least 4 bytes
// expect 7: scan_layout: a page must hold at least 32 granules
#include <pcpu/allocator.hpp>
#include <pcpu/chunk_layout.hpp>

#ifndef PCPU_COMPILE_FAIL
#define PCPU_COMPILE_FAIL 0
#endif

namespace {

struct plain_platform {
    static constexpr unsigned page_shift = 12;
    void index_lock() noexcept {}
    void index_unlock() noexcept {}
};

#if PCPU_COMPILE_FAIL == 1
using layout = pcpu::chunk_layout<2>; // below 4 bytes
#elif PCPU_COMPILE_FAIL == 2
using layout = pcpu::chunk_layout<12>; // not a power of two
#elif PCPU_COMPILE_FAIL == 3
using layout = pcpu::chunk_layout<4, 768>; // not a power of two
#elif PCPU_COMPILE_FAIL == 4
using layout = pcpu::chunk_layout<4, 8192>; // above the 4 KiB page
#elif PCPU_COMPILE_FAIL == 5
using layout = pcpu::chunk_layout<16, 256>; // 16 granules
#elif PCPU_COMPILE_FAIL == 6
using layout = pcpu::scan_layout<6>; // not a power of two
#elif PCPU_COMPILE_FAIL == 7
using layout = pcpu::scan_layout<256>; // 16 granules in the 4 KiB page
#else
using layout = pcpu::chunk_layout<16, 512>;
#endif
using alloc_t = pcpu::allocator<plain_platform, pcpu::static_only, layout>;

} // namespace

std::size_t granule() { return alloc_t::min_alloc_size + sizeof(alloc_t); }
