#!/usr/bin/env bash
# Build and install Valkey from an unpacked, verified source tree.
#   modules/valkey/build.sh SRC_DIR PREFIX
# Result: PREFIX/bin/valkey-server, valkey-cli, valkey-benchmark, ... and
# PREFIX/include/valkeymodule.h (which `make install` does not install).
# JOBS caps parallelism (default: nproc). Needs gcc, g++ (fast_float), make,
# pkg-config, libc6-dev and libssl-dev. Used by the Dockerfile and by the native test bed alike.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
recipe_start valkey PREFIX "$@"
prefix=$out

if [ ! -f "$src/src/valkeymodule.h" ] || [ ! -f "$src/Makefile" ]; then
    not_a_source_tree Valkey  # it needs the Makefile and src/valkeymodule.h
fi
need_tools "gcc g++ make libc6-dev libssl-dev pkg-config" make cc c++ pkg-config

jobs=${JOBS:-$(nproc)}
mkdir -p -- "$prefix"
prefix=$(cd -- "$prefix" && pwd)   # make install runs in src/: needs an absolute path

# jemalloc's page size is fixed at build time: 4K pages on x86, 64K on arm64 and
# others (a 64K build also runs on 4K-page kernels, not the other way round).
if [ -z "${JEMALLOC_CONFIGURE_OPTS:-}" ]; then
    case $(uname -m) in
        x86_64 | i?86) JEMALLOC_CONFIGURE_OPTS='--with-lg-page=12 --with-lg-hugepage=21' ;;
        *) JEMALLOC_CONFIGURE_OPTS='--with-lg-page=16 --with-lg-hugepage=21' ;;
    esac
fi

# src/mkreleasehdr.sh records `git diff -- ../src ../deps | wc -l` as the "dirty" flag.
# Outside a git repository that becomes `git diff --no-index` between the two
# directories: a large number that changes as objects appear, so `make install`
# relinks everything and --version reports a dirty build. A release tarball has no
# git metadata: show git an empty repository over the tree (as if git were absent).
if [ ! -e "$src/.git" ] && command -v git >/dev/null 2>&1; then
    no_git=$(mktemp -d)
    trap 'rm -rf -- "$no_git"' EXIT
    git init --quiet --bare "$no_git"
    GIT_WORK_TREE=$(cd -- "$src" && pwd)
    export GIT_DIR="$no_git" GIT_WORK_TREE
fi

# The same bytes from the same source, in any directory at any time: dated by the
# source (mkreleasehdr.sh records SOURCE_DATE_EPOCH instead of the clock and the host
# name), paths written relative to it. CFLAGS through the environment: src/Makefile
# adds its own to them and hands them on to the dependencies (jemalloc, Lua, ...).
# LDFLAGS too: with link-time optimisation the linker's compiler writes the debug
# information of the final code (its directory, /.../src/src, would otherwise be in it,
# and so in the build ID that the stripped binary keeps).
reproducible "$src"
export CFLAGS="${CFLAGS:+$CFLAGS }$prefix_map" LDFLAGS="${LDFLAGS:+$LDFLAGS }$prefix_map"

# The same settings for both make calls: Valkey rebuilds from scratch when they change.
# USE_FAST_FLOAT=yes as in the official image: 9.0's float parsing through the C++
# fast_float library (9.1 has a C port built in and ignores the setting).
settings=(BUILD_TLS=yes USE_SYSTEMD=no USE_FAST_FLOAT=yes "JEMALLOC_CONFIGURE_OPTS=$JEMALLOC_CONFIGURE_OPTS")

make -C "$src" "${settings[@]}" -j"$jobs"
make -C "$src" "${settings[@]}" install PREFIX="$prefix"
install -D -m 0644 "$src/src/valkeymodule.h" "$prefix/include/valkeymodule.h"
