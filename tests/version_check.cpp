// SPDX-License-Identifier: MIT
// tests/version_check.cpp - pcpu/version.hpp agrees with the Meson project version
// (passed in as PCPU_MESON_VERSION) and with itself: the string, the three numbers and
// PCPU_VERSION. CMakeLists.txt reads its version from the header, and the installed
// pcpuConfigVersion.cmake is generated from the Meson version, so this test ties all
// four together.
#include <pcpu/version.hpp>

#include <cstdio>
#include <cstring>

int main() {
    char built[32];
    std::snprintf(built, sizeof built, "%d.%d.%d", PCPU_VERSION_MAJOR, PCPU_VERSION_MINOR, PCPU_VERSION_PATCH);
    const bool ok = std::strcmp(built, PCPU_VERSION_STRING) == 0 && std::strcmp(PCPU_MESON_VERSION, PCPU_VERSION_STRING) == 0 &&
                    PCPU_VERSION == PCPU_VERSION_MAJOR * 10000 + PCPU_VERSION_MINOR * 100 + PCPU_VERSION_PATCH;
    std::printf("version.hpp %s (numbers %s, PCPU_VERSION %d), meson.build %s: %s\n", PCPU_VERSION_STRING, built,
                PCPU_VERSION, PCPU_MESON_VERSION, ok ? "equal" : "DIFFERENT");
    return ok ? 0 : 1;
}
