#!/usr/bin/env bash
# Make a local Debian trixie base image for the container tests (no registry needed):
# debootstrap --variant=minbase into a temp dir, tar it, `docker import` it.
#   tests/support/make-base-image.sh [IMAGE_NAME]
# IMAGE_NAME defaults to valkey-bundle-test/trixie-minbase:<key>, where <key> is a
# truncated sha256 of the suite, variant, mirror and this script. The rootfs tarball
# is cached at <cache>/rootfs/<key>.tar (<cache> as for the native test bed:
# $VALKEY_BUNDLE_CACHE, else $XDG_CACHE_HOME/valkey-bundle, else ~/.cache/valkey-bundle);
# debootstrap is skipped when it exists, the import when the image exists.
# Prints the image name on stdout, progress on stderr. Needs root, debootstrap and
# a Docker engine. DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

prog=tests/support/make-base-image.sh
die() { echo "$prog: $*" >&2; exit 1; }
[ "$#" -le 1 ] || { echo "usage: $prog [IMAGE_NAME]" >&2; exit 2; }

suite=trixie
variant=minbase
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
self=${BASH_SOURCE[0]}

key=$({ printf 'suite=%s\nvariant=%s\nmirror=%s\n' "$suite" "$variant" "$mirror"; cat -- "$self"; } |
    sha256sum | cut -c1-16)
image=${1:-valkey-bundle-test/trixie-minbase:$key}

command -v docker >/dev/null 2>&1 || die "docker not found"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (docker info failed)"
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    exit 0
fi

cache=${VALKEY_BUNDLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/valkey-bundle}
rootfs_dir=$cache/rootfs
rootfs=$rootfs_dir/$key.tar
mkdir -p -- "$rootfs_dir"

exec 9>"$rootfs_dir/$key.lock"
flock 9 # another run may be making the same rootfs

if [ ! -f "$rootfs" ]; then
    command -v debootstrap >/dev/null 2>&1 ||
        die "debootstrap not found: install it first (apt-get install -y debootstrap)"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    work=$(mktemp -d "$rootfs_dir/.debootstrap-$key.XXXXXX")
    trap 'rm -rf -- "$work"' EXIT
    log=$rootfs_dir/$key.log
    echo "$prog: debootstrap --variant=$variant $suite from $mirror (log: $log)" >&2
    if ! debootstrap --variant="$variant" "$suite" "$work/root" "$mirror" >"$log" 2>&1; then
        tail -n 20 -- "$log" >&2
        die "debootstrap failed, see $log"
    fi
    rm -f "$work"/root/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$work/root" -cf "$work/rootfs.tar" .
    mv -f -- "$work/rootfs.tar" "$rootfs"
fi

echo "$prog: importing $rootfs as $image" >&2
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.valkey-bundle.rootfs-key=$key" \
    - "$image" <"$rootfs" >/dev/null
echo "$image"
