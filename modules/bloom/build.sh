#!/usr/bin/env bash
# Build valkey-bloom from an unpacked, verified source tree.
#   modules/bloom/build.sh SRC_DIR OUT_DIR
# Result: OUT_DIR/libvalkey_bloom.so, debug info stripped, and OUT_DIR/Cargo.lock:
# the lock file the build used.
#
# Upstream commits no Cargo.lock. If modules/bloom/Cargo.lock exists it is copied
# into the tree and the build is --locked (reproducible). Otherwise the dependency
# versions float: cargo resolves the newest versions compatible with Cargo.toml
# that support the toolchain in use, the script warns "FLOATING", and the resolved
# lock is left in OUT_DIR/Cargo.lock to be reviewed and committed as
# modules/bloom/Cargo.lock. Rust is RUST_TOOLCHAIN from module.env (selected and, if
# missing, installed through rustup; without rustup a different rustc only warns).
# JOBS caps the parallelism (default: nproc). Needs cargo/rustc (or rustup), clang
# and libclang-dev (bindgen), and access to crates.io (or a filled CARGO_HOME).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../recipe.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../recipe.sh"
recipe_start bloom OUT_DIR "$@"
# shellcheck source-path=SCRIPTDIR source=module.env
. "$here/module.env"

if [ ! -f "$src/Cargo.toml" ] || ! grep -q '^name = "valkey-bloom"' "$src/Cargo.toml"; then
    not_a_source_tree valkey-bloom
fi
need_tools "clang libclang-dev binutils" clang strip

# shellcheck source-path=SCRIPTDIR source=../rust.sh
. "$here/../rust.sh"
select_rust
if [ "$rustc_release" != "$RUST_TOOLCHAIN" ]; then
    echo "$prog: warning: pinned Rust is $RUST_TOOLCHAIN, building with $rustc_version" >&2
fi

locked=()
if [ -f "$here/Cargo.lock" ]; then
    cp -- "$here/Cargo.lock" "$src/Cargo.lock"
    locked=(--locked)
    lock_state="locked by modules/bloom/Cargo.lock"
elif [ -f "$src/Cargo.lock" ]; then
    locked=(--locked)
    lock_state="locked by the source's own Cargo.lock"
else
    lock_state=FLOATING
    echo "$prog: warning: FLOATING build: no modules/bloom/Cargo.lock and none upstream; dependency versions are resolved now (the lock used is saved as $out/Cargo.lock)" >&2
    # Resolve versions that support this toolchain rather than the newest ones.
    export CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback
fi

jobs=${JOBS:-$(nproc)}
(cd "$src" && "${cargo[@]}" build --release "${locked[@]}" --jobs "$jobs")

target=${CARGO_TARGET_DIR:-$src/target}
mkdir -p -- "$out"
install -m 0755 "$target/release/$MODULE_FILE" "$out/$MODULE_FILE"
strip --strip-debug "$out/$MODULE_FILE"
install -m 0644 "$src/Cargo.lock" "$out/Cargo.lock"
echo "$prog: built $out/$MODULE_FILE (valkey-bloom $VERSION, $rustc_version, $lock_state)"
