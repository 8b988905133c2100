// SPDX-License-Identifier: MIT
// tests/support/racing_sums.hpp - the check of a counter's sum() and read() taken
// while other threads add to it and fold.
//
// A fold moves a delta into the count. Were its two writes visible apart to sum(), a
// sum taken between them would lose the delta or count it twice. So each sum must lie
// between the adds finished before it began and the adds started before it returned;
// read() may lag by the counter's error bound, plus `slack` for adds in flight that
// took a delta and have not stored the count yet.
#pragma once

#include <atomic>
#include <cstdint>

namespace pcpu_test {

class racing_sums {
public:
    /// add(do_add) - one add of 1, counted as started before and finished after it.
    template <class Add>
    void add(Add&& do_add) {
        started_.fetch_add(1);
        do_add();
        finished_.fetch_add(1);
    }
    /// check(c, initial, slack) - one sum() and one read() of c (which began at initial).
    template <class Counter>
    void check(const Counter& c, std::int64_t initial, std::int64_t slack) {
        const std::int64_t lo = finished_.load();
        const std::int64_t s = c.sum() - initial;
        const std::int64_t r = c.read() - initial;
        const std::int64_t hi = started_.fetch_add(0); // an RMW: the latest count, after the reads above
        ++sums;
        if (s < lo || s > hi) ++bad_sums;
        if (r > hi || r < lo - c.error_bound() - slack) ++bad_reads;
    }

    long sums = 0, bad_sums = 0, bad_reads = 0;

private:
    std::atomic<std::int64_t> started_{0}, finished_{0};
};

} // namespace pcpu_test
