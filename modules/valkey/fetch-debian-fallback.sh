#!/usr/bin/env bash
# Offline fallback for the tests only: fetch Debian's copy of the upstream Valkey
# source (DEBIAN_FALLBACK_* in modules/valkey/module.env) from sid's source
# packages, for machines that cannot reach GitHub. The image build never uses it.
#   modules/valkey/fetch-debian-fallback.sh CACHE_DIR
# Leaves CACHE_DIR/<DEBIAN_FALLBACK_FILE>, verified, and prints its path.
# Uses a private apt configuration under CACHE_DIR/debian-apt; the system's apt
# configuration, lists and caches are not touched.
set -euo pipefail

prog=modules/valkey/fetch-debian-fallback.sh
if [ "$#" -ne 1 ]; then
    echo "usage: $prog CACHE_DIR" >&2
    exit 2
fi
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
. "$here/module.env"
: "${DEBIAN_FALLBACK_FILE:?} ${DEBIAN_FALLBACK_SHA256:?} ${DEBIAN_FALLBACK_VERSION:?}"

mkdir -p -- "$1"
cache=$(cd -- "$1" && pwd)
target=$cache/$DEBIAN_FALLBACK_FILE

sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }

if [ -f "$target" ] && [ "$(sha_of "$target")" = "$DEBIAN_FALLBACK_SHA256" ]; then
    echo "$target"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "$prog: apt-get not found: the Debian fallback needs a Debian-based machine" >&2
    exit 1
fi

aptdir=$cache/debian-apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
printf '%s\n' 'deb-src http://deb.debian.org/debian sid main' >"$aptdir/sources.list"
apt_opts=(
    -o "Dir::Etc::SourceList=$aptdir/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$aptdir/lists"
    -o "Dir::Cache=$aptdir/cache"
    -o "Acquire::Retries=2"
    -o "Acquire::http::Timeout=20"
)
if [ "$(id -u)" = 0 ]; then
    # apt would hand the download to the _apt user, who cannot write a private
    # cache under a home directory.
    apt_opts+=(-o "APT::Sandbox::User=root")
fi

log=$aptdir/apt.log
if ! apt-get "${apt_opts[@]}" -q update >"$log" 2>&1; then
    echo "$prog: apt-get update of deb-src sid main failed (see $log): $(tail -n 1 "$log")" >&2
    exit 1
fi
if ! uris=$(apt-get "${apt_opts[@]}" -q source --print-uris valkey 2>>"$log"); then
    echo "$prog: Debian sid offers no 'valkey' source package (see $log)" >&2
    exit 1
fi
if ! printf '%s\n' "$uris" | grep -q "[[:space:]]${DEBIAN_FALLBACK_FILE}[[:space:]]"; then
    offered=$(printf '%s\n' "$uris" | grep -o "valkey_[^[:space:]']*\.orig\.tar\.[a-z0-9]*" | head -n 1)
    echo "$prog: Debian sid has moved on: it offers ${offered:-no orig tarball}, not $DEBIAN_FALLBACK_FILE; update DEBIAN_FALLBACK_* in modules/valkey/module.env" >&2
    exit 1
fi

work=$(mktemp -d "$aptdir/download.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
if ! (cd "$work" && apt-get "${apt_opts[@]}" -q source --download-only valkey) >>"$log" 2>&1; then
    echo "$prog: apt-get source --download-only valkey failed (see $log): $(tail -n 1 "$log")" >&2
    exit 1
fi
actual=$(sha_of "$work/$DEBIAN_FALLBACK_FILE")
if [ "$actual" != "$DEBIAN_FALLBACK_SHA256" ]; then
    echo "$prog: checksum mismatch for $DEBIAN_FALLBACK_FILE from Debian sid: expected sha256 $DEBIAN_FALLBACK_SHA256, got $actual" >&2
    exit 1
fi
mv -f -- "$work/$DEBIAN_FALLBACK_FILE" "$target"
echo "$target"
