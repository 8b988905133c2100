// SPDX-License-Identifier: MIT
// tests/test_faults.cpp - exhaustive fault injection (suite "faults").
//
// For every scripted workload and every policy that calls the platform, run the
// workload once per k = 1, 2, ... with the k-th failable platform call (alloc_meta,
// alloc_units, reserve, alloc_pages, map) failing, until a run completes without
// reaching call k. Every operation of every run goes through model_runner, so each
// failed allocation must return an error value (out_of_memory exactly when the
// injected failure happened inside it), verify() and the model must agree after
// every operation, contents of live allocations must survive, and after the
// allocator is torn down the platform must hold no metadata, unit blocks,
// reservations, pages or mappings.
#include "support/model_runner.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace {

namespace ctx = pcpu::ctx;
constexpr unsigned cpus = 3;
constexpr std::size_t unit = 16 * 1024; // 4 pages
constexpr std::size_t first_dyn = 4 * 1024;

template <class Policy, class Sim = pcpu_test::sim_platform<12, 8>>
using runner = pcpu_test::model_runner<Policy, Sim>;

#define RUN(expr)                                                                                  \
    do {                                                                                           \
        std::string run_e_ = (expr);                                                               \
        if (!run_e_.empty()) return run_e_;                                                        \
    } while (0)

/// alloc_all(r, sizes, ctx, live) - allocate each size (16-byte aligned), keep the
/// ones that succeed and write their contents.
template <class R>
std::string alloc_all(R& r, std::initializer_list<std::size_t> sizes, pcpu::gfp c, std::vector<pcpu::handle>& live) {
    for (std::size_t s : sizes) {
        pcpu::handle h;
        RUN(r.alloc(s, 16, c, &h));
        if (h) {
            live.push_back(h);
            RUN(r.write(h));
        }
    }
    return "";
}

// ---- The workloads ------------------------------------------------------------------

/// Fill the first chunk's dynamic area and one dynamic chunk with 1 KiB allocations.
template <class R>
std::string fill_chunk(R& r) {
    std::vector<pcpu::handle> live;
    for (int i = 0; i < 21; ++i) RUN(alloc_all(r, {1024}, ctx::noio, live));
    for (auto h : live) RUN(r.read(h));
    return "";
}

/// Several chunks: whole units, each needing a chunk of its own, between small ones.
template <class R>
std::string several_chunks(R& r) {
    std::vector<pcpu::handle> live;
    RUN(alloc_all(r, {unit, 100, unit, 200, unit, 3000, unit}, ctx::nofs, live));
    for (std::size_t i = 0; i < live.size(); i += 3) RUN(r.free(live[i]));
    return "";
}

/// Free in mixed order across chunks, balancing between the halves.
template <class R>
std::string mixed_free(R& r) {
    std::vector<pcpu::handle> live;
    RUN(alloc_all(r, {5000, 64, 9000, 12, 3000, 7000, 256, 15000, 40, 2048, 6000, 512}, ctx::full, live));
    for (std::size_t i = 1; i < live.size(); i += 2) RUN(r.free(live[i]));
    RUN(r.balance(ctx::noio));
    for (std::size_t i = live.size(); i-- > 0;)
        if (i % 2 == 0) RUN(r.free(live[i]));
    RUN(r.balance(ctx::full));
    return "";
}

/// Balance: surplus chunks destroyed, empty pages reclaimed, then everything again.
template <class R>
std::string balance_cycle(R& r) {
    std::vector<pcpu::handle> live;
    RUN(alloc_all(r, {8000, 8000, 8000, 8000, 8000, 8000}, ctx::noio, live));
    for (auto h : live) RUN(r.free(h));
    live.clear();
    RUN(r.balance(ctx::noio));
    RUN(alloc_all(r, {12000, 300, 12000}, ctx::noio, live));
    RUN(r.free(live.front()));
    RUN(r.balance(ctx::noio));
    RUN(r.balance(ctx::noio));
    return "";
}

/// Atomic refill: atomic allocations until they would block, balance refills the
/// reserve, atomic allocations succeed again.
template <class R>
std::string atomic_refill(R& r) {
    std::vector<pcpu::handle> live;
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 40; ++i) {
            pcpu::handle h;
            pcpu::errc err = pcpu::errc::ok;
            RUN(r.alloc(512, 8, ctx::atomic, &h, false, ctx::full, &err));
            if (!h) break;
            live.push_back(h);
            RUN(r.write(h));
        }
        RUN(r.balance(ctx::noio));
    }
    for (std::size_t i = 0; i < live.size(); i += 2) RUN(r.free(live[i]));
    RUN(r.balance(ctx::noio));
    return "";
}

/// First-chunk metadata from the platform, then a little of everything.
template <class R>
std::string own_meta_init(R& r) {
    std::vector<pcpu::handle> live;
    RUN(alloc_all(r, {unit / 2, 64, unit}, ctx::noio, live));
    RUN(r.free(live.back()));
    RUN(r.balance(ctx::noio));
    return "";
}

struct outcome {
    std::size_t runs = 0;   ///< k values covered (the last run reached no injected failure)
    std::size_t failed = 0; ///< runs with a finding
};

/// max_k - where a sweep gives up. A workload that still reaches its k-th platform call
/// there has not been swept to its end: that is a failure, not a quiet stop.
constexpr std::size_t max_k = 2000;

/// swept_to_end(name, k, reached) - true when the sweep may stop: the run with this k
/// reached no injected failure. Fails the test when k hit max_k first.
bool swept_to_end(const char* name, std::size_t k, bool reached) {
    if (!reached) return true;
    if (k < max_k) return false;
    FAIL_CHECK(std::string(name) << ": still reaching the platform at k = " << k << "; the sweep stopped before its end");
    return true;
}

/// sweep(workload, own_meta) - the k loop for one workload under one policy.
template <class Policy, class Sim>
outcome sweep(const char* name, std::string (*workload)(runner<Policy, Sim>&), bool own_meta) {
    outcome o;
    for (std::size_t k = 1;; ++k) {
        runner<Policy, Sim> r(cpus, unit, unit - first_dyn, 0, cpus);
        std::string e;
        if (own_meta) {
            r.own_meta();
            r.sim().fail_call(k);
            pcpu::errc want = pcpu::errc::ok;
            // Only the first-chunk metadata is a failable call in init().
            if (k == 1) want = pcpu::errc::out_of_memory;
            e = r.init(want);
            if (e.empty() && r.alloc().initialized()) e = workload(r);
        } else {
            e = r.init();
            r.sim().fail_call(k);
            if (e.empty()) e = workload(r);
        }
        const bool reached = r.sim().injected_failures() != 0;
        if (e.empty()) e = r.finish();
        if (e.empty() && r.sim().injected_failures() > 1) e = "more than one failure injected";
        ++o.runs;
        if (!e.empty()) {
            ++o.failed;
            FAIL_CHECK(std::string(name) << ", k = " << k << ": " << e);
        }
        if (swept_to_end(name, k, reached)) break;
    }
    return o;
}

template <class Policy, class Sim = pcpu_test::sim_platform<12, 8>>
std::size_t sweep_all(const char* policy) {
    struct w {
        const char* name;
        std::string (*fn)(runner<Policy, Sim>&);
        bool own_meta;
    };
    const w workloads[] = {
        {"fill a chunk", &fill_chunk<runner<Policy, Sim>>, false},
        {"several chunks", &several_chunks<runner<Policy, Sim>>, false},
        {"free in mixed order", &mixed_free<runner<Policy, Sim>>, false},
        {"balance", &balance_cycle<runner<Policy, Sim>>, false},
        {"atomic refill", &atomic_refill<runner<Policy, Sim>>, false},
        {"first-chunk metadata from the platform", &own_meta_init<runner<Policy, Sim>>, true},
    };
    std::size_t total = 0;
    for (const auto& wl : workloads) {
        CAPTURE(wl.name);
        const outcome o = sweep<Policy, Sim>(wl.name, wl.fn, wl.own_meta);
        // Each workload must actually reach the platform more than a few times, or
        // the sweep proves nothing.
        CHECK(o.runs > 3);
        CHECK(o.failed == 0);
        std::printf("figure: faults %s / %s: k = 1..%zu, %zu runs, %zu with findings\n", policy, wl.name,
                    o.runs - 1, o.runs, o.failed);
        total += o.runs;
    }
    return total;
}

} // namespace

TEST_SUITE("faults") {

TEST_CASE("exhaustive fault injection: contiguous") {
    const std::size_t runs = sweep_all<pcpu::contiguous>("contiguous");
    std::printf("figure: faults contiguous: 6 workloads, %zu runs\n", runs);
}

TEST_CASE("exhaustive fault injection: lazy_mapped") {
    const std::size_t runs = sweep_all<pcpu::lazy_mapped>("lazy_mapped");
    std::printf("figure: faults lazy_mapped: 6 workloads, %zu runs\n", runs);
}

TEST_CASE("exhaustive fault injection: lazy_mapped, population outside the sleeping lock") {
    // The same workloads with the population event: every population registers its
    // range and runs after the sleeping lock is let go; a failure there must give
    // the range and the claimed area back as the serial path does.
    const std::size_t runs = sweep_all<pcpu::lazy_mapped, pcpu_test::sim_event_platform<12, 8>>("lazy_mapped+event");
    std::printf("figure: faults lazy_mapped with the population event: 6 workloads, %zu runs\n", runs);
}

TEST_CASE("exhaustive fault injection: lazy_mapped, one CPU and the background context full") {
    // Another geometry: one CPU (populations of one page per call) and callbacks that
    // get the caller's own context under the sleeping lock.
    std::size_t runs = 0, failed = 0;
    for (std::size_t k = 1;; ++k) {
        runner<pcpu::lazy_mapped> r(1, unit, unit - first_dyn, 512, 1u);
        r.sim().set_background_context(ctx::full);
        std::string e = r.init();
        r.sim().fail_call(k);
        if (e.empty()) e = mixed_free(r);
        if (e.empty()) e = atomic_refill(r);
        const bool reached = r.sim().injected_failures() != 0;
        if (e.empty()) e = r.finish();
        ++runs;
        if (!e.empty()) {
            ++failed;
            FAIL_CHECK("k = " << k << ": " << e);
        }
        if (swept_to_end("lazy_mapped, 1 CPU", k, reached)) break;
    }
    CHECK(runs > 3);
    CHECK(failed == 0);
    std::printf("figure: faults lazy_mapped 1 cpu, background full / mixed free + atomic refill: k = 1..%zu, %zu runs\n",
                runs - 1, runs);
}

} // TEST_SUITE
