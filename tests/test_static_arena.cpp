// SPDX-License-Identifier: MIT
// tests/test_static_arena.cpp - the firmware platform: the arena against a model, and
// allocators over it with both policies it supports, run into exhaustion and torn down.
#include <pcpu/allocator.hpp>
#include <pcpu/percpu.hpp>
#include <pcpu/platform/static_arena.hpp>

#include "support/static_platform.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using pcpu::arena;
using pcpu::errc;
namespace ctx = pcpu::ctx;

constexpr unsigned nr_cpus = 4;
constexpr std::size_t unit_size = 4096; // four 1 KiB pages

/// counting_lock - a hook_lock target that tracks depth, so tests can tell whether a
/// callback ran with the index lock held.
struct lock_state {
    int depth = 0;
    int max_depth = 0;
    std::size_t nr = 0;
};
void lock_fn(void* arg) {
    auto* s = static_cast<lock_state*>(arg);
    ++s->nr;
    if (++s->depth > s->max_depth) s->max_depth = s->depth;
}
void unlock_fn(void* arg) { --static_cast<lock_state*>(arg)->depth; }

/// checked_arena - the platform with its memory callbacks watched: none may run with
/// the index lock held (they would run with interrupts off on a real board).
struct checked_arena : pcpu::static_arena<8, 10, pcpu::hook_lock, pcpu::hook_lock> {
    using base = pcpu::static_arena<8, 10, pcpu::hook_lock, pcpu::hook_lock>;
    lock_state index, slow;
    std::size_t callbacks_under_index_lock = 0;
    std::size_t callbacks_without_slow_lock = 0;
    std::size_t meta_calls = 0, units_calls = 0;

    checked_arena(void* storage, std::size_t bytes) noexcept : base(storage, bytes) {
        index_lock_object().set(lock_fn, unlock_fn, &index);
        slow_lock_object().set(lock_fn, unlock_fn, &slow);
    }
    void watch() noexcept {
        if (index.depth != 0) ++callbacks_under_index_lock;
    }
    // The arena is not thread-safe: outside init and shutdown pcpu must only touch it
    // under the sleeping lock. init/shutdown are the only callers allowed without it.
    bool in_init_or_shutdown = false;
    void watch_slow() noexcept {
        if (slow.depth == 0 && !in_init_or_shutdown) ++callbacks_without_slow_lock;
    }
    void* alloc_meta(std::size_t bytes, std::size_t align, pcpu::gfp c) noexcept {
        watch();
        watch_slow();
        ++meta_calls;
        return base::alloc_meta(bytes, align, c);
    }
    void free_meta(void* p, std::size_t bytes) noexcept {
        watch();
        watch_slow();
        base::free_meta(p, bytes);
    }
    void* alloc_units(std::size_t bytes, pcpu::gfp c) noexcept {
        watch();
        watch_slow();
        ++units_calls;
        return base::alloc_units(bytes, c);
    }
    void free_units(void* p, std::size_t bytes) noexcept {
        watch();
        watch_slow();
        base::free_units(p, bytes);
    }
};

/// arena_snapshot - what "left intact" means for the arena.
struct arena_snapshot {
    std::size_t free_bytes, nr_live, nr_free_blocks, largest;
    explicit arena_snapshot(const arena& a)
        : free_bytes(a.free_bytes()), nr_live(a.nr_live()), nr_free_blocks(a.nr_free_blocks()),
          largest(a.largest_free()) {}
    bool operator==(const arena_snapshot& o) const {
        return free_bytes == o.free_bytes && nr_live == o.nr_live && nr_free_blocks == o.nr_free_blocks &&
               largest == o.largest;
    }
};

/// fill(a, h, size, tag) / intact(...) - a pattern per CPU, so a clobbered copy, or
/// two CPUs sharing one, shows.
template <class A>
void fill(A& a, pcpu::handle h, std::size_t size, unsigned tag) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu)
        std::memset(a.ptr(h, cpu), static_cast<int>((tag * 7 + cpu) & 0xFF), size);
}
template <class A>
bool intact(const A& a, pcpu::handle h, std::size_t size, unsigned tag) {
    for (unsigned cpu = 0; cpu < a.nr_cpus(); ++cpu) {
        const auto* p = static_cast<const unsigned char*>(a.ptr(h, cpu));
        for (std::size_t i = 0; i < size; ++i)
            if (p[i] != static_cast<unsigned char>((tag * 7 + cpu) & 0xFF)) return false;
    }
    return true;
}

struct live_alloc {
    pcpu::handle h;
    std::size_t size;
    unsigned tag;
};

} // namespace

TEST_SUITE("static_arena") {

TEST_CASE("arena: random alloc and free against a model; whole again when empty") {
    std::vector<unsigned char> storage(64 * 1024 + 3);
    // Deliberately misaligned start: the arena must align it itself.
    arena ar(storage.data() + 3, storage.size() - 3);
    REQUIRE(ar.verify());
    const std::size_t cap = ar.capacity();
    CHECK(cap % arena::granule == 0);
    CHECK(cap > 64 * 1024 - 2 * arena::granule);
    CHECK(ar.free_bytes() == cap);

    const unsigned seed = 0x5eed0004u;
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    struct rec {
        std::size_t bytes;
        unsigned char tag;
    };
    std::map<std::uintptr_t, rec> model; // live allocations by address
    std::size_t model_used = 0;
    const std::size_t aligns[] = {1, 4, 8, 16, 64, 256, 1024};
    std::size_t nr_failed_seen = 0;
    auto rounded = [](std::size_t b) { return (b + arena::granule - 1) / arena::granule * arena::granule; };

    for (int step = 0; step < 4000; ++step) {
        const bool do_alloc = model.empty() || rng() % 100 < 55;
        if (do_alloc) {
            const std::size_t bytes = 1 + rng() % 3000;
            const std::size_t align = aligns[rng() % 7];
            const auto from = rng() % 2 ? arena::end::top : arena::end::bottom;
            const arena_snapshot before(ar);
            void* p = ar.alloc(bytes, align, from);
            if (p == nullptr) {
                // Refusal changes nothing. (It may be fragmentation rather than a
                // shortage of bytes, so only intactness is checked here.)
                CHECK(arena_snapshot(ar) == before);
                ++nr_failed_seen;
            } else {
                const auto a = reinterpret_cast<std::uintptr_t>(p);
                REQUIRE(ar.owns(p));
                CHECK(a % align == 0);
                CHECK(a % arena::granule == 0);
                REQUIRE(ar.owns(reinterpret_cast<void*>(a + bytes - 1)));
                // No overlap with the neighbours in address order.
                auto next = model.lower_bound(a);
                if (next != model.end()) REQUIRE(a + rounded(bytes) <= next->first);
                if (next != model.begin()) {
                    auto prev = std::prev(next);
                    REQUIRE(prev->first + rounded(prev->second.bytes) <= a);
                }
                const auto tag = static_cast<unsigned char>(rng());
                std::memset(p, tag, bytes);
                model[a] = rec{bytes, tag};
                model_used += rounded(bytes);
            }
        } else {
            auto it = model.begin();
            std::advance(it, static_cast<long>(rng() % model.size()));
            // The free list lives in free memory: it must never have written into a
            // live allocation.
            const auto* p = reinterpret_cast<const unsigned char*>(it->first);
            bool untouched = true;
            for (std::size_t i = 0; i < it->second.bytes; ++i) untouched &= p[i] == it->second.tag;
            REQUIRE(untouched);
            REQUIRE(ar.free(reinterpret_cast<void*>(it->first), it->second.bytes));
            model_used -= rounded(it->second.bytes);
            model.erase(it);
        }
        REQUIRE(ar.verify());
        REQUIRE(ar.used_bytes() == model_used);
        REQUIRE(ar.nr_live() == model.size());
        REQUIRE(ar.peak_used() >= ar.used_bytes());
    }
    CHECK(ar.nr_failed() == nr_failed_seen);
    for (auto& m : model) REQUIRE(ar.free(reinterpret_cast<void*>(m.first), m.second.bytes));
    REQUIRE(ar.verify());
    CHECK(ar.free_bytes() == cap);
    CHECK(ar.nr_free_blocks() == 1);
    CHECK(ar.largest_free() == cap);
    CHECK(ar.nr_live() == 0);
}

TEST_CASE("arena: bottom is first fit, top is the highest fit; refusals change nothing") {
    alignas(64) unsigned char storage[4096];
    arena ar(storage, sizeof storage);
    REQUIRE(ar.capacity() == sizeof storage);
    const auto base = reinterpret_cast<std::uintptr_t>(storage);

    void* lo = ar.alloc(100, 8);
    REQUIRE(lo != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(lo) == base);
    void* hi = ar.alloc(1024, 1024, arena::end::top);
    REQUIRE(hi != nullptr);
    // The highest 1 KiB-aligned 1 KiB block in a 4 KiB array that starts 64-aligned.
    const std::uintptr_t want_hi = (base + sizeof storage - 1024) / 1024 * 1024;
    CHECK(reinterpret_cast<std::uintptr_t>(hi) == want_hi);
    CHECK(ar.verify());

    const arena_snapshot before(ar);
    CHECK(ar.alloc(0, 8) == nullptr);                   // zero bytes
    CHECK(ar.alloc(16, 3) == nullptr);                  // alignment not a power of two
    CHECK(ar.alloc(sizeof storage + 1, 8) == nullptr);  // larger than the arena
    CHECK(ar.alloc(before.largest + 1, 8) == nullptr);  // larger than any free block
    CHECK(arena_snapshot(ar) == before);
    CHECK(ar.nr_failed() == 4);

    // Bad frees: outside, misaligned, double.
    unsigned char outside[32];
    CHECK_FALSE(ar.free(outside, 16));
    CHECK_FALSE(ar.free(static_cast<unsigned char*>(lo) + 4, 16));
    REQUIRE(ar.free(lo, 100));
    const arena_snapshot after_free(ar);
    CHECK_FALSE(ar.free(lo, 100));              // double free
    CHECK_FALSE(ar.free(lo, 16));               // inside a free block
    CHECK(arena_snapshot(ar) == after_free);
    CHECK(ar.nr_bad_free() == 4);
    CHECK(ar.verify());

    REQUIRE(ar.free(hi, 1024));
    CHECK(ar.verify());
    CHECK(ar.nr_free_blocks() == 1);
    CHECK(ar.free_bytes() == sizeof storage);
}

TEST_CASE("arena: an exact fit is a fit, from the bottom and from the top") {
    alignas(64) unsigned char storage[4096];
    arena ar(storage, sizeof storage);
    const auto base = reinterpret_cast<std::uintptr_t>(storage);
    // The whole arena in one allocation, from either end.
    for (arena::end from : {arena::end::bottom, arena::end::top}) {
        void* all = ar.alloc(sizeof storage, 64, from);
        REQUIRE(all != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(all) == base);
        CHECK(ar.free_bytes() == 0);
        REQUIRE(ar.free(all, sizeof storage));
        CHECK(ar.verify());
    }
    // A hole of exactly 256 bytes at the bottom, more room above it: first fit takes
    // the hole, not the larger block after it.
    void* a = ar.alloc(256, 64);
    void* b = ar.alloc(64, 64);
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    REQUIRE(ar.free(a, 256));
    void* again = ar.alloc(256, 64);
    CHECK(again == a);
    CHECK(ar.free_bytes() == sizeof storage - 256 - 64);
    CHECK(ar.verify());
}

TEST_CASE("arena: an empty or too small array manages nothing and refuses everything") {
    arena none;
    CHECK(none.capacity() == 0);
    CHECK(none.alloc(8, 8) == nullptr);
    CHECK(none.verify());
    unsigned char tiny[arena::granule - 1];
    arena small(tiny, sizeof tiny);
    CHECK(small.capacity() == 0);
    CHECK(small.alloc(1, 1) == nullptr);
    CHECK(small.verify());
}

TEST_CASE("static_only over the arena: carved first chunk, exhaustion is no_space, teardown returns it all") {
    using platform = pcpu::static_arena<8, 10>;
    using alloc_t = pcpu::allocator<platform, pcpu::static_only>;
    std::vector<unsigned char> storage(64 * 1024);
    alloc_t a(storage.data(), storage.size());
    arena& ar = a.platform().memory();
    const std::size_t cap = ar.capacity();

    // The whole per-CPU region is one declared array: units and metadata carved from it.
    constexpr std::size_t static_size = 64;
    const std::size_t meta_bytes = alloc_t::first_chunk_meta_bytes(unit_size, static_size, 0);
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.unit_size = unit_size;
    cfg.static_size = static_size;
    cfg.units = ar.alloc(nr_cpus * unit_size, alloc_t::page_size, arena::end::top);
    cfg.meta = ar.alloc(meta_bytes, alloc_t::meta_align);
    cfg.meta_size = meta_bytes;
    REQUIRE(cfg.units != nullptr);
    REQUIRE(cfg.meta != nullptr);
    REQUIRE(a.init(cfg) == errc::ok);
    REQUIRE_VERIFIED(a);
    const arena_snapshot carved(ar);

    // Fill the dynamic area with 256-byte allocations until it refuses.
    std::vector<live_alloc> live;
    errc last = errc::ok;
    for (unsigned tag = 1; tag < 100; ++tag) {
        auto r = a.alloc(256, 8, ctx::full);
        REQUIRE_VERIFIED(a);
        if (!r) {
            last = r.error();
            break;
        }
        fill(a, r.value(), 256, tag);
        live.push_back({r.value(), 256, tag});
    }
    CHECK(last == errc::no_space);
    // (unit - static) / 256 rounded down: the static area takes the first 64 bytes.
    CHECK(live.size() == (unit_size - static_size) / 256);

    // Out of room for 256 bytes: a request of that size fails with a value, on either
    // path, and changes nothing.
    const auto st = a.stats();
    auto again = a.alloc(256, 8, ctx::full);
    REQUIRE_VERIFIED(a);
    CHECK(again.error() == errc::no_space);
    auto atomic = a.alloc(256, 8, ctx::atomic);
    REQUIRE_VERIFIED(a);
    // static_only never creates chunks, so even an atomic request is plainly out of space.
    CHECK(atomic.error() == errc::no_space);
    CHECK(a.stats().nr_cur_alloc == st.nr_cur_alloc);
    CHECK(a.stats().live_bytes == st.live_bytes);
    CHECK(a.stats().nr_failed == st.nr_failed + 2);
    // The tail that is left is exactly what the arithmetic says, and then nothing is.
    const std::size_t tail = unit_size - static_size - live.size() * 256;
    auto rest = a.alloc(tail, 4, ctx::full);
    REQUIRE_VERIFIED(a);
    REQUIRE(rest.ok());
    fill(a, rest.value(), tail, 99);
    live.push_back({rest.value(), tail, 99});
    auto none = a.alloc(4, 4, ctx::full);
    REQUIRE_VERIFIED(a);
    CHECK(none.error() == errc::no_space);
    CHECK(a.stats().live_bytes == unit_size - static_size);
    CHECK(arena_snapshot(ar) == carved); // static_only never touches the arena
    for (const auto& l : live) REQUIRE(intact(a, l.h, l.size, l.tag));

    // Per-CPU access through the settable current CPU.
    for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
        a.platform().set_this_cpu(cpu);
        CHECK(a.platform().this_cpu() == cpu);
        const auto* p = static_cast<const unsigned char*>(a.ptr(live[0].h, a.platform().this_cpu()));
        CHECK(*p == static_cast<unsigned char>((live[0].tag * 7 + cpu) & 0xFF));
    }

    for (const auto& l : live) {
        REQUIRE(a.free(l.h) == errc::ok);
        REQUIRE_VERIFIED(a);
    }
    CHECK(a.stats().nr_cur_alloc == 0);
    a.shutdown();
    CHECK_FALSE(a.initialized());
    // pcpu never frees what the caller handed to init(): the caller gives it back.
    CHECK(arena_snapshot(ar) == carved);
    REQUIRE(ar.free(cfg.meta, meta_bytes));
    REQUIRE(ar.free(cfg.units, nr_cpus * unit_size));
    CHECK(ar.verify());
    CHECK(ar.free_bytes() == cap);
    CHECK(ar.nr_free_blocks() == 1);
}

TEST_CASE("contiguous over the arena: chunks from the arena, exhaustion is out_of_memory, nothing leaks") {
    using alloc_t = pcpu::allocator<checked_arena, pcpu::contiguous>;
    // Room for the first chunk's metadata and exactly two dynamic chunks (the metadata
    // is a few hundred bytes; a chunk's units are nr_cpus * unit_size = 16 KiB).
    std::vector<unsigned char> storage(2 * nr_cpus * unit_size + 4096);
    alloc_t a(storage.data(), storage.size());
    checked_arena& plat = a.platform();
    arena& ar = plat.memory();
    const std::size_t cap = ar.capacity();

    std::vector<unsigned char> first_units(nr_cpus * unit_size + alloc_t::page_size);
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.unit_size = unit_size;
    cfg.units = pcpu_test::static_setup<alloc_t>::align_up(first_units.data(), alloc_t::page_size);
    cfg.meta = nullptr; // from the arena, with the full context, freed by shutdown()
    plat.in_init_or_shutdown = true;
    REQUIRE(a.init(cfg) == errc::ok);
    plat.in_init_or_shutdown = false;
    REQUIRE_VERIFIED(a);
    CHECK(plat.meta_calls == 1);
    CHECK(ar.nr_live() == 1);

    // Whole-unit allocations: the first chunk takes one, then each needs a new chunk.
    std::vector<live_alloc> live;
    errc last = errc::ok;
    unsigned tag = 1;
    for (; tag < 10; ++tag) {
        const arena_snapshot before(ar);
        auto r = a.alloc(unit_size, 8, ctx::full);
        REQUIRE_VERIFIED(a);
        if (!r) {
            last = r.error();
            // The failed creation gave back whatever it had taken (the chunk struct
            // and bitmaps were allocated before the units were refused).
            CHECK(arena_snapshot(ar) == before);
            break;
        }
        fill(a, r.value(), unit_size, tag);
        live.push_back({r.value(), unit_size, tag});
    }
    CHECK(last == errc::out_of_memory);
    CHECK(live.size() == 3); // the first chunk and the two chunks the arena holds
    CHECK(plat.units_calls == 3); // two chunks, and the refused third
    CHECK(a.stats().nr_chunks == 3);
    CHECK(ar.largest_free() < nr_cpus * unit_size);
    for (const auto& l : live) REQUIRE(intact(a, l.h, l.size, l.tag));

    // Atomic requests never create chunks: they fail with would_block, ask for
    // balance, and balance in turn runs out of arena.
    const arena_snapshot full(ar);
    (void)plat.take_balance_request();
    auto at = a.alloc(16, 8, ctx::atomic);
    REQUIRE_VERIFIED(a);
    CHECK(at.error() == errc::would_block);
    CHECK(plat.take_balance_request());
    CHECK_FALSE(plat.take_balance_request()); // taken once
    CHECK(a.balance() == errc::out_of_memory);
    REQUIRE_VERIFIED(a);
    CHECK(arena_snapshot(ar) == full);
    for (const auto& l : live) REQUIRE(intact(a, l.h, l.size, l.tag));

    // Free one chunk's allocation: a small request then fits there, no new chunk.
    REQUIRE(a.free(live.back().h) == errc::ok);
    REQUIRE_VERIFIED(a);
    live.pop_back();
    const std::size_t units_calls = plat.units_calls;
    auto small = a.alloc(64, 64, ctx::noio);
    REQUIRE_VERIFIED(a);
    REQUIRE(small.ok());
    CHECK(plat.units_calls == units_calls);
    fill(a, small.value(), 64, 42);
    live.push_back({small.value(), 64, 42});

    for (const auto& l : live) {
        REQUIRE(intact(a, l.h, l.size, l.tag));
        REQUIRE(a.free(l.h) == errc::ok);
        REQUIRE_VERIFIED(a);
    }
    // Balance destroys surplus free chunks but keeps one spare.
    REQUIRE(a.balance() == errc::ok);
    REQUIRE_VERIFIED(a);
    CHECK(a.stats().nr_chunks == 2);

    CHECK(plat.callbacks_under_index_lock == 0);
    CHECK(plat.callbacks_without_slow_lock == 0);
    CHECK(plat.index.depth == 0);
    CHECK(plat.index.max_depth == 1); // never nested
    CHECK(plat.slow.depth == 0);
    CHECK(plat.slow.nr > 0);

    // Teardown returns the whole arena: chunk structs, bitmaps, units, and the first
    // chunk's metadata pcpu took at init.
    plat.in_init_or_shutdown = true;
    a.shutdown();
    CHECK(ar.verify());
    CHECK(ar.nr_live() == 0);
    CHECK(ar.free_bytes() == cap);
    CHECK(ar.nr_free_blocks() == 1);
    CHECK(ar.nr_bad_free() == 0);
}

TEST_CASE("contiguous: an arena too small for the first chunk's metadata fails init cleanly") {
    using alloc_t = pcpu::allocator<pcpu::static_arena<8, 10>, pcpu::contiguous>;
    unsigned char tiny[64];
    alloc_t a(tiny, sizeof tiny);
    std::vector<unsigned char> first_units(nr_cpus * unit_size + alloc_t::page_size);
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.unit_size = unit_size;
    cfg.units = pcpu_test::static_setup<alloc_t>::align_up(first_units.data(), alloc_t::page_size);
    REQUIRE(alloc_t::first_chunk_meta_bytes(unit_size, 0, 0) > sizeof tiny);
    CHECK(a.init(cfg) == errc::out_of_memory);
    CHECK_FALSE(a.initialized());
    CHECK(a.platform().memory().nr_live() == 0);
    CHECK(a.platform().memory().nr_failed() == 1);
    CHECK(a.alloc(4, 4, ctx::full).error() == errc::not_initialized);
}

TEST_CASE("contiguous: warnings reach the hook; the arena honours every context") {
    using alloc_t = pcpu::allocator<pcpu::static_arena<8, 10>, pcpu::contiguous>;
    static std::vector<std::string> seen;
    seen.clear();
    std::vector<unsigned char> storage(1024); // metadata only: no chunk ever fits
    alloc_t a(storage.data(), storage.size());
    a.platform().set_warn([](const char* m) { seen.emplace_back(m); });
    std::vector<unsigned char> first_units(nr_cpus * unit_size + alloc_t::page_size);
    pcpu::first_chunk_config cfg;
    cfg.nr_cpus = nr_cpus;
    cfg.unit_size = unit_size;
    cfg.units = pcpu_test::static_setup<alloc_t>::align_up(first_units.data(), alloc_t::page_size);
    REQUIRE(a.init(cfg) == errc::ok);
    REQUIRE_VERIFIED(a);
    auto big = a.alloc(unit_size, 4, ctx::full);
    REQUIRE_VERIFIED(a);
    REQUIRE(big.ok());
    auto more = a.alloc(4, 4, ctx::noio);
    REQUIRE_VERIFIED(a);
    CHECK(more.error() == errc::out_of_memory);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].find("out of memory") != std::string::npos);
    auto quiet = a.alloc(4, 4, ctx::noio | pcpu::gfp::nowarn);
    REQUIRE_VERIFIED(a);
    CHECK(quiet.error() == errc::out_of_memory);
    CHECK(seen.size() == 1);
    REQUIRE(a.free(big.value()) == errc::ok);
    REQUIRE_VERIFIED(a);
    a.shutdown();
    CHECK(a.platform().memory().free_bytes() == a.platform().memory().capacity());
}

TEST_CASE("this-CPU operations follow set_this_cpu(), through the platform's guard or atomics") {
    // A guard that counts: percpu.hpp must take it around every this-CPU operation,
    // and it must come through static_arena's Guard base.
    struct counting_guard {
        int depth = 0;
        int saves = 0;
        unsigned irq_save() noexcept {
            ++saves;
            return static_cast<unsigned>(depth++);
        }
        void irq_restore(unsigned t) noexcept { depth = static_cast<int>(t); }
    };
    using guarded = pcpu::static_arena<8, 10, pcpu::no_lock, pcpu::no_lock, counting_guard>;
    using bare = pcpu::static_arena<8, 10>;
    static_assert(pcpu::this_cpu_guard<guarded>::irq, "the Guard base provides irq_save/irq_restore");
    static_assert(!pcpu::this_cpu_guard<bare>::pins, "no_guard: relaxed atomics");

    auto run = [](auto& a, std::vector<unsigned char>& units, std::vector<unsigned char>& meta) {
        using A = std::remove_reference_t<decltype(a)>;
        pcpu::first_chunk_config cfg;
        cfg.nr_cpus = nr_cpus;
        cfg.unit_size = unit_size;
        cfg.units = pcpu_test::static_setup<A>::align_up(units.data(), A::page_size);
        cfg.meta = pcpu_test::static_setup<A>::align_up(meta.data(), A::meta_align);
        cfg.meta_size = A::first_chunk_meta_bytes(unit_size, 0, 0);
        REQUIRE(a.init(cfg) == errc::ok);
        REQUIRE_VERIFIED(a);
        auto r = pcpu::alloc_percpu<std::uint32_t>(a, ctx::full, 7u);
        REQUIRE_VERIFIED(a);
        REQUIRE(r.ok());
        const pcpu::percpu<std::uint32_t> h = r.value();
        // CPU c runs c + 1 increments; the copies must say exactly that.
        for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) {
            a.platform().set_this_cpu(cpu);
            for (unsigned i = 0; i <= cpu; ++i) pcpu::this_cpu_inc(a, h);
            CHECK(pcpu::this_cpu_read(a, h) == 7u + cpu + 1);
        }
        for (unsigned cpu = 0; cpu < nr_cpus; ++cpu) CHECK(pcpu::per_cpu(h, cpu) == 7u + cpu + 1);
        CHECK(pcpu::sum(h) == std::uint64_t{4 * 7 + 1 + 2 + 3 + 4});
        REQUIRE(pcpu::free_percpu(a, h) == errc::ok);
        REQUIRE_VERIFIED(a);
    };
    std::vector<unsigned char> units(nr_cpus * unit_size + 1024), meta(1024);
    {
        pcpu::allocator<guarded, pcpu::static_only> a;
        run(a, units, meta);
        // One save per increment (1 + 2 + 3 + 4) and per this-CPU read, all restored.
        CHECK(a.platform().saves == (1 + 2 + 3 + 4) + static_cast<int>(nr_cpus));
        CHECK(a.platform().depth == 0);
    }
    {
        pcpu::allocator<bare, pcpu::static_only> a;
        run(a, units, meta);
    }
}

} // TEST_SUITE
