// SPDX-License-Identifier: MIT
// examples/firmware/main_m0.cpp - pcpu on ARMv6-M (Cortex-M0/M0+: no LDREX/STREX, no
// libatomic), run under QEMU's microbit (nRF51, one Cortex-M0, 16 KiB of RAM).
//
// A static_only allocator over four logical CPUs whose units the platform places in
// an order of its own (first_chunk_config::unit_addrs: CPU 0's unit is not the lowest).
// A simulated scheduler switches the platform's current CPU; the main loop and the
// SysTick interrupt count events through this-CPU operations, which on this
// architecture mask interrupts (cortex_m_irq_guard) instead of using atomics: the
// link itself proves that no __atomic_* or __sync_* call is left. Per-CPU session
// buffers are allocated and freed with verify() after every operation, and every
// count is checked against a plain model at the end.
//
// Exit status: 0 all checks passed, 3 a check failed, 4 a fault, 5 a pcpu assertion.
// With -DPCPU_FIRMWARE_FAULT one update lands in another CPU's copy: CI expects 3.

namespace fw {
[[noreturn]] void assert_failed(const char* cond, int line) noexcept;
}
#define PCPU_ASSERT(cond) ((cond) ? static_cast<void>(0) : ::fw::assert_failed(#cond, __LINE__))

#include <pcpu/allocator.hpp>
#include <pcpu/percpu.hpp>
#include <pcpu/platform/static_arena.hpp>
#include <pcpu/static_var.hpp>

#include "never_destroyed.hpp"
#include "checks.hpp"
#include "semihost.hpp"

#include <cstddef>
#include <cstdint>

namespace {

constexpr unsigned nr_cpus = 4;
constexpr unsigned page_shift = 8;      // 256 B pages: 16 KiB of RAM in all
constexpr std::size_t unit_size = 1024; // per CPU: four pages

using platform =
    pcpu::static_arena<nr_cpus, page_shift, pcpu::cortex_m_irq_lock, pcpu::no_lock, pcpu::cortex_m_irq_guard>;
using static_alloc = pcpu::allocator<platform, pcpu::static_only>;

volatile std::uint32_t& reg(std::uintptr_t addr) { return *reinterpret_cast<volatile std::uint32_t*>(addr); }
constexpr std::uintptr_t syst_csr = 0xE000E010u, syst_rvr = 0xE000E014u, syst_cvr = 0xE000E018u;

using fw::check;
using fw::xorshift32;
void check_verified(const static_alloc& a) { fw::check_verified(a, "the last operation"); }

struct cpu_statics {
    std::uint32_t magic;
    std::uint32_t ticks; // SysTick interrupts taken while this CPU was current
};
constexpr std::uint32_t statics_magic = 0x4D304D30u; // "M0M0"
} // namespace
PCPU_DEFINE(cpu_statics, m0_statics, statics_magic, 0);
namespace {

constexpr unsigned nr_event_types = 4;
struct event_counts {
    std::uint32_t n[nr_event_types];
};

// The platform's unit order: CPU 0 third, CPU 3 lowest.
alignas(static_alloc::page_size) unsigned char units[nr_cpus * unit_size];
const void* const unit_addrs[nr_cpus] = {units + 2 * unit_size, units + 1 * unit_size, units + 3 * unit_size, units};
alignas(static_alloc::meta_align) unsigned char meta[pcpu::static_meta_bytes_bound<static_alloc>(unit_size, 0)];

fw::never_destroyed<static_alloc> g_alloc_mem;
static_alloc& g_alloc = *g_alloc_mem;
pcpu::percpu<std::uint32_t> g_ticks_h;
volatile std::uint32_t g_model_ticks[nr_cpus];
volatile bool g_ticking = false;

} // namespace

extern "C" void systick_handler() {
    if (!g_ticking) return;
    pcpu::this_cpu_inc(g_alloc, g_ticks_h);
    const unsigned cpu = g_alloc.platform().this_cpu();
    g_model_ticks[cpu] = g_model_ticks[cpu] + 1;
}

namespace fw {
[[noreturn]] void assert_failed(const char* cond, int line) noexcept {
    fw::line l;
    l << "pcpu m0 firmware: FAIL: assertion " << cond << " (line " << static_cast<std::uint32_t>(line) << ")";
    l.end();
    fw::exit(5);
}
} // namespace fw

int main() {
    fw::line hello;
    hello << "pcpu m0 firmware: ARMv6-M, " << nr_cpus << " logical CPUs, "
          << static_cast<std::uint32_t>(1u << page_shift) << " B pages, " << static_cast<std::uint32_t>(unit_size)
          << " B units";
    hello.end();

    g_alloc_mem.construct();
    platform& plat = g_alloc.platform();
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.unit_addrs = unit_addrs;
    cfg.unit_size = unit_size;
    pcpu::use_static_section(cfg);
    cfg.meta = meta;
    cfg.meta_size = sizeof meta;
    const pcpu::errc init = g_alloc.init(cfg);
    check(init == pcpu::errc::ok, "init", 0, static_cast<std::uint32_t>(init));
    if (init != pcpu::errc::ok) return 3;
    check_verified(g_alloc);

    const auto st = pcpu::static_percpu(g_alloc, m0_statics);
    auto ev = pcpu::alloc_percpu<event_counts>(g_alloc, pcpu::ctx::full, event_counts{});
    check_verified(g_alloc);
    check(st.ok() && ev.ok(), "per-CPU set-up");
    if (!st || !ev) return 3;
    g_ticks_h = st.value().field(&cpu_statics::ticks);
    const pcpu::percpu<std::uint32_t[nr_event_types]> events = ev.value().field(&event_counts::n);
    for (unsigned c = 0; c < nr_cpus; ++c) {
        check(g_alloc.ptr(g_alloc.static_handle(0), c) == unit_addrs[c], "each CPU's unit where the platform put it");
        check(pcpu::per_cpu(st.value(), c).magic == statics_magic, "static image copied to every unit");
    }

    std::uint32_t model[nr_cpus][nr_event_types] = {};
    struct session {
        pcpu::handle h;
        std::uint16_t size;
        std::uint8_t tag;
    } sessions[8] = {};
    unsigned nr_sessions = 0, ops = 0, refused = 0;
    xorshift32 rng{0x1234567u};

    reg(syst_rvr) = 4999;
    reg(syst_cvr) = 0;
    g_ticking = true;
    reg(syst_csr) = 7; // enable, interrupt, processor clock
    constexpr unsigned nr_loops = 30000;
    for (unsigned i = 0; i < nr_loops; ++i) {
        if (rng.next() % 8 == 0) plat.set_this_cpu(rng.next() % nr_cpus);
        const unsigned cpu = plat.this_cpu();
        const std::uint32_t e = rng.next() % nr_event_types;
        pcpu::this_cpu_inc(g_alloc, events.at(e)); // interrupts masked, no atomics
        ++model[cpu][e];
#ifdef PCPU_FIRMWARE_FAULT
        if (i == nr_loops / 2) ++pcpu::per_cpu(events, (cpu + 1) % nr_cpus)[e]; // the planted bug
#endif
        const std::uint32_t roll = rng.next() % 16;
        if (roll == 0 && nr_sessions < 8) {
            const auto size = static_cast<std::uint16_t>(4 + rng.next() % 200);
            auto r = g_alloc.alloc(size, 4, pcpu::ctx::full);
            ++ops;
            check_verified(g_alloc);
            if (!r) {
                check(r.error() == pcpu::errc::no_space, "a full allocator says no_space", 0,
                      static_cast<std::uint32_t>(r.error()));
                ++refused;
                continue;
            }
            session& s = sessions[nr_sessions++];
            s = session{r.value(), size, static_cast<std::uint8_t>(rng.next())};
            for (unsigned c = 0; c < nr_cpus; ++c) {
                auto* p = static_cast<std::uint8_t*>(g_alloc.ptr(s.h, c));
                for (unsigned b = 0; b < s.size; ++b) p[b] = static_cast<std::uint8_t>(s.tag + c);
            }
        } else if (roll == 1 && nr_sessions != 0) {
            const unsigned k = rng.next() % nr_sessions;
            bool ok = true;
            for (unsigned c = 0; c < nr_cpus; ++c) {
                const auto* p = static_cast<const std::uint8_t*>(g_alloc.ptr(sessions[k].h, c));
                for (unsigned b = 0; b < sessions[k].size; ++b) ok &= p[b] == static_cast<std::uint8_t>(sessions[k].tag + c);
            }
            check(ok, "session intact on every CPU until freed");
            check(g_alloc.free(sessions[k].h) == pcpu::errc::ok, "free");
            ++ops;
            check_verified(g_alloc);
            sessions[k] = sessions[--nr_sessions];
        }
    }
    reg(syst_csr) = 0;
    g_ticking = false;

    fw::line hdr;
    hdr << "cpu  ticks  events";
    hdr.end();
    std::uint32_t total = 0, ticks = 0;
    for (unsigned c = 0; c < nr_cpus; ++c) {
        std::uint32_t n = 0;
        for (unsigned e = 0; e < nr_event_types; ++e) {
            const std::uint32_t got = pcpu::per_cpu(events, c)[e];
            check(got == model[c][e], "per-CPU event counter", model[c][e], got);
            n += got;
        }
        const cpu_statics& s = pcpu::per_cpu(st.value(), c);
        check(s.ticks == g_model_ticks[c], "static per-CPU ticks (SysTick ISR)", g_model_ticks[c], s.ticks);
        check(s.magic == statics_magic, "static per-CPU magic", statics_magic, s.magic);
        total += n;
        ticks += s.ticks;
        fw::line l;
        l << "cpu " << c;
        l.col(s.ticks, 6).col(n, 8);
        l.end();
    }
    check(total == nr_loops, "events total", nr_loops, total);
    check(ticks != 0, "SysTick interrupts taken");
    fw::line tl;
    tl << "total events " << total << " expected " << nr_loops << ", ticks " << ticks;
    tl.end();
    fw::line sl;
    sl << "static_only: " << ops << " alloc/free operations, verify ok after each; " << refused
       << " refused (no_space)";
    sl.end();

    return fw::finish("pcpu m0 firmware", fw::failures);
}
