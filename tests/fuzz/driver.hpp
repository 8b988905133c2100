// SPDX-License-Identifier: MIT
// tests/fuzz/driver.hpp - turns a byte string into a sequence of allocator operations
// and checks the allocator against the model (tests/support/alloc_model.hpp) after
// every one of them.
//
// The same driver runs under libFuzzer (fuzz_allocator.cpp), as a plain corpus replay
// in the g++ suite (replay_main.cpp), and from seeded random bytes in the doctest
// suite "model" (test_model.cpp), so a crash the fuzzer finds becomes a corpus file
// that every build replays.
//
// Input format (every read past the end yields 0, so any byte string is valid):
//   byte 0   policy (% 3: static_only, contiguous, lazy_mapped), CPUs (1 + /3 % 4),
//            chunk policy (/12 % 2: kernel_layout, scan_layout)
//   byte 1   first-chunk layout: static size (bits 0-1), reserved size (bits 2-3),
//            background context full instead of noio (bit 4), metadata for the
//            first chunk from the platform (bit 5), whose first attempt fails (bit 6),
//            lazy_mapped on a platform with the population event (bit 7: populations
//            drop the sleeping lock, sim_event_platform)
//   byte 2   operations tried before init (% 4)
//   then one operation per byte, with its arguments in the bytes after it:
//     alloc / alloc_reserved   size, alignment, context (+ implicit scope)
//     free                     which live allocation
//     bad free                 interior, misaligned, stray, freed before, other
//                              CPU's copy, or any word of a chunk
//     free many                up to 8 live allocations, alternating ends
//     write / read             one live allocation's contents on every CPU
//     balance                  context; from 0xf0 up, free every live allocation
//                              first, balance twice, and require the memory back
//     fault                    fail the n-th alloc_meta / alloc_units / reserve /
//                              alloc_pages / map, or the n-th failable call
//     clear faults
//
// Each operation goes through pcpu_test::model_runner (tests/support/model_runner.hpp),
// which checks after every one of them: verify(); no context violation seen by the
// checker (context never widened, map under the caller's scope, nothing blocking in an
// atomic operation or under the index lock); no platform misuse seen by the sim; the
// model's statistics and every live allocation's contents on every CPU; for atomic
// allocations and every free, no blocking callback reached; and only the errors the
// contract allows. At the end the allocator is shut down and the platform must hold
// nothing: no metadata, unit blocks, reservations, pages or mappings.
#pragma once

#include "../support/model_runner.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pcpu_fuzz {

/// totals - what the driver did, summed over inputs (the figures in docs/reliability.md).
struct totals {
    std::uint64_t inputs = 0;
    std::uint64_t ops = 0;
    std::uint64_t allocs = 0;
    std::uint64_t alloc_errors = 0;
    std::uint64_t frees = 0;
    std::uint64_t bad_frees = 0;
    std::uint64_t balances = 0;
    std::uint64_t faults_injected = 0;
    std::uint64_t memory_checks = 0; ///< free-all + balance ends where the memory had to be back
    std::uint64_t event_inputs = 0;  ///< lazy_mapped inputs on the platform with the population event
    std::uint64_t scan_inputs = 0;   ///< inputs over the scan chunk policy (scan_layout)
};

/// reader - the input as a stream of bytes; 0 past the end.
class reader {
public:
    reader(const std::uint8_t* data, std::size_t size) noexcept : p_(data), n_(size) {}
    bool done() const noexcept { return i_ >= n_; }
    std::uint8_t byte() noexcept { return i_ < n_ ? p_[i_++] : 0; }
    std::uint16_t u16() noexcept {
        const std::uint16_t lo = byte();
        return static_cast<std::uint16_t>(lo | byte() << 8);
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
    std::size_t i_ = 0;
};

using sim = pcpu_test::sim_platform<12, 8>;
using sim_event = pcpu_test::sim_event_platform<12, 8>;
namespace ctx = pcpu::ctx;

constexpr std::size_t unit = 16 * 1024; ///< 4 pages: chunks fill, and get created, quickly
constexpr std::size_t max_ops = 300;
constexpr std::size_t max_chunks = 12; ///< above it, allocations are kept small

template <class Policy, class Sim = sim, class Layout = pcpu::kernel_layout>
class driver {
public:
    using runner_t = pcpu_test::model_runner<Policy, Sim, Layout>;
    static constexpr std::size_t page = runner_t::page;

    driver(reader& in, totals& t, unsigned cpus, std::uint8_t layout)
        : in_(in), t_(t), cpus_(cpus), r_(cpus, unit, statics[layout & 3], reserves[(layout >> 2) & 3], cpus) {}

    /// run(layout, preinit) - the whole input; "" if every check passed.
    std::string run(std::uint8_t layout, std::uint8_t preinit) {
        std::string e = before_init(preinit % 4);
        if (e.empty()) e = init(layout);
        for (std::size_t n = 0; e.empty() && n < max_ops && !in_.done(); ++n) {
            ++t_.ops;
            what_ = "?";
            e = step();
            if (!e.empty()) e = "op " + std::to_string(n) + " (" + what_ + "): " + e;
        }
        if (e.empty()) e = r_.finish();
        t_.faults_injected += r_.sim().injected_failures();
        t_.allocs += r_.allocs_;
        t_.alloc_errors += r_.alloc_errors_;
        t_.frees += r_.frees_;
        t_.bad_frees += r_.bad_frees_;
        t_.balances += r_.balances_;
        t_.memory_checks += r_.memory_checks_;
        return e;
    }

private:
    static constexpr std::size_t statics[] = {0, 100, 8 * 1024 + 52, 12000};
    static constexpr std::size_t reserves[] = {0, 256, 1000, 2048};

    std::string before_init(unsigned n) {
        for (unsigned i = 0; i < n; ++i) {
            what_ = "before init";
            std::string e = r_.alloc(8, 8, ctx::full);
            if (e.empty()) e = r_.alloc(8, 8, ctx::atomic, nullptr, true);
            if (e.empty()) e = r_.free(pcpu::handle(0x1000));
            if (e.empty()) e = r_.balance(ctx::noio);
            if (e.empty() && r_.sim().failable_calls() != 0) e = "a platform call before init";
            if (!e.empty()) return e;
        }
        return "";
    }

    std::string init(std::uint8_t layout) {
        what_ = "init";
        r_.sim().set_background_context((layout & 0x10) != 0 ? ctx::full : ctx::noio);
        if (Policy::creates_chunks && (layout & 0x20) != 0) {
            r_.own_meta();
            if ((layout & 0x40) != 0) {
                r_.sim().fail_nth(pcpu_test::fault::meta, 1);
                std::string e = r_.init(pcpu::errc::out_of_memory);
                if (!e.empty()) return e;
                r_.sim().clear_faults();
            }
        }
        std::string e = r_.init();
        if (e.empty()) e = r_.init(pcpu::errc::bad_config); // a second init changes nothing
        return e;
    }

    std::size_t decode_size() {
        const std::uint8_t sel = in_.byte();
        if (sel == 0) return 0;                       // zero_size
        if (sel == 255) return unit + 1 + in_.byte(); // size_too_large
        std::size_t size = 0;
        switch (sel % 4) {
        case 0: size = 1 + in_.byte() % 64u; break;
        case 1: size = 1 + in_.u16() % 1024u; break;
        case 2: size = 1 + in_.u16() % 4096u; break;
        default: size = 1 + in_.u16() % unit; break;
        }
        if (r_.model().nr_chunks() >= max_chunks && size > 64) size = 1 + size % 64;
        return size;
    }
    std::size_t decode_align() {
        const unsigned b = in_.byte() % 16u;
        if (b <= 12) return std::size_t{1} << b; // 1 .. 4096 (the page)
        if (b == 13) return 0;                   // bad: zero
        if (b == 14) return 24;                  // bad: not a power of two
        return 2 * page;                         // bad: above the page
    }
    pcpu::gfp decode_ctx() {
        static constexpr pcpu::gfp table[] = {
            ctx::full,  ctx::nofs, ctx::noio, ctx::atomic, ctx::nowait, ctx::full | pcpu::gfp::nowarn | pcpu::gfp::noretry,
            ctx::noio | pcpu::gfp::nofail, ctx::atomic | pcpu::gfp::nowarn,
        };
        return table[in_.byte() % 8u];
    }
    pcpu::gfp decode_scope() {
        static constexpr pcpu::gfp table[] = {ctx::full, ctx::full, ctx::full, ctx::full,
                                              ctx::nofs, ctx::noio, ctx::atomic, ctx::noio};
        return table[in_.byte() % 8u];
    }

    std::string step() {
        const std::uint8_t op = in_.byte();
        switch (op % 12u) {
        case 0:
        case 1:
        case 2: return do_alloc(false);
        case 3: return do_alloc(true);
        case 4:
        case 5: return do_free();
        case 6: return do_bad_free();
        case 7: return do_free_many();
        case 8: return do_write_read();
        case 9: return do_balance();
        case 10: return do_fault();
        default:
            what_ = "clear faults";
            r_.sim().clear_faults();
            return "";
        }
    }

    std::string do_alloc(bool reserved) {
        const std::size_t size = decode_size();
        const std::size_t align = decode_align();
        const pcpu::gfp c = decode_ctx();
        const pcpu::gfp scope = decode_scope();
        what_ = std::string(reserved ? "alloc_reserved(" : "alloc(") + std::to_string(size) + ", " +
                std::to_string(align) + ", " + pcpu_test::describe(c) + ") in scope " + pcpu_test::describe(scope);
        return r_.alloc(size, align, c, nullptr, reserved, scope);
    }

    std::string free_one(pcpu::handle h, const char* kind) {
        what_ = std::string(kind) + " free";
        const bool live = r_.model().allocations().count(h.addr()) != 0;
        pcpu::errc got = pcpu::errc::ok;
        std::string e = r_.free(h, &got);
        if (e.empty() && got == pcpu::errc::ok && live) {
            freed_.push_back(h);
            if (freed_.size() > 16) freed_.erase(freed_.begin());
        }
        return e;
    }

    std::string do_free() {
        const std::uint8_t i = in_.byte();
        if (r_.model().live() == 0) return free_one(pcpu::handle(), "null");
        return free_one(r_.model().nth_live(i % r_.model().live()), "live");
    }

    std::string do_bad_free() {
        const std::uint8_t kind = in_.byte();
        const std::uint16_t arg = in_.u16();
        const std::size_t live = r_.model().live();
        const pcpu::handle h = live != 0 ? r_.model().nth_live(arg % live) : pcpu::handle();
        switch (kind % 6u) {
        case 0: return live != 0 ? free_one(pcpu::handle(h.addr() + 4), "interior") : "";
        case 1: return live != 0 ? free_one(pcpu::handle(h.addr() + 1 + arg % 3u), "misaligned") : "";
        case 2: return free_one(pcpu::handle(std::uintptr_t{arg} << 4 | 0x10), "stray");
        case 3: return freed_.empty() ? "" : free_one(freed_[arg % freed_.size()], "freed before");
        case 4:
            if (live == 0 || cpus_ < 2) return "";
            return free_one(pcpu::handle(h.addr() + r_.alloc().cpu_offsets()[1 + arg % (cpus_ - 1)]), "other cpu's copy");
        default: {
            // Any word of any chunk: hidden static/reserved parts, free areas, interiors.
            std::vector<pcpu::chunk_stats> chunks;
            r_.alloc().for_each_chunk([&](const pcpu::chunk_stats& s) { chunks.push_back(s); });
            const pcpu::chunk_stats& s = chunks[arg % chunks.size()];
            const std::uintptr_t off = std::uintptr_t{in_.u16()} % (s.nr_pages * page) / 4 * 4;
            return free_one(pcpu::handle(s.base + off), "chunk word");
        }
        }
    }

    std::string do_free_many() {
        const unsigned n = in_.byte() % 8u + 1;
        for (unsigned i = 0; i < n && r_.model().live() != 0; ++i) {
            const std::size_t at = i % 2 == 0 ? 0 : r_.model().live() - 1;
            std::string e = free_one(r_.model().nth_live(at), "mass");
            if (!e.empty()) return e;
        }
        return "";
    }

    std::string do_write_read() {
        const std::uint8_t i = in_.byte();
        if (r_.model().live() == 0) return "";
        const pcpu::handle h = r_.model().nth_live(i / 2u % r_.model().live());
        what_ = (i & 1) != 0 ? "write" : "read";
        return (i & 1) != 0 ? r_.write(h) : r_.read(h);
    }

    std::string do_balance() {
        static constexpr pcpu::gfp table[] = {ctx::full, ctx::nofs, ctx::noio, ctx::atomic};
        const std::uint8_t b = in_.byte();
        const pcpu::gfp c = table[b % 4u];
        if (b >= 0xf0) {
            // One in sixteen: the end of a long life's cycle, where pages must come back.
            what_ = "free all + balance(" + pcpu_test::describe(c) + ")";
            return r_.free_all_and_balance(c);
        }
        what_ = "balance(" + pcpu_test::describe(c) + ")";
        return r_.balance(c);
    }

    std::string do_fault() {
        const std::uint8_t kind = in_.byte();
        const std::size_t n = in_.byte() % 6u + 1;
        what_ = "fault";
        if (kind % 6u == 5) r_.sim().fail_call(n);
        else r_.sim().fail_nth(static_cast<pcpu_test::fault>(kind % 5u), n);
        return "";
    }

    reader& in_;
    totals& t_;
    unsigned cpus_;
    runner_t r_;
    std::vector<pcpu::handle> freed_;
    std::string what_;
};

/// run_policy<Layout>(policy, in, t, cpus, layout, preinit) - one input's body on the
/// back end byte 0 chose, over the chunk policy Layout.
template <class Layout>
std::string run_policy(unsigned policy, reader& in, totals& t, unsigned cpus, std::uint8_t layout,
                       std::uint8_t preinit) {
    switch (policy) {
    case 0: return driver<pcpu::static_only, sim, Layout>(in, t, cpus, layout).run(layout, preinit);
    case 1: return driver<pcpu::contiguous, sim, Layout>(in, t, cpus, layout).run(layout, preinit);
    default:
        if ((layout & 0x80) == 0) return driver<pcpu::lazy_mapped, sim, Layout>(in, t, cpus, layout).run(layout, preinit);
        ++t.event_inputs;
        return driver<pcpu::lazy_mapped, sim_event, Layout>(in, t, cpus, layout).run(layout, preinit);
    }
}

/// run_input(data, size, t) - one input; "" if every check passed.
inline std::string run_input(const std::uint8_t* data, std::size_t size, totals& t) {
    ++t.inputs;
    reader in(data, size);
    const std::uint8_t head = in.byte();
    const std::uint8_t layout = in.byte();
    const std::uint8_t preinit = in.byte();
    const unsigned cpus = 1 + head / 3u % 4u;
    std::string e;
    if (head / 12u % 2u != 0) {
        ++t.scan_inputs;
        e = run_policy<pcpu::scan_layout<>>(head % 3u, in, t, cpus, layout, preinit);
    } else {
        e = run_policy<pcpu::kernel_layout>(head % 3u, in, t, cpus, layout, preinit);
    }
    sim::reset_scope();
    return e;
}

} // namespace pcpu_fuzz
