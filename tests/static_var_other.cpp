// SPDX-License-Identifier: MIT
// tests/static_var_other.cpp - a static per-CPU variable defined in another translation
// unit: the linker must gather both units' template copies into one block, and
// test_static_var.cpp reaches this one through PCPU_DECLARE.
#include <pcpu/static_var.hpp>

#include <cstdint>

PCPU_DEFINE(std::int32_t, sv_other, -17);
