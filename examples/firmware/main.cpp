// SPDX-License-Identifier: MIT
// examples/firmware/main.cpp - pcpu on a bare-metal Cortex-M4 (QEMU mps2-an386).
//
// The board has one core. The firmware plays four logical CPUs on it by switching the
// platform's current-CPU value, the way a per-task or per-priority-level statistics
// scheme would on real single-core firmware, and checks every number it prints.
//
// Part 1, static_only: the whole per-CPU region is declared below (no heap). Static
// per-CPU variables (PCPU_DEFINE: template copies in the pcpu_data section, in flash)
// start from their initialiser on every CPU; typed per-CPU event counters, a per-core
// statistics counter and a churn of per-CPU session buffers are allocated and freed
// while a simulated scheduler moves between CPUs; every update is a this-CPU operation
// under the platform's interrupt guard; verify() runs after every allocator operation;
// the per-CPU counts are checked against a plain model at the end.
//
// Part 2, contiguous: new chunks come from a static arena until it runs out; running
// out is an error value, never a crash; balance() and shutdown() give every byte back.
//
// Output goes through semihosting; the exit status is 0 when every check passed and 3
// when one failed (4: hard fault, 5: pcpu assertion). Built with
// -DPCPU_FIRMWARE_FAULT, it plants one stray write into another CPU's counters, which
// the checks must catch: CI runs that image too and expects status 3.

// An assertion inside pcpu is a failed run, reported like any other failure.
namespace fw {
[[noreturn]] void assert_failed(const char* cond, int line) noexcept;
}
#define PCPU_ASSERT(cond) ((cond) ? static_cast<void>(0) : ::fw::assert_failed(#cond, __LINE__))

#include <pcpu/allocator.hpp>
#include <pcpu/counter.hpp>
#include <pcpu/percpu.hpp>
#include <pcpu/platform/static_arena.hpp>
#include <pcpu/static_var.hpp>

#include "checks.hpp"
#include "semihost.hpp"

#include <cstddef>
#include <cstdint>

namespace {

constexpr unsigned nr_cpus = 4;
constexpr unsigned page_shift = 10;     // 1 KiB pages: small RAM, small bitmaps
constexpr std::size_t unit_size = 4096; // per CPU: four pages

// Interrupts masked around the index (free() would be safe from an ISR) and around each
// this-CPU operation (an ISR could update the same counters).
using platform =
    pcpu::static_arena<nr_cpus, page_shift, pcpu::cortex_m_irq_lock, pcpu::no_lock, pcpu::cortex_m_irq_guard>;
// The static_only part uses the firmware chunk policy (scan_layout: no block hints, the
// smallest image); the M0+ and M33 images run the kernel's layout.
using static_alloc = pcpu::allocator<platform, pcpu::static_only, pcpu::scan_layout<>>;
using dynamic_alloc = pcpu::allocator<platform, pcpu::contiguous>;

using fw::check;
using fw::check_verified;
using fw::xorshift32;

} // namespace

// ---- part 1: static_only ------------------------------------------------------------

/// The static per-CPU variables: every CPU's copy starts from the initialiser (the
/// kernel copies .data..percpu into each unit at boot; init() copies pcpu_data).
struct cpu_statics {
    std::uint32_t magic;    // 'PCPU' on every CPU, from the initialiser
    std::uint32_t ticks;    // scheduler ticks spent on this CPU
    std::uint32_t switches; // times the scheduler switched to this CPU
};
constexpr std::uint32_t statics_magic = 0x50435055u;
PCPU_DEFINE(cpu_statics, statics, statics_magic, 0, 0);
PCPU_DEFINE(std::uint32_t, boot_generation, 7); // a second variable: offsets must hold

namespace {

constexpr std::size_t nr_event_types = 8;
struct event_counts {
    std::uint32_t n[nr_event_types];
};
constexpr unsigned nr_ticks = 20000;
constexpr unsigned max_sessions = 16;

alignas(static_alloc::page_size) unsigned char units_static[nr_cpus * unit_size];
// The static area's size is known only after linking: metadata for any size.
alignas(static_alloc::meta_align) unsigned char meta_static[pcpu::static_meta_bytes_bound<static_alloc>(unit_size, 0)];

struct session {
    pcpu::handle h;
    std::uint32_t size;
    std::uint8_t tag;
};

void fill_session(const static_alloc& a, const session& s) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        auto* p = static_cast<std::uint8_t*>(a.ptr(s.h, cpu));
        for (std::uint32_t i = 0; i < s.size; ++i) p[i] = static_cast<std::uint8_t>(s.tag + cpu);
    }
}
bool session_intact(const static_alloc& a, const session& s) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        const auto* p = static_cast<const std::uint8_t*>(a.ptr(s.h, cpu));
        for (std::uint32_t i = 0; i < s.size; ++i)
            if (p[i] != static_cast<std::uint8_t>(s.tag + cpu)) return false;
    }
    return true;
}

void run_static_only() {
    static_alloc a;
    platform& plat = a.platform();
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.units = units_static;
    cfg.unit_size = unit_size;
    pcpu::use_static_section(cfg); // the pcpu_data block: image and size
    cfg.meta = meta_static;
    cfg.meta_size = sizeof meta_static;
    const pcpu::errc init = a.init(cfg);
    check(init == pcpu::errc::ok, "static_only init", 0, static_cast<std::uint32_t>(init));
    if (init != pcpu::errc::ok) return;
    check_verified(a, "init");

    // Static per-CPU variables resolve like dynamic ones: a typed handle, one add per CPU.
    const auto statics_r = pcpu::static_percpu(a, statics);
    const auto generation_r = pcpu::static_percpu(a, boot_generation);
    check(statics_r.ok() && generation_r.ok(), "static per-CPU variables in the static area");
    if (!statics_r || !generation_r) return;
    const pcpu::percpu<cpu_statics> st_h = statics_r.value();
    const pcpu::percpu<std::uint32_t> ticks_h = st_h.field(&cpu_statics::ticks);
    const pcpu::percpu<std::uint32_t> switches_h = st_h.field(&cpu_statics::switches);
    unsigned images_ok = 0;
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu)
        images_ok += pcpu::per_cpu(st_h, cpu).magic == statics_magic &&
                     pcpu::per_cpu(generation_r.value(), cpu) == 7;
    check(images_ok == nr_cpus, "static variables start from their initialisers on every CPU", nr_cpus, images_ok);

    std::uint32_t ops = 0;
    auto counters_r = pcpu::alloc_percpu<event_counts>(a, pcpu::ctx::full, event_counts{});
    ++ops;
    check_verified(a, "alloc counters");
    check(counters_r.ok(), "alloc per-CPU counters");
    if (!counters_r) return;
    const pcpu::percpu<std::uint32_t[nr_event_types]> counters = counters_r.value().field(&event_counts::n);

    // A per-core statistics counter (percpu_counter): the same events, summed with a
    // batch, so that the shared count is touched about once per 32 events.
    pcpu::counter<static_alloc> total_events;
    const pcpu::errc cinit = total_events.init(a, 0, pcpu::ctx::full, 32);
    ++ops;
    check_verified(a, "counter init");
    check(cinit == pcpu::errc::ok, "counter init", 0, static_cast<std::uint32_t>(cinit));
    if (cinit != pcpu::errc::ok) return;

    // The model the per-CPU copies must match at the end.
    std::uint32_t expected[nr_cpus][nr_event_types] = {};
    std::uint32_t expected_ticks[nr_cpus] = {};
    std::uint32_t expected_switches[nr_cpus] = {};

    session sessions[max_sessions] = {};
    unsigned nr_sessions = 0, peak_sessions = 0, nr_refused = 0;
    xorshift32 rng{0x2545F491u};
    unsigned current = nr_cpus; // none yet

    for (unsigned tick = 0; tick < nr_ticks; ++tick) {
        // The "scheduler": mostly stay, sometimes move to another logical CPU.
        if (current == nr_cpus || rng.next() % 8 == 0) {
            const unsigned next = rng.next() % nr_cpus;
            if (next != current) {
                current = next;
                plat.set_this_cpu(current);
                pcpu::this_cpu_inc(a, switches_h);
                ++expected_switches[current];
            }
        }
        // The running code only ever asks for "my" copy: this-CPU operations.
        pcpu::this_cpu_inc(a, ticks_h);
        ++expected_ticks[plat.this_cpu()];
        const std::uint32_t event = rng.next() % nr_event_types;
        pcpu::this_cpu_inc(a, counters.at(event));
        total_events.inc();
        ++expected[plat.this_cpu()][event];
#ifdef PCPU_FIRMWARE_FAULT
        // A per-CPU bug planted on purpose: one update lands in a neighbour's copy.
        if (tick == nr_ticks / 2) ++pcpu::per_cpu(counters, (plat.this_cpu() + 1) % nr_cpus)[event];
#endif

        // Session buffers come and go: allocations of mixed size and alignment.
        const std::uint32_t roll = rng.next() % 16;
        if (roll == 0 && nr_sessions < max_sessions) {
            const std::uint32_t size = 4 + rng.next() % 700;
            const std::size_t align = std::size_t{4} << (rng.next() % 5);
            auto r = a.alloc(size, align, pcpu::ctx::full);
            ++ops;
            check_verified(a, "alloc");
            if (r) {
                check(r.value().addr() % align == 0, "allocation alignment", static_cast<std::uint32_t>(align),
                      static_cast<std::uint32_t>(r.value().addr() % align));
                session& s = sessions[nr_sessions++];
                s = session{r.value(), size, static_cast<std::uint8_t>(rng.next())};
                fill_session(a, s);
                if (nr_sessions > peak_sessions) peak_sessions = nr_sessions;
            } else {
                // Full is a value, not a crash: no_space, and nothing changed.
                check(r.error() == pcpu::errc::no_space, "a full static_only allocator says no_space", 0,
                      static_cast<std::uint32_t>(r.error()));
                ++nr_refused;
            }
        } else if (roll == 1 && nr_sessions != 0) {
            const unsigned victim = rng.next() % nr_sessions;
            check(session_intact(a, sessions[victim]), "session buffer intact on every CPU until freed");
            const pcpu::errc e = a.free(sessions[victim].h);
            ++ops;
            check_verified(a, "free");
            check(e == pcpu::errc::ok, "free", 0, static_cast<std::uint32_t>(e));
            sessions[victim] = sessions[--nr_sessions];
        }
    }

    // The table, and the checks against the model.
    fw::line hdr;
    hdr << "cpu  ticks  switches  events";
    hdr.end();
    std::uint32_t total = 0, expected_total = 0;
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        std::uint32_t events = 0;
        const std::uint32_t(&mine)[nr_event_types] = pcpu::per_cpu(counters, cpu);
        for (std::size_t e = 0; e < nr_event_types; ++e) {
            events += mine[e];
            expected_total += expected[cpu][e];
            check(mine[e] == expected[cpu][e], "per-CPU event counter", expected[cpu][e], mine[e]);
        }
        total += events;
        const cpu_statics& s = pcpu::per_cpu(st_h, cpu);
        check(s.ticks == expected_ticks[cpu], "static per-CPU ticks", expected_ticks[cpu], s.ticks);
        check(s.switches == expected_switches[cpu], "static per-CPU switches", expected_switches[cpu], s.switches);
        check(s.magic == statics_magic, "static per-CPU magic", statics_magic, s.magic);
        fw::line l;
        l << "cpu " << cpu;
        l.col(s.ticks, 7).col(s.switches, 10).col(events, 8);
        l.end();
    }
    check(total == nr_ticks, "events total equals ticks", nr_ticks, total);
    fw::line tl;
    tl << "total events " << total << " expected " << expected_total;
    tl.end();

    // The counter: exact sum, approximate read within the documented bound, compare.
    const auto exact = static_cast<std::uint32_t>(total_events.sum());
    const std::int64_t gap = total_events.sum() - total_events.read();
    const auto bound = static_cast<std::uint32_t>(total_events.error_bound());
    check(exact == nr_ticks, "counter sum", nr_ticks, exact);
    check(gap >= 0 && gap < total_events.error_bound(), "counter read within nr_cpus * batch of the sum", bound,
          static_cast<std::uint32_t>(gap));
    check(total_events.compare(nr_ticks) == 0 && total_events.compare(nr_ticks - 1) > 0 &&
              total_events.compare(nr_ticks + 1) < 0,
          "counter compare on both sides");
    fw::line cl;
    cl << "counter: sum " << exact << ", read " << static_cast<std::uint32_t>(total_events.read()) << ", bound "
       << bound;
    cl.end();

    for (unsigned i = 0; i < nr_sessions; ++i) {
        check(session_intact(a, sessions[i]), "session buffer intact on every CPU until freed");
        check(a.free(sessions[i].h) == pcpu::errc::ok, "free at the end");
        ++ops;
        check_verified(a, "free");
    }
    check(pcpu::free_percpu(a, counters_r.value()) == pcpu::errc::ok, "free counters");
    ++ops;
    check_verified(a, "free counters");
    check(total_events.destroy() == pcpu::errc::ok, "counter destroy");
    ++ops;
    check_verified(a, "counter destroy");
    const pcpu::alloc_stats st = a.stats();
    check(st.nr_cur_alloc == 0, "nothing live at the end", 0, st.nr_cur_alloc);
    check(st.nr_alloc == st.nr_dealloc, "every allocation freed", static_cast<std::uint32_t>(st.nr_alloc),
          static_cast<std::uint32_t>(st.nr_dealloc));

    fw::line sl;
    sl << "static_only: " << ops << " alloc/free operations, verify ok after each; peak " << peak_sessions
       << " sessions, " << nr_refused << " refused (no_space)";
    sl.end();
}

// ---- part 2: contiguous over an arena -------------------------------------------------

constexpr std::size_t chunk_bytes = nr_cpus * unit_size; // one chunk's units
alignas(dynamic_alloc::page_size) unsigned char units_first[nr_cpus * unit_size];
// Room for three more chunks and the metadata of all four (about 600 bytes a chunk with
// 4 KiB units), with slack, but far less than a fourth chunk's units: exactly three
// chunks come from the arena, whatever the metadata layout costs.
alignas(dynamic_alloc::page_size) unsigned char arena_storage[3 * chunk_bytes + 4096];
static_assert(4096 < chunk_bytes, "the metadata room must not hold a fourth chunk");

void run_contiguous() {
    dynamic_alloc a(arena_storage, sizeof arena_storage);
    platform& plat = a.platform();
    const pcpu::arena& ar = plat.memory();
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.units = units_first;
    cfg.unit_size = unit_size;
    cfg.meta = nullptr; // from the arena
    const pcpu::errc init = a.init(cfg);
    check(init == pcpu::errc::ok, "contiguous init", 0, static_cast<std::uint32_t>(init));
    if (init != pcpu::errc::ok) return;
    check_verified(a, "init");

    // 1 KiB per CPU at a time until the arena cannot hold another chunk.
    pcpu::handle live[32];
    unsigned nr_live = 0;
    pcpu::errc stop = pcpu::errc::ok;
    while (nr_live < 32) {
        auto r = a.alloc(1024, 8, pcpu::ctx::full);
        check_verified(a, "alloc");
        if (!r) {
            stop = r.error();
            break;
        }
        for (unsigned cpu = 0; cpu < nr_cpus; ++cpu)
            *static_cast<std::uint32_t*>(a.ptr(r.value(), cpu)) = nr_live * nr_cpus + cpu;
        live[nr_live++] = r.value();
    }
    check(stop == pcpu::errc::out_of_memory, "an exhausted arena says out_of_memory", 0,
          static_cast<std::uint32_t>(stop));
    const std::uint32_t chunks_at_peak = a.stats().nr_chunks;
    // Four 1 KiB allocations per 4 KiB unit: the first chunk and three from the arena.
    check(nr_live == 4 * 4, "allocations until the arena ran out", 16, nr_live);
    check(chunks_at_peak == 4, "chunks at the peak", 4, chunks_at_peak);

    // An atomic request never creates a chunk: would_block, and a balance request.
    (void)plat.take_balance_request();
    auto at = a.alloc(64, 8, pcpu::ctx::atomic);
    check_verified(a, "atomic alloc");
    check(at.error() == pcpu::errc::would_block, "atomic alloc when full says would_block", 0,
          static_cast<std::uint32_t>(at.error()));
    check(plat.take_balance_request(), "the atomic failure asked for balance");
    // The idle loop's answer: balance, which wants a new chunk for the reserve and
    // cannot have one either. Out of memory is reported, nothing is half done.
    const pcpu::errc refill = a.balance();
    check_verified(a, "balance");
    check(refill == pcpu::errc::out_of_memory, "balance with the arena full says out_of_memory", 0,
          static_cast<std::uint32_t>(refill));

    unsigned intact = 0;
    for (unsigned i = 0; i < nr_live; ++i)
        for (unsigned cpu = 0; cpu < nr_cpus; ++cpu)
            intact += *static_cast<std::uint32_t*>(a.ptr(live[i], cpu)) == i * nr_cpus + cpu;
    check(intact == nr_live * nr_cpus, "every CPU's copy intact after exhaustion", nr_live * nr_cpus, intact);

    const std::size_t peak = ar.peak_used();
    for (unsigned i = 0; i < nr_live; ++i) {
        check(a.free(live[i]) == pcpu::errc::ok, "free");
        check_verified(a, "free");
    }
    // The idle loop again: the frees asked for balance, which destroys the surplus
    // free chunks and keeps one spare beside the first chunk.
    check(plat.take_balance_request(), "freeing surplus chunks asked for balance");
    check(a.balance() == pcpu::errc::ok, "balance");
    check_verified(a, "balance");
    const std::uint32_t chunks_after = a.stats().nr_chunks;
    check(chunks_after == 2, "chunks after balance: the first and one spare", 2, chunks_after);
    fw::line l;
    l << "contiguous: " << chunks_at_peak << " chunks at the peak, " << chunks_after
      << " after balance; arena peak " << static_cast<std::uint32_t>(peak) << " of "
      << static_cast<std::uint32_t>(ar.capacity()) << " bytes; exhaustion: " << pcpu::errc_name(stop)
      << ", balance when full: " << pcpu::errc_name(refill);
    l.end();

    a.shutdown();
    check(ar.used_bytes() == 0, "shutdown returns the whole arena", 0, static_cast<std::uint32_t>(ar.used_bytes()));
    check(ar.nr_free_blocks() == 1 && ar.verify(), "the arena is one free block again");
    fw::line sl;
    sl << "contiguous: shutdown returned the arena: " << static_cast<std::uint32_t>(ar.used_bytes())
       << " bytes in use";
    sl.end();
}

} // namespace

namespace fw {
[[noreturn]] void assert_failed(const char* cond, int line) noexcept {
    fw::line l;
    l << "pcpu firmware: FAIL: assertion " << cond << " (line " << static_cast<std::uint32_t>(line) << ")";
    l.end();
    fw::exit(5);
}
} // namespace fw

int main() {
    fw::line l;
    l << "pcpu firmware: Cortex-M4, " << nr_cpus << " logical CPUs, " << static_cast<std::uint32_t>(1u << page_shift)
      << " B pages, " << static_cast<std::uint32_t>(unit_size) << " B units";
    l.end();
    run_static_only();
    run_contiguous();
    return fw::finish("pcpu firmware", fw::failures);
}
