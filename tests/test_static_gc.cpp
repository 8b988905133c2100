// SPDX-License-Identifier: MIT
// tests/test_static_gc.cpp - built with -ffunction-sections -fdata-sections and linked
// with -Wl,--gc-sections (tests/meson.build): a static per-CPU variable that no code
// names must survive section garbage collection, or its CPU copies would silently
// start from whatever follows it in the block.
#include <pcpu/static_var.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>

PCPU_DEFINE(std::uint32_t, gc_unnamed, 0xfeedf00du); // never referenced below
PCPU_DEFINE(std::uint32_t, gc_named, 0x600dcafeu);

namespace {
/// in_block(v) - a 32-bit value v is stored, aligned, somewhere in the block.
bool in_block(std::uint32_t v) {
    const auto* p = static_cast<const unsigned char*>(pcpu::static_section_image());
    const std::size_t n = pcpu::static_section_size();
    for (std::size_t i = 0; i + 4 <= n; i += 4) {
        std::uint32_t w;
        std::memcpy(&w, p + i, 4);
        if (w == v) return true;
    }
    return false;
}
} // namespace

TEST_SUITE("static_gc") {
TEST_CASE("--gc-sections keeps every template copy") {
    REQUIRE(pcpu::static_section_image() != nullptr);
    CHECK(pcpu::static_section_size() >= 8);
    CHECK(gc_named.initial() == 0x600dcafeu);
    CHECK(in_block(0x600dcafeu));
    CHECK(in_block(0xfeedf00du));
}
}
