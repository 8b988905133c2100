// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_allocator.cpp - libFuzzer target: every input is a sequence of
// allocator operations (see driver.hpp), checked against the model after each one.
// Any disagreement prints the operation and the finding, then aborts, which libFuzzer
// reports as a crash and saves as a reproducer.
//
// Built two ways:
//   clang++ -fsanitize=fuzzer,address,undefined  -> the fuzzer (scripts/test, fuzz stage)
//   any compiler + replay_main.cpp               -> replays the committed corpus as a
//                                                  plain test in every build
// At exit it prints one line of totals (inputs, operations, faults injected), the
// figures docs/reliability.md quotes. With PCPU_FUZZ_MAX_OPS=n in the environment the
// fuzzer stops (exit status 0, totals printed) once n operations have run: libFuzzer
// itself can bound only inputs and time, and an operation count is what a long run
// (scripts/fuzz --ops) promises.
// The sim platform's header brings doctest's assertion macros, which this target never
// uses; without a test runner linked in, doctest must be compiled out.
#define DOCTEST_CONFIG_DISABLE
#include "driver.hpp"

#include <cstdio>
#include <cstdlib>

namespace {
pcpu_fuzz::totals g_totals;

unsigned long long max_ops() {
    const char* s = std::getenv("PCPU_FUZZ_MAX_OPS");
    return s != nullptr ? std::strtoull(s, nullptr, 10) : 0;
}

void print_totals(const char* what) {
    std::fprintf(stderr,
                 "pcpu-fuzz %s: %llu inputs, %llu operations, %llu allocations (%llu failed), %llu frees, "
                 "%llu bad frees, %llu balances, %llu platform faults injected, %llu inputs with the population event, "
                 "%llu over scan_layout\n",
                 what, static_cast<unsigned long long>(g_totals.inputs), static_cast<unsigned long long>(g_totals.ops),
                 static_cast<unsigned long long>(g_totals.allocs), static_cast<unsigned long long>(g_totals.alloc_errors),
                 static_cast<unsigned long long>(g_totals.frees), static_cast<unsigned long long>(g_totals.bad_frees),
                 static_cast<unsigned long long>(g_totals.balances),
                 static_cast<unsigned long long>(g_totals.faults_injected),
                 static_cast<unsigned long long>(g_totals.event_inputs),
                 static_cast<unsigned long long>(g_totals.scan_inputs));
}
void print_totals() { print_totals("totals"); }
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool registered = std::atexit(print_totals) == 0;
    static const unsigned long long limit = max_ops();
    (void)registered;
    const std::string err = pcpu_fuzz::run_input(data, size, g_totals);
    if (!err.empty()) {
        std::fprintf(stderr, "pcpu-fuzz: %s\n", err.c_str());
        std::abort();
    }
    // A long run reports its totals every million operations, so that a run stopped
    // from outside (which skips atexit) still leaves its last figures in the log.
    static unsigned long long next_progress = 1000000;
    if (g_totals.ops >= next_progress) {
        print_totals("progress");
        next_progress += 1000000;
    }
    if (limit != 0 && g_totals.ops >= limit) {
        // _Exit, not exit: libFuzzer reports a target that calls exit() as a crash.
        std::fprintf(stderr, "pcpu-fuzz: operation limit %llu reached\n", limit);
        print_totals();
        std::_Exit(0);
    }
    return 0;
}
