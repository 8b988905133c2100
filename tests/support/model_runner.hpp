// SPDX-License-Identifier: MIT
// tests/support/model_runner.hpp - an allocator over the instrumented sim platform,
// under the context checker, paired with the reference model (alloc_model.hpp), with
// one method per allocator operation that runs it and then checks everything the
// contract promises.
//
// Checked after every operation (state()):
//   - verify();
//   - the context checker saw no violation: no callback received a context wider than
//     the operation's, map ran under the caller's scope, nothing blocking ran in an
//     atomic operation or under the index lock, locks and scope were left as found;
//   - the sim platform saw no misuse (double frees, mapping over mappings, ...);
//   - the model: statistics per chunk and global, and the contents of every live
//     allocation on every CPU.
// Checked around the operation itself:
//   - an atomic allocation, an atomic balance and every free reach no blocking callback
//     (counted around the call alone: verify() takes the sleeping lock);
//   - errors are the ones the contract allows: the bad-input error for bad input;
//     out_of_memory exactly when a platform failure was injected during the call (and
//     a call with an injected failure never succeeds); would_block only for a
//     non-blocking context; no_space only where nothing can be created (static_only,
//     the reserved area), and for alignments up to 4 bytes, where the hint search is
//     exact, only when the model finds no fitting free run either.
// free_all_and_balance() frees everything and balances: memory must come back (at most
// one spare dynamic chunk, at most the reserve's high mark of its pages populated where
// pages can be unmapped). finish() shuts the allocator down and requires the platform
// to hold nothing.
//
// Every method returns "" or what went wrong, so the libFuzzer driver and the doctest
// suites share these rules (CHECK_RUN below for doctest).
#pragma once

#include "alloc_model.hpp"
#include "sim_platform.hpp"

#include <pcpu/allocator.hpp>
#include <pcpu/debug/context_checker.hpp>
#include <pcpu/scope.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pcpu_test {

template <class Policy, class Sim = sim_platform<12, 8>, class Layout = pcpu::kernel_layout>
class model_runner {
public:
    using sim_type = Sim;
    using checked = pcpu::debug::context_checker<Sim>;
    using alloc_t = pcpu::allocator<checked, Policy, Layout>;
    /// exact_fit - the chunk policy finds every aligned fit (scan_layout), so a failure
    /// at any alignment means the model has no fitting run either.
    static constexpr bool exact_fit = is_scan_chunk<typename alloc_t::chunk_type>::value;
    using model_t = alloc_model<alloc_t>;
    using cb = pcpu::debug::callback;
    static constexpr std::size_t page = alloc_t::page_size;

    /// model_runner(cpus, unit, static, reserved, platform args...) - storage for the
    /// first chunk (metadata included unless own_meta() is called before init()).
    template <class... Args>
    model_runner(unsigned cpus, std::size_t unit_size, std::size_t static_size, std::size_t reserved_size,
                 Args&&... platform_args)
        : a_(std::forward<Args>(platform_args)...), model_(a_) {
        a_.platform().set_violation_handler(&checked::record_only);
        sim().set_recording(false);
        units_.assign(cpus * unit_size + page, 0xA5);
        cfg_.nr_cpus = cpus;
        cfg_.units = align_up(units_.data(), page);
        cfg_.unit_size = unit_size;
        cfg_.static_size = static_size;
        cfg_.reserved_size = reserved_size;
        const std::size_t bytes = alloc_t::first_chunk_meta_bytes(unit_size, static_size, reserved_size);
        meta_.assign(bytes + alloc_t::meta_align, 0x5A);
        cfg_.meta = align_up(meta_.data(), alloc_t::meta_align);
        cfg_.meta_size = bytes;
    }

    alloc_t& alloc() noexcept { return a_; }
    Sim& sim() noexcept { return a_.platform().inner(); }
    checked& checker() noexcept { return a_.platform(); }
    model_t& model() noexcept { return model_; }
    pcpu::first_chunk_config& config() noexcept { return cfg_; }
    std::size_t unit() const noexcept { return cfg_.unit_size; }
    /// own_meta() - the first chunk's metadata comes from the platform's alloc_meta.
    void own_meta() noexcept {
        cfg_.meta = nullptr;
        cfg_.meta_size = 0;
    }

    /// init(want) - init() must return want; then the state is checked.
    std::string init(pcpu::errc want = pcpu::errc::ok) {
        const bool was = a_.initialized();
        const pcpu::errc got = a_.init(cfg_);
        if (got != want) return "init returned " + name(got) + ", expected " + name(want);
        if (!was && got != pcpu::errc::ok && (a_.initialized() || sim().leaks()))
            return "a failed init left state behind: " + sim().describe_leaks();
        return state();
    }

    /// state() - the checks that follow every operation (see the file comment).
    std::string state() {
        const pcpu::verify_report r = a_.verify();
        if (!r.ok) {
            char buf[200];
            return std::string("verify: ") + r.describe(buf, sizeof buf);
        }
        if (checker().violations() != 0) return std::string("context checker: ") + checker().last_violation();
        if (sim().bugs() != 0) return "sim platform: " + sim().describe_bugs();
        if (!a_.initialized()) return "";
        std::string e = model_.sync();
        if (e.empty()) e = model_.check_all();
        return e;
    }

    /// alloc(size, align, ctx, out, reserved, scope) - one allocation, made inside an
    /// implicit scope (full: none); out receives the handle (null on failure) and
    /// err, if given, the error.
    std::string alloc(std::size_t size, std::size_t align, pcpu::gfp ctx, pcpu::handle* out = nullptr,
                      bool reserved = false, pcpu::gfp scope = pcpu::ctx::full, pcpu::errc* err_out = nullptr) {
        if (out != nullptr) *out = pcpu::handle();
        const std::size_t injected = sim().injected_failures();
        std::size_t blocking = 0;
        pcpu::gfp eff;
        pcpu::result<pcpu::handle> r = pcpu::errc::zero_size;
        {
            pcpu::scope_guard<Sim> g(sim(), scope);
            eff = pcpu::narrow(ctx, sim().current_scope());
            blocking = blocking_calls();
            r = reserved ? a_.alloc_reserved(size, align, ctx) : a_.alloc(size, align, ctx);
        }
        ++allocs_;
        if (err_out != nullptr) *err_out = r.ok() ? pcpu::errc::ok : r.error();
        const bool atomic = !pcpu::context_traits<pcpu::gfp>::may_block(eff);
        if (atomic && blocking_calls() != blocking) return "an atomic allocation reached a blocking callback";
        const bool injected_now = sim().injected_failures() != injected;
        if (r.ok()) {
            if (injected_now) return "a platform failure was injected, yet the allocation succeeded";
            if (out != nullptr) *out = r.value();
            std::string e = model_.added(r.value(), size, align, reserved);
            return e.empty() ? state() : e;
        }
        ++alloc_errors_;
        const pcpu::errc err = r.error();
        if (!a_.initialized()) {
            if (err != pcpu::errc::not_initialized) return "before init: " + name(err);
            return state();
        }
        pcpu::errc want = pcpu::errc::ok;
        if (size == 0) want = pcpu::errc::zero_size;
        else if (size > cfg_.unit_size) want = pcpu::errc::size_too_large;
        else if (align == 0 || (align & (align - 1)) != 0 || align > page) want = pcpu::errc::bad_alignment;
        if (want != pcpu::errc::ok) {
            if (err != want) return "bad input returned " + name(err) + ", expected " + name(want);
            return state();
        }
        if (injected_now) {
            if (err != pcpu::errc::out_of_memory) return "an injected failure was reported as " + name(err);
            return state();
        }
        if (reserved || !Policy::creates_chunks) {
            if (err != pcpu::errc::no_space) return "returned " + name(err) + ", expected no_space";
        } else if (atomic) {
            if (err != pcpu::errc::would_block) return "an atomic allocation returned " + name(err);
        } else {
            return "a sleeping allocation failed with " + name(err) + " without an injected platform failure";
        }
        if (align <= 4 || exact_fit) {
            const bool pop_only = atomic && Policy::on_demand && !reserved;
            // Chunks isolated for depopulation are searched by nobody; their list is
            // the last slot: base slot fls(unit) - 3, then sidelined, free, to_depopulate.
            if (model_.any_fit(size, align, reserved, pop_only, [&](std::uintptr_t a) { return sim().is_mapped(a); },
                               to_depopulate_slot()))
                return "failed with " + name(err) + " although the model has a fitting free run";
        }
        return state();
    }

    /// free(h, err) - free() must return what the model predicts.
    std::string free(pcpu::handle h, pcpu::errc* err_out = nullptr) {
        const pcpu::errc want = model_.predict_free(h);
        const std::size_t blocking = blocking_calls();
        const pcpu::errc got = a_.free(h);
        if (err_out != nullptr) *err_out = got;
        if (blocking_calls() != blocking) return "free reached a blocking callback";
        if (got != want) return "free returned " + name(got) + ", the model expected " + name(want);
        if (got == pcpu::errc::ok && h) {
            ++frees_;
            std::string e = model_.removed(h);
            if (!e.empty()) return e;
        } else if (got != pcpu::errc::ok) {
            ++bad_frees_;
        }
        return state();
    }

    /// balance(ctx, err) - would_block for a context that may not block (policies with
    /// something to balance), out_of_memory exactly when a failure was injected.
    std::string balance(pcpu::gfp ctx, pcpu::errc* err_out = nullptr) {
        const std::size_t injected = sim().injected_failures();
        const std::size_t blocking = blocking_calls();
        const pcpu::errc got = a_.balance(ctx);
        ++balances_;
        if (err_out != nullptr) *err_out = got;
        const bool injected_now = sim().injected_failures() != injected;
        pcpu::errc want = pcpu::errc::ok;
        const pcpu::gfp eff = pcpu::narrow(pcpu::narrow(ctx, sim().current_scope()), sim().background_context());
        if (!a_.initialized()) {
            want = pcpu::errc::not_initialized;
        } else if (Policy::creates_chunks && !pcpu::context_traits<pcpu::gfp>::may_block(eff)) {
            want = pcpu::errc::would_block;
            if (blocking_calls() != blocking) return "balance with a non-blocking context reached a blocking callback";
        } else if (injected_now) {
            want = pcpu::errc::out_of_memory;
        }
        if (got != want) return "balance returned " + name(got) + ", expected " + name(want);
        return state();
    }

    /// free_all_and_balance(ctx) - a long life's cycle end: free every live allocation,
    /// balance twice (the first may refill the reserve for an atomic failure of the
    /// past, the second gives back what that left beyond it); if both balances ran to
    /// the end, the memory must be back (alloc_model::memory_returned()).
    std::string free_all_and_balance(pcpu::gfp ctx) {
        while (model_.live() != 0) {
            std::string e = free(model_.nth_live(model_.live() - 1));
            if (!e.empty()) return e;
        }
        pcpu::errc got[2] = {};
        for (pcpu::errc& g : got) {
            std::string e = balance(ctx, &g);
            if (!e.empty()) return e;
        }
        if (!a_.initialized() || got[0] != pcpu::errc::ok || got[1] != pcpu::errc::ok) return "";
        ++memory_checks_;
        return model_.memory_returned(spare_pages());
    }
    /// spare_pages() - populated pages a spare chunk may keep after free-all + balance.
    static std::size_t spare_pages_for(std::size_t unit_size) noexcept {
        if (!Policy::creates_chunks) return 0;
        if (!Policy::on_demand) return unit_size / page; // a contiguous chunk cannot give pages back
        return alloc_t::empty_pop_pages_high;
    }
    std::size_t spare_pages() const noexcept { return spare_pages_for(cfg_.unit_size); }

    /// write(h) / read(h) - the owner rewrites, or checks, h on every CPU.
    std::string write(pcpu::handle h) {
        std::string e = model_.write(h);
        return e.empty() ? state() : e;
    }
    std::string read(pcpu::handle h) { return model_.check(h); }

    /// finish() - shut down whatever the state; nothing may stay with the platform.
    std::string finish() {
        std::string e = state();
        if (!e.empty()) return e;
        a_.shutdown();
        if (a_.initialized()) return "initialized after shutdown";
        return clean();
    }
    /// clean() - the platform holds nothing and saw no misuse, the checker no violation.
    std::string clean() {
        if (sim().leaks()) return "outstanding: " + sim().describe_leaks();
        if (sim().bugs() != 0) return "sim platform: " + sim().describe_bugs();
        if (checker().violations() != 0) return std::string("context checker: ") + checker().last_violation();
        return "";
    }

    /// blocking_calls() - calls of every member that may sleep, so far.
    std::size_t blocking_calls() {
        std::size_t n = 0;
        for (cb k : {cb::slow_lock, cb::alloc_meta, cb::free_meta, cb::alloc_units, cb::free_units, cb::reserve,
                     cb::release, cb::alloc_pages, cb::free_pages, cb::map, cb::unmap})
            n += checker().calls(k);
        return n;
    }
    /// to_depopulate_slot() / sidelined_slot() - the slot lists of isolated chunks, as
    /// chunk_stats::slot reports them (allocator.hpp: base slot max(fls(unit) - 3, 1)).
    int to_depopulate_slot() const noexcept { return base_slot() + 3; }
    int sidelined_slot() const noexcept { return base_slot() + 1; }

    std::uint64_t allocs_ = 0, alloc_errors_ = 0, frees_ = 0, bad_frees_ = 0, balances_ = 0, memory_checks_ = 0;

private:
    static std::string name(pcpu::errc e) { return pcpu::errc_name(e); }
    static void* align_up(unsigned char* p, std::size_t a) {
        const auto v = reinterpret_cast<std::uintptr_t>(p);
        return p + (a - v % a) % a;
    }
    int base_slot() const noexcept {
        int n = 0;
        for (std::size_t v = cfg_.unit_size; v != 0; v >>= 1) ++n;
        return n - 3 < 1 ? 1 : n - 3;
    }

    std::vector<unsigned char> units_;
    std::vector<unsigned char> meta_;
    pcpu::first_chunk_config cfg_;
    alloc_t a_;
    model_t model_;
};

} // namespace pcpu_test

/// CHECK_RUN(expr) - a model_runner step inside a doctest test: "" passes, anything
/// else fails the check with the finding. Evaluates to true on success.
#define CHECK_RUN(expr)                                                                            \
    [&]() {                                                                                        \
        const std::string run_err_ = (expr);                                                       \
        CHECK_MESSAGE(run_err_.empty(), #expr << ": " << run_err_);                                \
        return run_err_.empty();                                                                   \
    }()
