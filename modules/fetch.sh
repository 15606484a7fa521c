#!/usr/bin/env bash
# Download a component's pinned source into CACHE_DIR (if not already there), verify
# it and print the path of the verified tarball -- nothing else -- on stdout.
#   modules/fetch.sh COMPONENT CACHE_DIR
# COMPONENT is a directory under modules/ (valkey, search, json, bloom, ldap); its
# module.env says where the source comes from:
#   tarball source: SOURCE_URL + SOURCE_SHA256 -> CACHE_DIR/<component>-<version>.tar.gz
#   git source:     SOURCE_URL + SOURCE_COMMIT -> cloned, checked out, HEAD verified,
#                   packed with `git archive` under <component>-<version>/ into
#                   CACHE_DIR/<component>-<version>.tar.gz (unpack with STRIP=1)
# Overrides (COMPONENT upper-cased, e.g. VALKEY_TARBALL / VALKEY_SHA256):
#   <COMPONENT>_TARBALL  a local tarball to use instead of downloading; it is
#                        verified and its own path is printed (it is not copied)
#   <COMPONENT>_SHA256   the sha256 to verify against instead of SOURCE_SHA256
# With PIN_VERIFIED=no, an "unknown" SOURCE_SHA256 / SOURCE_COMMIT is resolved from
# the network and printed on stderr, so that it can be written into module.env.
set -euo pipefail

prog=modules/fetch.sh
usage() { echo "usage: $prog COMPONENT CACHE_DIR" >&2; exit 2; }
die() { echo "$prog: $*" >&2; exit 1; }
[ "$#" -eq 2 ] || usage
component=$1
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
envfile=$here/$component/module.env
case $component in '' | */* | .*) usage ;; esac
[ -f "$envfile" ] || die "unknown component '$component' (no $envfile)"

VERSION='' SOURCE_URL='' SOURCE_SHA256='' SOURCE_COMMIT='' PIN_VERIFIED=''
# shellcheck source=/dev/null
. "$envfile"
[ -n "$VERSION" ] || die "$envfile: VERSION is not set"
[ -n "$SOURCE_URL" ] || die "$envfile: SOURCE_URL is not set"

upper=$(printf '%s' "$component" | tr '[:lower:]' '[:upper:]' | tr -c 'A-Z0-9' '_')
tarball_var=${upper}_TARBALL sha_var=${upper}_SHA256
override_tarball=${!tarball_var:-}
expected=${!sha_var:-$SOURCE_SHA256}
if [ "$expected" = unknown ]; then expected=''; fi
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
if [ -n "$expected" ] && ! printf '%s' "$expected" | grep -Eq '^[0-9a-f]{64}$'; then
    die "expected sha256 for $component is not 64 hex digits: '$expected' (from ${!sha_var:+$sha_var}${!sha_var:-$envfile})"
fi

mkdir -p -- "$2"
cache=$(cd -- "$2" && pwd)
dest=$cache/$component-$VERSION.tar.gz
name=$component-$VERSION

sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# The commit a `git archive` tarball was made from (stored in its pax header).
commit_of() { gzip -dc -- "$1" 2>/dev/null | git get-tar-commit-id 2>/dev/null || true; }

pin_unverified() {
    echo "$prog: warning: $component pin is not verified (PIN_VERIFIED=${PIN_VERIFIED:-unset}); resolved $1 -- record it in $envfile" >&2
}

# 1. An explicit local tarball.
if [ -n "$override_tarball" ]; then
    [ -f "$override_tarball" ] || die "$tarball_var=$override_tarball: no such file"
    [ -n "$expected" ] || die "$tarball_var is set but no sha256 is known for $component: set $sha_var"
    actual=$(sha_of "$override_tarball")
    [ "$actual" = "$expected" ] ||
        die "checksum mismatch for $override_tarball ($tarball_var): expected sha256 $expected, got $actual"
    override_tarball=$(cd -- "$(dirname -- "$override_tarball")" && pwd)/$(basename -- "$override_tarball")
    echo "$override_tarball"
    exit 0
fi

commit=$SOURCE_COMMIT
if [ "$commit" = unknown ]; then commit=''; fi
# A git source is pinned by commit; one whose commit is still unknown is recognised
# by its repository URL, so it is never downloaded as if it were a tarball.
is_git=no
case "$SOURCE_URL" in *.git) is_git=yes ;; esac
[ -n "$SOURCE_COMMIT" ] && is_git=yes

# 2. Already in the cache and still matching the pin.
if [ -f "$dest" ]; then
    if [ -n "$expected" ]; then
        if [ "$(sha_of "$dest")" = "$expected" ]; then echo "$dest"; exit 0; fi
    elif [ "$is_git" = yes ] && [ -n "$commit" ] && [ "$(commit_of "$dest")" = "$commit" ]; then
        echo "$dest"
        exit 0
    fi
    echo "$prog: $dest does not match the pin; fetching it again" >&2
    rm -f -- "$dest"
fi

work=$(mktemp -d "$cache/.fetch-$component.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
hint="put a verified copy at $dest or set $tarball_var=/path/to/tarball"

if [ "$is_git" = no ]; then
    # 3a. Tarball source.
    if ! err=$(curl -fsSL --connect-timeout 10 --retry 2 -o "$work/download" -- "$SOURCE_URL" 2>&1); then
        die "cannot download $SOURCE_URL (${err##*$'\n'}); $hint"
    fi
    actual=$(sha_of "$work/download")
    if [ -z "$expected" ]; then
        [ "${PIN_VERIFIED:-}" = no ] || die "$envfile: SOURCE_SHA256 is not set"
        pin_unverified "SOURCE_SHA256=$actual"
    elif [ "$actual" != "$expected" ]; then
        die "checksum mismatch for $SOURCE_URL: expected sha256 $expected, got $actual"
    fi
    mv -f -- "$work/download" "$dest"
else
    # 3b. Git source: the tag must resolve to the pinned commit.
    command -v git >/dev/null 2>&1 || die "git is needed to fetch $component from $SOURCE_URL"
    if ! err=$(git clone --quiet --no-checkout -- "$SOURCE_URL" "$work/repo" 2>&1); then
        die "cannot clone $SOURCE_URL (${err##*$'\n'}); $hint"
    fi
    tag_commit=''
    for tag in "$VERSION" "v$VERSION"; do
        if tag_commit=$(git -C "$work/repo" rev-parse --verify --quiet "refs/tags/$tag^{commit}"); then
            break
        fi
        tag_commit=''
    done
    if [ -z "$commit" ]; then
        [ "${PIN_VERIFIED:-}" = no ] || die "$envfile: SOURCE_COMMIT is not set"
        [ -n "$tag_commit" ] || die "$SOURCE_URL has no tag $VERSION (or v$VERSION)"
        commit=$tag_commit
        pin_unverified "SOURCE_COMMIT=$commit"
    elif [ -z "$tag_commit" ]; then
        echo "$prog: warning: $SOURCE_URL has no tag $VERSION (or v$VERSION); using the pinned commit" >&2
    elif [ "$tag_commit" != "$commit" ]; then
        die "tag $VERSION of $SOURCE_URL is $tag_commit, not the pinned $commit"
    fi
    git -C "$work/repo" -c advice.detachedHead=false checkout --quiet "$commit" ||
        die "commit $commit not found in $SOURCE_URL"
    head=$(git -C "$work/repo" rev-parse HEAD)
    [ "$head" = "$commit" ] || die "checked out $head, expected $commit"
    git -C "$work/repo" archive --format=tar.gz --prefix="$name/" -o "$work/archive.tar.gz" HEAD
    actual=$(sha_of "$work/archive.tar.gz")
    if [ -n "$expected" ] && [ "$actual" != "$expected" ]; then
        die "checksum mismatch for the archive of $SOURCE_URL at $commit: expected sha256 $expected, got $actual"
    fi
    echo "$prog: $component $VERSION at $commit packed as $dest (sha256 $actual)" >&2
    mv -f -- "$work/archive.tar.gz" "$dest"
fi
echo "$dest"
