#!/usr/bin/env bash
# Sourced by the Rust recipes (bloom, ldap), after recipe.sh and module.env (not run).
# It sets variables for the recipe and reads prog and RUST_TOOLCHAIN from it:
# shellcheck disable=SC2034,SC2154

# select_rust: sets cargo (the command, as an array) and rustc_version/rustc_release
# for RUST_TOOLCHAIN from module.env, installing it through rustup when rustup is there.
# Without rustup the cargo and rustc on PATH are used; each recipe decides what a
# different release means for it.
select_rust() {
    cargo=(cargo)
    if command -v rustup >/dev/null 2>&1; then
        if ! rustup run "$RUST_TOOLCHAIN" rustc --version >/dev/null 2>&1; then
            rustup toolchain install --profile minimal "$RUST_TOOLCHAIN"
        fi
        cargo=(cargo "+$RUST_TOOLCHAIN")
        rustc_version=$(rustup run "$RUST_TOOLCHAIN" rustc --version)
    elif command -v cargo >/dev/null 2>&1 && command -v rustc >/dev/null 2>&1; then
        rustc_version=$(rustc --version)
    else
        echo "$prog: neither rustup nor cargo+rustc found; install rustup (then Rust $RUST_TOOLCHAIN is installed by this script)" >&2
        exit 1
    fi
    read -r _ rustc_release _ <<<"$rustc_version"
}
