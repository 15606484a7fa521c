#!/usr/bin/env bash
# Build valkey-search from an unpacked, verified source tree, with no network.
#   DEPS_DIR=DIR modules/search/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libsearch.so, debug info stripped.
#
# DEPS_DIR holds the unpacked inputs of DEPS in module.env (modules/prepare.sh puts
# them there): grpc (v1.70.1 with its submodules), highwayhash and googletest. They
# are placed where upstream's CMake (submodules/CMakeLists.txt) looks for content it
# already cloned, <build>/.deps/<name> with the marker directory it checks, so
# configure clones nothing; the gRPC and googletest sub-builds then run from them.
#
# ICU is built first, from the tree's own third_party/icu/source, static with its
# data packaged statically, into <build>/icu/install -- as upstream's build.sh does
# (build_icu_if_needed) before it runs cmake: the CMake build only checks for it and
# stops at configure without it.
#
# CMake is configured directly (Release, Ninja, unit tests off): upstream's build.sh
# always builds the unit tests, which can need tens of GB of RAM, and exports
# SAN_BUILD=no, which makes configure clone google/benchmark too. JOBS caps the
# parallelism (default: nproc, and at most one job per 2 GiB of available memory:
# C++ with LTO), the configure-time gRPC sub-build's too. Needs gcc/g++ >= 12, make,
# cmake, ninja, git (configure insists on it, clones nothing), libssl-dev, pkg-config.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
recipe_start search OUT_DIR "$@"
# shellcheck source-path=SCRIPTDIR source=module.env
. "$here/module.env"

if [ ! -f "$src/CMakeLists.txt" ] || [ ! -d "$src/vmsdk" ] || [ ! -d "$src/submodules" ]; then
    not_a_source_tree valkey-search
fi
icu_source=$src/third_party/icu/source
[ -x "$icu_source/configure" ] || not_a_source_tree "valkey-search (with third_party/icu/source)"
need_deps "$DEPS"
need_tools "g++ make cmake ninja-build git libssl-dev pkg-config binutils" cmake ninja git make c++ strip

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

# 1. ICU, static, as upstream's build_icu_if_needed builds it.
icu=$build/icu
if [ ! -f "$icu/install/lib/libicudata.a" ]; then
    rm -rf -- "$icu"
    mkdir -p -- "$icu"
    (
        cd "$icu"
        "$icu_source/configure" --enable-static --disable-shared --with-data-packaging=static \
            --disable-extras --disable-icuio --disable-layout --disable-tests --disable-samples \
            --enable-tools --prefix="$icu/install" CFLAGS="-O2 -fPIC" CXXFLAGS="-O2 -fPIC"
        make PKGDATA_MODE=static -j"$jobs"
        make install PKGDATA_MODE=static
    )
fi
for lib in libicudata.a libicui18n.a libicuuc.a; do
    [ -f "$icu/install/lib/$lib" ] || { echo "$prog: ICU did not produce $icu/install/lib/$lib" >&2; exit 1; }
done

# 2. The configure-time dependencies, where upstream's CMake finds them: a tree in
# .deps/<name>, and for grpc and googletest the build-release directory whose
# presence means "already cloned".
mkdir -p -- "$build/.deps"
for dep in $DEPS; do
    rm -rf -- "${build:?}/.deps/$dep"
    ln -s -- "$DEPS_DIR/$dep" "$build/.deps/$dep"
done
mkdir -p -- "$DEPS_DIR/grpc/build-release" "$DEPS_DIR/googletest/build-release"

# 3. The module. SAN_BUILD=no would add google/benchmark to what configure clones.
unset SAN_BUILD
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
