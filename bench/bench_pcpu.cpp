// SPDX-License-Identifier: MIT
// bench/bench_pcpu.cpp - pcpu against the baselines a user would otherwise write, every
// case in the same binary and the same run, so the figures that matter are ratios.
//
// Case names are <case>/<impl>/<params>; bench/plot pairs each pcpu case with the
// baselines of the same <case> and <params>. Memory figures are user counters:
//   backing_per_live   backing bytes / live bytes (all CPUs), at the peak of live bytes
//   meta_per_live      pcpu's metadata (chunk structs, bitmaps, page array) / live bytes
// Run with --help for the pcpu options (--pcpu_short, --pcpu_trace=, --pcpu_svg=).
// Built with PCPU_BENCH_LAYOUTS=1 (pcpu_bench_layouts) it also has the rows of the
// non-default chunk layouts.
#include "impls.hpp"
#include "workload.hpp"

#include <pcpu/counter.hpp>
#include <pcpu/debug/occupancy_svg.hpp>
#include <pcpu/percpu.hpp>

#include <benchmark/benchmark.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include <time.h>

#ifndef PCPU_BENCH_LAYOUTS
#define PCPU_BENCH_LAYOUTS 0
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace pcpu_bench;

// ---- options ------------------------------------------------------------------------
struct options {
    std::string trace_path = PCPU_BENCH_TRACE;
    std::string svg_path;      // occupancy map of the mixed trace, written if set
    bool short_mode = false;   // CI: a slice of the trace, small workloads
    unsigned cpus = 2;         // the trace was recorded on 2 CPUs
    unsigned life_cycles = 20; // cycles of the long-life cases (cold: the first)
};
options opt;
int g_errors = 0;

trace g_trace;  // the recorded Linux trace (or a slice of it)
trace g_mixed;  // the mixed synthetic trace

void fail(benchmark::State& st, const char* what) {
    ++g_errors;
    st.SkipWithError(what);
}

// ---- cycle counter ----------------------------------------------------------------------
#if defined(__x86_64__) || defined(__i386__)
inline std::uint64_t cycles_begin() {
    _mm_lfence();
    return __rdtsc();
}
inline std::uint64_t cycles_end() {
    unsigned aux;
    const std::uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}
constexpr const char* cycle_unit = "TSC cycles";
#else
inline std::uint64_t cycles_begin() {
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}
inline std::uint64_t cycles_end() { return cycles_begin(); }
constexpr const char* cycle_unit = "ns (no cycle counter on this target)";
#endif

using clk = std::chrono::steady_clock;
double seconds(clk::duration d) { return std::chrono::duration<double>(d).count(); }

// ---- replay -------------------------------------------------------------------------------

/// replay_time(impl, t, slots) - run every op of t; returns the time spent in alloc and
/// free calls. Balance runs when the platform asked for it, as a work queue would soon
/// after, and its time is returned apart (Linux runs it on a worker, off the caller's
/// path). False on an allocation failure.
template <class Impl>
bool replay_time(Impl& impl, const trace& t, std::vector<typename Impl::handle>& slots, double& op_s,
                 double& balance_s) {
    op_s = balance_s = 0;
    auto t0 = clk::now();
    for (const op& o : t.ops) {
        if (o.alloc) {
            if (!impl.alloc(o.size, o.align, o.atomic, slots[o.slot])) return false;
        } else {
            impl.free(slots[o.slot]);
        }
        if (impl.balance_pending()) {
            // Rare (a few dozen times per trace): the clock reads cost nothing here.
            const auto t1 = clk::now();
            op_s += seconds(t1 - t0);
            impl.balance_if_requested();
            t0 = clk::now();
            balance_s += seconds(t0 - t1);
        }
    }
    op_s += seconds(clk::now() - t0);
    return true;
}

/// free_live(impl, t, slots) - free what t leaves allocated.
template <class Impl>
void free_live(Impl& impl, const trace& t, std::vector<typename Impl::handle>& slots) {
    std::vector<bool> live(t.nr_slots, false);
    for (const op& o : t.ops) live[o.slot] = o.alloc;
    for (std::uint32_t s = 0; s < t.nr_slots; ++s)
        if (live[s]) impl.free(slots[s]);
}

/// BM_replay<Impl> - ns per operation (alloc and free averaged) over a whole trace,
/// a fresh allocator per pass (set-up and teardown not timed).
template <class Impl>
void BM_replay(benchmark::State& st, const trace* t) {
    std::vector<typename Impl::handle> slots(t->nr_slots);
    double total_ops = 0, total_balance = 0, total_op_s = 0;
    for (auto _ : st) {
        Impl impl(opt.cpus);
        double op_s = 0, bal_s = 0;
        if (!impl.ok() || !replay_time(impl, *t, slots, op_s, bal_s)) return fail(st, "allocation failed");
        st.SetIterationTime(op_s);
        total_ops += static_cast<double>(t->ops.size());
        total_balance += bal_s;
        total_op_s += op_s;
        free_live(impl, *t, slots);
    }
    st.counters["ops"] = static_cast<double>(t->ops.size());
    st.counters["ns_per_op"] = total_ops > 0 ? total_op_s * 1e9 / total_ops : 0.0;
    // Balance (the deferred work) apart: not on any caller's path.
    st.counters["balance_ns_per_op"] = total_ops > 0 ? total_balance * 1e9 / total_ops : 0.0;
    st.SetItemsProcessed(static_cast<std::int64_t>(total_ops));
}

/// replay_pass(impl, t, slots, live) - one pass of t, then a free of what t leaves
/// allocated (frees are operations too). Returns the number of operations, 0 on an
/// allocation failure.
template <class Impl>
inline __attribute__((always_inline)) std::size_t replay_pass(Impl& impl, const trace& t,
                                                              std::vector<typename Impl::handle>& slots,
                                                              const std::vector<bool>& live) {
    for (const op& o : t.ops) {
        if (o.alloc) {
            if (!impl.alloc(o.size, o.align, o.atomic, slots[o.slot])) return 0;
        } else {
            impl.free(slots[o.slot]);
        }
        impl.balance_if_requested();
    }
    std::size_t n = t.ops.size();
    for (std::uint32_t s = 0; s < t.nr_slots; ++s)
        if (live[s]) {
            impl.free(slots[s]);
            ++n;
        }
    return n;
}
/// warm_up_pass / timed_pass - the same pass under two names: scripts/bench has
/// callgrind collect only timed_pass (noipa: not inlined, not folded into the other),
/// never the set-up
/// or the warm-up.
template <class Impl>
__attribute__((noipa)) std::size_t warm_up_pass(Impl& impl, const trace& t, std::vector<typename Impl::handle>& slots,
                                                   const std::vector<bool>& live) {
    return replay_pass(impl, t, slots, live);
}
template <class Impl>
__attribute__((noipa)) std::size_t timed_pass(Impl& impl, const trace& t, std::vector<typename Impl::handle>& slots,
                                                 const std::vector<bool>& live) {
    return replay_pass(impl, t, slots, live);
}

/// BM_replay_warm<Impl> - the same trace replayed again and again on one allocator,
/// after one untimed warm-up pass: every timed pass runs on populated, warmed chunks.
template <class Impl>
void BM_replay_warm(benchmark::State& st, const trace* t) {
    std::vector<typename Impl::handle> slots(t->nr_slots);
    std::vector<bool> live(t->nr_slots, false);
    for (const op& o : t->ops) live[o.slot] = o.alloc;
    Impl impl(opt.cpus);
    if (!impl.ok()) return fail(st, "init failed");
    if (warm_up_pass(impl, *t, slots, live) == 0) return fail(st, "allocation failed");
    std::size_t n = 0;
    for (auto _ : st) {
        const std::size_t k = timed_pass(impl, *t, slots, live);
        if (k == 0) return fail(st, "allocation failed");
        n += k;
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(n));
    st.counters["allocs_per_pass"] = static_cast<double>(t->nr_allocs);
    st.counters["frees_per_pass"] = static_cast<double>(t->ops.size() - t->nr_allocs) +
                                    static_cast<double>(std::count(live.begin(), live.end(), true));
}

/// BM_memory<Impl> - untimed pass over a trace: backing bytes / live bytes when live
/// bytes peak, and for pcpu what remains after a final balance.
template <class Impl>
void BM_memory(benchmark::State& st, const trace* t, const char* svg) {
    for (auto _ : st) {
        std::vector<typename Impl::handle> slots(t->nr_slots);
        Impl impl(opt.cpus);
        if (!impl.ok()) return fail(st, "init failed");
        const double live_all = static_cast<double>(t->peak_live) * opt.cpus;
        std::size_t held = 0; // baselines: bytes malloc holds for live blocks
        for (std::size_t i = 0; i < t->ops.size(); ++i) {
            const op& o = t->ops[i];
            if (o.alloc) {
                if (!impl.alloc(o.size, o.align, o.atomic, slots[o.slot])) return fail(st, "allocation failed");
                if constexpr (!is_pcpu<Impl>::value) held += impl.footprint(slots[o.slot]);
            } else {
                if constexpr (!is_pcpu<Impl>::value) held -= impl.footprint(slots[o.slot]);
                impl.free(slots[o.slot]);
            }
            impl.balance_if_requested();
            if (i != t->peak_index) continue;
            if constexpr (is_pcpu<Impl>::value) {
                const double pop = static_cast<double>(impl.dynamic_populated_bytes());
                st.counters["backing_per_live"] = pop / static_cast<double>(t->peak_live);
                st.counters["meta_per_live"] = static_cast<double>(impl.plat().meta_bytes) / live_all;
            } else {
                st.counters["backing_per_live"] = static_cast<double>(held) / live_all;
            }
        }
        if constexpr (is_pcpu<Impl>::value) {
            const pcpu::verify_report rep = impl.alloc().verify();
            if (!rep.ok) {
                char buf[200];
                std::fprintf(stderr, "verify: %s\n", rep.describe(buf, sizeof buf));
                return fail(st, "verify failed after the replay");
            }
            (void)impl.alloc().balance();
            const pcpu::alloc_stats s = impl.alloc().stats();
            st.counters["final_empty_pop_pages"] = static_cast<double>(s.nr_empty_pop_pages);
            st.counters["final_backing_per_live"] =
                static_cast<double>(impl.dynamic_populated_bytes()) / static_cast<double>(s.live_bytes);
            st.counters["chunks"] = static_cast<double>(s.nr_chunks);
            if (svg != nullptr && *svg != '\0') {
                std::FILE* f = std::fopen(svg, "w");
                pcpu::debug::occupancy_svg_options o;
                o.title = "pcpu occupancy after the mixed synthetic trace and a final balance (2 CPUs, 4 KiB pages, 1 px = 4 bytes)";
                if (f == nullptr || !pcpu::debug::write_occupancy_svg_file(impl.alloc(), f, o)) ++g_errors;
                if (f != nullptr) std::fclose(f);
            }
        }
        free_live(impl, *t, slots);
    }
    st.counters["peak_live_bytes_per_cpu"] = static_cast<double>(t->peak_live);
}

/// linux_geometry(unit) - the first chunk of the recorded kernel with 64 KiB or 1 MiB
/// units (static area as recorded, no reserved area, the dynamic area's end as Linux's).
geometry linux_geometry(std::size_t unit) {
    geometry g;
    g.static_size = unit == 64 * 1024 ? 29912 : 185560;
    g.reserved_size = 0;
    g.dynamic_size = 31528;
    g.unit = unit;
    return g;
}

/// BM_worst<pcpu> - the costliest single allocation and free of the trace. Each pass is
/// deterministic (fresh allocator, same ops), so every op is timed in every pass and
/// its minimum over passes taken: preemption and interrupts on a shared machine inflate
/// single samples, never all of them. Allocations that created a chunk are excluded
/// from the headline figure; allocations that populated pages are reported apart (they
/// call mprotect and fault pages in: microseconds, like Linux's vmalloc mapping).
///
/// warm: each fresh allocator is verify()-ed before its pass (untimed), which reads all
/// its metadata, and the trace's first operation is run once (untimed) on another
/// allocator, which brings the allocation path's code and branch history back after the
/// construction: as in an allocator that has been running. Without it the first
/// operations of a pass pay for a cold path: op 0 executes the same ~800 instructions
/// as any allocation (callgrind) but costs 400-1,600 cycles after building 1 MiB units,
/// and 105 once the code is warm, even with this allocator's own data untouched.
void BM_worst(benchmark::State& st, const trace* t, geometry g, bool warm) {
    const unsigned passes = opt.short_mode ? 2 : 15;
    std::vector<std::uint64_t> best(t->ops.size(), ~std::uint64_t{0});
    std::vector<unsigned char> kind(t->ops.size(), 0); // 1 chunk created, 2 populated
    // The timer's own cost: the minimum over many empty measurements.
    std::uint64_t overhead = ~std::uint64_t{0};
    for (int i = 0; i < 10000; ++i) {
        const std::uint64_t a = cycles_begin();
        const std::uint64_t b = cycles_end();
        overhead = std::min(overhead, b - a);
    }
    for (auto _ : st) {
        for (unsigned pass = 0; pass < passes; ++pass) {
            std::vector<pcpu::handle> slots(t->nr_slots);
            std::unique_ptr<pcpu_impl> twin;
            if (warm) twin = std::make_unique<pcpu_impl>(opt.cpus, g);
            pcpu_impl impl(opt.cpus, g);
            if (!impl.ok() || (twin && !twin->ok())) return fail(st, "init failed");
            if (warm) {
                if (!impl.alloc().verify().ok) return fail(st, "verify failed");
                const op& o = t->ops.front();
                pcpu::handle h;
                if (o.alloc && twin->alloc(o.size, o.align, o.atomic, h)) twin->free(h);
            }
            platform& p = impl.plat();
            for (std::size_t i = 0; i < t->ops.size(); ++i) {
                const op& o = t->ops[i];
                const std::size_t mapped = p.mapped_pages, chunks = impl.alloc().stats().nr_chunks;
                std::uint64_t c0, c1;
                if (o.alloc) {
                    c0 = cycles_begin();
                    const bool ok = impl.alloc(o.size, o.align, o.atomic, slots[o.slot]);
                    c1 = cycles_end();
                    if (!ok) return fail(st, "allocation failed");
                } else {
                    c0 = cycles_begin();
                    impl.free(slots[o.slot]);
                    c1 = cycles_end();
                }
                if (impl.alloc().stats().nr_chunks != chunks) kind[i] = 1;
                else if (p.mapped_pages != mapped) kind[i] = 2;
                const std::uint64_t c = c1 - c0 > overhead ? c1 - c0 - overhead : 0;
                best[i] = std::min(best[i], c);
                impl.balance_if_requested();
            }
            free_live(impl, *t, slots);
        }
    }
    std::uint64_t worst_alloc = 0, worst_pop = 0, worst_free = 0, worst_chunk = 0;
    std::size_t worst_i = 0, n_pop = 0, n_chunk = 0;
    std::vector<std::uint64_t> allocs;
    for (std::size_t i = 0; i < t->ops.size(); ++i) {
        const op& o = t->ops[i];
        if (!o.alloc) {
            worst_free = std::max(worst_free, best[i]);
        } else if (kind[i] == 1) {
            worst_chunk = std::max(worst_chunk, best[i]);
            ++n_chunk;
        } else if (kind[i] == 2) {
            worst_pop = std::max(worst_pop, best[i]);
            ++n_pop;
        } else {
            allocs.push_back(best[i]);
            if (best[i] > worst_alloc) {
                worst_alloc = best[i];
                worst_i = i;
            }
        }
    }
    std::sort(allocs.begin(), allocs.end());
    st.counters["worst_alloc_cycles"] = static_cast<double>(worst_alloc);
    st.counters["worst_alloc_size"] = static_cast<double>(t->ops[worst_i].size);
    st.counters["worst_alloc_op_index"] = static_cast<double>(worst_i);
    st.counters["p50_alloc_cycles"] = allocs.empty() ? 0.0 : static_cast<double>(allocs[allocs.size() / 2]);
    st.counters["p99_alloc_cycles"] = allocs.empty() ? 0.0 : static_cast<double>(allocs[allocs.size() * 99 / 100]);
    st.counters["worst_free_cycles"] = static_cast<double>(worst_free);
    st.counters["worst_populating_alloc_cycles"] = static_cast<double>(worst_pop);
    st.counters["populating_allocs"] = static_cast<double>(n_pop);
    st.counters["worst_chunk_creating_alloc_cycles"] = static_cast<double>(worst_chunk);
    st.counters["chunk_creating_allocs"] = static_cast<double>(n_chunk);
    st.counters["timer_overhead_cycles"] = static_cast<double>(overhead);
    st.SetLabel(cycle_unit);
}

// ---- alloc+free pairs ------------------------------------------------------------------------

/// prepare(impl, frag, keep) - the state a pair runs in. steady: the first 2000 ops of
/// the trace replayed (a realistic live set). fragmented: 16384 four-byte objects
/// (64 KiB per CPU, the first chunk's dynamic area and pages of a dynamic chunk), then
/// every other one freed: thousands of 4-byte holes the search must not waste time on.
template <class Impl>
bool prepare(Impl& impl, bool frag, std::vector<typename Impl::handle>& keep) {
    if (!frag) {
        const std::size_t n = std::min<std::size_t>(g_trace.ops.size(), 2000);
        keep.resize(g_trace.nr_slots);
        for (std::size_t i = 0; i < n; ++i) {
            const op& o = g_trace.ops[i];
            if (o.alloc) {
                if (!impl.alloc(o.size, o.align, false, keep[o.slot])) return false;
            } else {
                impl.free(keep[o.slot]);
            }
        }
        impl.balance_if_requested();
        return true;
    }
    const std::size_t n = opt.short_mode ? 4096 : 16384;
    keep.resize(n);
    for (std::size_t i = 0; i < n; ++i)
        if (!impl.alloc(4, 4, false, keep[i])) return false;
    for (std::size_t i = 0; i < n; i += 2) impl.free(keep[i]);
    impl.balance_if_requested();
    return true;
}

template <class Impl>
void BM_pair(benchmark::State& st, std::size_t size, std::size_t align, bool frag, bool atomic) {
    Impl impl(opt.cpus);
    std::vector<typename Impl::handle> keep;
    if (!impl.ok() || !prepare(impl, frag, keep)) return fail(st, "set-up failed");
    typename Impl::handle h{};
    // One untimed pair first, so population of the page it lands on is not timed.
    if (!impl.alloc(size, align, false, h)) return fail(st, "allocation failed");
    impl.free(h);
    for (auto _ : st) {
        if (!impl.alloc(size, align, atomic, h)) return fail(st, "allocation failed");
        benchmark::DoNotOptimize(h);
        impl.free(h);
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}

// ---- per-CPU access ----------------------------------------------------------------------------

constexpr std::size_t access_objects = 4096;
constexpr std::size_t access_steps = 1 << 16;

/// The same random sequence of (object, cpu) pairs for pcpu and the raw array. pcpu
/// resolves a handle with ptr(h, cpu) = h + cpu_offsets[cpu] (or per_cpu_ptr on a
/// percpu<T>, the same computation); the raw array computes &array[cpu][object] =
/// row0 + cpu * stride. Every case has one loop shape for both implementations.
struct access_input {
    std::vector<std::uint32_t> obj, cpu;
    access_input() {
        splitmix64 r{42};
        for (std::size_t i = 0; i < access_steps; ++i) {
            obj.push_back(static_cast<std::uint32_t>(r.below(access_objects)));
            cpu.push_back(static_cast<std::uint32_t>(r.below(opt.cpus)));
        }
    }
};

/// access_mode - what each step does with the address it computed.
///   address: nothing; the address is kept alive with DoNotOptimize, so the step is
///            the address computation itself (a handle and a CPU number in, a
///            pointer out), which is what the 1.05x target is about.
///   increment: increments the 4-byte value there. pcpu's units are a unit (224 KiB)
///            apart, the raw rows 16 KiB apart, so this also measures cache and TLB
///            footprint, not only the computation.
enum class access_mode { address, increment };

/// The pcpu state every access case shares: 4096 four-byte objects and the handle
/// sequence, built once.
struct pcpu_access_state {
    pcpu_impl impl{opt.cpus};
    access_input in;
    std::vector<pcpu::handle> seq;
    std::vector<pcpu::percpu<std::uint32_t>> typed_seq;
    pcpu::percpu<std::uint32_t[access_objects]> table; // one per-CPU array (typed cases)
    bool ok = false;
    pcpu_access_state() {
        std::vector<pcpu::handle> h(access_objects);
        for (auto& x : h)
            if (!impl.alloc(4, 4, false, x)) return;
        // Resolve through handles in a sequence, as code holding per-CPU pointers does.
        for (std::size_t i = 0; i < access_steps; ++i) {
            seq.push_back(h[in.obj[i]]);
            typed_seq.push_back(pcpu::typed<std::uint32_t>(impl.alloc(), h[in.obj[i]]));
        }
        const auto t = pcpu::alloc_percpu<std::uint32_t[access_objects]>(impl.alloc(), pcpu::ctx::full);
        if (!t) return;
        table = t.value();
        ok = impl.ok();
    }
};
pcpu_access_state& access_state() {
    static pcpu_access_state s;
    return s;
}

/// raw_access_state - the raw array: max_cpus rows of access_objects values, and the
/// raw equivalent of a handle (the object's address in CPU 0's row).
struct raw_access_state {
    access_input in;
    std::vector<std::uint32_t> array = std::vector<std::uint32_t>(max_cpus * access_objects, 0);
    std::vector<std::uint32_t*> seq;
    raw_access_state() {
        for (std::size_t i = 0; i < access_steps; ++i) seq.push_back(&array[in.obj[i]]);
    }
};
raw_access_state& raw_state() {
    static raw_access_state s;
    return s;
}

void BM_access_pcpu(benchmark::State& st, access_mode mode) {
    pcpu_access_state& s = access_state();
    if (!s.ok) return fail(st, "allocation failed");
    const pcpu_alloc& a = s.impl.alloc();
    const std::uint32_t* cpu = s.in.cpu.data();
    const pcpu::handle* seq = s.seq.data();
    for (auto _ : st) {
        if (mode == access_mode::address) {
            for (std::size_t i = 0; i < access_steps; ++i) {
                void* p = a.ptr(seq[i], cpu[i]);
                benchmark::DoNotOptimize(p);
            }
        } else {
            for (std::size_t i = 0; i < access_steps; ++i) ++*static_cast<std::uint32_t*>(a.ptr(seq[i], cpu[i]));
            benchmark::ClobberMemory();
        }
    }
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(access_steps));
}

/// BM_access_typed - the typed layer (percpu.hpp) on a per-CPU array: element `object`
/// of CPU cpu's copy of one percpu<uint32_t[4096]>, per_cpu_ptr(h, cpu) then index,
/// against &array[cpu][object] (BM_access_raw_table). The handle is loop invariant, as
/// a per-CPU table's is; a percpu<T> is three words, so a sequence of them (as the
/// untyped case holds handles) would measure their size rather than the computation.
void BM_access_typed(benchmark::State& st) {
    pcpu_access_state& s = access_state();
    if (!s.ok) return fail(st, "allocation failed");
    const std::uint32_t* cpu = s.in.cpu.data();
    const std::uint32_t* obj = s.in.obj.data();
    const pcpu::percpu<std::uint32_t[access_objects]> h = s.table;
    for (auto _ : st) {
        for (std::size_t i = 0; i < access_steps; ++i) {
            std::uint32_t* p = &(*pcpu::per_cpu_ptr(h, cpu[i]))[obj[i]];
            benchmark::DoNotOptimize(p);
        }
    }
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(access_steps));
}
void BM_access_raw_table(benchmark::State& st) {
    raw_access_state& s = raw_state();
    const std::uint32_t* cpu = s.in.cpu.data();
    const std::uint32_t* obj = s.in.obj.data();
    std::uint32_t* const array = s.array.data();
    for (auto _ : st) {
        for (std::size_t i = 0; i < access_steps; ++i) {
            std::uint32_t* p = &array[std::size_t{cpu[i]} * access_objects + obj[i]];
            benchmark::DoNotOptimize(p);
        }
    }
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(access_steps));
}

void BM_access_raw(benchmark::State& st, access_mode mode) {
    raw_access_state& s = raw_state();
    const std::uint32_t* cpu = s.in.cpu.data();
    std::uint32_t* const* seq = s.seq.data();
    for (auto _ : st) {
        if (mode == access_mode::address) {
            for (std::size_t i = 0; i < access_steps; ++i) {
                std::uint32_t* p = seq[i] + std::size_t{cpu[i]} * access_objects;
                benchmark::DoNotOptimize(p);
            }
        } else {
            for (std::size_t i = 0; i < access_steps; ++i) ++seq[i][std::size_t{cpu[i]} * access_objects];
            benchmark::ClobberMemory();
        }
    }
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(access_steps));
}

/// this-CPU add: the running CPU's copy of a random object += 1. pcpu: this_cpu_add on a
/// percpu<uint32_t>; the bench platform has no this-CPU guard, so it is a restartable
/// section (rseq: cpu_id load, offset load, add, store) or, pcpu_atomic, sched_getcpu()
/// plus a relaxed atomic add, as on a host without rseq; raw: the latter two steps on
/// &array[sched_getcpu()][object].
void BM_this_cpu_add_pcpu(benchmark::State& st, bool rseq) {
    pcpu_access_state& s = access_state();
    if (!s.ok) return fail(st, "allocation failed");
    pcpu_alloc& a = s.impl.alloc();
    if (a.platform().set_rseq(rseq) != rseq) return fail(st, "no restartable sections here (rseq)");
    const pcpu::percpu<std::uint32_t>* seq = s.typed_seq.data();
    for (auto _ : st)
        for (std::size_t i = 0; i < access_steps; ++i) pcpu::this_cpu_add(a, seq[i], 1u);
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(access_steps));
}
void BM_this_cpu_add_raw(benchmark::State& st) {
    raw_access_state& s = raw_state();
    platform p;
    p.cpus = opt.cpus;
    std::uint32_t* const* seq = s.seq.data();
    for (auto _ : st)
        for (std::size_t i = 0; i < access_steps; ++i)
            __atomic_add_fetch(seq[i] + std::size_t{p.this_cpu()} * access_objects, 1u, __ATOMIC_RELAXED);
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(access_steps));
}

// ---- counters ------------------------------------------------------------------------------------

/// One counter, shared by the threads of a case (Google Benchmark runs the body on each
/// thread): pcpu::counter (a per-CPU delta, folded into the shared count every `batch`
/// adds), one shared atomic, and a per-core array padded to cache lines (each add a
/// relaxed atomic on the running CPU's line, no folding: the baseline a C programmer
/// writes). All three find the running CPU, or none, the same way.
/// How pcpu::counter's add reaches the running CPU's delta: one bounded-add section
/// (pcpu), compare-and-store sections only (pcpu_rounds, the add before the bounded
/// section existed), or atomics (pcpu_atomic).
enum class counter_mode { sections, rounds, atomics };
struct counter_state {
    pcpu_impl impl{opt.cpus};
    pcpu::counter<pcpu_alloc> c;
    bool ok = false;
    explicit counter_state(counter_mode m) {
        const bool rseq = m != counter_mode::atomics;
        impl.alloc().platform().rseq_within = m == counter_mode::sections;
        ok = impl.ok() && impl.alloc().platform().set_rseq(rseq) == rseq &&
             c.init(impl.alloc(), 0, pcpu::ctx::full) == pcpu::errc::ok;
    }
    ~counter_state() { (void)c.destroy(); }
};
/// counters(m) - one allocator per mode, set before any thread adds.
counter_state& counters(counter_mode m) {
    static counter_state sections(counter_mode::sections), rounds(counter_mode::rounds),
        atomics(counter_mode::atomics);
    return m == counter_mode::sections ? sections : m == counter_mode::rounds ? rounds : atomics;
}
struct alignas(cache_line) padded_slot {
    std::atomic<std::int64_t> v{0};
};
padded_slot g_padded[max_cpus];
padded_slot g_shared; // on a line of its own: the baseline bounces only its own line
constexpr std::size_t counter_steps = 1 << 12;

void BM_counter_pcpu(benchmark::State& st, counter_mode m) {
    counter_state& s = counters(m);
    if (!s.ok) return fail(st, "counter init failed (or no rseq here)");
    for (auto _ : st)
        for (std::size_t i = 0; i < counter_steps; ++i) s.c.add(1);
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(counter_steps));
    // The default batch, max(32, 2 * CPUs), shown in the row (one value, not a sum over threads).
    st.counters["batch"] = benchmark::Counter(s.c.batch(), benchmark::Counter::kAvgThreads);
}
void BM_counter_shared(benchmark::State& st) {
    for (auto _ : st)
        for (std::size_t i = 0; i < counter_steps; ++i) g_shared.v.fetch_add(1, std::memory_order_relaxed);
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(counter_steps));
}
void BM_counter_padded(benchmark::State& st) {
    platform p;
    p.cpus = opt.cpus;
    for (auto _ : st)
        for (std::size_t i = 0; i < counter_steps; ++i) g_padded[p.this_cpu()].v.fetch_add(1, std::memory_order_relaxed);
    st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(counter_steps));
}

// ---- population ---------------------------------------------------------------------------------

/// BM_populate - lazy_mapped::populate of a page range on every CPU plus the first touch
/// of each page (the fault that makes it real), then depopulate, untimed.
void BM_populate(benchmark::State& st, std::uint32_t pages) {
    platform p;
    geometry g;
    pcpu::unit_layout u;
    u.nr_cpus = opt.cpus;
    u.unit_size = g.unit_size();
    u.unit_pages = static_cast<std::uint32_t>(u.unit_size / 4096);
    u.page_size = 4096;
    const std::uintptr_t base = p.reserve(u.chunk_bytes(), pcpu::ctx::full);
    std::vector<pcpu::page_ref> arr(std::size_t{u.nr_cpus} * u.unit_pages);
    for (auto _ : st) {
        const auto t0 = clk::now();
        if (!pcpu::lazy_mapped::populate(p, u, base, 0, pages, arr.data(), pcpu::ctx::full))
            return fail(st, "populate failed");
        for (unsigned c = 0; c < u.nr_cpus; ++c)
            for (std::uint32_t i = 0; i < pages; ++i) *reinterpret_cast<volatile char*>(u.page_addr(base, c, i)) = 1;
        st.SetIterationTime(seconds(clk::now() - t0));
        pcpu::lazy_mapped::depopulate(p, u, base, 0, pages, arr.data(), pcpu::ctx::noio);
    }
    p.release(base, u.chunk_bytes());
    st.counters["ns_per_page"] = benchmark::Counter(static_cast<double>(pages * opt.cpus),
                                                    benchmark::Counter::kIsIterationInvariantRate |
                                                        benchmark::Counter::kInvert);
}

// ---- memory of 4-byte counters ---------------------------------------------------------------------

template <class Impl>
void BM_counters_memory(benchmark::State& st) {
    const std::size_t n = opt.short_mode ? 4096 : 65536;
    for (auto _ : st) {
        Impl impl(opt.cpus);
        std::vector<typename Impl::handle> h(n);
        std::size_t held = 0;
        for (auto& x : h) {
            if (!impl.alloc(4, 4, false, x)) return fail(st, "allocation failed");
            if constexpr (!is_pcpu<Impl>::value) held += impl.footprint(x);
        }
        const double live = 4.0 * static_cast<double>(n) * opt.cpus;
        if constexpr (is_pcpu<Impl>::value) {
            st.counters["backing_per_live"] = static_cast<double>(impl.dynamic_populated_bytes()) * opt.cpus / live;
            st.counters["meta_per_live"] = static_cast<double>(impl.plat().meta_bytes) / live;
        } else {
            st.counters["backing_per_live"] = static_cast<double>(held) / live;
        }
        for (auto& x : h) impl.free(x);
    }
    st.counters["counters"] = static_cast<double>(n);
}

// ---- long life (issue 9) ------------------------------------------------------------------------------
// One allocator lives through many cycles of fill, free everything, balance, as firmware
// and servers use it. Cold: the first cycle, on a fresh allocator. Warm: cycles 2-20.
// Balance runs whenever pcpu asks (untimed, as a work queue would) and once at the end
// of every cycle. The first chunk is laid out as Linux lays it out: static 29,912 B
// (64 KiB units) or 185,560 B (1 MiB units), no reserve, 31,528 B of dynamic space, the
// rest of the unit unused (first_chunk_config::dyn_size). Counters:
//   cold_/warm_alloc_ns, cold_/warm_free_ns   ns per allocation and per free (thread CPU time)
//   warm_cold_alloc, warm_cold_free           warm / cold (target <= 1.1)
//   cold_/warm_ns_per_op                      allocations and frees together (trace)
//   peak_pages                                populated pages per unit at the fullest
//   after_pages, chunks_after                 after the last cycle's free-all + balance

/// life_totals - seconds and counts of one or more lives, cold (cycle 0) and warm.
struct life_totals {
    double alloc_s[2] = {}, free_s[2] = {};
    double allocs[2] = {}, frees[2] = {};
    double peak_pages = 0, after_pages = 0, chunks_after = 0;
    void report(benchmark::State& st, bool split) const {
        auto per = [](double s, double n) { return n > 0 ? s * 1e9 / n : 0.0; };
        if (split) {
            st.counters["cold_alloc_ns"] = per(alloc_s[0], allocs[0]);
            st.counters["warm_alloc_ns"] = per(alloc_s[1], allocs[1]);
            st.counters["cold_free_ns"] = per(free_s[0], frees[0]);
            st.counters["warm_free_ns"] = per(free_s[1], frees[1]);
            st.counters["warm_cold_alloc"] = per(alloc_s[1], allocs[1]) / per(alloc_s[0], allocs[0]);
            st.counters["warm_cold_free"] = per(free_s[1], frees[1]) / per(free_s[0], frees[0]);
        }
        const double cold = per(alloc_s[0] + free_s[0], allocs[0] + frees[0]);
        const double warm = per(alloc_s[1] + free_s[1], allocs[1] + frees[1]);
        st.counters["cold_ns_per_op"] = cold;
        st.counters["warm_ns_per_op"] = warm;
        st.counters["warm_cold_op"] = warm / cold;
        st.counters["peak_pages"] = peak_pages;
        st.counters["after_pages"] = after_pages;
        st.counters["chunks_after"] = chunks_after;
    }
};

/// thread_seconds() - CPU time of this thread, kernel time (population) included. The
/// long-life phases are timed with it, not with the wall clock: a cold cycle lasts about
/// a millisecond, so on a shared machine one preemption would decide warm / cold.
double thread_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// timed_steps(impl, n, step, s) - run step(i) for i < n, adding the time spent in the
/// steps, not in the balance pcpu asks for between them, to s.
template <class F>
bool timed_steps(pcpu_impl& impl, std::size_t n, F&& step, double& s) {
    double t0 = thread_seconds();
    for (std::size_t i = 0; i < n; ++i) {
        if (!step(i)) return false;
        if (impl.balance_pending()) {
            const double t1 = thread_seconds();
            s += t1 - t0;
            impl.balance_if_requested();
            t0 = thread_seconds();
        }
    }
    s += thread_seconds() - t0;
    return true;
}

/// end_of_cycle(impl, t, last) - balance, and the memory figures.
void end_of_cycle(pcpu_impl& impl, life_totals& t, bool last) {
    impl.balance_if_requested();
    (void)impl.alloc().balance();
    if (!last) return;
    const pcpu::alloc_stats s = impl.alloc().stats();
    t.after_pages = static_cast<double>(s.nr_populated_pages);
    t.chunks_after = static_cast<double>(s.nr_chunks);
}

/// BM_life_synthetic(size, unit) - objects of `size` bytes (0: mixed 4/16/64/256),
/// naturally aligned up to 8 bytes (a 4-byte counter, 8 for the rest), allocated then
/// freed in a shuffled order, opt.life_cycles times.
void BM_life_synthetic(benchmark::State& st, std::uint32_t size, std::size_t unit) {
    const std::size_t n = opt.short_mode ? 2000 : 10000;
    const unsigned cycles = opt.short_mode ? 4 : opt.life_cycles;
    std::vector<std::uint32_t> sizes(n, size);
    splitmix64 rng{0x1f2e3d4c5b6a7988ull};
    static constexpr std::uint32_t mix[] = {4, 16, 64, 256};
    if (size == 0)
        for (auto& x : sizes) x = mix[rng.below(4)];
    std::vector<pcpu::handle> live(n);
    std::vector<std::uint32_t> order(n);
    life_totals t;
    for (auto _ : st) {
        pcpu_impl impl(opt.cpus, linux_geometry(unit));
        if (!impl.ok()) return fail(st, "init failed");
        double op_s = 0;
        for (unsigned c = 0; c < cycles; ++c) {
            const int w = c == 0 ? 0 : 1;
            double a_s = 0, f_s = 0;
            if (!timed_steps(impl, n, [&](std::size_t i) { return impl.alloc(sizes[i], sizes[i] < 8 ? sizes[i] : 8, false, live[i]); }, a_s))
                return fail(st, "allocation failed");
            t.peak_pages = std::max(t.peak_pages, static_cast<double>(impl.alloc().stats().nr_populated_pages));
            for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
            for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
            timed_steps(impl, n, [&](std::size_t i) { impl.free(live[order[i]]); return true; }, f_s);
            end_of_cycle(impl, t, c + 1 == cycles);
            t.alloc_s[w] += a_s;
            t.free_s[w] += f_s;
            t.allocs[w] += static_cast<double>(n);
            t.frees[w] += static_cast<double>(n);
            op_s += a_s + f_s;
        }
        st.SetIterationTime(op_s);
    }
    t.report(st, true);
}

/// BM_life_trace(unit) - the recorded trace replayed, then whatever it leaves freed,
/// life_cycles times on one allocator.
void BM_life_trace(benchmark::State& st, const trace* tr, std::size_t unit) {
    const unsigned cycles = opt.short_mode ? 4 : opt.life_cycles;
    std::vector<pcpu::handle> slots(tr->nr_slots);
    std::vector<bool> live(tr->nr_slots, false);
    for (const op& o : tr->ops) live[o.slot] = o.alloc;
    std::vector<std::uint32_t> rest;
    for (std::uint32_t i = 0; i < tr->nr_slots; ++i)
        if (live[i]) rest.push_back(i);
    life_totals t;
    for (auto _ : st) {
        pcpu_impl impl(opt.cpus, linux_geometry(unit));
        if (!impl.ok()) return fail(st, "init failed");
        double op_s = 0;
        for (unsigned c = 0; c < cycles; ++c) {
            const int w = c == 0 ? 0 : 1;
            double s_ops = 0, s_rest = 0;
            bool ok = timed_steps(impl, tr->ops.size(), [&](std::size_t i) {
                const op& o = tr->ops[i];
                if (o.alloc) return impl.alloc(o.size, o.align, o.atomic, slots[o.slot]);
                impl.free(slots[o.slot]);
                return true;
            }, s_ops);
            if (!ok) return fail(st, "allocation failed");
            if (c == 0 && t.peak_pages == 0) {
                // Peak pages: one untimed pass that stops at the peak of live bytes.
                pcpu_impl probe(opt.cpus, linux_geometry(unit));
                std::vector<pcpu::handle> ps(tr->nr_slots);
                for (std::size_t i = 0; i <= tr->peak_index; ++i) {
                    const op& o = tr->ops[i];
                    // Through the allocator, not the noinline wrappers callgrind counts.
                    if (o.alloc)
                        ps[o.slot] = probe.alloc()
                                         .alloc(o.size, o.align, o.atomic ? pcpu::ctx::atomic : pcpu::ctx::full)
                                         .value_or(pcpu::handle{});
                    else (void)probe.alloc().free(ps[o.slot]);
                    probe.balance_if_requested();
                }
                t.peak_pages = static_cast<double>(probe.alloc().stats().nr_populated_pages);
            }
            timed_steps(impl, rest.size(), [&](std::size_t i) { impl.free(slots[rest[i]]); return true; }, s_rest);
            end_of_cycle(impl, t, c + 1 == cycles);
            t.alloc_s[w] += s_ops + s_rest; // allocations and frees together: see report()
            t.allocs[w] += static_cast<double>(tr->ops.size() + rest.size());
            op_s += s_ops + s_rest;
        }
        st.SetIterationTime(op_s);
    }
    t.report(st, false);
}

// ---- registration -------------------------------------------------------------------------------------

template <class F>
void reg(const std::string& name, F&& f, bool manual = false, bool once = false) {
    auto* b = benchmark::RegisterBenchmark(name.c_str(), std::forward<F>(f));
    b->Unit(benchmark::kNanosecond);
    if (manual) b->UseManualTime();
    // Deterministic passes (memory figures, per-op minima over internal passes) need
    // one iteration, not a time budget.
    if (once) b->Iterations(1);
}

constexpr std::size_t pair_sizes[] = {4, 8, 16, 64, 256, 1024, 4096};
constexpr std::size_t pair_aligns[] = {4, 64};
constexpr std::size_t atomic_sizes[] = {4, 16, 64, 256};

template <class Impl>
void register_impl() {
    const std::string impl = Impl::name;
    for (const bool frag : {false, true})
        for (const std::size_t size : pair_sizes)
            for (const std::size_t align : pair_aligns) {
                const std::string name = std::string("pair/") + (frag ? "fragmented/" : "steady/") + impl +
                                         "/size:" + std::to_string(size) + "/align:" + std::to_string(align);
                reg(name, [=](benchmark::State& st) { BM_pair<Impl>(st, size, align, frag, false); });
            }
    reg("replay/trace/" + impl, [](benchmark::State& st) { BM_replay<Impl>(st, &g_trace); }, true);
    reg("replay_warm/trace/" + impl, [](benchmark::State& st) { BM_replay_warm<Impl>(st, &g_trace); });
    reg("replay/mixed/" + impl, [](benchmark::State& st) { BM_replay<Impl>(st, &g_mixed); }, true);
    reg("memory/trace/" + impl, [](benchmark::State& st) { BM_memory<Impl>(st, &g_trace, nullptr); }, false, true);
    reg("memory/mixed/" + impl,
        [](benchmark::State& st) { BM_memory<Impl>(st, &g_mixed, opt.svg_path.c_str()); }, false, true);
    reg("memory/counters4/" + impl, [](benchmark::State& st) { BM_counters_memory<Impl>(st); }, false, true);
}

void register_all() {
    register_impl<pcpu_impl>();
#if PCPU_BENCH_LAYOUTS
    // The chunk_layout choices: the trace replay and its memory, against the default.
    // A binary of their own (pcpu_bench_layouts): instantiating more allocators in
    // this one changes the compiler's inlining of the default's shared helpers.
    reg(std::string("replay_warm/trace/") + pcpu_g16_impl::name,
        [](benchmark::State& st) { BM_replay_warm<pcpu_g16_impl>(st, &g_trace); });
    reg(std::string("replay_warm/trace/") + pcpu_b256_impl::name,
        [](benchmark::State& st) { BM_replay_warm<pcpu_b256_impl>(st, &g_trace); });
    reg(std::string("memory/trace/") + pcpu_g16_impl::name,
        [](benchmark::State& st) { BM_memory<pcpu_g16_impl>(st, &g_trace, nullptr); }, false, true);
    reg(std::string("memory/trace/") + pcpu_b256_impl::name,
        [](benchmark::State& st) { BM_memory<pcpu_b256_impl>(st, &g_trace, nullptr); }, false, true);
    reg(std::string("replay_warm/trace/") + pcpu_scan_impl::name,
        [](benchmark::State& st) { BM_replay_warm<pcpu_scan_impl>(st, &g_trace); });
    reg(std::string("memory/trace/") + pcpu_scan_impl::name,
        [](benchmark::State& st) { BM_memory<pcpu_scan_impl>(st, &g_trace, nullptr); }, false, true);
#endif
    register_impl<aligned_per_cpu_impl>();
    register_impl<padded_array_impl>();
    // The atomic path, served from the populated reserve, against pcpu's sleeping path.
    for (const std::size_t size : atomic_sizes) {
        reg("atomic/steady/pcpu/size:" + std::to_string(size) + "/align:4",
            [=](benchmark::State& st) { BM_pair<pcpu_impl>(st, size, 4, false, true); });
        reg("atomic/steady/pcpu_sleeping/size:" + std::to_string(size) + "/align:4",
            [=](benchmark::State& st) { BM_pair<pcpu_impl>(st, size, 4, false, false); });
    }
    reg("access/address/pcpu", [](benchmark::State& st) { BM_access_pcpu(st, access_mode::address); });
    reg("access/address/raw_array", [](benchmark::State& st) { BM_access_raw(st, access_mode::address); });
    reg("access/address_typed/pcpu", [](benchmark::State& st) { BM_access_typed(st); });
    reg("access/address_typed/raw_array", [](benchmark::State& st) { BM_access_raw_table(st); });
    reg("access/increment/pcpu", [](benchmark::State& st) { BM_access_pcpu(st, access_mode::increment); });
    reg("access/increment/raw_array", [](benchmark::State& st) { BM_access_raw(st, access_mode::increment); });
    reg("access/this_cpu_add/pcpu", [](benchmark::State& st) { BM_this_cpu_add_pcpu(st, true); });
    reg("access/this_cpu_add/pcpu_atomic", [](benchmark::State& st) { BM_this_cpu_add_pcpu(st, false); });
    reg("access/this_cpu_add/raw_array", [](benchmark::State& st) { BM_this_cpu_add_raw(st); });
    for (const int threads : {1, 2}) {
        benchmark::RegisterBenchmark("counter/add/pcpu",
                                     [](benchmark::State& st) { BM_counter_pcpu(st, counter_mode::sections); })
            ->Threads(threads)
            ->Unit(benchmark::kNanosecond);
        benchmark::RegisterBenchmark("counter/add/pcpu_rounds",
                                     [](benchmark::State& st) { BM_counter_pcpu(st, counter_mode::rounds); })
            ->Threads(threads)
            ->Unit(benchmark::kNanosecond);
        benchmark::RegisterBenchmark("counter/add/pcpu_atomic",
                                     [](benchmark::State& st) { BM_counter_pcpu(st, counter_mode::atomics); })
            ->Threads(threads)
            ->Unit(benchmark::kNanosecond);
        benchmark::RegisterBenchmark("counter/add/shared_atomic", BM_counter_shared)
            ->Threads(threads)
            ->Unit(benchmark::kNanosecond);
        benchmark::RegisterBenchmark("counter/add/padded_array", BM_counter_padded)
            ->Threads(threads)
            ->Unit(benchmark::kNanosecond);
    }
    for (const std::uint32_t pages : {1u, 4u, 16u})
        reg("populate/pcpu/pages:" + std::to_string(pages),
            [=](benchmark::State& st) { BM_populate(st, pages); }, true);
    reg("worst/trace/pcpu", [](benchmark::State& st) { BM_worst(st, &g_trace, geometry{}, false); }, false, true);
    for (const std::size_t unit : {std::size_t{64} * 1024, std::size_t{1024} * 1024}) {
        const std::string u = "/unit:" + std::to_string(unit / 1024) + "k";
        for (const bool warm : {false, true})
            reg("worst/trace/pcpu" + u + (warm ? "/warm" : ""),
                [=](benchmark::State& st) { BM_worst(st, &g_trace, linux_geometry(unit), warm); }, false, true);
        for (const std::uint32_t size : {4u, 16u, 64u, 256u, 0u})
            reg("life/synthetic/pcpu/size:" + (size == 0 ? std::string("mixed") : std::to_string(size)) + u,
                [=](benchmark::State& st) { BM_life_synthetic(st, size, unit); }, true);
        reg("life/trace/pcpu" + u, [=](benchmark::State& st) { BM_life_trace(st, &g_trace, unit); }, true);
    }
}

bool take_flag(const std::string& a, const char* name, std::string& value) {
    const std::string p = std::string("--") + name + "=";
    if (a.compare(0, p.size(), p) != 0) return false;
    value = a.substr(p.size());
    return true;
}

} // namespace

int main(int argc, char** argv) {
    // pcpu's own flags first; Google Benchmark sees the rest.
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        std::string v;
        if (a == "--pcpu_short") opt.short_mode = true;
        else if (take_flag(a, "pcpu_trace", v)) opt.trace_path = v;
        else if (take_flag(a, "pcpu_svg", v)) opt.svg_path = v;
        else if (take_flag(a, "pcpu_cpus", v)) opt.cpus = static_cast<unsigned>(std::stoul(v));
        else if (take_flag(a, "pcpu_life_cycles", v)) opt.life_cycles = static_cast<unsigned>(std::stoul(v));
        else if (a == "--help" || a == "-h") {
            std::printf("pcpu options: --pcpu_short (CI: trace slice, small workloads), --pcpu_trace=CSV,\n"
                        "  --pcpu_svg=FILE (occupancy map after the mixed trace), --pcpu_cpus=N (default 2),\n"
                        "  --pcpu_life_cycles=N (cycles of the life/ cases, default 20)\n\n");
            rest.push_back(argv[i]);
        } else rest.push_back(argv[i]);
    }
    if (opt.life_cycles == 0) opt.life_cycles = 1;
    if (opt.cpus == 0 || opt.cpus > max_cpus) {
        std::fprintf(stderr, "pcpu_bench: --pcpu_cpus must be in [1, %zu]\n", max_cpus);
        return 2;
    }
    g_trace = load_trace(opt.trace_path, opt.short_mode ? 2000 : 0);
    if (g_trace.ops.empty()) {
        std::fprintf(stderr, "pcpu_bench: cannot read the trace %s\n", opt.trace_path.c_str());
        return 2;
    }
    g_mixed = mixed_trace(g_trace, opt.short_mode ? 2000 : 20000, 10, 2024);
    benchmark::AddCustomContext("pcpu_trace_ops", std::to_string(g_trace.ops.size()));
    benchmark::AddCustomContext("pcpu_trace_peak_live_bytes", std::to_string(g_trace.peak_live));
    benchmark::AddCustomContext("pcpu_mixed_ops", std::to_string(g_mixed.ops.size()));
    benchmark::AddCustomContext("pcpu_cpus", std::to_string(opt.cpus));
    benchmark::AddCustomContext("pcpu_short", opt.short_mode ? "1" : "0");
    register_all();

    int n = static_cast<int>(rest.size());
    rest.push_back(nullptr);
    benchmark::Initialize(&n, rest.data());
    if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (g_errors != 0) std::fprintf(stderr, "pcpu_bench: %d case(s) failed\n", g_errors);
    return g_errors != 0 ? 1 : 0;
}
