// SPDX-License-Identifier: MIT
// bench/frag_layout.hpp - the adversarial fragmentation layouts of issue 16
// (../shared/measurements/worst-case.md), built in one chunk through its public calls.
// Shared by the counted tests (tests/test_fragmentation.cpp) and the timed benchmark
// (bench/bench_frag.cpp).
//
// Block 0 holds one whole-block object; every other block is filled, then holes are
// freed:
//   F1o / F1e - 1-bit holes at every odd / even offset;
//   F2        - runs at offsets = 1 mod align (A = align in bits), as long as they can
//               be without holding the aligned request and without being longer than
//               the fit: min(A - 1, bits - 1) bits (A = 1: bits - 1 bits, every bits
//               bits). Longer runs would make one of them the block's contig run, and
//               find-fit trusts the contig run for aligned requests (as the kernel's
//               does): the fit would then be out of reach, not slow to reach.
//   decoy     - (aligned requests, A >= 2) a decoy run at offset 1, bits + A - 2 bits
//               long: long enough that no hint rules it out, one bit too short for the
//               aligned request; then 1-bit holes at every other offset. The fit is a
//               run of bits + A - 1 bits ending at the fit (the block's longest, so its
//               contig hint), its aligned start A - 1 bits in. The search must begin
//               at the decoy and pass every hole; the claim splits the fit's run at an
//               offset, beside the decoy, and the block's hints are refreshed.
// The only fit, exactly the request's size, lies in block 1, the middle or the last
// block, at the last aligned offset that keeps the block's last bit allocated. Holes
// are freed ascending then the fit (asc), descending then the fit (desc), the fit
// then ascending (fasc) or descending (fdesc); finally block 0's object is freed and
// a whole-block object allocated back there (it refreshes the chunk hints). Holes lie
// in every block up to 16 blocks (64 KiB units) and in blocks 1, 2, the middle two and
// the last two beyond (1 MiB units: 256 blocks, the others stay full).
#pragma once

#include <pcpu/internal/chunk.hpp>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace pcpu_frag {

using chunk_t = pcpu::basic_chunk<12>; // 1024-bit blocks: Linux's geometry
inline constexpr std::uint32_t bb = chunk_t::block_bits;

enum class family { f1o, f1e, f2, decoy };
enum class order { asc, desc, fasc, fdesc };
enum class where { block1, middle, last };
inline const char* const family_names[] = {"F1o", "F1e", "F2", "decoy"};
inline const char* const order_names[] = {"asc", "desc", "fasc", "fdesc"};
inline const char* const where_names[] = {"block 1", "middle", "last"};

struct shape {
    std::uint32_t pages;
    family fam;
    order ord;
    where at;
    std::uint32_t bits, align; ///< the request, in bits
};

/// for_each_shape(pages, bits, align, f) - f(shape) for every family, order and fit location.
template <class F>
void for_each_shape(std::uint32_t pages, std::uint32_t bits, std::uint32_t align, F&& f) {
    for (int fam = 0; fam < 3; ++fam)
        for (int o = 0; o < 4; ++o)
            for (int at = 0; at < 3; ++at)
                f(shape{pages, static_cast<family>(fam), static_cast<order>(o), static_cast<where>(at), bits, align});
}

/// for_each_decoy_shape(pages, bits, align, f) - f(shape) for every free order and fit
/// location of the decoy family (align >= 2 only: an unaligned request fits any run
/// as long as it).
template <class F>
void for_each_decoy_shape(std::uint32_t pages, std::uint32_t bits, std::uint32_t align, F&& f) {
    for (int o = 0; o < 4; ++o)
        for (int at = 0; at < 3; ++at)
            f(shape{pages, family::decoy, static_cast<order>(o), static_cast<where>(at), bits, align});
}

/// chunk_storage - a chunk and its metadata, restorable byte for byte (snapshot()
/// and restore()) so every timed allocation meets the same layout.
struct chunk_storage {
    std::vector<pcpu::bitmap::word> meta, saved_meta;
    chunk_t c, saved_c;
    explicit chunk_storage(std::uint32_t pages)
        : meta((chunk_t::meta_bytes(pages) + sizeof(pcpu::bitmap::word) - 1) / sizeof(pcpu::bitmap::word)) {
        c.init(meta.data(), pages);
    }
    void snapshot() {
        saved_meta = meta;
        saved_c = c;
    }
    void restore() {
        std::copy(saved_meta.begin(), saved_meta.end(), meta.begin());
        c = saved_c;
    }
};

inline std::uint32_t fit_block_of(const shape& s) {
    return s.at == where::block1 ? 1 : s.at == where::middle ? s.pages / 2 : s.pages - 1;
}
/// fit_of(s) - the bit offset of the layout's only fit.
inline std::uint32_t fit_of(const shape& s) {
    return fit_block_of(s) * bb + ((bb - 1 - s.bits) / s.align) * s.align;
}

/// fit_run_of(s) - the free run that holds the fit, [first, second), block relative:
/// the fit itself, or for the decoy family the fit and the A - 1 bits before it.
inline std::pair<std::uint32_t, std::uint32_t> fit_run_of(const shape& s) {
    const std::uint32_t fit_off = fit_of(s) % bb;
    const std::uint32_t pad = s.fam == family::decoy ? s.align - 1 : 0;
    return {fit_off - pad, fit_off + s.bits};
}

/// holes_in(s, block) - the hole runs [start, end) of one block, block relative, ascending.
inline std::vector<std::pair<std::uint32_t, std::uint32_t>> holes_in(const shape& s, std::uint32_t block) {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
    const std::uint32_t fit_off = fit_run_of(s).first;
    const std::uint32_t fit_len = fit_run_of(s).second - fit_off;
    std::uint32_t first = 0, len = 1, period = 2;
    if (s.fam == family::f1o) first = 1;
    if (s.fam == family::f2) {
        first = 1;
        if (s.align >= 2) {
            len = std::min(s.align - 1, s.bits - 1);
            period = s.align;
        } else {
            len = s.bits - 1;
            period = s.bits;
        }
    }
    if (s.fam == family::decoy) {
        out.emplace_back(1, s.bits + s.align - 1);
        first = s.bits + s.align;
    }
    for (std::uint32_t p = first; p + len <= bb; p += period) {
        if (block == fit_block_of(s)) {
            // Keep the fit's neighbours and the block's last bit allocated.
            if (p + len + 1 > bb) continue;
            if (p < fit_off + fit_len + 1 && fit_off < p + len + 1) continue;
        }
        out.emplace_back(p, p + len);
    }
    return out;
}

inline bool has_holes(const shape& s, std::uint32_t b) {
    if (b == 0) return false;
    if (s.pages <= 16) return true;
    const std::uint32_t mid = s.pages / 2;
    return b == 1 || b == 2 || b == mid - 1 || b == mid || b >= s.pages - 2 || b == fit_block_of(s);
}

/// build(s, c) - lay s out in c (fresh from init(), every page populated by the
/// caller). False if a placement failed (then c is in no defined layout).
inline bool build(const shape& s, chunk_t& c) {
    const std::uint32_t fit_block = fit_block_of(s);
    const std::uint32_t fit_run = fit_block * bb + fit_run_of(s).first;
    bool placed = true;
    auto place = [&](std::uint32_t at, std::uint32_t len) {
        placed = placed && c.alloc_area(len, 1, at) == static_cast<std::int32_t>(at);
    };
    // Fill: block 0 whole, then piece by piece (holes and the fit as objects of their
    // own, what lies between as one object), full blocks in one object per stretch.
    place(0, bb);
    std::vector<std::uint32_t> holes; // hole starts, chunk absolute, ascending
    std::uint32_t pos = bb;
    for (std::uint32_t b = 1; b < s.pages; ++b) {
        if (!has_holes(s, b)) continue;
        const std::uint32_t base = b * bb;
        if (base > pos) place(pos, base - pos);
        pos = base;
        auto pieces = holes_in(s, b);
        if (b == fit_block) {
            pieces.push_back(fit_run_of(s));
            std::sort(pieces.begin(), pieces.end());
        }
        for (const auto& pc : pieces) {
            if (base + pc.first > pos) place(pos, base + pc.first - pos);
            place(base + pc.first, pc.second - pc.first);
            if (base + pc.first != fit_run) holes.push_back(base + pc.first);
            pos = base + pc.second;
        }
    }
    if (s.pages * bb > pos) place(pos, s.pages * bb - pos);
    if (!placed) return false;

    std::vector<std::uint32_t> frees = holes;
    if (s.ord == order::desc || s.ord == order::fdesc) std::reverse(frees.begin(), frees.end());
    if (s.ord == order::fasc || s.ord == order::fdesc)
        frees.insert(frees.begin(), fit_run);
    else
        frees.push_back(fit_run);
    for (std::uint32_t off : frees) c.free_area(off);
    c.free_area(0);
    const std::int32_t st = c.find_fit(bb, bb, false);
    return st >= 0 && c.alloc_area(bb, bb, static_cast<std::uint32_t>(st)) == 0;
}

/// allocate(s, c) - the measured allocation: find-fit and claim, as the allocator
/// makes them. The bit offset, or -1.
inline std::int32_t allocate(const shape& s, chunk_t& c) {
    const std::int32_t st = c.find_fit(s.bits, s.align, false);
    return st < 0 ? -1 : c.alloc_area(s.bits, s.align, static_cast<std::uint32_t>(st));
}

} // namespace pcpu_frag
