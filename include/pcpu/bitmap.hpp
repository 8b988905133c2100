// SPDX-License-Identifier: MIT
// pcpu/bitmap.hpp - word-at-a-time bitmap operations (lib/bitmap.c, find_next_bit,
// for_each_clear_bitrange).
//
// A bitmap is an array of `word`; bit i lives in word i / word_bits at position
// i % word_bits (LSB first). Sizes and positions are in bits. Ranges are half-open
// [begin, end). Every search works a word at a time with count-trailing-zeros and
// never loops bit by bit. Bits beyond `size` in the last word are never read as
// results (callers may leave them in any state).
#pragma once

#include "config.hpp"

#include <climits>

namespace pcpu::bitmap {

using word = unsigned long;
inline constexpr std::size_t word_bits = sizeof(word) * CHAR_BIT;

/// words_for(bits) - number of words that hold `bits` bits.
constexpr std::size_t words_for(std::size_t bits) noexcept { return (bits + word_bits - 1) / word_bits; }

// TODO(bitmap helper): implement; the signatures below are the contract used by chunk.hpp.

/// test/set/clear one bit.
bool test(const word* map, std::size_t bit) noexcept;
void set(word* map, std::size_t bit) noexcept;
void clear(word* map, std::size_t bit) noexcept;

/// set_range/clear_range(map, begin, end) - set or clear every bit in [begin, end).
void set_range(word* map, std::size_t begin, std::size_t end) noexcept;
void clear_range(word* map, std::size_t begin, std::size_t end) noexcept;

/// find_next_set/find_next_clear(map, size, from) - first set (clear) bit in
/// [from, size), or `size` if there is none (also when from >= size).
std::size_t find_next_set(const word* map, std::size_t size, std::size_t from) noexcept;
std::size_t find_next_clear(const word* map, std::size_t size, std::size_t from) noexcept;

/// find_last_set/find_last_clear(map, begin, end) - last set (clear) bit in
/// [begin, end), or `end` if there is none.
std::size_t find_last_set(const word* map, std::size_t begin, std::size_t end) noexcept;
std::size_t find_last_clear(const word* map, std::size_t begin, std::size_t end) noexcept;

/// count_set(map, begin, end) - number of set bits in [begin, end) (popcount per word).
std::size_t count_set(const word* map, std::size_t begin, std::size_t end) noexcept;

/// all_clear/all_set(map, begin, end) - true if every bit in [begin, end) is clear
/// (set); true for an empty range.
bool all_clear(const word* map, std::size_t begin, std::size_t end) noexcept;
bool all_set(const word* map, std::size_t begin, std::size_t end) noexcept;

/// next_clear_region/next_set_region(map, size, from, rs, re) - the first maximal run
/// of clear (set) bits that has at least one bit in [from, size), clipped to start no
/// earlier than `from`: on success `[rs, re)` with from <= rs < re <= size and returns
/// true; returns false if there is none. Iterate with `from = re`:
///
///     for (std::size_t rs, re, from = 0; next_clear_region(m, n, from, rs, re); from = re)
bool next_clear_region(const word* map, std::size_t size, std::size_t from, std::size_t& rs,
                       std::size_t& re) noexcept;
bool next_set_region(const word* map, std::size_t size, std::size_t from, std::size_t& rs,
                     std::size_t& re) noexcept;

} // namespace pcpu::bitmap
