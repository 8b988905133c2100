// SPDX-License-Identifier: MIT
// pcpu/version.hpp - the release this copy of the headers belongs to. Kept equal to the
// Meson project version (meson.build) and the CMake package version by a test
// (tests/meson.build: version-check), so a consumer can test it in the preprocessor:
//
//     #if PCPU_VERSION < PCPU_VERSION_OF(0, 2, 0)
//     #error "pcpu 0.2 or later is needed"
//     #endif
#pragma once

#define PCPU_VERSION_MAJOR 0
#define PCPU_VERSION_MINOR 1
#define PCPU_VERSION_PATCH 0
/// PCPU_VERSION_OF(major, minor, patch) - one comparable integer: MMmmpp.
#define PCPU_VERSION_OF(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define PCPU_VERSION PCPU_VERSION_OF(PCPU_VERSION_MAJOR, PCPU_VERSION_MINOR, PCPU_VERSION_PATCH)
/// PCPU_VERSION_STRING - "major.minor.patch".
#define PCPU_VERSION_STRING "0.1.0"
