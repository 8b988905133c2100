// SPDX-License-Identifier: MIT
// examples/firmware/main_an521.cpp - pcpu on two Cortex-M33 cores at once (QEMU
// mps2-an521: Arm SSE-200, run with multi-threaded TCG so both cores really execute
// in parallel).
//
// Core 0 sets up two allocators shared by both cores - static_only and contiguous -
// with each core's unit in an SRAM bank of its own (first_chunk_config::unit_addrs:
// core 1's units lie *below* core 0's), then releases core 1 through the SSE-200
// system control registers (INITSVTOR1: core 1's vector table; CPUWAIT bit 1 cleared:
// core 1 leaves reset). Then both cores, in phases separated by a barrier:
//   - read their CPU number from the SSE-200's CPU_IDENTITY register (this_cpu());
//   - count events through this-CPU operations into static per-CPU variables
//     (PCPU_DEFINE), a percpu<T> array and a pcpu::counter, from the main loop and
//     from their own SysTick interrupt;
//   - allocate and free per-CPU objects from both allocators while the other core
//     does the same: the index lock is an LDREX/STREX spinlock taken with interrupts
//     masked (cortex_m_irq_spinlock), the sleeping lock a plain spinlock;
//   - run verify() on both allocators after every phase.
// At the end core 0 prints the per-core table and the totals, checked against what
// each core counted in a private model (exact for the this-CPU counts and the
// counter's sum, within the documented bound for counter::read()), and exits through
// semihosting: 0 when every check passed, 3 when one failed, 4 on a fault, 5 on a
// pcpu assertion, 6 when the watchdog saw a phase not finish (a core stuck).
//
// Built with -DPCPU_FIRMWARE_FAULT, the index lock is the single-core one
// (cortex_m_irq_lock: masks this core's interrupts and nothing else), so the two
// cores' allocator operations interleave: CI expects that image to fail.

namespace fw {
[[noreturn]] void assert_failed(const char* cond, int line) noexcept;
}
#define PCPU_ASSERT(cond) ((cond) ? static_cast<void>(0) : ::fw::assert_failed(#cond, __LINE__))

#include <pcpu/allocator.hpp>
#include <pcpu/counter.hpp>
#include <pcpu/percpu.hpp>
#include <pcpu/platform/static_arena.hpp>
#include <pcpu/static_var.hpp>

#include "never_destroyed.hpp"
#include "checks.hpp"
#include "semihost.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace {

constexpr unsigned nr_cpus = 2;
constexpr unsigned page_shift = 10;     // 1 KiB pages
constexpr std::size_t unit_size = 8192; // per CPU

// ---- SSE-200 (Secure addresses) -------------------------------------------------------
volatile std::uint32_t& reg(std::uintptr_t addr) { return *reinterpret_cast<volatile std::uint32_t*>(addr); }
constexpr std::uintptr_t cpu_identity = 0x4001F000u;      // CPU_IDENTITY.CPUID: this core's number
constexpr std::uintptr_t sysctl_initsvtor1 = 0x50021114u; // core 1's Secure vector table
constexpr std::uintptr_t sysctl_cpuwait = 0x50021118u;    // bit n set: core n held in reset
constexpr std::uintptr_t syst_csr = 0xE000E010u, syst_rvr = 0xE000E014u, syst_cvr = 0xE000E018u;
/// The Secure watchdog (CMSDK APB watchdog on the 20 MHz main clock), whose interrupt
/// is core 0's NMI: it turns a core stuck in the allocator - even with interrupts
/// masked - into a reported failure instead of a hung run.
constexpr std::uintptr_t wdog_load = 0x50081000u, wdog_ctrl = 0x50081008u, wdog_lock = 0x50081C00u;
constexpr std::uint32_t wdog_timeout = 20000000u * 10; // 10 s of main clock without a feed
/// The four 32 KiB internal SRAM banks (Secure alias).
constexpr std::uintptr_t sram_bank[4] = {0x30000000u, 0x30008000u, 0x30010000u, 0x30018000u};

unsigned hw_cpu() noexcept { return reg(cpu_identity) & 0xFu; }

#ifdef PCPU_FIRMWARE_FAULT
using core_index_lock = pcpu::cortex_m_irq_lock; // the planted bug: excludes nothing on the other core
#else
using core_index_lock = pcpu::cortex_m_irq_spinlock;
#endif

/// sse200_platform - the static arena platform with the running CPU read from the
/// hardware, as static_arena.hpp prescribes for an SMP port.
struct sse200_platform
    : pcpu::static_arena<nr_cpus, page_shift, core_index_lock, pcpu::cortex_m_spinlock, pcpu::cortex_m_irq_guard> {
    using base = pcpu::static_arena<nr_cpus, page_shift, core_index_lock, pcpu::cortex_m_spinlock, pcpu::cortex_m_irq_guard>;
    using base::base;
    unsigned this_cpu() const noexcept { return hw_cpu(); }
};
using static_alloc = pcpu::allocator<sse200_platform, pcpu::static_only>;
using dynamic_alloc = pcpu::allocator<sse200_platform, pcpu::contiguous>;

// Unit placement: static_only in banks 3 (core 0) and 1 (core 1), contiguous's first
// chunk in banks 2 and 0. Dynamic chunks keep the same offsets: each is one span of
// 64 KiB + one unit from the arena (backend/unit_layout.hpp, unit_layout).
const void* const static_units[nr_cpus] = {reinterpret_cast<const void*>(sram_bank[3]),
                                           reinterpret_cast<const void*>(sram_bank[1])};
const void* const dynamic_units[nr_cpus] = {reinterpret_cast<const void*>(sram_bank[2]),
                                            reinterpret_cast<const void*>(sram_bank[0])};
constexpr std::size_t span_bytes = (sram_bank[2] - sram_bank[0]) + unit_size;

alignas(static_alloc::meta_align) unsigned char meta_static[pcpu::static_meta_bytes_bound<static_alloc>(unit_size, 0)];
alignas(dynamic_alloc::page_size) unsigned char arena_storage[2 * span_bytes + 4096];

fw::never_destroyed<static_alloc> g_static_mem;
fw::never_destroyed<dynamic_alloc> g_dynamic_mem;
static_alloc& g_static = *g_static_mem;
dynamic_alloc& g_dynamic = *g_dynamic_mem;

// ---- what is counted ------------------------------------------------------------------
struct core_statics {
    std::uint32_t magic; // from the initialiser, on every CPU
    std::uint32_t ticks; // SysTick interrupts taken on this core
    std::uint32_t loops; // main-loop iterations on this core
};
constexpr std::uint32_t statics_magic = 0x50435055u;
} // namespace
PCPU_DEFINE(core_statics, core_stats, statics_magic, 0, 0);
namespace {

constexpr unsigned nr_event_types = 8;
constexpr unsigned isr_event = nr_event_types - 1; // the main loop counts types 0..6
struct event_counts {
    std::uint32_t n[nr_event_types];
};

pcpu::percpu<std::uint32_t> g_ticks_h, g_loops_h;
pcpu::percpu<std::uint32_t[nr_event_types]> g_events_h;
pcpu::result<pcpu::percpu<event_counts>> g_events_r = pcpu::errc::not_initialized;
fw::never_destroyed<pcpu::counter<static_alloc>> g_total_mem;
pcpu::counter<static_alloc>& g_total = *g_total_mem;

/// core_model - what one core counted, in plain memory only that core (and its own
/// ISR, for isr_ticks) writes; core 0 reads it after the final barrier.
struct core_model {
    std::uint32_t events[nr_event_types];
    volatile std::uint32_t isr_ticks;
    std::uint32_t loops;
    std::uint32_t allocs, frees, refused;
    std::uint32_t failures;
    const char* first_failure;
    std::uint32_t expected, actual;
};
core_model g_model[nr_cpus];

constexpr unsigned nr_phases = 4;
constexpr unsigned iterations = 12000; // per core per phase
std::atomic<std::uint32_t> g_core1_started{0};

void check(bool ok, const char* what, std::uint32_t expected = 0, std::uint32_t actual = 0) {
    if (ok) return;
    core_model& m = g_model[hw_cpu()];
    if (m.failures++ == 0) {
        m.first_failure = what;
        m.expected = expected;
        m.actual = actual;
    }
}

template <class A>
void check_verified(const A& a) {
    const pcpu::verify_report rep = a.verify();
    check(rep.ok, rep.ok ? "" : rep.what, static_cast<std::uint32_t>(rep.expected),
          static_cast<std::uint32_t>(rep.actual));
}

/// watchdog_feed() - core 0 at every barrier: both cores got this far.
void watchdog_feed() {
    if (hw_cpu() == 0) reg(wdog_load) = wdog_timeout; // writing LOAD restarts the count
}

/// barrier() - both cores arrive before either leaves (sense by generation).
std::atomic<std::uint32_t> g_arrived{0}, g_generation{0};
void barrier() {
    watchdog_feed();
    const std::uint32_t gen = g_generation.load(std::memory_order_acquire);
    if (g_arrived.fetch_add(1, std::memory_order_acq_rel) == nr_cpus - 1) {
        g_arrived.store(0, std::memory_order_relaxed);
        g_generation.fetch_add(1, std::memory_order_release);
    } else {
        while (g_generation.load(std::memory_order_acquire) == gen) {
        }
    }
}

using fw::xorshift32;

struct session {
    pcpu::handle h;
    std::uint32_t size;
    std::uint8_t tag;
};
constexpr unsigned max_sessions = 6;

template <class A>
void fill(const A& a, const session& s) {
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        auto* p = static_cast<volatile std::uint8_t*>(a.ptr(s.h, cpu));
        for (std::uint32_t i = 0; i < s.size; ++i) p[i] = static_cast<std::uint8_t>(s.tag + cpu);
    }
}
template <class A>
bool intact(const A& a, const session& s) {
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        const auto* p = static_cast<const volatile std::uint8_t*>(a.ptr(s.h, cpu));
        for (std::uint32_t i = 0; i < s.size; ++i)
            if (p[i] != static_cast<std::uint8_t>(s.tag + cpu)) return false;
    }
    return true;
}

/// sessions<A> - one core's live objects in one allocator.
template <class A>
struct sessions {
    A& a;
    session live[max_sessions];
    unsigned nr = 0;

    void alloc(xorshift32& rng, std::uint32_t min_size, std::uint32_t spread) {
        core_model& m = g_model[hw_cpu()];
        if (nr == max_sessions) return;
        const std::uint32_t size = min_size + rng.next() % spread;
        auto r = a.alloc(size, std::size_t{4} << (rng.next() % 4), pcpu::ctx::full);
        if (!r) {
            // Full is a value: no_space (static_only) or out_of_memory (the arena).
            check(r.error() == pcpu::errc::no_space || r.error() == pcpu::errc::out_of_memory, "alloc error", 0,
                  static_cast<std::uint32_t>(r.error()));
            ++m.refused;
            return;
        }
        ++m.allocs;
        session& s = live[nr++];
        s = session{r.value(), size, static_cast<std::uint8_t>(rng.next())};
        fill(a, s);
    }
    void free_one(xorshift32& rng) {
        if (nr == 0) return;
        const unsigned k = rng.next() % nr;
        check(intact(a, live[k]), "per-CPU object intact on every CPU until freed");
        const pcpu::errc e = a.free(live[k].h);
        check(e == pcpu::errc::ok, "free", 0, static_cast<std::uint32_t>(e));
        ++g_model[hw_cpu()].frees;
        live[k] = live[--nr];
    }
    void free_all() {
        xorshift32 rng{1};
        while (nr != 0) free_one(rng);
    }
};

void systick_start(std::uint32_t reload) {
    reg(syst_rvr) = reload;
    reg(syst_cvr) = 0;
    reg(syst_csr) = 7; // enable, interrupt, processor clock
}
void systick_stop() { reg(syst_csr) = 0; }

/// run_core() - what both cores do, each on its own copies.
void run_core() {
    const unsigned cpu = hw_cpu();
    core_model& m = g_model[cpu];
    xorshift32 rng{0x2545F491u * (cpu + 1)};
    sessions<static_alloc> st{g_static, {}, 0};
    sessions<dynamic_alloc> dy{g_dynamic, {}, 0};
    systick_start(cpu == 0 ? 20011 : 17011); // different rates: the counts must differ
    for (unsigned phase = 0; phase < nr_phases; ++phase) {
        barrier();
        for (unsigned i = 0; i < iterations; ++i) {
            const std::uint32_t ev = rng.next() % isr_event;
            pcpu::this_cpu_inc(g_static, g_events_h.at(ev));
            ++m.events[ev];
            pcpu::this_cpu_inc(g_static, g_loops_h);
            ++m.loops;
            g_total.inc();
            switch (rng.next() % 8) {
            case 0: st.alloc(rng, 4, 400); break;
            case 1: st.free_one(rng); break;
            case 2: dy.alloc(rng, 512, 3584); break;
            case 3: dy.free_one(rng); break;
            default: break;
            }
        }
        check_verified(g_static);
        check_verified(g_dynamic);
        barrier();
    }
    st.free_all();
    dy.free_all();
    systick_stop();
    check_verified(g_static);
    check_verified(g_dynamic);
    __asm__ volatile("dsb" ::: "memory");
    barrier();
}

std::uint32_t u32(std::int64_t v) { return static_cast<std::uint32_t>(v); }

int report() {
    unsigned failures = 0;
    auto fail = [&failures](const char* what, std::uint32_t expected, std::uint32_t actual) {
        ++failures;
        fw::line l;
        l << "FAIL: " << what << " (expected " << expected << ", got " << actual << ")";
        l.end();
    };
    const std::uint32_t core0_before = g_model[0].failures;
    for (unsigned c = 0; c < nr_cpus; ++c) {
        if (g_model[c].failures == 0) continue;
        failures += g_model[c].failures;
        fw::line l;
        l << "FAIL: core " << c << ": " << g_model[c].failures << " failed checks, first: "
          << g_model[c].first_failure << " (expected " << g_model[c].expected << ", got " << g_model[c].actual
          << ")";
        l.end();
    }

    fw::line hdr;
    hdr << "cpu   isr-ticks     loops    events    allocs     frees   refused";
    hdr.end();
    std::uint32_t total_events = 0, expected_total = 0;
    for (unsigned c = 0; c < nr_cpus; ++c) {
        const core_model& m = g_model[c];
        const std::uint32_t(&mine)[nr_event_types] = pcpu::per_cpu(g_events_h, c);
        std::uint32_t events = 0;
        for (unsigned e = 0; e < nr_event_types; ++e) {
            const std::uint32_t want = e == isr_event ? m.isr_ticks : m.events[e];
            if (mine[e] != want) fail("per-CPU event counter (this-CPU inc)", want, mine[e]);
            events += mine[e];
        }
        const core_statics& s = pcpu::per_cpu(pcpu::static_percpu(g_static, core_stats).value(), c);
        if (s.magic != statics_magic) fail("static per-CPU magic", statics_magic, s.magic);
        if (s.ticks != m.isr_ticks) fail("static per-CPU ticks (this-CPU inc in the SysTick ISR)", m.isr_ticks, s.ticks);
        if (s.loops != m.loops) fail("static per-CPU loops (this-CPU inc)", m.loops, s.loops);
        if (m.isr_ticks == 0) fail("SysTick interrupts on this core", 1, 0);
        if (m.allocs == 0 || m.allocs != m.frees) fail("every allocation freed", m.allocs, m.frees);
        total_events += events;
        expected_total += m.loops + m.isr_ticks;
        fw::line l;
        l << "cpu " << c;
        l.col(s.ticks, 11).col(s.loops, 10).col(events, 10).col(m.allocs, 10).col(m.frees, 10).col(m.refused, 10);
        l.end();
    }
    fw::line tl;
    tl << "total events " << total_events << " expected " << expected_total;
    tl.end();
    if (total_events != expected_total) fail("events total", expected_total, total_events);

    const std::int64_t sum = g_total.sum(), read = g_total.read(), bound = g_total.error_bound();
    if (u32(sum) != expected_total) fail("counter sum", expected_total, u32(sum));
    if (!(sum - read >= 0 && sum - read < bound)) fail("counter read within nr_cpus * batch of the sum", u32(bound), u32(sum - read));
    fw::line cl;
    cl << "counter: sum " << u32(sum) << ", read " << u32(read) << ", bound " << u32(bound);
    cl.end();

    // Both allocators empty again; the contiguous one gives its chunks back.
    if (g_static.stats().nr_cur_alloc != 2) // the event counters and the counter's deltas
        fail("static_only: only the counters live", 2, g_static.stats().nr_cur_alloc);
    if (g_dynamic.stats().nr_cur_alloc != 0) fail("contiguous: nothing live", 0, g_dynamic.stats().nr_cur_alloc);
    const std::uint32_t chunks_peak = g_dynamic.stats().nr_chunks;
    (void)g_dynamic.balance();
    check_verified(g_dynamic);
    g_dynamic.shutdown();
    const pcpu::arena& ar = g_dynamic.platform().memory();
    if (ar.used_bytes() != 0) fail("contiguous: shutdown returns the arena", 0, u32(ar.used_bytes()));
    fw::line pl;
    pl << "phases: " << nr_phases << " x " << iterations << " iterations per core, verify ok after each on both "
       << "cores; contiguous: " << chunks_peak << " chunks (spans of " << u32(span_bytes) << " B), arena "
       << u32(ar.used_bytes()) << " B in use after shutdown";
    pl.end();
    failures += g_model[0].failures - core0_before; // the checks core 0 made just now
    return fw::finish("pcpu smp firmware", failures);
}

int setup_failed(const char* what, pcpu::errc e) {
    fw::line f;
    f << "pcpu smp firmware: FAIL: " << what << ": " << pcpu::errc_name(e);
    f.end();
    return 3;
}

} // namespace

namespace fw {
[[noreturn]] void assert_failed(const char* cond, int line) noexcept {
    fw::line l;
    l << "pcpu smp firmware: FAIL: assertion " << cond << " (line " << static_cast<std::uint32_t>(line) << ", core "
      << hw_cpu() << ")";
    l.end();
    fw::exit(5);
}
} // namespace fw

extern "C" {
extern void* const vector_table_core1[16];

/// nmi_handler() - the watchdog: a phase did not end within its time.
void nmi_handler() {
    fw::write("pcpu smp firmware: FAIL: watchdog: a core stopped making progress\n");
    fw::exit(6);
}

/// systick_handler() - each core's own tick: this-CPU operations from interrupt
/// context, on the same counters the main loop updates.
void systick_handler() {
    pcpu::this_cpu_inc(g_static, g_ticks_h);
    pcpu::this_cpu_inc(g_static, g_events_h.at(isr_event));
    g_total.inc();
    g_model[hw_cpu()].isr_ticks = g_model[hw_cpu()].isr_ticks + 1;
}

[[noreturn]] void core1_main() {
    g_core1_started.store(1, std::memory_order_release);
    run_core();
    for (;;) __asm__ volatile("wfi");
}
} // extern "C"

int main() {
    fw::line l;
    l << "pcpu smp firmware: mps2-an521, " << nr_cpus << " Cortex-M33 cores, " << static_cast<std::uint32_t>(1u << page_shift)
      << " B pages, " << static_cast<std::uint32_t>(unit_size) << " B units, running on core " << hw_cpu();
    l.end();

    g_static_mem.construct();
    g_dynamic_mem.construct(static_cast<void*>(arena_storage), sizeof arena_storage);
    g_total_mem.construct();

    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.unit_addrs = static_units;
    cfg.unit_size = unit_size;
    pcpu::use_static_section(cfg);
    cfg.meta = meta_static;
    cfg.meta_size = sizeof meta_static;
    pcpu::errc e = g_static.init(cfg);
    if (e != pcpu::errc::ok) return setup_failed("static_only init", e);
    pcpu::first_chunk_config dcfg;
    dcfg.nr_cpus = nr_cpus;
    dcfg.unit_addrs = dynamic_units;
    dcfg.unit_size = unit_size;
    e = g_dynamic.init(dcfg);
    if (e != pcpu::errc::ok) return setup_failed("contiguous init", e);
    check_verified(g_static);
    check_verified(g_dynamic);

    const auto st = pcpu::static_percpu(g_static, core_stats);
    g_events_r = pcpu::alloc_percpu<event_counts>(g_static, pcpu::ctx::full, event_counts{});
    if (!st) return setup_failed("static per-CPU variables", st.error());
    if (!g_events_r) return setup_failed("alloc_percpu", g_events_r.error());
    e = g_total.init(g_static, 0, pcpu::ctx::full, 32);
    if (e != pcpu::errc::ok) return setup_failed("counter init", e);
    g_ticks_h = st.value().field(&core_statics::ticks);
    g_loops_h = st.value().field(&core_statics::loops);
    g_events_h = g_events_r.value().field(&event_counts::n);
    for (unsigned c = 0; c < nr_cpus; ++c) {
        fw::line u;
        u << "units: cpu " << c << " static_only ";
        u.hex(reinterpret_cast<std::uintptr_t>(g_static.ptr(g_static.static_handle(0), c)));
        u << " contiguous ";
        u.hex(reinterpret_cast<std::uintptr_t>(dynamic_units[c]));
        u << " (offset ";
        u.hex(g_static.cpu_offsets()[c]);
        u << ")";
        u.end();
        if (g_static.ptr(g_static.static_handle(0), c) != static_units[c])
            check(false, "static area of each CPU in its SRAM bank");
        if (pcpu::per_cpu(st.value(), c).magic != statics_magic) check(false, "static image copied to every unit");
    }

    reg(wdog_lock) = 0x1ACCE551u; // unlock
    reg(wdog_load) = wdog_timeout;
    reg(wdog_ctrl) = 1; // interrupt (NMI) on expiry, no reset

    // Release core 1: its vector table (own stack, own reset handler), then CPUWAIT.
    __asm__ volatile("dsb" ::: "memory");
    reg(sysctl_initsvtor1) = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(vector_table_core1));
    reg(sysctl_cpuwait) = reg(sysctl_cpuwait) & ~2u;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (std::uint32_t spin = 0; g_core1_started.load(std::memory_order_acquire) == 0; ++spin) {
        if (spin == 100000000u) {
            fw::line f;
            f << "pcpu smp firmware: FAIL: core 1 did not start";
            f.end();
            return 3;
        }
    }
    fw::line s;
    s << "core 1 released (INITSVTOR1, CPUWAIT); both cores counting";
    s.end();

    run_core();
    return report();
}
