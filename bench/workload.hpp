// SPDX-License-Identifier: MIT
// bench/workload.hpp - the benchmark's inputs, loaded or generated before any timing:
// the recorded Linux trace and the mixed synthetic trace, both as flat vectors of ops
// whose frees name a dense slot, so a replay is one loop over an array.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pcpu_bench {

/// op - one trace step. alloc: size/align bytes into slot; free: the object in slot.
struct op {
    bool alloc = false;
    bool atomic = false;
    std::uint32_t size = 0;
    std::uint32_t align = 0;
    std::uint32_t slot = 0;
};

/// trace - ops plus facts computed once: slot count, live-bytes curve peak.
struct trace {
    std::vector<op> ops;
    std::uint32_t nr_slots = 0;
    std::size_t peak_live = 0;      ///< bytes per unit (sizes rounded up to 4)
    std::size_t peak_index = 0;     ///< op index right after which live bytes peak
    std::size_t nr_allocs = 0;
    std::size_t nr_frees = 0;

    /// finish() - live-bytes curve from the ops.
    void finish() {
        std::vector<std::uint32_t> sz(nr_slots, 0);
        std::size_t live = 0;
        peak_live = peak_index = nr_allocs = nr_frees = 0;
        for (std::size_t i = 0; i < ops.size(); ++i) {
            const op& o = ops[i];
            if (o.alloc) {
                sz[o.slot] = (o.size + 3) & ~3u;
                live += sz[o.slot];
                ++nr_allocs;
            } else {
                live -= sz[o.slot];
                sz[o.slot] = 0;
                ++nr_frees;
            }
            if (live > peak_live) {
                peak_live = live;
                peak_index = i;
            }
        }
    }
};

/// load_trace(path, max_ops) - the CSV of /work/shared/traces (op,t,call_site,reserved,
/// atomic,size,align,id,gfp). A free whose id was allocated before recording began is
/// dropped; ids are reused by the kernel, so each alloc takes a fresh slot. max_ops = 0:
/// all. Returns an empty trace if the file cannot be read.
inline trace load_trace(const std::string& path, std::size_t max_ops = 0) {
    trace t;
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) return t;
    std::unordered_map<std::string, std::uint32_t> live; // id -> slot
    std::vector<std::uint32_t> free_slots;
    char line[512];
    bool header = true;
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (header) {
            header = false;
            continue;
        }
        // Split on commas (no quoting in this format).
        const char* field[9] = {};
        std::size_t n = 0;
        char* p = line;
        field[n++] = p;
        for (; *p != '\0' && n < 9; ++p)
            if (*p == ',') {
                *p = '\0';
                field[n++] = p + 1;
            }
        if (n < 8) continue;
        char* nl = std::strchr(const_cast<char*>(field[7]), '\n');
        if (nl != nullptr) *nl = '\0';
        const std::string id = field[7];
        op o;
        if (field[0][0] == 'a') {
            o.alloc = true;
            o.atomic = field[4][0] == '1';
            o.size = static_cast<std::uint32_t>(std::strtoul(field[5], nullptr, 10));
            o.align = static_cast<std::uint32_t>(std::strtoul(field[6], nullptr, 10));
            if (!free_slots.empty()) {
                o.slot = free_slots.back();
                free_slots.pop_back();
            } else {
                o.slot = t.nr_slots++;
            }
            live[id] = o.slot;
        } else {
            const auto it = live.find(id);
            if (it == live.end()) continue; // allocated before recording began
            o.slot = it->second;
            free_slots.push_back(o.slot);
            live.erase(it);
        }
        t.ops.push_back(o);
        if (max_ops != 0 && t.ops.size() >= max_ops) break;
    }
    std::fclose(f);
    t.finish();
    return t;
}

/// splitmix64 - a tiny seeded generator, so the synthetic trace is the same everywhere.
struct splitmix64 {
    std::uint64_t s;
    std::uint64_t next() noexcept {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }
};

/// mixed_trace(source, nr_allocs, free_percent, seed) - many long-lived small objects
/// with occasional frees: each step allocates with probability 1 - free_percent/100
/// (size and alignment drawn from `source`'s allocations, so mostly 4-64 bytes with a
/// tail to about 1 KiB) or frees a uniformly chosen live object.
inline trace mixed_trace(const trace& source, std::size_t nr_allocs, unsigned free_percent, std::uint64_t seed) {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> dist;
    for (const op& o : source.ops)
        if (o.alloc) dist.emplace_back(o.size, o.align);
    if (dist.empty()) dist.emplace_back(16, 8);
    trace t;
    splitmix64 rng{seed};
    std::vector<std::uint32_t> live;
    std::size_t made = 0;
    while (made < nr_allocs) {
        op o;
        if (!live.empty() && rng.below(100) < free_percent) {
            const auto k = static_cast<std::size_t>(rng.below(live.size()));
            o.slot = live[k];
            live[k] = live.back();
            live.pop_back();
        } else {
            const auto& d = dist[static_cast<std::size_t>(rng.below(dist.size()))];
            o.alloc = true;
            o.size = d.first;
            o.align = d.second;
            o.slot = t.nr_slots++;
            live.push_back(o.slot);
            ++made;
        }
        t.ops.push_back(o);
    }
    t.finish();
    return t;
}

} // namespace pcpu_bench
