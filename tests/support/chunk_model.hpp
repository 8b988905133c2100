// SPDX-License-Identifier: MIT
// tests/support/chunk_model.hpp - a plain interval model of one chunk, to diff the
// bitmap allocator against, plus helpers shared by the block/chunk/hints tests.
//
// The model knows which bits are allocated (and by which allocation), which pages are
// populated, and what every simulated CPU's copy of each live allocation must hold.
// It answers "does an aligned fit exist?" by brute force, and "should the hint search
// have found one?" by enumerating the runs the hints make visible (see
// hint_visible_fit()).
//
// It has no doctest dependency (the allocator model in alloc_model.hpp builds on it
// and runs inside the libFuzzer target, which has no test runner): checks return
// bool and the caller asserts.
#pragma once

#include <pcpu/internal/chunk.hpp>
#include <pcpu/internal/scan_chunk.hpp>

#include <cstdint>
#include <map>
#include <type_traits>
#include <vector>

namespace pcpu_test {

/// rng - splitmix64; deterministic across platforms, so a seed replays everywhere.
struct rng {
    std::uint64_t state;
    explicit rng(std::uint64_t seed) : state(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    /// below(n) - uniform in [0, n), n > 0.
    std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }
    /// range(lo, hi) - uniform in [lo, hi].
    std::uint32_t range(std::uint32_t lo, std::uint32_t hi) { return lo + below(hi - lo + 1); }
};

/// is_scan_chunk<Chunk> - Chunk is a basic_scan_chunk (internal/scan_chunk.hpp): no
/// block hints, and an exact first fit for every alignment.
template <class Chunk>
struct is_scan_chunk : std::false_type {};
template <unsigned P, unsigned G>
struct is_scan_chunk<pcpu::basic_scan_chunk<P, G>> : std::true_type {};

/// chunk_box<Chunk> - a chunk together with its metadata storage, plus a guard zone
/// after meta_bytes() that the chunk must never touch.
template <class Chunk>
struct chunk_box {
    static constexpr std::size_t guard_words = 4;
    static constexpr pcpu::bitmap::word guard_value = static_cast<pcpu::bitmap::word>(0xa5a5a5a5a5a5a5a5ull);
    std::vector<pcpu::bitmap::word> storage;
    std::size_t meta_words;
    Chunk c;

    explicit chunk_box(std::uint32_t nr_pages)
        : storage(), meta_words((Chunk::meta_bytes(nr_pages) + sizeof(pcpu::bitmap::word) - 1) /
                                sizeof(pcpu::bitmap::word)) {
        storage.assign(meta_words + guard_words, guard_value);
        c.init(storage.data(), nr_pages);
    }
    bool guard_intact() const {
        for (std::size_t i = meta_words; i < storage.size(); ++i)
            if (storage[i] != guard_value) return false;
        return true;
    }
};

/// chunk_model - what the chunk should look like: owner of every bit (0 = free,
/// hidden_owner for a hidden head/tail), the live allocations, populated pages, and
/// per-CPU copies of the unit holding a per-allocation pattern.
struct chunk_model {
    static constexpr std::uint32_t hidden_owner = 0xffffffffu;
    static constexpr std::uint32_t poison = 0xdeadbeefu;

    std::uint32_t map_bits;
    std::uint32_t block_bits;
    std::uint32_t page_bits; ///< population granularity: block_bits unless blocks are smaller than pages
    std::vector<std::uint32_t> owner;
    std::map<std::uint32_t, std::uint32_t> live; // start -> bits
    std::vector<bool> populated;
    std::vector<std::vector<std::uint32_t>> units; // one word per bit, per CPU
    std::uint32_t next_id = 1;

    chunk_model(std::uint32_t map_bits_, std::uint32_t block_bits_, unsigned nr_cpus, std::uint32_t page_bits_ = 0)
        : map_bits(map_bits_), block_bits(block_bits_), page_bits(page_bits_ != 0 ? page_bits_ : block_bits_),
          owner(map_bits_, 0), live(), populated(map_bits_ / page_bits, false),
          units(nr_cpus, std::vector<std::uint32_t>(map_bits_, poison)) {}

    static std::uint32_t pattern(std::uint32_t id, std::size_t cpu, std::uint32_t bit) {
        return id * 2654435761u ^ static_cast<std::uint32_t>(cpu) * 40503u ^ bit;
    }
    bool usable(std::uint32_t bit, bool pop_only) const {
        return owner[bit] == 0 && (!pop_only || populated[bit / page_bits]);
    }
    std::uint32_t free_bits() const {
        std::uint32_t n = 0;
        for (std::uint32_t o : owner) n += o == 0;
        return n;
    }

    void hide(std::uint32_t begin, std::uint32_t end) {
        for (std::uint32_t i = 0; i < begin; ++i) owner[i] = hidden_owner;
        for (std::uint32_t i = end; i < map_bits; ++i) owner[i] = hidden_owner;
    }

    /// add(off, bits) - record a new allocation; false if it overlaps anything or
    /// leaves the map (the chunk handed out something it should not have).
    bool add(std::uint32_t off, std::uint32_t bits) {
        if (off >= map_bits || bits > map_bits - off) return false;
        for (std::uint32_t i = off; i < off + bits; ++i)
            if (owner[i] != 0) return false;
        const std::uint32_t id = next_id++;
        for (std::uint32_t i = off; i < off + bits; ++i) {
            owner[i] = id;
            for (std::size_t cpu = 0; cpu < units.size(); ++cpu) units[cpu][i] = pattern(id, cpu, i);
        }
        live[off] = bits;
        return true;
    }
    /// remove(off) - forget the allocation at off; false if there is none.
    [[nodiscard]] bool remove(std::uint32_t off) {
        const auto it = live.find(off);
        if (it == live.end()) return false;
        for (std::uint32_t i = off; i < off + it->second; ++i) {
            owner[i] = 0;
            for (auto& u : units) u[i] = poison;
        }
        live.erase(it);
        return true;
    }
    /// relabel(off) - give the allocation at off a new identity, so its expected
    /// contents change (a write by its owner); false if there is none.
    [[nodiscard]] bool relabel(std::uint32_t off) {
        const auto it = live.find(off);
        if (it == live.end()) return false;
        const std::uint32_t id = next_id++;
        for (std::uint32_t i = off; i < off + it->second; ++i) {
            owner[i] = id;
            for (std::size_t cpu = 0; cpu < units.size(); ++cpu) units[cpu][i] = pattern(id, cpu, i);
        }
        return true;
    }
    /// contents_intact() - every live allocation still holds its pattern in every
    /// CPU's copy.
    bool contents_intact() const {
        for (std::uint32_t i = 0; i < map_bits; ++i) {
            const std::uint32_t id = owner[i];
            if (id == 0 || id == hidden_owner) continue;
            for (std::size_t cpu = 0; cpu < units.size(); ++cpu)
                if (units[cpu][i] != pattern(id, cpu, i)) return false;
        }
        return true;
    }
    /// expected_area_size(off) - what chunk::area_size(off) must say.
    std::uint32_t expected_area_size(std::uint32_t off) const {
        const auto it = live.find(off);
        return it == live.end() ? 0 : it->second;
    }

    /// for_each_run(pop_only, f) - f(rs, re) for every maximal usable run.
    template <class F>
    void for_each_run(bool pop_only, F&& f) const {
        std::uint32_t i = 0;
        while (i < map_bits) {
            if (!usable(i, pop_only)) {
                ++i;
                continue;
            }
            const std::uint32_t rs = i;
            while (i < map_bits && usable(i, pop_only)) ++i;
            f(rs, i);
        }
    }
    static bool run_fits(std::uint32_t rs, std::uint32_t re, std::uint32_t bits, std::uint32_t align) {
        const std::uint64_t a = (std::uint64_t{rs} + align - 1) / align * align;
        return a + bits <= re;
    }
    /// first_fit(bits, align, pop_only) - brute force: the lowest aligned offset of
    /// `bits` usable bits, or -1.
    std::int64_t first_fit(std::uint32_t bits, std::uint32_t align, bool pop_only) const {
        std::int64_t at = -1;
        for_each_run(pop_only, [&](std::uint32_t rs, std::uint32_t re) {
            if (at < 0 && run_fits(rs, re, bits, align))
                at = static_cast<std::int64_t>((std::uint64_t{rs} + align - 1) / align * align);
        });
        return at;
    }
    /// any_fit(bits, align, pop_only) - brute force: an aligned run of `bits` usable bits.
    bool any_fit(std::uint32_t bits, std::uint32_t align, bool pop_only) const { return first_fit(bits, align, pop_only) >= 0; }
    std::uint32_t largest_run() const {
        std::uint32_t best = 0;
        for_each_run(false, [&](std::uint32_t rs, std::uint32_t re) { best = re - rs > best ? re - rs : best; });
        return best;
    }

    /// hint_visible_fit(c, bits, align, pop_only) - whether the hint-driven search
    /// (the kernel's design) must find a fit: the chunk's contig run holds the aligned
    /// request (the O(1) reject), and some run the block metadata exposes holds it: a
    /// block's contig run (on a populated page when pop_only), or a run that touches a
    /// block edge (unpopulated pages counting as allocated when pop_only). Uses the
    /// chunk's contig starts, which verify() has checked are real runs of the right
    /// length. With align == 1 this equals any_fit().
    template <class Chunk>
    bool hint_visible_fit(const Chunk& c, std::uint32_t bits, std::uint32_t align, bool pop_only) const {
        if constexpr (is_scan_chunk<Chunk>::value) {
            (void)c; // no hints: the scan sees every run
            return any_fit(bits, align, pop_only);
        } else {
            if (!pcpu::block_check_hint(c.chunk_md(), bits, align)) return false;
            for (std::uint32_t b = 0; b < c.nr_blocks(); ++b) {
                const pcpu::block_md& md = c.block(b);
                if (md.contig_hint == 0 || (pop_only && !populated[b * block_bits / page_bits])) continue;
                const std::uint32_t s = b * block_bits + md.contig_hint_start;
                if (run_fits(s, s + md.contig_hint, bits, align)) return true;
            }
            bool found = false;
            for_each_run(pop_only, [&](std::uint32_t rs, std::uint32_t re) {
                const bool edge = rs % block_bits == 0 || re % block_bits == 0 || rs / block_bits != (re - 1) / block_bits;
                found = found || (edge && run_fits(rs, re, bits, align));
            });
            return found;
        }
    }
};

} // namespace pcpu_test
