# SPDX-License-Identifier: MIT
# scripts/common.sh - sourced by scripts/demo and scripts/test.
# Installs what a fresh Debian 12 machine lacks, with apt-get, only when it lacks it.
set -euo pipefail

PCPU_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# pcpu_apt_install pkg... - install Debian packages (as root, or through sudo).
pcpu_apt_install() {
    [ "$#" -gt 0 ] || return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "pcpu: installing missing packages: $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have no package lists yet: retry once after an update.
    if ! $sudo apt-get install -y --no-install-recommends "$@" >/dev/null; then
        $sudo apt-get update -qq
        $sudo apt-get install -y --no-install-recommends "$@" >/dev/null
    fi
}

# pcpu_need_host_tools - meson, ninja, a C++ compiler, doctest.
pcpu_need_host_tools() {
    local missing=()
    command -v meson >/dev/null 2>&1 || missing+=(meson)
    command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
    command -v g++ >/dev/null 2>&1 || missing+=(g++)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    [ -f /usr/include/doctest/doctest.h ] || missing+=(doctest-dev)
    pcpu_apt_install "${missing[@]}"
}

# pcpu_need_test_tools - what scripts/test needs beyond the host tools: cmake (CMake
# consumers), doxygen (the API reference check), clang (warnings stage).
pcpu_need_test_tools() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v doxygen >/dev/null 2>&1 || missing+=(doxygen)
    command -v clang++ >/dev/null 2>&1 || missing+=(clang)
    pcpu_apt_install "${missing[@]}"
}

# pcpu_setup builddir [meson options...] - configure (or reconfigure) a build dir.
pcpu_setup() {
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

# pcpu_need_cross_tools - the ARM cross toolchains and QEMU for scripts/test's cross
# stages: the Cortex-M4, dual Cortex-M33 (mps2-an521) and Cortex-M0 (microbit)
# firmware under qemu-system-arm (one package for all three boards and cross files),
# the armhf suite under qemu-arm, the arm64 this-CPU suites under qemu-aarch64.
# The firmware itself links no C or C++ runtime (headers only); the newlib C++ library
# (libstdc++-arm-none-eabi-newlib, about 300 MB to download) is for the typed layer's
# Cortex-M4 link check, tests/embedded/check_typed_cm4.sh, which links with newlib's
# nosys specs. Called before any suite, so that every run, first or later, sees the
# same tools.
pcpu_need_cross_tools() {
    local missing=()
    if command -v arm-none-eabi-g++ >/dev/null 2>&1; then
        [ -f "$(arm-none-eabi-g++ -mcpu=cortex-m4 -mthumb -print-file-name=libstdc++.a)" ] ||
            missing+=(libstdc++-arm-none-eabi-newlib)
    else
        missing+=(gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib)
    fi
    [ -f /usr/include/newlib/string.h ] || missing+=(libnewlib-arm-none-eabi)
    [ -d /usr/include/newlib/c++ ] || missing+=(libstdc++-arm-none-eabi-dev)
    command -v qemu-system-arm >/dev/null 2>&1 || missing+=(qemu-system-arm)
    command -v arm-linux-gnueabihf-g++ >/dev/null 2>&1 || missing+=(g++-arm-linux-gnueabihf)
    command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || missing+=(g++-aarch64-linux-gnu)
    if ! command -v qemu-arm >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
        missing+=(qemu-user)
    fi
    pcpu_apt_install "${missing[@]}"
}

# pcpu_clang_fuzzer_works - clang++ can build a libFuzzer target with ASan and UBSan.
pcpu_clang_fuzzer_works() {
    local t rc=0
    t=$(mktemp -d)
    printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$t/f.cpp"
    clang++ -fsanitize=fuzzer,address,undefined "$t/f.cpp" -o "$t/f" >/dev/null 2>&1 || rc=1
    rm -rf "$t"
    return "$rc"
}

# pcpu_need_fuzz_tools - clang and its runtimes (compiler-rt: libFuzzer, ASan, UBSan),
# which Debian packages per clang version.
pcpu_need_fuzz_tools() {
    command -v clang++ >/dev/null 2>&1 || pcpu_apt_install clang
    if ! pcpu_clang_fuzzer_works; then
        pcpu_apt_install "libclang-rt-$(clang++ -dumpversion | cut -d. -f1)-dev"
    fi
}
