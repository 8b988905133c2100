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

# pcpu_setup builddir [meson options...] - configure (or reconfigure) a build dir.
pcpu_setup() {
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}
