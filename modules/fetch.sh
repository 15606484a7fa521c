#!/usr/bin/env bash
# Bring one pinned input into CACHE_DIR (if not already there), verify it and print
# the path of the verified tarball -- nothing else -- on stdout.
#   modules/fetch.sh INPUT CACHE_DIR
# INPUT is a component (a directory under modules/: valkey, search, json, bloom, ldap)
# or one of its dependencies, COMPONENT/DEP (search/grpc, json/rapidjson, ldap/crates,
# ...: the names in the component's DEPS). Its fields come from
# modules/COMPONENT/module.env: SOURCE_URL, SOURCE_COMMIT, ... for the component
# itself, <DEP>_SOURCE_URL, <DEP>_SOURCE_COMMIT, ... for a dependency. Kinds:
#   tarball source: SOURCE_URL + SOURCE_SHA256 -> CACHE_DIR/<name>-<version>.tar.gz
#   git source:     SOURCE_URL + SOURCE_COMMIT (+ SOURCE_TAG, default VERSION or
#                   vVERSION, which must resolve to it) -> cloned, checked out, HEAD
#                   verified, packed with `git archive` under <name>-<version>/; with
#                   SUBMODULES=yes every submodule (recursively) at the commit the tree
#                   records is packed in too
#   crates:         KIND=crates: the crates.io dependencies of the component, vendored
#                   (`cargo vendor --locked`) against LOCKFILE -- `upstream` (the
#                   Cargo.lock of the pinned source) or a path under modules/ -- whose
#                   sha256 must be LOCKFILE_SHA256; packed under crates/ with that
#                   Cargo.lock beside the crates. cargo checks every crate against it
#                   when it builds offline; their version is the component's.
#                   Vendoring needs cargo and crates.io.
# <name> is the input with / turned into - (search-grpc-1.70.1.tar.gz). Overrides, the
# input upper-cased with / and - turned into _ (VALKEY_..., SEARCH_GRPC_...):
#   <INPUT>_TARBALL  a local tarball to use instead of downloading; it is verified
#                    (sha256) and its own path is printed (it is not copied)
#   <INPUT>_SHA256   the sha256 to verify against instead of SOURCE_SHA256
#   <INPUT>_GIT      a git source: clone this repository (a local path or a mirror's
#                    URL) instead of SOURCE_URL, with the same tag and commit checks.
#                    Submodules still come from the URLs in .gitmodules: point git at
#                    a mirror with its own url.<mirror>.insteadOf configuration
#   VALKEY_BUNDLE_OFFLINE=1  never download: what is not in CACHE_DIR (or given by an
#                    override) fails at once, with the input named
# With PIN_VERIFIED=no, an unknown SOURCE_SHA256 / SOURCE_COMMIT / LOCKFILE_SHA256 is
# resolved from the network and printed on stderr, to be written into module.env.
set -euo pipefail

prog=modules/fetch.sh
usage() { echo "usage: $prog INPUT CACHE_DIR   (INPUT: COMPONENT or COMPONENT/DEP)" >&2; exit 2; }
die() { echo "$prog: $*" >&2; exit 1; }
[ "$#" -eq 2 ] || usage
input=$1
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
component=${input%%/*} dep=''
[ "$component" = "$input" ] || dep=${input#*/}
case $component/$dep in '/'* | */*/* | .* | */.*) usage ;; esac
envfile=$here/$component/module.env
[ -f "$envfile" ] || die "unknown component '$component' (no $envfile)"

DEPS=''
# shellcheck source=/dev/null
. "$envfile"
component_version=$VERSION
# field NAME: the input's own value of NAME (<DEP>_NAME for a dependency).
prefix=''
if [ -n "$dep" ]; then
    case " $DEPS " in *" $dep "*) ;; *) die "$component has no dependency '$dep' (DEPS in $envfile: ${DEPS:-none})" ;; esac
    prefix=$(printf '%s' "$dep" | tr '[:lower:]-' '[:upper:]_')_
fi
field() { local name=$prefix$1; printf '%s' "${!name:-}"; }
VERSION=$(field VERSION) SOURCE_URL=$(field SOURCE_URL) SOURCE_SHA256=$(field SOURCE_SHA256)
SOURCE_COMMIT=$(field SOURCE_COMMIT) SOURCE_TAG=$(field SOURCE_TAG) PIN_VERIFIED=$(field PIN_VERIFIED)
KIND=$(field KIND) SUBMODULES=$(field SUBMODULES) LOCKFILE=$(field LOCKFILE) LOCKFILE_SHA256=$(field LOCKFILE_SHA256)
# Vendored crates are those of the component's own version.
[ "$KIND" != crates ] || VERSION=$component_version
where="$envfile${prefix:+ (${prefix}*)}"
[ -n "$VERSION" ] || die "$where: ${prefix}VERSION is not set"
[ -n "$SOURCE_URL" ] || die "$where: ${prefix}SOURCE_URL is not set"

upper=$(printf '%s' "$input" | tr '[:lower:]' '[:upper:]' | tr -c 'A-Z0-9' '_')
tarball_var=${upper}_TARBALL sha_var=${upper}_SHA256 git_var=${upper}_GIT
override_tarball=${!tarball_var:-} override_git=${!git_var:-}
expected=${!sha_var:-$SOURCE_SHA256}
if [ "$expected" = unknown ]; then expected=''; fi
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
if [ -n "$expected" ] && ! printf '%s' "$expected" | grep -Eq '^[0-9a-f]{64}$'; then
    die "expected sha256 for $input is not 64 hex digits: '$expected' (from ${!sha_var:+$sha_var}${!sha_var:-$where})"
fi

mkdir -p -- "$2"
cache=$(cd -- "$2" && pwd)
name=${input//\//-}-$VERSION
dest=$cache/$name.tar.gz

sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# The commit a `git archive` tarball was made from (stored in its pax header).
commit_of() { gzip -dc -- "$1" 2>/dev/null | git get-tar-commit-id 2>/dev/null || true; }

pin_unverified() {
    echo "$prog: warning: the $input pin is not verified (${prefix}PIN_VERIFIED=${PIN_VERIFIED:-unset}); resolved $1 -- record it in $envfile" >&2
}

# 1. An explicit local tarball.
if [ -n "$override_tarball" ]; then
    [ -f "$override_tarball" ] || die "$tarball_var=$override_tarball: no such file"
    [ -n "$expected" ] || die "$tarball_var is set but no sha256 is known for $input: set $sha_var"
    actual=$(sha_of "$override_tarball")
    [ "$actual" = "$expected" ] ||
        die "checksum mismatch for $override_tarball ($tarball_var): expected sha256 $expected, got $actual"
    override_tarball=$(cd -- "$(dirname -- "$override_tarball")" && pwd)/$(basename -- "$override_tarball")
    echo "$override_tarball"
    exit 0
fi

# offline_stop: the download that follows is not allowed.
offline_stop() {
    [ "${VALKEY_BUNDLE_OFFLINE:-0}" != 1 ] ||
        die "$input is not in $cache (VALKEY_BUNDLE_OFFLINE=1: nothing is downloaded)"
}

work=''
trap '[ -z "$work" ] || rm -rf -- "$work"' EXIT
new_work() { work=$(mktemp -d "$cache/.fetch-${input//\//-}.XXXXXX"); }

# --- crates ----------------------------------------------------------------------

if [ "$KIND" = crates ]; then
    [ -n "$LOCKFILE" ] || die "$where: ${prefix}LOCKFILE is not set"
    lock_pin=$(printf '%s' "$LOCKFILE_SHA256" | tr 'A-F' 'a-f')
    # The lock the crates are vendored against: the pinned source's own, or ours.
    lock_file=''
    if [ "$LOCKFILE" != upstream ]; then
        lock_file=$here/${LOCKFILE#modules/}
        if [ -f "$lock_file" ]; then
            [ -z "$lock_pin" ] || [ "$(sha_of "$lock_file")" = "$lock_pin" ] ||
                die "$lock_file does not match ${prefix}LOCKFILE_SHA256 in $envfile"
            lock_pin=$(sha_of "$lock_file")
        elif [ -n "$lock_pin" ]; then
            die "$where: ${prefix}LOCKFILE_SHA256 is set but $lock_file is missing"
        else
            lock_file=''
        fi
    fi
    lock_in() { tar -xzOf "$1" crates/Cargo.lock 2>/dev/null | sha256sum | cut -d' ' -f1; }
    if [ -f "$dest" ]; then
        if [ -n "$lock_pin" ] && [ "$(lock_in "$dest")" = "$lock_pin" ]; then
            echo "$dest"
            exit 0
        fi
        if [ -z "$lock_pin" ] && tar -tzf "$dest" crates/Cargo.lock >/dev/null 2>&1; then
            echo "$prog: warning: $input: no pinned Cargo.lock yet; using the crates vendored against the lock in $dest" >&2
            echo "$dest"
            exit 0
        fi
        echo "$prog: $dest does not match the pinned Cargo.lock; vendoring again" >&2
        rm -f -- "$dest"
    fi
    offline_stop
    command -v cargo >/dev/null 2>&1 ||
        die "cargo is needed to vendor the crates of $component (install cargo, or put a verified $dest in place)"
    new_work
    # The component's own source first (its progress is not this input's).
    if ! source_tarball=$("$0" "$component" "$cache" 2>"$work/source.err"); then
        die "$input needs the $component source: $(grep -v '^$' "$work/source.err" | tail -n 1 | sed "s|^$prog: ||")"
    fi
    mkdir -p "$work/src" "$work/out/crates"
    tar -xzf "$source_tarball" -C "$work/src" --strip-components=1 --no-same-owner
    if [ -n "$lock_file" ]; then
        cp -- "$lock_file" "$work/src/Cargo.lock"
    elif [ ! -f "$work/src/Cargo.lock" ]; then
        [ "$LOCKFILE" != upstream ] || die "the $component source has no Cargo.lock (${prefix}LOCKFILE=upstream)"
        [ "${PIN_VERIFIED:-}" = no ] || die "$where: $here/${LOCKFILE#modules/} is missing"
        # No lock anywhere yet: resolve one now, for the Rust the image builds with
        # (RUST_MIN), never newer, and say that it must be recorded.
        rust_min=${RUST_MIN:-}
        cp -- "$work/src/Cargo.toml" "$work/Cargo.toml.orig"
        if [ -n "$rust_min" ]; then
            sed -i "/^\[package\]/a rust-version = \"$rust_min\"" "$work/src/Cargo.toml"
        fi
        if ! err=$(cd "$work/src" && CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
            cargo generate-lockfile 2>&1); then
            die "cannot resolve a Cargo.lock for $component (${err##*$'\n'})"
        fi
        cp -- "$work/Cargo.toml.orig" "$work/src/Cargo.toml"
        pin_unverified "a Cargo.lock for Rust ${rust_min:-of this host}: copy crates/Cargo.lock out of $dest to $LOCKFILE and set ${prefix}LOCKFILE_SHA256=$(sha_of "$work/src/Cargo.lock")"
    fi
    actual_lock=$(sha_of "$work/src/Cargo.lock")
    if [ -n "$lock_pin" ] && [ "$actual_lock" != "$lock_pin" ]; then
        die "the Cargo.lock of $component is sha256 $actual_lock, not the pinned $lock_pin (${prefix}LOCKFILE_SHA256)"
    fi
    if [ -z "$lock_pin" ] && [ "$LOCKFILE" = upstream ]; then
        [ "${PIN_VERIFIED:-}" = no ] || die "$where: ${prefix}LOCKFILE_SHA256 is not set"
        pin_unverified "${prefix}LOCKFILE_SHA256=$actual_lock"
    fi
    if ! err=$(cd "$work/src" && cargo vendor --locked --versioned-dirs --quiet "$work/out/crates/vendor" 2>&1 >/dev/null); then
        die "cargo vendor for $component failed (${err##*$'\n'})"
    fi
    mkdir -p "$work/out/crates/vendor" # cargo makes none for a crate with no dependencies
    cp -- "$work/src/Cargo.lock" "$work/out/crates/Cargo.lock"
    # Reproducible: the same lock gives the same bytes.
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/out" -cf - crates |
        gzip -n >"$work/crates.tar.gz"
    count=$(find "$work/out/crates/vendor" -mindepth 1 -maxdepth 1 -type d | wc -l)
    echo "$prog: $input: $count crates vendored against Cargo.lock sha256 $actual_lock, packed as $dest (sha256 $(sha_of "$work/crates.tar.gz"))" >&2
    mv -f -- "$work/crates.tar.gz" "$dest"
    echo "$dest"
    exit 0
fi

# --- tarball and git sources -----------------------------------------------------

commit=$SOURCE_COMMIT
if [ "$commit" = unknown ]; then commit=''; fi
# A git source is pinned by commit; one whose commit is still unknown is recognised
# by its repository URL, so it is never downloaded as if it were a tarball.
is_git=no
case "$SOURCE_URL" in *.git) is_git=yes ;; esac
[ -n "$SOURCE_COMMIT" ] && is_git=yes
[ -z "$override_git" ] || [ "$is_git" = yes ] || die "$git_var is set but $input is not a git source"

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

[ -n "$override_git" ] || offline_stop
new_work
hint="put a verified copy at $dest or set $tarball_var=/path/to/tarball"

if [ "$is_git" = no ]; then
    # 3a. Tarball source.
    if ! err=$(curl -fsSL --connect-timeout 10 --retry 2 -o "$work/download" -- "$SOURCE_URL" 2>&1); then
        die "cannot download $SOURCE_URL (${err##*$'\n'}); $hint"
    fi
    actual=$(sha_of "$work/download")
    if [ -z "$expected" ]; then
        [ "${PIN_VERIFIED:-}" = no ] || die "$where: ${prefix}SOURCE_SHA256 is not set"
        pin_unverified "${prefix}SOURCE_SHA256=$actual"
    elif [ "$actual" != "$expected" ]; then
        die "checksum mismatch for $SOURCE_URL: expected sha256 $expected, got $actual"
    fi
    mv -f -- "$work/download" "$dest"
    echo "$dest"
    exit 0
fi

# 3b. Git source: the tag must resolve to the pinned commit.
command -v git >/dev/null 2>&1 || die "git is needed to fetch $input from $SOURCE_URL"
remote=${override_git:-$SOURCE_URL}
[ -z "$override_git" ] || hint="$hint, or point $git_var at a repository that has commit ${commit:-of the tag}"
if ! err=$(git clone --quiet --no-checkout -- "$remote" "$work/repo" 2>&1); then
    die "cannot clone $remote (${err##*$'\n'}); $hint"
fi
tags=("$VERSION" "v$VERSION")
[ -z "$SOURCE_TAG" ] || tags=("$SOURCE_TAG")
tag_commit='' tag=''
for tag in "${tags[@]}"; do
    if tag_commit=$(git -C "$work/repo" rev-parse --verify --quiet "refs/tags/$tag^{commit}"); then
        break
    fi
    tag_commit=''
done
if [ -z "$commit" ]; then
    [ "${PIN_VERIFIED:-}" = no ] || die "$where: ${prefix}SOURCE_COMMIT is not set"
    [ -n "$tag_commit" ] || die "$remote has no tag ${tags[*]}"
    commit=$tag_commit
    pin_unverified "${prefix}SOURCE_COMMIT=$commit"
elif [ -z "$tag_commit" ]; then
    # A dependency that upstream follows on a branch has no tag to check: its commit is the pin.
    [ -z "$SOURCE_TAG" ] && [ -n "$dep" ] ||
        echo "$prog: warning: $remote has no tag ${tags[*]}; using the pinned commit" >&2
elif [ "$tag_commit" != "$commit" ]; then
    die "tag $tag of $remote is $tag_commit, not the pinned $commit"
fi
git -C "$work/repo" -c advice.detachedHead=false checkout --quiet "$commit" 2>/dev/null ||
    die "commit $commit not found in $remote; $hint"
head=$(git -C "$work/repo" rev-parse HEAD)
[ "$head" = "$commit" ] || die "checked out $head, expected $commit"
if ! err=$(git -C "$work/repo" archive --format=tar --prefix="$name/" -o "$work/archive.tar" HEAD 2>&1); then
    die "cannot pack $remote at $commit (${err##*$'\n'}); $hint"
fi
if [ "$SUBMODULES" = yes ]; then
    # Each submodule at the commit the superproject records (git checks that); packed
    # after the superproject, whose commit stays in the tarball's first header.
    if ! err=$(git -C "$work/repo" submodule --quiet update --init --recursive 2>&1); then
        die "cannot fetch the submodules of $input (${err##*$'\n'}); $hint"
    fi
    mkdir -p "$work/parts"
    # shellcheck disable=SC2016  # expanded by git's shell, once per submodule
    PACK_PREFIX=$name PACK_DIR=$work/parts git -C "$work/repo" submodule --quiet foreach --recursive \
        'git archive --format=tar --prefix="$PACK_PREFIX/$displaypath/" -o "$PACK_DIR/$sha1.tar" HEAD' ||
        die "cannot pack the submodules of $input"
    while IFS= read -r -d '' part; do
        tar --concatenate -f "$work/archive.tar" "$part"
    done < <(find "$work/parts" -name '*.tar' -print0 | sort -z)
fi
gzip -n "$work/archive.tar"
actual=$(sha_of "$work/archive.tar.gz")
if [ -n "$expected" ] && [ "$actual" != "$expected" ]; then
    die "checksum mismatch for the archive of $remote at $commit: expected sha256 $expected, got $actual"
fi
echo "$prog: $input $VERSION at $commit packed as $dest (sha256 $actual)" >&2
mv -f -- "$work/archive.tar.gz" "$dest"
echo "$dest"
