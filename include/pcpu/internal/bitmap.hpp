// SPDX-License-Identifier: MIT
// pcpu/internal/bitmap.hpp - word-at-a-time bitmap operations (lib/bitmap.c, find_next_bit,
// for_each_clear_bitrange).
//
// A bitmap is an array of `word`; bit i lives in word i / word_bits at position
// i % word_bits (LSB first). Sizes and positions are in bits. Ranges are half-open
// [begin, end). Every search works a word at a time with count-trailing-zeros and
// never loops bit by bit. Bits beyond `size` in the last word are never read as
// results (callers may leave them in any state).
#pragma once

#include "../config.hpp"

#include <climits>

namespace pcpu::bitmap {

using word = unsigned long;
inline constexpr std::size_t word_bits = sizeof(word) * CHAR_BIT;

/// words_for(bits) - number of words that hold `bits` bits.
constexpr std::size_t words_for(std::size_t bits) noexcept { return (bits + word_bits - 1) / word_bits; }

namespace detail {
/// low_mask(n) - the n lowest bits set (n < word_bits).
constexpr word low_mask(std::size_t n) noexcept { return (word{1} << n) - 1; }
/// mask_from(i) - bits [i % word_bits, word_bits) of a word.
constexpr word mask_from(std::size_t bit) noexcept { return ~word{0} << (bit % word_bits); }
/// mask_below(end) - bits [0, end % word_bits) of a word; all bits when end is a
/// multiple of word_bits (the word holding bit end - 1 is then wholly inside).
constexpr word mask_below(std::size_t end) noexcept {
    return end % word_bits == 0 ? ~word{0} : low_mask(end % word_bits);
}
inline unsigned ctz(word w) noexcept { return static_cast<unsigned>(__builtin_ctzl(w)); }
inline unsigned clz(word w) noexcept { return static_cast<unsigned>(__builtin_clzl(w)); }
inline std::size_t popcount(word w) noexcept { return static_cast<std::size_t>(__builtin_popcountl(w)); }

/// find_next(map, size, from, invert) - first bit in [from, size) equal to !invert.
/// Each word is read once and xor-ed with `invert` (all ones to look for clear bits).
/// The hint updates call it for the bit after an area, most often in the same word:
/// inlined there (PCPU_HOT_INLINE), that case costs a load, a mask and a count.
PCPU_HOT_INLINE std::size_t find_next(const word* map, std::size_t size, std::size_t from, word invert) noexcept {
    if (from >= size) return size;
    std::size_t i = from / word_bits;
    word w = (map[i] ^ invert) & mask_from(from);
    const std::size_t last = (size - 1) / word_bits;
    for (;;) {
        if (w != 0) {
            const std::size_t bit = i * word_bits + ctz(w);
            return bit < size ? bit : size;
        }
        if (++i > last) return size;
        w = map[i] ^ invert;
    }
}

/// find_last(map, begin, end, invert) - last bit in [begin, end) equal to !invert.
inline std::size_t find_last(const word* map, std::size_t begin, std::size_t end, word invert) noexcept {
    if (begin >= end) return end;
    std::size_t i = (end - 1) / word_bits;
    const std::size_t first = begin / word_bits;
    word w = (map[i] ^ invert) & mask_below(end);
    for (;;) {
        if (i == first) w &= mask_from(begin);
        if (w != 0) return i * word_bits + (word_bits - 1 - clz(w));
        if (i == first) return end;
        --i;
        w = map[i] ^ invert;
    }
}

/// for_words(begin, end, f) - call f(index, mask) for every word that [begin, end)
/// touches, with the mask of the range's bits in it.
template <class F>
inline void for_words(std::size_t begin, std::size_t end, F&& f) noexcept {
    if (begin >= end) return;
    std::size_t i = begin / word_bits;
    const std::size_t last = (end - 1) / word_bits;
    if (i == last) {
        f(i, mask_from(begin) & mask_below(end));
        return;
    }
    f(i, mask_from(begin));
    for (++i; i < last; ++i) f(i, ~word{0});
    f(last, mask_below(end));
}

#if defined(__OPTIMIZE_SIZE__)
/// range_op, on_range(map, begin, end, op) - the range operations below in one word
/// loop when optimising for size: one loop and an operation code cost less than a
/// copy of the loop per operation. count never writes (map is const to its callers).
enum class range_op { set, clear, count };
[[gnu::noinline]] inline std::size_t on_range(word* map, std::size_t begin, std::size_t end, range_op op) noexcept {
    std::size_t n = 0;
    if (begin >= end) return 0;
    const std::size_t first = begin / word_bits, last = (end - 1) / word_bits;
    for (std::size_t i = first; i <= last; ++i) {
        word m = ~word{0};
        if (i == first) m &= mask_from(begin);
        if (i == last) m &= mask_below(end);
        if (op == range_op::set) map[i] |= m;
        else if (op == range_op::clear) map[i] &= ~m;
        else n += popcount(map[i] & m);
    }
    return n;
}
#endif

inline bool next_region(const word* map, std::size_t size, std::size_t from, std::size_t& rs, std::size_t& re,
                        word invert) noexcept {
    const std::size_t s = find_next(map, size, from, invert);
    if (s >= size) return false;
    rs = s;
    re = find_next(map, size, s + 1, ~invert);
    return true;
}
} // namespace detail

/// test/set/clear one bit.
inline bool test(const word* map, std::size_t bit) noexcept { return (map[bit / word_bits] >> (bit % word_bits)) & 1u; }
inline void set(word* map, std::size_t bit) noexcept { map[bit / word_bits] |= word{1} << (bit % word_bits); }
inline void clear(word* map, std::size_t bit) noexcept { map[bit / word_bits] &= ~(word{1} << (bit % word_bits)); }

/// set_range/clear_range(map, begin, end) - set or clear every bit in [begin, end).
#if defined(__OPTIMIZE_SIZE__)
inline void set_range(word* map, std::size_t begin, std::size_t end) noexcept {
    detail::on_range(map, begin, end, detail::range_op::set);
}
inline void clear_range(word* map, std::size_t begin, std::size_t end) noexcept {
    detail::on_range(map, begin, end, detail::range_op::clear);
}
#else
inline void set_range(word* map, std::size_t begin, std::size_t end) noexcept {
    detail::for_words(begin, end, [map](std::size_t i, word m) { map[i] |= m; });
}
inline void clear_range(word* map, std::size_t begin, std::size_t end) noexcept {
    detail::for_words(begin, end, [map](std::size_t i, word m) { map[i] &= ~m; });
}
#endif

/// find_next_set/find_next_clear(map, size, from) - first set (clear) bit in
/// [from, size), or `size` if there is none (also when from >= size).
PCPU_HOT_INLINE std::size_t find_next_set(const word* map, std::size_t size, std::size_t from) noexcept {
    return detail::find_next(map, size, from, 0);
}
PCPU_HOT_INLINE std::size_t find_next_clear(const word* map, std::size_t size, std::size_t from) noexcept {
    return detail::find_next(map, size, from, ~word{0});
}

/// find_last_set/find_last_clear(map, begin, end) - last set (clear) bit in
/// [begin, end), or `end` if there is none.
inline std::size_t find_last_set(const word* map, std::size_t begin, std::size_t end) noexcept {
    return detail::find_last(map, begin, end, 0);
}
inline std::size_t find_last_clear(const word* map, std::size_t begin, std::size_t end) noexcept {
    return detail::find_last(map, begin, end, ~word{0});
}

/// count_set(map, begin, end) - number of set bits in [begin, end) (popcount per word).
inline std::size_t count_set(const word* map, std::size_t begin, std::size_t end) noexcept {
#if defined(__OPTIMIZE_SIZE__)
    return detail::on_range(const_cast<word*>(map), begin, end, detail::range_op::count);
#else
    std::size_t n = 0;
    detail::for_words(begin, end, [map, &n](std::size_t i, word m) { n += detail::popcount(map[i] & m); });
    return n;
#endif
}

/// all_clear/all_set(map, begin, end) - true if every bit in [begin, end) is clear
/// (set); true for an empty range.
inline bool all_clear(const word* map, std::size_t begin, std::size_t end) noexcept {
    return detail::find_next(map, end, begin, 0) >= end;
}
inline bool all_set(const word* map, std::size_t begin, std::size_t end) noexcept {
    return detail::find_next(map, end, begin, ~word{0}) >= end;
}

/// next_clear_region/next_set_region(map, size, from, rs, re) - the first maximal run
/// of clear (set) bits that has at least one bit in [from, size), clipped to start no
/// earlier than `from`: on success `[rs, re)` with from <= rs < re <= size and returns
/// true; returns false if there is none. Iterate with `from = re`:
///
///     for (std::size_t rs, re, from = 0; next_clear_region(m, n, from, rs, re); from = re)
inline bool next_clear_region(const word* map, std::size_t size, std::size_t from, std::size_t& rs,
                              std::size_t& re) noexcept {
    return detail::next_region(map, size, from, rs, re, ~word{0});
}
inline bool next_set_region(const word* map, std::size_t size, std::size_t from, std::size_t& rs,
                            std::size_t& re) noexcept {
    return detail::next_region(map, size, from, rs, re, 0);
}

} // namespace pcpu::bitmap
