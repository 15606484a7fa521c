#!/usr/bin/env bash
# Verify a source tarball's sha256, then extract it.
#   modules/unpack.sh TARBALL SHA256 STRIP DEST
# STRIP is passed to tar --strip-components; DEST is created if missing.
set -euo pipefail

prog=modules/unpack.sh
if [ "$#" -ne 4 ]; then
    echo "usage: $prog TARBALL SHA256 STRIP DEST" >&2
    exit 2
fi
tarball=$1 expected=$2 strip=$3 dest=$4

if [ ! -f "$tarball" ]; then
    echo "$prog: $tarball: no such file" >&2
    exit 1
fi
case $strip in
    '' | *[!0-9]*)
        echo "$prog: STRIP must be a non-negative integer, got '$strip'" >&2
        exit 2
        ;;
esac
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
if ! printf '%s' "$expected" | grep -Eq '^[0-9a-f]{64}$'; then
    echo "$prog: SHA256 must be 64 hex digits, got '$expected'" >&2
    exit 2
fi

actual=$(sha256sum -- "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$expected" ]; then
    echo "$prog: checksum mismatch for $tarball: expected sha256 $expected, got $actual" >&2
    exit 1
fi

mkdir -p -- "$dest"
tar -xf "$tarball" -C "$dest" --strip-components="$strip" --no-same-owner
