#!/usr/bin/env bash
# Build valkey-ldap from an unpacked, verified source tree.
#   modules/ldap/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libvalkey_ldap.so, debug info stripped.
#
# Built with exactly Rust RUST_TOOLCHAIN (module.env): with Rust >= 1.88 the module
# segfaults in tokio when it connects to an LDAP server. With rustup the toolchain is
# selected (and installed if missing); without rustup, `rustc --version` must match.
# Upstream's Cargo.lock is used (--locked). JOBS caps the parallelism (default:
# nproc). Needs cargo/rustc (or rustup), pkg-config, libssl-dev, clang and
# libclang-dev, and access to crates.io (or a filled CARGO_HOME).
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
    echo "$prog: $src has no Cargo.lock (upstream commits one): refusing a floating build" >&2
    exit 1
fi
need_tools "pkg-config libssl-dev clang libclang-dev binutils" pkg-config clang strip

# shellcheck source-path=SCRIPTDIR source=../rust.sh
. "$here/../rust.sh"
select_rust
if [ "$rustc_release" != "$RUST_TOOLCHAIN" ]; then
    echo "$prog: valkey-ldap needs Rust $RUST_TOOLCHAIN exactly (>= 1.88 builds a module that segfaults), found $rustc_version" >&2
    exit 1
fi

jobs=${JOBS:-$(nproc)}
(cd "$src" && "${cargo[@]}" build --release --locked --jobs "$jobs")

target=${CARGO_TARGET_DIR:-$src/target}
mkdir -p -- "$out"
install -m 0755 "$target/release/$MODULE_FILE" "$out/$MODULE_FILE"
strip --strip-debug "$out/$MODULE_FILE"
echo "$prog: built $out/$MODULE_FILE (valkey-ldap $VERSION, $rustc_version)"
