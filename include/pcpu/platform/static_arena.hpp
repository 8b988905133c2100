// SPDX-License-Identifier: MIT
// pcpu/platform/static_arena.hpp - a platform for firmware: no MMU, no heap.
//
// This is what percpu-km is to a kernel without an MMU. Every byte pcpu uses comes
// from storage the application declares:
//
//   - the first chunk's units and metadata: arrays handed to allocator::init(), or
//     carved from the arena before init (memory().alloc());
//   - everything a `contiguous` allocator creates later (chunk structs, bitmaps, the
//     units of new chunks): a first-fit arena over one caller-supplied byte array,
//     with free, so that balance() and shutdown() give it all back.
//
// With `static_only` the arena may be empty: the first chunk is all there is and the
// platform needs nothing but its index lock.
//
// The running CPU is a value the application sets (set_this_cpu()). On single-core
// firmware this lets one core play several logical CPUs, each with its own copy of
// every per-CPU variable (per-task or per-priority-level statistics, a simulator). One
// value cannot serve several cores at once: an SMP port derives from this platform and
// hides this_cpu() with one that reads the core's ID register (examples/firmware/
// main_an521.cpp does, on the SSE-200's CPU_IDENTITY).
//
// Locks are types, so the application chooses what "lock" means on its system:
//   no_lock            nothing runs concurrently with pcpu (a super loop)
//   cortex_m_irq_lock  free() may run from an interrupt handler: mask IRQs (PRIMASK)
//                      around the index, which is all pcpu ever holds with IRQs off
//   hook_lock          any other primitive, plugged in at run time (an RTOS mutex for
//                      the sleeping lock, a spinlock plus IRQ mask for the index)
//   cortex_m_spinlock, cortex_m_irq_spinlock   several cores (ARMv7-M/ARMv8-M
//                      mainline): LDREX/STREX, the second with IRQs masked first - the
//                      sleeping and the index lock of an SMP build
// The index lock must be IRQ-safe if any allocator call can come from an interrupt;
// the sleeping lock is only ever taken by a sleeping (non-atomic) allocation, balance,
// verify and shutdown, so a mutex is right for it on an RTOS.
//
// The this-CPU guard (percpu.hpp: what keeps a this-CPU read-modify-write from being
// torn by an interrupt or a task switch) is a type too, inherited as is:
//   no_guard            this-CPU operations are relaxed atomic RMWs (LDREX/STREX on a
//                       Cortex-M3/M4), correct from tasks and ISRs alike
//   cortex_m_irq_guard  PRIMASK masked around each operation: plain loads and stores
//   your own            irq_save()/irq_restore(token), or preempt_disable()/
//                       preempt_enable() (an RTOS scheduler lock)
#pragma once

#include "../config.hpp"
#include "../context.hpp"

#include <new>

namespace pcpu {

/// arena - first-fit allocation over one caller-supplied byte array, with free.
///
/// There are no block headers: pcpu's platform contract hands every free the size it
/// allocated (free_meta(p, bytes), free_units(p, bytes)), so the arena needs no
/// per-allocation bookkeeping and a page-aligned unit block costs exactly its size.
/// The free list lives inside the free memory itself, sorted by address, and a free
/// merges with both neighbours, so the whole array is one free block again once
/// everything is returned.
///
/// Metadata is taken from the bottom of the array and units from the top (alloc()'s
/// `end` argument): units are large and page aligned, and placing them at the other
/// end keeps the small metadata blocks from punching alignment holes between them.
///
/// Sizes are rounded up to the granule (two pointers: room for a free-list node).
/// Not thread-safe: the static_arena platform calls it only under pcpu's sleeping lock
/// (chunk creation and destruction), or from init and shutdown, which run alone.
class arena {
public:
    enum class end : std::uint8_t { bottom, top };

    /// granule - allocation unit and minimum alignment: a free-list node fits in it.
    static constexpr std::size_t granule = 2 * sizeof(void*);

    constexpr arena() noexcept = default;
    /// arena(storage, bytes) - manage [storage, storage + bytes), trimmed to whole
    /// granules. The storage must outlive the arena and everything allocated from it.
    arena(void* storage, std::size_t bytes) noexcept { reset(storage, bytes); }
    arena(const arena&) = delete;
    arena& operator=(const arena&) = delete;

    /// reset(storage, bytes) - forget everything and manage a new array, all free.
    void reset(void* storage, std::size_t bytes) noexcept {
        const auto raw = reinterpret_cast<std::uintptr_t>(storage);
        begin_ = end_ = 0;
        head_ = nullptr;
        free_bytes_ = peak_used_ = 0;
        nr_live_ = nr_failed_ = nr_bad_free_ = 0;
        if (storage == nullptr) return;
        const std::uintptr_t b = align_up(raw, granule);
        const std::uintptr_t limit = raw + bytes;
        if (limit < raw || b >= limit || limit - b < granule) return;
        begin_ = b;
        end_ = b + (limit - b) / granule * granule;
        head_ = make_block(begin_, end_ - begin_, nullptr);
        free_bytes_ = end_ - begin_;
    }

    /// alloc(bytes, align, from) - bytes (rounded up to the granule) aligned to align,
    /// from the lowest (bottom) or highest (top) free address that fits. nullptr if
    /// bytes is 0, align is not a power of two, or no free block fits; the arena is
    /// unchanged then. Contents are unspecified.
    void* alloc(std::size_t bytes, std::size_t align, end from = end::bottom) noexcept {
        if (bytes == 0 || bytes > capacity() || align == 0 || (align & (align - 1)) != 0) return fail();
        const std::size_t n = round_up(bytes, granule);
        if (align < granule) align = granule;

        free_block** link = &head_;
        free_block** chosen = nullptr;
        std::uintptr_t start = 0;
        for (; *link != nullptr; link = &(*link)->next) {
            const std::uintptr_t b = addr(*link), e = b + (*link)->size;
            if (from == end::bottom) {
                const std::uintptr_t s = align_up(b, align);
                if (s >= b && s <= e && e - s >= n) {
                    chosen = link;
                    start = s;
                    break; // first fit
                }
            } else if (e - b >= n) {
                const std::uintptr_t s = (e - n) / align * align;
                if (s >= b) {
                    chosen = link; // keep looking: the highest block that fits wins
                    start = s;
                }
            }
        }
        if (chosen == nullptr) return fail();

        // Split the chosen block into what lies before the allocation and after it;
        // both are granule multiples because every address here is granule aligned.
        free_block* blk = *chosen;
        const std::uintptr_t b = addr(blk), e = b + blk->size;
        free_block* next = blk->next;
        if (start + n != e) next = make_block(start + n, e - (start + n), next);
        if (start != b) next = make_block(b, start - b, next);
        *chosen = next;

        free_bytes_ -= n;
        ++nr_live_;
        if (used_bytes() > peak_used_) peak_used_ = used_bytes();
        return reinterpret_cast<void*>(start);
    }

    /// free(p, bytes) - give back what alloc(bytes, ...) returned. A null p is a no-op.
    /// Returns false, changing nothing, if [p, p + bytes) is not inside the arena or
    /// overlaps memory that is already free (a double free).
    bool free(void* p, std::size_t bytes) noexcept {
        if (p == nullptr) return true;
        const auto s = reinterpret_cast<std::uintptr_t>(p);
        const std::size_t n = round_up(bytes, granule);
        if (bytes == 0 || s % granule != 0 || s < begin_ || s >= end_ || end_ - s < n) return bad_free();

        // Find the neighbours: prev ends at or before s, next starts at or after s + n.
        free_block* prev = nullptr;
        free_block** link = &head_;
        while (*link != nullptr && addr(*link) < s) {
            prev = *link;
            link = &(*link)->next;
        }
        free_block* next = *link;
        if (prev != nullptr && addr(prev) + prev->size > s) return bad_free();
        if (next != nullptr && s + n > addr(next)) return bad_free();

        // Merge with either neighbour it touches, so free space never fragments into
        // adjacent pieces and an empty arena is always exactly one block.
        std::uintptr_t b = s;
        std::size_t size = n;
        if (next != nullptr && s + n == addr(next)) {
            size += next->size;
            next = next->next;
        }
        if (prev != nullptr && addr(prev) + prev->size == b) {
            prev->size += size;
            prev->next = next;
        } else {
            *link = make_block(b, size, next);
        }
        free_bytes_ += n;
        --nr_live_;
        return true;
    }

    /// owns(p) - p lies inside the managed array.
    bool owns(const void* p) const noexcept {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        return a >= begin_ && a < end_;
    }

    std::size_t capacity() const noexcept { return end_ - begin_; }
    std::size_t free_bytes() const noexcept { return free_bytes_; }
    std::size_t used_bytes() const noexcept { return capacity() - free_bytes_; }
    /// peak_used() - high-water mark of used_bytes() (sizes rounded to the granule).
    std::size_t peak_used() const noexcept { return peak_used_; }
    /// nr_live() - allocations not yet freed.
    std::size_t nr_live() const noexcept { return nr_live_; }
    /// nr_failed() / nr_bad_free() - refused alloc() and free() calls (monotone).
    std::size_t nr_failed() const noexcept { return nr_failed_; }
    std::size_t nr_bad_free() const noexcept { return nr_bad_free_; }
    std::size_t nr_free_blocks() const noexcept {
        std::size_t k = 0;
        for (const free_block* f = head_; f != nullptr; f = f->next) ++k;
        return k;
    }
    /// largest_free() - the biggest block alloc() could return (alignment aside).
    std::size_t largest_free() const noexcept {
        std::size_t m = 0;
        for (const free_block* f = head_; f != nullptr; f = f->next)
            if (f->size > m) m = f->size;
        return m;
    }

    /// verify() - the free list is sorted, inside the array, granule aligned, fully
    /// merged (no two blocks touch), and accounts for exactly free_bytes().
    bool verify() const noexcept {
        std::size_t sum = 0;
        std::uintptr_t last_end = 0;
        for (const free_block* f = head_; f != nullptr; f = f->next) {
            const std::uintptr_t b = addr(f);
            if (b < begin_ || f->size == 0 || f->size % granule != 0 || b % granule != 0 ||
                end_ - b < f->size)
                return false;
            if (last_end != 0 && b <= last_end) return false; // unsorted, overlapping or unmerged
            last_end = b + f->size;
            sum += f->size;
        }
        return sum == free_bytes_;
    }

private:
    struct free_block {
        std::size_t size;
        free_block* next;
    };
    static_assert(sizeof(free_block) <= granule && alignof(free_block) <= granule,
                  "pcpu: a free-list node must fit in one granule");

    static constexpr std::uintptr_t align_up(std::uintptr_t v, std::size_t a) noexcept {
        return (v + (a - 1)) & ~static_cast<std::uintptr_t>(a - 1);
    }
    static constexpr std::size_t round_up(std::size_t v, std::size_t a) noexcept {
        return (v + (a - 1)) & ~(a - 1);
    }
    static std::uintptr_t addr(const free_block* f) noexcept { return reinterpret_cast<std::uintptr_t>(f); }
    static free_block* make_block(std::uintptr_t at, std::size_t size, free_block* next) noexcept {
        return new (reinterpret_cast<void*>(at)) free_block{size, next};
    }
    void* fail() noexcept {
        ++nr_failed_;
        return nullptr;
    }
    bool bad_free() noexcept {
        ++nr_bad_free_;
        return false;
    }

    std::uintptr_t begin_ = 0, end_ = 0;
    free_block* head_ = nullptr;
    std::size_t free_bytes_ = 0;
    std::size_t peak_used_ = 0;
    std::size_t nr_live_ = 0;
    std::size_t nr_failed_ = 0;
    std::size_t nr_bad_free_ = 0;
};

/// no_lock - for code where nothing runs concurrently with the allocator.
struct no_lock {
    void lock() noexcept {}
    void unlock() noexcept {}
};

/// hook_lock - a lock whose behaviour is plugged in at run time (an RTOS's mutex or
/// critical-section calls, through the platform's index_lock_object() or
/// slow_lock_object()). Unset, it does nothing.
class hook_lock {
public:
    using fn = void (*)(void* arg); // plain C functions (an RTOS API) fit
    void set(fn lock_fn, fn unlock_fn, void* arg) noexcept {
        lock_ = lock_fn;
        unlock_ = unlock_fn;
        arg_ = arg;
    }
    void lock() noexcept {
        if (lock_ != nullptr) lock_(arg_);
    }
    void unlock() noexcept {
        if (unlock_ != nullptr) unlock_(arg_);
    }

private:
    fn lock_ = nullptr;
    fn unlock_ = nullptr;
    void* arg_ = nullptr;
};

/// no_guard - no this-CPU guard: percpu.hpp falls back to relaxed atomic operations.
struct no_guard {};

#if defined(__arm__) && defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/// cortex_m_irq_guard - the this-CPU guard of single-core Cortex-M firmware: interrupts
/// masked (PRIMASK) for the length of one this-CPU operation, and restored to what they
/// were, so it nests and works with interrupts already off.
struct cortex_m_irq_guard {
    std::uint32_t irq_save() noexcept {
        std::uint32_t primask;
        __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
        return primask;
    }
    void irq_restore(std::uint32_t primask) noexcept {
        __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
    }
};

/// cortex_m_irq_lock - the index lock as an interrupt mask (see cortex_m_irq_guard).
/// pcpu never nests the index lock, so one saved word per lock suffices.
class cortex_m_irq_lock {
public:
    void lock() noexcept { saved_ = cortex_m_irq_guard().irq_save(); }
    void unlock() noexcept { cortex_m_irq_guard().irq_restore(saved_); }

private:
    std::uint32_t saved_ = 0;
};

#if defined(__ARM_FEATURE_LDREX) && (__ARM_FEATURE_LDREX & 4)
/// cortex_m_spinlock - mutual exclusion between cores (ARMv7-M, ARMv8-M mainline): a
/// word claimed with LDREX/STREX, DMB on both sides so that what one core wrote under
/// the lock is visible to the next holder. Interrupts are left as they are: the
/// sleeping lock of an SMP build (never taken from an ISR).
class cortex_m_spinlock {
public:
    void lock() noexcept {
        std::uint32_t busy, failed = 0;
        do {
            __asm__ volatile("ldrex %0, [%1]" : "=r"(busy) : "r"(&word_) : "memory");
            if (busy != 0) {
                __asm__ volatile("clrex" ::: "memory");
                continue;
            }
            __asm__ volatile("strex %0, %2, [%1]" : "=&r"(failed) : "r"(&word_), "r"(1u) : "memory");
        } while (busy != 0 || failed != 0);
        __asm__ volatile("dmb" ::: "memory");
    }
    void unlock() noexcept {
        __asm__ volatile("dmb" ::: "memory");
        word_ = 0;
    }

private:
    volatile std::uint32_t word_ = 0;
};

/// cortex_m_irq_spinlock - the index lock of an SMP build (the kernel's
/// raw_spin_lock_irqsave): interrupts masked on this core first, so an ISR that frees
/// cannot spin on a lock its own core holds, then the cross-core spinlock. The mask to
/// restore is stored only once the lock is held, so the other core never overwrites it.
class cortex_m_irq_spinlock {
public:
    void lock() noexcept {
        const std::uint32_t primask = cortex_m_irq_guard().irq_save();
        spin_.lock();
        saved_ = primask;
    }
    void unlock() noexcept {
        const std::uint32_t primask = saved_;
        spin_.unlock();
        cortex_m_irq_guard().irq_restore(primask);
    }

private:
    cortex_m_spinlock spin_;
    std::uint32_t saved_ = 0;
};
#endif
#endif

/// static_arena<MaxCpus, PageShift, IndexLock, SlowLock, Guard> - the platform. It has
/// every member `static_only` and `contiguous` need (and none of lazy_mapped's: there is
/// no MMU to map with), this_cpu() for this-CPU access, and Guard's members:
///
///     using alloc_t = pcpu::allocator<pcpu::static_arena<4, 10>, pcpu::contiguous>;
///     alignas(16) static unsigned char heap[32 * 1024];
///     alloc_t a(heap, sizeof heap);            // arguments go to the platform
///
/// Small pages (PageShift 10: 1 KiB) suit small RAM: a unit need only be a page
/// multiple, and each page costs one bitmap block of metadata.
template <std::size_t MaxCpus = 8, unsigned PageShift = PCPU_DEFAULT_PAGE_SHIFT, class IndexLock = no_lock,
          class SlowLock = no_lock, class Guard = no_guard>
class static_arena : public Guard {
public:
    using context = gfp;
    static constexpr std::size_t max_cpus = MaxCpus;
    static constexpr unsigned page_shift = PageShift;
    static constexpr std::size_t page_size = std::size_t{1} << PageShift;
    using warn_fn = void (*)(const char* msg);

    /// static_arena() - no arena: enough for static_only.
    static_arena() noexcept = default;
    /// static_arena(storage, bytes) - dynamic chunks come from [storage, storage + bytes).
    static_arena(void* storage, std::size_t bytes) noexcept : arena_(storage, bytes) {}

    // ---- the platform contract (pcpu/platform.hpp) --------------------------------
    void index_lock() noexcept { index_lock_.lock(); }
    void index_unlock() noexcept { index_lock_.unlock(); }
    void slow_lock() noexcept { slow_lock_.lock(); }
    void slow_unlock() noexcept { slow_lock_.unlock(); }

    unsigned this_cpu() const noexcept { return cpu_; }

    // The arena never sleeps and never reclaims, so it honours every context as it
    // is; a context only matters to a platform that has something to wait for.
    void* alloc_meta(std::size_t bytes, std::size_t align, context) noexcept {
        return arena_.alloc(bytes, align, arena::end::bottom);
    }
    void free_meta(void* p, std::size_t bytes) noexcept { released(arena_.free(p, bytes)); }
    void* alloc_units(std::size_t bytes, context) noexcept {
        return arena_.alloc(bytes, page_size, arena::end::top);
    }
    void free_units(void* p, std::size_t bytes) noexcept { released(arena_.free(p, bytes)); }

    /// request_balance() - may be called from free() in an interrupt (never with the
    /// index lock held): it only raises a flag for the main loop to see.
    void request_balance() noexcept { balance_requested_ = true; }
    void warn(const char* msg) noexcept {
        if (warn_ != nullptr) warn_(msg);
    }

    // ---- for the application -------------------------------------------------------
    /// set_this_cpu(cpu) - the logical CPU whose copies this_cpu() names from now on.
    void set_this_cpu(unsigned cpu) noexcept { cpu_ = cpu; }
    /// take_balance_request() - true once per request_balance(): call
    /// allocator::balance() then, from the idle loop or a low-priority task.
    bool take_balance_request() noexcept {
        index_lock_.lock();
        const bool r = balance_requested_;
        balance_requested_ = false;
        index_lock_.unlock();
        return r;
    }
    void set_warn(warn_fn f) noexcept { warn_ = f; }
    /// memory() - the arena. Touch it only while the allocator is not initialised or
    /// under the sleeping lock: pcpu uses it under that lock.
    arena& memory() noexcept { return arena_; }
    const arena& memory() const noexcept { return arena_; }
    IndexLock& index_lock_object() noexcept { return index_lock_; }
    SlowLock& slow_lock_object() noexcept { return slow_lock_; }

private:
    // pcpu frees only what it allocated from here: a refused free is a bug in pcpu,
    // not bad input, and the arena has already counted it (nr_bad_free()).
    static void released(bool ok) noexcept {
        PCPU_ASSERT(ok);
        (void)ok;
    }

    arena arena_;
    IndexLock index_lock_;
    SlowLock slow_lock_;
    unsigned cpu_ = 0;
    bool balance_requested_ = false;
    warn_fn warn_ = nullptr;
};

} // namespace pcpu
