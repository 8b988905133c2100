// SPDX-License-Identifier: MIT
// tests/main.cpp - doctest runner for every unit-test binary.
//
// A mistyped --test-suite filter matches nothing and doctest would still exit 0, so a
// listener counts the test cases that actually started and main() fails when the
// count is zero.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {
int g_started = 0;

struct count_listener : doctest::IReporter {
    explicit count_listener(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_start(const doctest::TestCaseData&) override { ++g_started; }
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};
} // namespace

DOCTEST_REGISTER_LISTENER("count", 1, count_listener);

int main(int argc, char** argv) {
    doctest::Context context(argc, argv);
    const int rc = context.run();
    if (context.shouldExit()) return rc; // --help, --list-test-cases, ...
    if (rc == 0 && g_started == 0) {
        fprintf(stderr, "tests/main.cpp: no test case matched the filters\n");
        return 1;
    }
    return rc;
}
