// SPDX-License-Identifier: MIT
// tests/test_model.cpp - randomized operation sequences against the reference model
// (suite "model"): the fuzz driver (tests/fuzz/driver.hpp) fed with seeded random
// bytes, every policy, so the model-checked randomized test runs in every build even
// where libFuzzer does not. The seed is printed with a failure and replays anywhere:
// the bytes come from the deterministic splitmix64 in chunk_model.hpp.
#include "fuzz/driver.hpp"
#include "support/test_scale.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <vector>

namespace {

/// random_input(seed, head) - a byte string whose header selects policy and CPUs.
std::vector<std::uint8_t> random_input(std::uint64_t seed, std::uint8_t head) {
    pcpu_test::rng r(seed);
    std::vector<std::uint8_t> in(64 + r.below(1500));
    for (auto& b : in) b = static_cast<std::uint8_t>(r.next());
    in[0] = head;
    in[2] = static_cast<std::uint8_t>(in[2] & 1); // mostly no operations before init
    return in;
}

} // namespace

TEST_SUITE("model") {

TEST_CASE("random operation sequences agree with the model, for every policy, CPU count and chunk policy") {
    pcpu_fuzz::totals t;
    const std::uint64_t seeds = pcpu_test::scaled(std::uint64_t{25});
    for (std::uint8_t head = 0; head < 24; ++head) { // 3 policies x 1..4 CPUs x kernel/scan layout
        for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
            const std::vector<std::uint8_t> in = random_input(seed * 1000 + head, head);
            const std::string err = pcpu_fuzz::run_input(in.data(), in.size(), t);
            INFO("head " << unsigned(head) << ", seed " << seed * 1000 + head);
            CHECK_MESSAGE(err.empty(), err);
        }
    }
    CHECK(t.inputs == 24 * seeds);
    CHECK(t.scan_inputs == 12 * seeds);
    CHECK(t.ops > 400 * seeds);
    CHECK(t.frees > 40 * seeds);
    CHECK(t.faults_injected > 0);
    CHECK(t.memory_checks > 0); // free-all + balance, then the memory-return bound
    CHECK(t.event_inputs > 0);  // lazy_mapped with populations outside the sleeping lock
    std::printf("figure: model: %llu random inputs, %llu operations, %llu allocations (%llu failed), %llu frees, "
                "%llu bad frees, %llu balances (%llu free-all + balance with the memory bound), %llu faults injected, %llu inputs on the platform with the population event, %llu over scan_layout\n",
                static_cast<unsigned long long>(t.inputs), static_cast<unsigned long long>(t.ops),
                static_cast<unsigned long long>(t.allocs), static_cast<unsigned long long>(t.alloc_errors),
                static_cast<unsigned long long>(t.frees), static_cast<unsigned long long>(t.bad_frees),
                static_cast<unsigned long long>(t.balances), static_cast<unsigned long long>(t.memory_checks),
                static_cast<unsigned long long>(t.faults_injected), static_cast<unsigned long long>(t.event_inputs),
                static_cast<unsigned long long>(t.scan_inputs));
}

TEST_CASE("the model catches a corrupted per-CPU copy and a leaked allocation") {
    // The checks must be able to fail: break the contract behind the allocator's back
    // and the model must say so.
    pcpu_test::model_runner<pcpu::lazy_mapped> r(2, 16 * 1024, 12 * 1024, 0, 2u);
    REQUIRE(CHECK_RUN(r.init()));
    pcpu::handle h;
    REQUIRE(CHECK_RUN(r.alloc(100, 8, pcpu::ctx::noio, &h)));
    REQUIRE(h);
    auto* cpu1 = static_cast<unsigned char*>(r.alloc().ptr(h, 1));
    cpu1[99] = static_cast<unsigned char>(cpu1[99] ^ 1u);
    const std::string corrupted = r.state();
    CHECK(corrupted.find("corrupted on cpu 1 at byte 99") != std::string::npos);
    cpu1[99] = static_cast<unsigned char>(cpu1[99] ^ 1u);
    CHECK(CHECK_RUN(r.state()));

    // A free the model does not know about: statistics disagree.
    CHECK(r.alloc().free(h) == pcpu::errc::ok);
    CHECK(r.state().find("nr_alloc") != std::string::npos);
}

} // TEST_SUITE
