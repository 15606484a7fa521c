#!/usr/bin/env bash
# Sourced by the Rust recipes (bloom, ldap), after recipe.sh and module.env (not run).
# It sets variables for the recipe and reads prog, RUST_MIN and RUST_BELOW from it:
# shellcheck disable=SC2034,SC2154

# select_rust: checks that the cargo and rustc on PATH (Debian's, in the image build)
# are a release in [RUST_MIN, RUST_BELOW) from module.env; sets rustc_version.
# With rustup, RUSTUP_TOOLCHAIN picks another installed toolchain.
select_rust() {
    local release
    if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
        echo "$prog: cargo and rustc not found; install Rust >= $RUST_MIN${RUST_BELOW:+ and < $RUST_BELOW} (Debian trixie: apt-get install cargo rustc)" >&2
        exit 1
    fi
    rustc_version=$(rustc --version)
    read -r _ release _ <<<"$rustc_version"
    release=${release%%-*}
    if ! rust_at_least "$release" "$RUST_MIN" || { [ -n "${RUST_BELOW:-}" ] && rust_at_least "$release" "$RUST_BELOW"; }; then
        echo "$prog: $rustc_version: this module needs Rust >= $RUST_MIN${RUST_BELOW:+ and < $RUST_BELOW} (module.env: RUST_MIN, RUST_BELOW)" >&2
        exit 1
    fi
}

# rust_at_least A B: release A (1.85.1) is B (1.85, 1.88.0) or newer.
rust_at_least() {
    local a b i
    IFS=. read -r -a a <<<"$1"
    IFS=. read -r -a b <<<"$2"
    for i in 0 1 2; do
        if [ "${a[i]:-0}" -gt "${b[i]:-0}" ]; then return 0; fi
        if [ "${a[i]:-0}" -lt "${b[i]:-0}" ]; then return 1; fi
    done
    return 0
}

# cargo_build_offline: cargo build --release in $src against the crates vendored in
# $DEPS_DIR/crates (modules/fetch.sh), --offline --locked, with the Cargo.lock they
# were vendored against; cargo checks every crate against that lock's checksums.
cargo_build_offline() {
    local crates=$DEPS_DIR/crates jobs=${JOBS:-$(nproc)}
    if [ ! -f "$crates/Cargo.lock" ] || [ ! -d "$crates/vendor" ]; then
        echo "$prog: $crates is not a vendored crates tree (Cargo.lock, vendor/)" >&2
        exit 2
    fi
    # Dated by the source as unpacked (before the lock is copied into it); paths in panic
    # messages relative to the source, the crates and the target directory, and so in
    # the C that crates' build scripts compile (the cc crate reads CFLAGS). Cargo leaves
    # --remap-path-prefix out of its crate hashes: symbol names do not depend on it.
    mkdir -p -- "${CARGO_TARGET_DIR:-$src/target}"
    reproducible "$src" "$DEPS_DIR" "${CARGO_TARGET_DIR:-$src/target}"
    export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$remap_path"
    export CFLAGS="${CFLAGS:+$CFLAGS }$prefix_map" CXXFLAGS="${CXXFLAGS:+$CXXFLAGS }$prefix_map"
    cp -- "$crates/Cargo.lock" "$src/Cargo.lock"
    (cd "$src" && cargo build --release --offline --locked --jobs "$jobs" \
        --config "source.crates-io.replace-with='vendored-crates'" \
        --config "source.vendored-crates.directory='$crates/vendor'")
}
