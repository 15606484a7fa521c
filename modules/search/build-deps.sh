#!/usr/bin/env bash
# Build what valkey-search links statically and its CMake would otherwise build while it
# configures -- googletest, then gRPC with protobuf, abseil, re2, c-ares and zlib --
# into one install prefix, with no network.
#   DEPS_DIR=DIR modules/search/build-deps.sh PREFIX
# Result: PREFIX/install (include/, lib/, bin/protoc, bin/grpc_cpp_plugin), the
# layout of upstream's <build>/.deps/install; modules/search/build.sh takes it through
# SEARCH_DEPS_PREFIX=PREFIX.
#
# Kept apart from the module's own build because gRPC is by far the longest compile
# of the image (about 40 minutes on 2 cores): the Dockerfile's search-deps stage runs
# this recipe alone, on these inputs alone, so that a change to search, to another
# module or to the runtime never redoes it.
#
# The same configure and build as upstream's submodules/CMakeLists.txt
# (build_submodule): its CXXFLAGS, its common CMake arguments and gRPC's, and a build
# of the `install` target. One argument added: -DgRPC_DOWNLOAD_ARCHIVES=OFF, since gRPC's
# CMake otherwise downloads the proto archives of the third_party directories that are
# empty (opencensus-proto, envoy-api, ...; nothing of them is built here).
# DEPS_DIR holds grpc (with its submodules) and googletest, unpacked
# (modules/prepare.sh). JOBS caps the parallelism (default: nproc, at most one job
# per 2 GiB of available memory). Needs gcc/g++ >= 12, make, cmake, libssl-dev,
# pkg-config.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
prog=modules/search/build-deps.sh
if [ "$#" -ne 1 ]; then
    echo "usage: DEPS_DIR=DIR $prog PREFIX" >&2
    exit 2
fi
need_deps "grpc googletest"
if [ ! -f "$DEPS_DIR/grpc/CMakeLists.txt" ] || [ ! -d "$DEPS_DIR/grpc/third_party/abseil-cpp/absl" ]; then
    echo "$prog: $DEPS_DIR/grpc is not a gRPC tree with its submodules" >&2
    exit 2
fi
need_tools "g++ make cmake libssl-dev pkg-config" cmake make c++
mkdir -p -- "$1"
prefix=$(cd -- "$1" && pwd)/install
jobs=${JOBS:-$(jobs_for_memory 2)}

common=(
    -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON
    "-DCMAKE_INSTALL_PREFIX=$prefix"
    -DCMAKE_CXX_STANDARD=20
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5
)

# build_submodule NAME ARGS...: configure DEPS_DIR/NAME in its build-release directory
# and build its install target, with upstream's flags.
build_submodule() {
    local name=$1 dir
    shift
    dir=$DEPS_DIR/$name/build-release
    mkdir -p -- "$dir"
    (
        cd "$dir"
        export CXXFLAGS="-Wno-missing-requires -Wno-attributes -Wno-deprecated -Wno-return-type -Wno-stringop-overflow -Wno-deprecated-declarations"
        export CFLAGS='' LDFLAGS=''
        cmake .. "$@"
        cmake --build . -j "$jobs" --target install
    )
}

build_submodule googletest "${common[@]}"
build_submodule grpc "${common[@]}" -DSKIP_INSTALL_ALL=ON -DgRPC_INSTALL=ON -DgRPC_BUILD_TESTS=OFF \
    -DgRPC_SSL_PROVIDER=package -DgRPC_DOWNLOAD_ARCHIVES=OFF

# What upstream's configure checks before it would build them itself.
for file in include/gtest/gtest.h include/absl/base/options.h bin/protoc bin/grpc_cpp_plugin; do
    [ -e "$prefix/$file" ] || { echo "$prog: the build left no $prefix/$file" >&2; exit 1; }
done
echo "$prog: built googletest and gRPC into $prefix"
