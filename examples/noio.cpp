// SPDX-License-Identifier: MIT
// examples/noio.cpp - the context story in 40 lines. A caller holds a lock that IO
// reclaim may need, so it allocates with noio; pcpu must then make every internal
// allocation (chunk metadata, address space, page array, pages, page tables inside
// map) without IO, on the real host platform. The context checker proves it, and
// aborts the program on the first callback that received a wider context.
#include <pcpu.hpp>
#include <pcpu/debug/context_checker.hpp>
#include <pcpu/platform/host.hpp>

#include <cstdio>
#include <mutex>

using platform = pcpu::debug::context_checker<pcpu::host_platform>;
using allocator = pcpu::allocator<platform, pcpu::lazy_mapped>;
using pcpu::debug::callback;

alignas(allocator::page_size) static unsigned char units[4 * 32768];

int main() {
    allocator a(4u);
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = 4, cfg.units = units, cfg.unit_size = 32768;
    cfg.static_size = 32768 - 4096; // a small first chunk: the allocation below needs a new one
    if (a.init(cfg) != pcpu::errc::ok) return 1;
    // No background cap: only the caller's own noio, carried everywhere, keeps IO out.
    a.platform().inner().set_background_context(pcpu::ctx::full);
    a.platform().clear_calls(); // count only what the noio allocation does

    std::mutex queue_lock; // e.g. a block queue's lock, which IO reclaim would wait for
    pcpu::result<pcpu::handle> h = pcpu::errc::no_space;
    {
        std::lock_guard<std::mutex> hold(queue_lock);
        h = a.alloc(16 * 1024, 64, pcpu::ctx::noio); // new chunk, page array, pages, map
    }
    if (!h) return 1;
    // Each line: the widest context that callback ever received, by preset name where
    // it is one (noio = may block, no IO, no FS), with its flags.
    auto show = [](const char* what, unsigned calls, pcpu::gfp widest) {
        char buf[64];
        const char* preset = pcpu::ctx::preset_name(widest);
        std::printf("%-20s %2u calls, widest context %-6s (%s) %s\n", what, calls, preset != nullptr ? preset : "-",
                    pcpu::context_traits<pcpu::gfp>::describe(widest, buf, sizeof buf),
                    pcpu::within(widest, pcpu::ctx::noio) ? "within noio" : "WIDER than noio");
    };
    for (callback k : {callback::alloc_meta, callback::reserve, callback::alloc_pages, callback::map})
        show(pcpu::debug::callback_name(k), a.platform().calls(k), a.platform().widest(k));
    show("scope during map", a.platform().calls(callback::map), a.platform().widest_map_scope());
    const bool ok = a.free(h.value()) == pcpu::errc::ok && a.verify().ok;
    a.shutdown();
    std::printf("checker violations: %zu\n", a.platform().violations());
    return ok && a.platform().violations() == 0 ? 0 : 1;
}
