#!/usr/bin/env bash
# Build valkey-json from an unpacked, verified source tree, with no network.
#   DEPS_DIR=DIR VALKEY_INCLUDE_DIR=DIR modules/json/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libjson.so, debug info stripped.
#
# DEPS_DIR/rapidjson is RapidJSON at the commit upstream pins (modules/prepare.sh
# unpacks it there); CMake's FetchContent takes it from there and never goes online
# (FETCHCONTENT_FULLY_DISCONNECTED). VALKEY_INCLUDE_DIR holds the valkeymodule.h of the
# Valkey the module will run in (the Dockerfile's valkey stage): upstream's CMake
# clones the whole Valkey repository for that one header, in an ExternalProject whose
# download step the recipe replaces with the header put where that project would
# have cloned it. Only the module is built (no tests, no Valkey server). JOBS caps
# the parallelism (default: nproc). Needs gcc/g++, cmake and ninja.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
recipe_start json OUT_DIR "$@"
# shellcheck source-path=SCRIPTDIR source=module.env
. "$here/module.env"

if [ ! -f "$src/CMakeLists.txt" ] || [ ! -d "$src/src" ] || ! grep -q ValkeyJSONModule "$src/CMakeLists.txt"; then
    not_a_source_tree valkey-json
fi
need_deps "$DEPS"
header=${VALKEY_INCLUDE_DIR:-}/valkeymodule.h
if [ -z "${VALKEY_INCLUDE_DIR:-}" ] || [ ! -f "$header" ]; then
    echo "$prog: VALKEY_INCLUDE_DIR must be the include directory of the Valkey build (with valkeymodule.h); got '${VALKEY_INCLUDE_DIR:-}'" >&2
    exit 2
fi
need_tools "g++ cmake ninja-build binutils" cmake ninja c++ strip

# Dated by the source as unpacked (before this recipe rewrites a file of it), paths
# recorded relative to it, to the dependencies and to the build directory (CMake takes
# CFLAGS and CXXFLAGS from the environment).
build=$src/build
mkdir -p -- "$build"
reproducible "$src" "$DEPS_DIR" "$build"
export CFLAGS="${CFLAGS:+$CFLAGS }$prefix_map" CXXFLAGS="${CXXFLAGS:+$CXXFLAGS }$prefix_map"

# The ExternalProject that clones Valkey: its download becomes a no-op. The exact
# lines are matched so that a change upstream stops the build here, not online.
# shellcheck disable=SC2016  # CMake's ${...}, not the shell's
clone='GIT_REPOSITORY https://github.com/valkey-io/valkey.git' tag='GIT_TAG ${VALKEY_VERSION}'
if [ "$(grep -c -F -x -e "    $clone" -e "    $tag" "$src/CMakeLists.txt")" != 2 ]; then
    echo "$prog: $src/CMakeLists.txt no longer clones Valkey as valkey-json 1.0.x does: update this recipe" >&2
    exit 1
fi
grep -v -F -x "    $tag" "$src/CMakeLists.txt" | sed "s|^    $clone\$|    DOWNLOAD_COMMAND \"\"|" >"$src/CMakeLists.txt.offline"
mv -f -- "$src/CMakeLists.txt.offline" "$src/CMakeLists.txt"

jobs=${JOBS:-$(nproc)}
install -D -m 0644 "$header" "$build/_deps/valkey-src/src/valkey/src/valkeymodule.h"

# -DCFLAGS: upstream's defaults without -g (stripped anyway) and without -Werror (a
# newer compiler's new warnings must not fail a build of a pinned release).
cmake -S "$src" -B "$build" -G Ninja -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_RELEASE=ON \
    -DENABLE_UNIT_TESTS=OFF \
    -DENABLE_INTEGRATION_TESTS=OFF \
    -DFETCHCONTENT_FULLY_DISCONNECTED=ON \
    -DFETCHCONTENT_SOURCE_DIR_RAPIDJSON="$DEPS_DIR/rapidjson" \
    -DCFLAGS="-O3 -fno-omit-frame-pointer -Wall -Wextra"
cmake --build "$build" -j "$jobs" --target json

mkdir -p -- "$out"
install -m 0755 "$build/src/$MODULE_FILE" "$out/$MODULE_FILE"
strip --strip-debug "$out/$MODULE_FILE"
echo "$prog: built $out/$MODULE_FILE (valkey-json $VERSION against $header)"
