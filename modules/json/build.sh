#!/usr/bin/env bash
# Build valkey-json from an unpacked, verified source tree.
#   modules/json/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libjson.so, debug info stripped.
#
# valkey-json's CMake clones the Valkey repository for valkeymodule.h at
# SERVER_VERSION (passed as -DVALKEY_VERSION; upstream's default is "unstable"):
# it is set to the pinned Valkey tag from modules/valkey/module.env. RapidJSON is
# fetched at a commit pinned by upstream. Only the module is built (no unit or
# integration tests, no Valkey server). JOBS caps the parallelism (default: nproc).
# Needs gcc/g++, cmake, ninja and git, and network access to github.com.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
recipe_start json OUT_DIR "$@"
# shellcheck source-path=SCRIPTDIR source=module.env
. "$here/module.env"

if [ -z "${SERVER_VERSION:-}" ]; then
    SERVER_VERSION=$(sed -n 's/^VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$here/../valkey/module.env")
fi
if [ -z "$SERVER_VERSION" ]; then
    echo "$prog: no Valkey version: set SERVER_VERSION or VERSION in modules/valkey/module.env" >&2
    exit 2
fi

if [ ! -f "$src/CMakeLists.txt" ] || [ ! -d "$src/src" ] || ! grep -q ValkeyJSONModule "$src/CMakeLists.txt"; then
    not_a_source_tree valkey-json
fi
need_tools "g++ cmake ninja-build git binutils" cmake ninja git c++ strip

jobs=${JOBS:-$(nproc)}
build=$src/build

# CFLAGS: upstream's defaults without -g (stripped anyway) and without -Werror (a
# newer compiler's new warnings must not fail a build of a pinned release).
cmake -S "$src" -B "$build" -G Ninja -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release \
    -DVALKEY_VERSION="$SERVER_VERSION" \
    -DBUILD_RELEASE=ON \
    -DENABLE_UNIT_TESTS=OFF \
    -DENABLE_INTEGRATION_TESTS=OFF \
    -DCFLAGS="-O3 -fno-omit-frame-pointer -Wall -Wextra"
cmake --build "$build" -j "$jobs"

mkdir -p -- "$out"
install -m 0755 "$build/src/$MODULE_FILE" "$out/$MODULE_FILE"
strip --strip-debug "$out/$MODULE_FILE"
echo "$prog: built $out/$MODULE_FILE (valkey-json $VERSION against Valkey $SERVER_VERSION headers)"
