// SPDX-License-Identifier: MIT
// basic_host_platform takes <MaxCpus, PageShift>, the order of static_arena. Code
// written for the old <PageShift, MaxCpus> order names a page shift below 1 KiB and
// is rejected with a message that gives the order.
// expect: basic_host_platform<MaxCpus, PageShift>: PageShift must be in [10, 30]
#include <pcpu/platform/host.hpp>

#ifdef PCPU_COMPILE_FAIL
using platform = pcpu::basic_host_platform<12, 8>; // old order: 8 CPUs, 4 KiB pages
#else
using platform = pcpu::basic_host_platform<8, 12>;
#endif

std::size_t cpus() { return platform::max_cpus; }
std::size_t page() { return platform::page_size; }
