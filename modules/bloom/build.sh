#!/usr/bin/env bash
# Build valkey-bloom from an unpacked, verified source tree, with no network.
#   DEPS_DIR=DIR modules/bloom/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libvalkey_bloom.so, debug info stripped.
#
# Upstream commits no Cargo.lock. DEPS_DIR/crates holds the crates vendored against
# ours, modules/bloom/Cargo.lock (modules/fetch.sh bloom/crates; modules/prepare.sh
# unpacks it), and that lock; the build is --offline --locked. Until
# modules/bloom/Cargo.lock is committed, the lock is the one the first networked
# `./build.sh fetch` resolved, and this recipe says UNPINNED. Rust from PATH,
# >= RUST_MIN (module.env). JOBS caps the parallelism (default: nproc). Needs cargo
# and rustc, clang and libclang-dev (bindgen).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
recipe_start bloom OUT_DIR "$@"
# shellcheck source-path=SCRIPTDIR source=module.env
. "$here/module.env"

if [ ! -f "$src/Cargo.toml" ] || ! grep -q '^name = "valkey-bloom"' "$src/Cargo.toml"; then
    not_a_source_tree valkey-bloom
fi
need_deps "$DEPS"
need_tools "clang libclang-dev binutils" clang strip

lock_state="Cargo.lock pinned by modules/bloom/Cargo.lock"
if [ ! -f "$here/Cargo.lock" ]; then
    lock_state="UNPINNED Cargo.lock (resolved by ./build.sh fetch, not yet committed as modules/bloom/Cargo.lock)"
    echo "$prog: warning: $lock_state" >&2
elif ! cmp -s "$here/Cargo.lock" "$DEPS_DIR/crates/Cargo.lock"; then
    echo "$prog: $DEPS_DIR/crates was vendored against another Cargo.lock than modules/bloom/Cargo.lock: run ./build.sh fetch" >&2
    exit 1
fi

# shellcheck source-path=SCRIPTDIR source=../rust.sh
. "$here/../rust.sh"
select_rust
cargo_build_offline

target=${CARGO_TARGET_DIR:-$src/target}
mkdir -p -- "$out"
install -m 0755 "$target/release/$MODULE_FILE" "$out/$MODULE_FILE"
strip --strip-debug "$out/$MODULE_FILE"
echo "$prog: built $out/$MODULE_FILE (valkey-bloom $VERSION, $rustc_version, $lock_state)"
