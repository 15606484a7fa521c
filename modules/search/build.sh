#!/usr/bin/env bash
# Build valkey-search from an unpacked, verified source tree, with no network.
#   DEPS_DIR=DIR modules/search/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libsearch.so, debug info stripped.
#
# DEPS_DIR holds the unpacked inputs of DEPS (module.env; modules/prepare.sh): grpc,
# highwayhash, googletest, placed where upstream's CMake (submodules/CMakeLists.txt)
# looks for content it already cloned (<build>/.deps/<name> and its marker
# directories), so configure clones nothing. gRPC and googletest are built by
# build-deps.sh into <build>/.deps/install, the prefix upstream's configure would build
# them into and then leaves alone; SEARCH_DEPS_PREFIX=DIR takes DIR/install instead
# (the Dockerfile's search-deps stage), and DEPS_DIR then needs highwayhash only.
# ICU is built first from the tree's third_party/icu/source (static, data included)
# into <build>/icu/install, as upstream's build.sh does (build_icu_if_needed).
# CMake is configured directly (Release, Ninja, unit tests off: upstream's build.sh
# builds them, which can need tens of GB of RAM; SAN_BUILD unset, else configure clones
# google/benchmark). JOBS caps the parallelism (default: nproc, at most one job per
# 2 GiB of available memory). Needs gcc/g++ >= 12, make, cmake, ninja, git (configure
# insists on it, clones nothing), libssl-dev, pkg-config.
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
deps_prefix=${SEARCH_DEPS_PREFIX:-}
if [ -n "$deps_prefix" ]; then
    need_deps highwayhash
    [ -f "$deps_prefix/install/include/absl/base/options.h" ] ||
        { echo "$prog: SEARCH_DEPS_PREFIX=$deps_prefix holds no gRPC build (modules/search/build-deps.sh)" >&2; exit 2; }
else
    need_deps "$DEPS"
fi
need_tools "g++ make cmake ninja-build git libssl-dev pkg-config binutils" cmake ninja git make c++ strip

jobs=${JOBS:-$(jobs_for_memory 2)}
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
# .deps/<name>, for grpc and googletest the build-release directory whose presence
# means "already cloned", and the install prefix whose headers mean "already built".
mkdir -p -- "$build/.deps"
for dep in $DEPS; do
    rm -rf -- "${build:?}/.deps/$dep"
    if [ -d "$DEPS_DIR/$dep" ]; then
        ln -s -- "$DEPS_DIR/$dep" "$build/.deps/$dep"
    fi
    mkdir -p -- "$build/.deps/$dep"
done
mkdir -p -- "$build/.deps/grpc/build-release" "$build/.deps/googletest/build-release"
rm -rf -- "$build/.deps/install"
if [ -n "$deps_prefix" ]; then
    ln -s -- "$(cd -- "$deps_prefix" && pwd)/install" "$build/.deps/install"
else
    "$here/build-deps.sh" "$build/.deps"
fi

# 3. The module. SAN_BUILD=no would add google/benchmark to what configure clones.
unset SAN_BUILD
cmake -S "$src" -B "$build" -G Ninja -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_TESTS=OFF \
    -DBUILD_UNIT_TESTS=OFF \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5
ninja -C "$build" -j "$jobs" libsearch

# The CPU features the module was compiled for (upstream's -m flags on its own targets,
# marked by -falign-functions=5) must be the ones module.env declares: the entrypoint's
# preflight refuses a CPU by that list, so a flag upstream adds must not slip past it.
if [ "$(uname -m)" = x86_64 ]; then
    declared=$(printf '%s' "$MODULE_CPU_FEATURES_X86_64" | tr ' ' '\n' | sort -u | paste -sd ' ')
    compiled=$(grep -e '-falign-functions=5' "$build/build.ninja" | tr ' ' '\n' |
        grep -E '^-m(arch=.*|[a-z0-9.]+)$' | sort -u | sed 's/^-m//' | while read -r flag; do
            case $flag in
                sse4.2) printf 'sse4_2\npopcnt\n' ;; pclmul) echo pclmulqdq ;; prfchw) echo 3dnowprefetch ;;
                avx | avx2 | fma | aes | cx16) echo "$flag" ;;
                *) echo "UNKNOWN:-m$flag" ;;
            esac
        done | sort -u | paste -sd ' ')
    if [ "$compiled" != "$declared" ]; then
        echo "$prog: compiled for CPU features '$compiled' but module.env declares MODULE_CPU_FEATURES_X86_64='$declared': update module.env (a /proc/cpuinfo name for each -m flag)" >&2
        exit 1
    fi
fi

mkdir -p -- "$out"
install -m 0755 "$build/$MODULE_FILE" "$out/$MODULE_FILE"
strip --strip-debug "$out/$MODULE_FILE"
echo "$prog: built $out/$MODULE_FILE (valkey-search $VERSION)"
