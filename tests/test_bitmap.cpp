// SPDX-License-Identifier: MIT
// tests/test_bitmap.cpp - every bitmap operation against a naive bool-array model, for
// every offset and length in small sizes (up to three words and a bit), over random
// contents and over the patterns that break word-boundary code (all clear, all set,
// alternating, single bits at word edges).
#include <pcpu/internal/bitmap.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace {

using pcpu::bitmap::word;
using pcpu::bitmap::word_bits;

/// model - the reference: one bool per bit, plus the bitmap under test with its last
/// word's unused bits set to garbage (they must never be reported).
struct model {
    std::size_t size;
    std::vector<bool> bits;
    std::vector<word> map;

    explicit model(std::size_t n) : size(n), bits(n), map(pcpu::bitmap::words_for(n) + 1, ~word{0}) {
        for (std::size_t i = 0; i < n; ++i) pcpu::bitmap::clear(map.data(), i);
    }
    void set(std::size_t i, bool v) {
        bits[i] = v;
        if (v) pcpu::bitmap::set(map.data(), i);
        else pcpu::bitmap::clear(map.data(), i);
    }
    std::size_t next(std::size_t from, bool v, std::size_t limit) const {
        for (std::size_t i = from; i < limit; ++i)
            if (bits[i] == v) return i;
        return limit;
    }
    std::size_t last(std::size_t begin, std::size_t end, bool v) const {
        for (std::size_t i = end; i-- > begin;)
            if (bits[i] == v) return i;
        return end;
    }
    void check_matches() const {
        for (std::size_t i = 0; i < size; ++i) REQUIRE(pcpu::bitmap::test(map.data(), i) == bits[i]);
    }
};

void fill(model& m, int pattern, std::mt19937& rng) {
    for (std::size_t i = 0; i < m.size; ++i) {
        bool v = false;
        switch (pattern) {
        case 0: v = false; break;
        case 1: v = true; break;
        case 2: v = i % 2 == 1; break;
        case 3: v = i % word_bits == 0 || i % word_bits == word_bits - 1; break;
        default: v = (rng() & 3u) == 0; break; // sparse random
        }
        m.set(i, v);
    }
}

/// check every query over every [begin, end) / from of m.
void check_queries(const model& m) {
    const word* map = m.map.data();
    const std::size_t n = m.size;
    for (std::size_t from = 0; from <= n + 1; ++from) {
        for (std::size_t limit = 0; limit <= n; ++limit) {
            REQUIRE(pcpu::bitmap::find_next_set(map, limit, from) == (from >= limit ? limit : m.next(from, true, limit)));
            REQUIRE(pcpu::bitmap::find_next_clear(map, limit, from) == (from >= limit ? limit : m.next(from, false, limit)));
        }
    }
    for (std::size_t b = 0; b <= n; ++b) {
        for (std::size_t e = b; e <= n; ++e) {
            std::size_t ones = 0;
            for (std::size_t i = b; i < e; ++i) ones += m.bits[i];
            CAPTURE(b);
            CAPTURE(e);
            REQUIRE(pcpu::bitmap::count_set(map, b, e) == ones);
            REQUIRE(pcpu::bitmap::all_set(map, b, e) == (ones == e - b));
            REQUIRE(pcpu::bitmap::all_clear(map, b, e) == (ones == 0));
            REQUIRE(pcpu::bitmap::find_last_set(map, b, e) == m.last(b, e, true));
            REQUIRE(pcpu::bitmap::find_last_clear(map, b, e) == m.last(b, e, false));
        }
    }
    // Region iteration: clear and set runs, from every start.
    for (int want = 0; want < 2; ++want) {
        for (std::size_t start = 0; start <= n; ++start) {
            std::vector<std::pair<std::size_t, std::size_t>> expect, got;
            for (std::size_t i = start; i < n;) {
                if (m.bits[i] != (want == 1)) { ++i; continue; }
                std::size_t j = i;
                while (j < n && m.bits[j] == (want == 1)) ++j;
                expect.emplace_back(i, j);
                i = j;
            }
            std::size_t rs = 0, re = 0;
            for (std::size_t from = start;
                 want == 1 ? pcpu::bitmap::next_set_region(map, n, from, rs, re)
                           : pcpu::bitmap::next_clear_region(map, n, from, rs, re);
                 from = re) {
                REQUIRE(rs >= from);
                REQUIRE(rs < re);
                REQUIRE(re <= n);
                got.emplace_back(rs, re);
                REQUIRE(got.size() <= n);
            }
            REQUIRE(got == expect);
        }
    }
}

} // namespace

TEST_SUITE("bitmap") {

TEST_CASE("words_for") {
    CHECK(pcpu::bitmap::words_for(0) == 0);
    CHECK(pcpu::bitmap::words_for(1) == 1);
    CHECK(pcpu::bitmap::words_for(word_bits) == 1);
    CHECK(pcpu::bitmap::words_for(word_bits + 1) == 2);
}

TEST_CASE("queries match the model for every offset, length and pattern") {
    std::mt19937 rng(12345);
    for (std::size_t n : {std::size_t{1}, std::size_t{7}, word_bits - 1, word_bits, word_bits + 1, 2 * word_bits + 3,
                          3 * word_bits + 1}) {
        for (int pattern = 0; pattern < 7; ++pattern) {
            CAPTURE(n);
            CAPTURE(pattern);
            model m(n);
            fill(m, pattern, rng);
            m.check_matches();
            check_queries(m);
        }
    }
}

TEST_CASE("set_range and clear_range touch exactly [begin, end)") {
    std::mt19937 rng(777);
    const std::size_t n = 2 * word_bits + 5;
    for (std::size_t b = 0; b <= n; ++b) {
        for (std::size_t e = b; e <= n; ++e) {
            for (int pattern : {0, 1, 4}) {
                CAPTURE(b);
                CAPTURE(e);
                model m(n);
                fill(m, pattern, rng);
                const word guard = m.map.back();
                pcpu::bitmap::set_range(m.map.data(), b, e);
                for (std::size_t i = b; i < e; ++i) m.bits[i] = true;
                m.check_matches();
                pcpu::bitmap::clear_range(m.map.data(), b, e);
                for (std::size_t i = b; i < e; ++i) m.bits[i] = false;
                m.check_matches();
                REQUIRE(m.map.back() == guard); // the word after the bitmap is untouched
            }
        }
    }
}

TEST_CASE("single-bit operations") {
    model m(3 * word_bits);
    for (std::size_t i = 0; i < m.size; i += 5) m.set(i, true);
    m.check_matches();
    for (std::size_t i = 0; i < m.size; i += 10) m.set(i, false);
    m.check_matches();
    check_queries(m);
}

TEST_CASE("randomized long maps against the model") {
    std::mt19937 rng(4242);
    const std::size_t n = 8 * word_bits + 17;
    model m(n);
    for (int round = 0; round < 200; ++round) {
        const std::size_t b = rng() % (n + 1);
        const std::size_t e = b + rng() % (n + 1 - b);
        const bool v = rng() & 1u;
        if (v) pcpu::bitmap::set_range(m.map.data(), b, e);
        else pcpu::bitmap::clear_range(m.map.data(), b, e);
        for (std::size_t i = b; i < e; ++i) m.bits[i] = v;
        m.check_matches();
        const std::size_t from = rng() % (n + 1);
        REQUIRE(pcpu::bitmap::find_next_set(m.map.data(), n, from) == m.next(from, true, n));
        REQUIRE(pcpu::bitmap::find_next_clear(m.map.data(), n, from) == m.next(from, false, n));
        REQUIRE(pcpu::bitmap::find_last_set(m.map.data(), b, e) == m.last(b, e, true));
        REQUIRE(pcpu::bitmap::count_set(m.map.data(), b, e) == (v ? e - b : 0));
    }
}

} // TEST_SUITE("bitmap")
