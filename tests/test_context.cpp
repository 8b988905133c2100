// SPDX-License-Identifier: MIT
// tests/test_context.cpp - the allocation context: presets, the partial order, narrowing.
#include <pcpu/context.hpp>

#include <doctest/doctest.h>

#include <string>

namespace {
using pcpu::gfp;
using tr = pcpu::context_traits<gfp>;
namespace ctx = pcpu::ctx;

std::string str(gfp c) {
    char buf[64];
    return tr::describe(c, buf, sizeof buf);
}
} // namespace

TEST_SUITE("context") {

TEST_CASE("presets form a chain: atomic within noio within nofs within full") {
    CHECK(pcpu::within(ctx::atomic, ctx::noio));
    CHECK(pcpu::within(ctx::noio, ctx::nofs));
    CHECK(pcpu::within(ctx::nofs, ctx::full));
    CHECK(pcpu::within(ctx::atomic, ctx::full));
    CHECK_FALSE(pcpu::within(ctx::full, ctx::nofs));
    CHECK_FALSE(pcpu::within(ctx::nofs, ctx::noio));
    CHECK_FALSE(pcpu::within(ctx::noio, ctx::atomic));
    // nowait is atomic plus nowarn: narrower than atomic, and the reverse is not true.
    CHECK(pcpu::within(ctx::nowait, ctx::atomic));
    CHECK_FALSE(pcpu::within(ctx::atomic, ctx::nowait));
    CHECK(tr::may_block(ctx::noio));
    CHECK_FALSE(tr::may_block(ctx::nowait));
    CHECK_FALSE(tr::may_io(ctx::noio));
    CHECK(tr::may_io(ctx::nofs));
    CHECK_FALSE(tr::may_fs(ctx::nofs));
}

TEST_CASE("within is reflexive and transitive over every flag combination") {
    for (unsigned a = 0; a < 64; ++a) {
        const gfp ca{static_cast<std::uint8_t>(a)};
        CHECK(pcpu::within(ca, ca));
        for (unsigned b = 0; b < 64; ++b) {
            const gfp cb{static_cast<std::uint8_t>(b)};
            const gfp m = pcpu::narrow(ca, cb);
            // The meet is within both, and is the widest such context.
            CHECK(pcpu::within(m, ca));
            CHECK(pcpu::within(m, cb));
            CHECK(pcpu::narrow(ca, cb) == pcpu::narrow(cb, ca));
            if (pcpu::within(ca, cb) && pcpu::within(cb, ca)) CHECK(ca == cb);
            for (unsigned c = 0; c < 64; c += 7) {
                const gfp cc{static_cast<std::uint8_t>(c)};
                if (pcpu::within(ca, cb) && pcpu::within(cb, cc)) CHECK(pcpu::within(ca, cc));
                if (pcpu::within(cc, ca) && pcpu::within(cc, cb)) CHECK(pcpu::within(cc, m));
            }
        }
    }
}

TEST_CASE("restrictions are kept by narrowing, permissions are lost") {
    const gfp caller = ctx::full | gfp::noretry;
    CHECK(pcpu::narrow(caller, ctx::noio) == (ctx::noio | gfp::noretry));
    CHECK(pcpu::narrow(ctx::nofs, ctx::noio) == ctx::noio); // NOIO wins over NOFS
    CHECK(pcpu::narrow(ctx::noio, ctx::nofs) == ctx::noio);
    CHECK(pcpu::narrow(ctx::full | gfp::nowarn, ctx::full) == (ctx::full | gfp::nowarn));
    // Dropping noretry or nowarn widens the context.
    CHECK_FALSE(pcpu::within(ctx::noio, ctx::noio | gfp::noretry));
    CHECK_FALSE(pcpu::within(ctx::noio, ctx::noio | gfp::nowarn));
}

TEST_CASE("nofail is a demand: it is never passed to backing allocators") {
    const gfp c = ctx::noio | gfp::nofail;
    CHECK_FALSE(pcpu::within(c, ctx::noio)); // asking for nofail is asking for more
    CHECK(tr::for_backing(c) == ctx::noio);
    CHECK(pcpu::narrow(c, ctx::full) == ctx::noio);
    CHECK(pcpu::narrow(c, c) == c);
}

TEST_CASE("describe names every flag") {
    CHECK(str(ctx::full) == "block|io|fs");
    CHECK(str(ctx::noio) == "block");
    CHECK(str(ctx::atomic) == "atomic");
    CHECK(str(ctx::nowait) == "atomic|nowarn");
    CHECK(str(ctx::full | gfp::noretry | gfp::nofail) == "block|io|fs|noretry|nofail");
    char tiny[6];
    CHECK(std::string(tr::describe(ctx::full, tiny, sizeof tiny)) == "block");
}

} // TEST_SUITE
