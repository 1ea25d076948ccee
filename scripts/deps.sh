#!/usr/bin/env bash
# Installs what ipckit needs on Debian 12 (bookworm), from Debian's own packages only.
# Usage: scripts/deps.sh [--perf]    (run as root, or with sudo available)
#   --perf  also installs what tests/perf/*.sh compare against: Go, hyperfine, wrk.
set -euo pipefail

packages=(
    # build
    build-essential cmake ninja-build pkg-config git
    libcli11-dev libfmt-dev libgtest-dev
    # tests: bats and the real peers the tools are tested against
    bats bats-assert bats-support
    socat ncat netcat-openbsd curl wrk
    procps psmisc util-linux coreutils iproute2 strace perl python3
    systemd  # systemd-socket-activate: graceful's socket-activation test
    # the fuzz preset (tests/fuzz): clang with libFuzzer, and llvm-symbolizer for its reports
    clang libclang-rt-14-dev llvm
    clang-tidy  # scripts/lessons.sh: function size and cognitive complexity (issue 9)
)
if [[ ${1:-} == --perf ]]; then
    packages+=(golang-go hyperfine)
fi

as_root=()
if ((EUID != 0)); then
    as_root=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "deps.sh: installed ${#packages[@]} packages"
