#!/usr/bin/env bash
# Build valkey-ldap from an unpacked, verified source tree, with no network.
#   DEPS_DIR=DIR modules/ldap/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libvalkey_ldap.so, debug info stripped.
#
# DEPS_DIR/crates holds the crates vendored against upstream's Cargo.lock
# (modules/fetch.sh ldap/crates; modules/prepare.sh unpacks it); the build is
# --offline --locked. Rust from PATH, RUST_MIN <= release < RUST_BELOW (module.env):
# built with Rust >= 1.88 the module segfaults (in tokio) when it connects to an LDAP
# server. JOBS caps the parallelism (default: nproc). Needs cargo and rustc,
# pkg-config, libssl-dev, clang and libclang-dev (bindgen).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
recipe_start ldap OUT_DIR "$@"
# shellcheck source-path=SCRIPTDIR source=module.env
. "$here/module.env"

if [ ! -f "$src/Cargo.toml" ] || ! grep -q '^name = "valkey-ldap"' "$src/Cargo.toml"; then
    not_a_source_tree valkey-ldap
fi
if [ ! -f "$src/Cargo.lock" ]; then
    echo "$prog: $src has no Cargo.lock (upstream commits one): refusing a build that is not locked" >&2
    exit 1
fi
need_deps "$DEPS"
if ! cmp -s "$src/Cargo.lock" "$DEPS_DIR/crates/Cargo.lock"; then
    echo "$prog: $DEPS_DIR/crates was vendored against another Cargo.lock than the source's" >&2
    exit 1
fi
need_tools "pkg-config libssl-dev clang libclang-dev binutils" pkg-config clang strip

# shellcheck source-path=SCRIPTDIR source=../rust.sh
. "$here/../rust.sh"
select_rust
cargo_build_offline

target=${CARGO_TARGET_DIR:-$src/target}
mkdir -p -- "$out"
install -m 0755 "$target/release/$MODULE_FILE" "$out/$MODULE_FILE"
strip --strip-debug "$out/$MODULE_FILE"
echo "$prog: built $out/$MODULE_FILE (valkey-ldap $VERSION, $rustc_version, Cargo.lock sha256 $(sha256sum "$src/Cargo.lock" | cut -d' ' -f1))"
