// SPDX-License-Identifier: MIT
// tests/support/alloc_model.hpp - a deliberately simple model of the allocator's
// contract, to diff a real pcpu::allocator against after every operation.
//
// The contract, as a caller sees it:
//   - every live allocation is an interval of CPU 0's address space inside one chunk's
//     usable range, aligned as asked, and the intervals never overlap; every CPU's copy
//     is the same interval shifted by that CPU's offset;
//   - a fresh allocation reads as zero on every CPU, and what its owner writes on any
//     CPU stays there until the owner frees it, whatever else happens (other
//     allocations, frees, balance, failed platform calls);
//   - reserved allocations come from the reserved chunk and only from it;
//   - a chunk holding a live allocation is never destroyed;
//   - free(h) succeeds exactly for live starts; anything else is invalid_pointer (not
//     the start of anything: interior, misaligned, outside every chunk) or double_free
//     (a free area of a chunk), and changes nothing;
//   - the statistics (per chunk: allocations, free bytes, largest free run, first free
//     byte; global: live allocations and bytes) follow from the intervals.
//
// Each chunk is a chunk_model (chunk_model.hpp: owner per 4-byte word, expected
// contents per CPU), keyed by its usable range. The chunk set is re-read from the
// allocator's for_each_chunk() at every sync(): new chunks appear empty, vanished ones
// must have been empty. Contents are real: write() stores the model's per-CPU pattern
// into the allocator's memory and check() compares it back, so a chunk handed out
// twice, a page unmapped under a live allocation or a stray write by pcpu shows up as
// corrupted contents (or as a fault on the sim platform's protected pages).
//
// No doctest: every check returns an error string, "" when the allocator agrees, so
// the libFuzzer target can use the model as well as the doctest suites.
#pragma once

#include "chunk_model.hpp"

#include <pcpu/allocator.hpp>

#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace pcpu_test {

template <class Alloc>
class alloc_model {
public:
    static constexpr std::size_t word = 4; ///< pcpu's minimum allocation: one model bit
    static constexpr std::size_t page_size = Alloc::page_size;

    explicit alloc_model(Alloc& a) : a_(a) {}

    struct live_alloc {
        std::uintptr_t key;   ///< the chunk's usable_begin
        std::uint32_t off;    ///< model bit of the start
        std::size_t size;     ///< bytes asked for
        bool reserved;
    };
    struct chunk_entry {
        std::uintptr_t base;       ///< CPU 0 address of bit 0
        std::uintptr_t usable_end; ///< [key, usable_end) is what free() may name
        pcpu::chunk_kind kind;
        chunk_model m;
    };

    std::size_t live() const noexcept { return live_.size(); }
    std::size_t nr_chunks() const noexcept { return chunks_.size(); }
    const std::map<std::uintptr_t, live_alloc>& allocations() const noexcept { return live_; }
    /// nth_live(i) - the i-th live handle in address order (i < live()).
    pcpu::handle nth_live(std::size_t i) const {
        auto it = live_.begin();
        std::advance(it, static_cast<long>(i));
        return pcpu::handle(it->first);
    }

    /// sync() - re-read the chunk set and compare every statistic with the model.
    std::string sync() { return refresh(true); }

    /// refresh(compare) - re-read the chunk set: new chunks enter the model empty,
    /// vanished ones must have been empty; with compare, check the statistics too.
    std::string refresh(bool compare) {
        const auto st = a_.stats();
        std::map<std::uintptr_t, bool> seen;
        std::string err;
        a_.for_each_chunk([&](const pcpu::chunk_stats& cs) {
            if (!err.empty()) return;
            std::uintptr_t begin = 0, end = 0;
            usable_range(cs, st, begin, end);
            seen[begin] = true;
            auto it = chunks_.find(begin);
            if (it != chunks_.end() && (it->second.base != cs.base || it->second.kind != cs.kind)) {
                if (!holds_none(begin)) {
                    err = "chunk at " + hex(begin) + " changed identity while holding live allocations";
                    return;
                }
                chunks_.erase(it);
                it = chunks_.end();
            }
            if (it == chunks_.end()) {
                const auto map_bits = static_cast<std::uint32_t>(cs.nr_pages * page_size / word);
                chunk_entry e{cs.base, end, cs.kind,
                              chunk_model(map_bits, static_cast<std::uint32_t>(page_size / word), st.nr_cpus)};
                e.m.hide(static_cast<std::uint32_t>((begin - cs.base) / word),
                         static_cast<std::uint32_t>((end - cs.base) / word));
                it = chunks_.emplace(begin, std::move(e)).first;
            }
            if (compare) err = compare_chunk(it->second, cs);
        });
        if (!err.empty()) return err;
        for (auto it = chunks_.begin(); it != chunks_.end();) {
            if (seen.count(it->first) != 0) {
                ++it;
                continue;
            }
            if (!it->second.m.live.empty())
                return "chunk at " + hex(it->first) + " vanished with " + std::to_string(it->second.m.live.size()) +
                       " live allocations";
            it = chunks_.erase(it);
        }
        if (!compare) return "";
        std::size_t bytes = 0;
        for (const auto& l : live_) bytes += chunks_.at(l.second.key).m.live.at(l.second.off) * word;
        if (st.nr_cur_alloc != live_.size())
            return "stats.nr_cur_alloc " + std::to_string(st.nr_cur_alloc) + ", model " + std::to_string(live_.size());
        if (st.live_bytes != bytes)
            return "stats.live_bytes " + std::to_string(st.live_bytes) + ", model " + std::to_string(bytes);
        return "";
    }

    /// added(h, size, align, reserved) - a successful allocation: placement, alignment,
    /// no overlap, zeroed on every CPU; then the model's pattern is written into it.
    std::string added(pcpu::handle h, std::size_t size, std::size_t align, bool reserved) {
        const std::uintptr_t p = h.addr();
        if (p % (align < word ? word : align) != 0) return "allocation " + hex(p) + " not aligned to " + std::to_string(align);
        chunk_entry* c = chunk_of(p);
        if (c == nullptr) {
            const std::string e = refresh(false); // a chunk created by this allocation
            if (!e.empty()) return e;
            c = chunk_of(p);
        }
        if (c == nullptr) return "allocation " + hex(p) + " outside every chunk's usable range";
        if ((c->kind == pcpu::chunk_kind::reserved) != reserved)
            return std::string(reserved ? "reserved allocation outside" : "normal allocation inside") +
                   " the reserved chunk at " + hex(p);
        if (p + size > c->usable_end) return "allocation " + hex(p) + " runs past its chunk's usable end";
        const auto off = static_cast<std::uint32_t>((p - c->base) / word);
        const auto bits = static_cast<std::uint32_t>((size + word - 1) / word);
        if (!c->m.add(off, bits)) return "allocation " + hex(p) + " (" + std::to_string(size) + " bytes) overlaps a live one";
        for (unsigned cpu = 0; cpu < a_.nr_cpus(); ++cpu) {
            const auto* q = static_cast<const unsigned char*>(a_.ptr(h, cpu));
            for (std::size_t i = 0; i < size; ++i)
                if (q[i] != 0)
                    return "allocation " + hex(p) + " not zeroed on cpu " + std::to_string(cpu) + " at byte " +
                           std::to_string(i);
        }
        live_.emplace(p, live_alloc{key_of(*c), off, size, reserved});
        store(h);
        return "";
    }

    /// write(h) - the owner writes new contents on every CPU.
    std::string write(pcpu::handle h) {
        const auto it = live_.find(h.addr());
        if (it == live_.end()) return "write of " + hex(h.addr()) + ", which the model does not hold";
        if (!chunks_.at(it->second.key).m.relabel(it->second.off)) return "model lost " + hex(h.addr());
        store(h);
        return "";
    }

    /// check(h) - every CPU's copy of h holds what its owner last wrote.
    std::string check(pcpu::handle h) const {
        const auto it = live_.find(h.addr());
        if (it == live_.end()) return "check of " + hex(h.addr()) + ", which the model does not hold";
        const chunk_entry& c = chunks_.at(it->second.key);
        for (unsigned cpu = 0; cpu < a_.nr_cpus(); ++cpu) {
            // The expected words are laid out like the allocation: compare in one go,
            // and locate the first bad byte only when something differs.
            const auto* q = static_cast<const unsigned char*>(a_.ptr(h, cpu));
            const auto* want = reinterpret_cast<const unsigned char*>(&c.m.units[cpu][it->second.off]);
            if (std::memcmp(q, want, it->second.size) == 0) continue;
            std::size_t i = 0;
            while (q[i] == want[i]) ++i;
            return "contents of " + hex(h.addr()) + " (" + std::to_string(it->second.size) +
                   " bytes) corrupted on cpu " + std::to_string(cpu) + " at byte " + std::to_string(i);
        }
        return "";
    }
    std::string check_all() const {
        for (const auto& l : live_) {
            std::string e = check(pcpu::handle(l.first));
            if (!e.empty()) return e;
        }
        return "";
    }

    /// predict_free(h) - what free(h) must return.
    pcpu::errc predict_free(pcpu::handle h) const {
        const std::uintptr_t p = h.addr();
        if (p == 0) return pcpu::errc::ok;
        if (!a_.initialized()) return pcpu::errc::not_initialized;
        if (live_.count(p) != 0) return pcpu::errc::ok;
        const chunk_entry* c = chunk_of(p);
        if (c == nullptr || p % word != 0) return pcpu::errc::invalid_pointer;
        return c->m.owner[(p - c->base) / word] != 0 ? pcpu::errc::invalid_pointer : pcpu::errc::double_free;
    }
    /// removed(h) - h was freed.
    /// memory_returned(spare_pages) - what a long life promises once nothing is live
    /// and balance has run undisturbed: at most one dynamic chunk is left (the spare),
    /// holding at most spare_pages populated pages (the reserve's high mark where pages
    /// can be unmapped, the whole spare where they cannot, 0 without dynamic chunks).
    std::string memory_returned(std::size_t spare_pages) const {
        if (!live_.empty()) return "memory_returned() with live allocations";
        std::size_t chunks = 0, pages = 0;
        a_.for_each_chunk([&](const pcpu::chunk_stats& s) {
            if (s.kind != pcpu::chunk_kind::dynamic) return;
            ++chunks;
            pages += s.nr_populated;
        });
        if (chunks > 1) return "memory not returned: " + std::to_string(chunks) + " dynamic chunks after free-all + balance";
        if (pages > spare_pages)
            return "memory not returned: " + std::to_string(pages) + " populated pages in dynamic chunks after " +
                   "free-all + balance, at most " + std::to_string(spare_pages) + " expected";
        return "";
    }

    std::string removed(pcpu::handle h) {
        const auto it = live_.find(h.addr());
        if (it == live_.end()) return "free of " + hex(h.addr()) + " succeeded, but the model does not hold it";
        if (!chunks_.at(it->second.key).m.remove(it->second.off)) return "model lost " + hex(h.addr());
        live_.erase(it);
        return "";
    }

    /// any_fit(size, align, reserved, pop_only, populated) - brute force: an aligned
    /// free run of the request's size in a chunk the allocator searches for it. With
    /// pop_only, only pages for which populated(cpu0_page_addr) holds count (the first
    /// chunk's pages always do). Chunks
    /// isolated for depopulation are not searched by the allocator: skip_slot names
    /// their slot list (-2: none).
    template <class Populated>
    bool any_fit(std::size_t size, std::size_t align, bool reserved, bool pop_only, Populated&& populated,
                 int skip_slot = -2) {
        const auto bits = static_cast<std::uint32_t>((size + word - 1) / word);
        const auto align_bits = static_cast<std::uint32_t>(align <= word ? 1 : align / word);
        std::map<std::uintptr_t, int> slot_of;
        a_.for_each_chunk([&](const pcpu::chunk_stats& cs) { slot_of[cs.base] = cs.slot; });
        for (auto& e : chunks_) {
            chunk_entry& c = e.second;
            if ((c.kind == pcpu::chunk_kind::reserved) != reserved) continue;
            if (c.kind == pcpu::chunk_kind::dynamic && slot_of.count(c.base) != 0 && slot_of[c.base] == skip_slot)
                continue;
            for (std::size_t pg = 0; pg < c.m.populated.size(); ++pg)
                c.m.populated[pg] =
                    !pop_only || c.kind != pcpu::chunk_kind::dynamic || populated(c.base + pg * page_size);
            if (c.m.any_fit(bits, align_bits, pop_only)) return true;
        }
        return false;
    }

private:
    static std::string hex(std::uintptr_t v) {
        static const char digits[] = "0123456789abcdef";
        std::string s;
        do {
            s.insert(s.begin(), digits[v & 15]);
            v >>= 4;
        } while (v != 0);
        return "0x" + s;
    }

    /// usable_range(cs, st, b, e) - what free() may name in chunk cs: everything for a
    /// dynamic chunk; for the first chunk's two views, the part after the static area
    /// (and the reserved area) as init() documents it.
    static void usable_range(const pcpu::chunk_stats& cs, const pcpu::alloc_stats& st, std::uintptr_t& b,
                             std::uintptr_t& e) {
        const std::size_t s = st.static_size, r = st.reserved_size;
        if (cs.kind == pcpu::chunk_kind::dynamic) {
            b = cs.base;
            e = cs.base + st.unit_size;
        } else if (cs.kind == pcpu::chunk_kind::first) {
            const std::uintptr_t unit0 = cs.base - (s + r) / page_size * page_size;
            b = unit0 + s + r;
            e = unit0 + st.unit_size;
        } else {
            const std::uintptr_t unit0 = cs.base - s / page_size * page_size;
            b = unit0 + s;
            e = unit0 + s + r;
        }
    }

    bool holds_none(std::uintptr_t key) const {
        const auto it = chunks_.find(key);
        return it == chunks_.end() || it->second.m.live.empty();
    }
    std::uintptr_t key_of(const chunk_entry& c) const {
        for (const auto& e : chunks_)
            if (&e.second == &c) return e.first;
        return 0;
    }
    chunk_entry* chunk_of(std::uintptr_t p) {
        auto it = chunks_.upper_bound(p);
        if (it == chunks_.begin()) return nullptr;
        --it;
        return p < it->second.usable_end ? &it->second : nullptr;
    }
    const chunk_entry* chunk_of(std::uintptr_t p) const { return const_cast<alloc_model*>(this)->chunk_of(p); }

    std::string compare_chunk(const chunk_entry& c, const pcpu::chunk_stats& cs) const {
        const chunk_model& m = c.m;
        const auto what = [&](const char* field, std::size_t got, std::size_t want) {
            return "chunk " + hex(c.base) + ": " + field + " " + std::to_string(got) + ", model " + std::to_string(want);
        };
        if (cs.nr_alloc != m.live.size()) return what("nr_alloc", cs.nr_alloc, m.live.size());
        if (cs.free_bytes != std::size_t{m.free_bits()} * word) return what("free_bytes", cs.free_bytes, m.free_bits() * word);
        // pcpu keeps the chunk's contig hint exact (a documented deviation from the kernel).
        if (cs.contig_bytes != std::size_t{m.largest_run()} * word)
            return what("contig_bytes", cs.contig_bytes, m.largest_run() * word);
        if (m.free_bits() != 0) {
            std::uint32_t first = 0;
            while (m.owner[first] != 0) ++first;
            if (cs.first_free != std::size_t{first} * word) return what("first_free", cs.first_free, first * word);
        }
        return "";
    }

    /// store(h) - write the model's contents of h into every CPU's copy: the model's
    /// per-word patterns, byte for byte as they lie in memory, cut at the size asked for.
    void store(pcpu::handle h) {
        const live_alloc& l = live_.at(h.addr());
        const chunk_entry& c = chunks_.at(l.key);
        for (unsigned cpu = 0; cpu < a_.nr_cpus(); ++cpu)
            std::memcpy(a_.ptr(h, cpu), &c.m.units[cpu][l.off], l.size);
    }

    Alloc& a_;
    std::map<std::uintptr_t, chunk_entry> chunks_; ///< by usable_begin
    std::map<std::uintptr_t, live_alloc> live_;    ///< by handle
};

} // namespace pcpu_test
