#!/usr/bin/env bash
# Build valkey-search from an unpacked, verified source tree.
#   modules/search/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libsearch.so, debug info stripped.
#
# CMake is configured directly (Release, Ninja, unit tests off): upstream's build.sh
# always builds the unit tests, which can need tens of GB of RAM. JOBS caps the
# parallelism (default: nproc), including the gRPC sub-build that runs at configure
# time. Needs gcc/g++ >= 12, cmake, ninja, git, libssl-dev and pkg-config, and
# network access to github.com while configuring: the configure step clones gRPC
# v1.70.1 (with submodules), highwayhash and googletest, pinned by upstream.
# Without JOBS the parallelism is capped by memory too: one job per 2 GiB available
# (C++ with LTO), at most nproc.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
recipe_start search OUT_DIR "$@"
# shellcheck source-path=SCRIPTDIR source=module.env
. "$here/module.env"

if [ ! -f "$src/CMakeLists.txt" ] || [ ! -d "$src/vmsdk" ] || [ ! -d "$src/submodules" ]; then
    not_a_source_tree valkey-search
fi
need_tools "g++ cmake ninja-build git libssl-dev pkg-config binutils" cmake ninja git c++ strip

# One job per 2 GiB of memory available (the cgroup limit when lower), 1..nproc.
default_jobs() {
    local cores avail_kb limit cap
    cores=$(nproc)
    avail_kb=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB$/\1/p' /proc/meminfo 2>/dev/null || true)
    limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || true)
    case $limit in
        '' | *[!0-9]*) ;;
        *) if [ -z "$avail_kb" ] || [ $((limit / 1024)) -lt "$avail_kb" ]; then avail_kb=$((limit / 1024)); fi ;;
    esac
    cap=$(( ${avail_kb:-0} / (2 * 1024 * 1024) ))
    [ "$cap" -ge 1 ] || cap=1
    [ "$cap" -lt "$cores" ] && cores=$cap
    echo "$cores"
}

jobs=${JOBS:-$(default_jobs)}
build=$src/.build-release

# The gRPC sub-build runs `cmake --build -j <ProcessorCount>`; ProcessorCount asks
# nproc, and nproc honours OMP_NUM_THREADS: this caps that build at JOBS too.
OMP_NUM_THREADS=$jobs cmake -S "$src" -B "$build" -G Ninja -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_TESTS=OFF \
    -DBUILD_UNIT_TESTS=OFF \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5
ninja -C "$build" -j "$jobs" libsearch

mkdir -p -- "$out"
install -m 0755 "$build/$MODULE_FILE" "$out/$MODULE_FILE"
strip --strip-debug "$out/$MODULE_FILE"
echo "$prog: built $out/$MODULE_FILE (valkey-search $VERSION)"
