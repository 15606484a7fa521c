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
#   <INPUT>_BLOBS    files whose bytes a repository lacks (a mirror that leaves out
#                    large files): each is added to the clone as a git blob and must be
#                    one the pinned tree records -- the same bytes, so not a substitute
#   VALKEY_BUNDLE_OFFLINE=1  never download: what is not in CACHE_DIR (or given by an
#                    override) fails at once, with the input named
# Substitutes, for a git source whose pin cannot be had (a tag no reachable mirror
# holds): never taken for the pin, asked for by name, said wherever they are used.
#   <INPUT>_COMMIT   build from this commit instead of the pinned one (or the tag's);
#                    <INPUT>_COMMIT_NOTE says what it is ("v1.70 branch point")
#   <INPUT>_SUBMODULES  with SUBMODULES=yes: only these submodule paths (comma or
#                    space separated, not recursive); the others stay empty directories
#   <INPUT>_OMIT     paths left out of the tarball (also inside submodules), for files
#                    a mirror lacks and the build does not read
# Any of these packs CACHE_DIR/<name>-<version>.substitute.tar.gz, with the line that
# describes it in <...>.substitute.txt. Later, with none of them set, the cached
# substitute is used only where VALKEY_BUNDLE_SUBSTITUTES names the input (a list, or
# all) and the pin itself is not in the cache; it is said on stderr as
# "INPUT: substitute: <what>".
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
commit_var=${upper}_COMMIT note_var=${upper}_COMMIT_NOTE submodules_var=${upper}_SUBMODULES
omit_var=${upper}_OMIT blobs_var=${upper}_BLOBS
sub_commit=${!commit_var:-} sub_note=${!note_var:-} sub_submodules=${!submodules_var:-}
sub_omit=${!omit_var:-} blobs=${!blobs_var:-}
# Lists: commas or spaces.
sub_submodules=${sub_submodules//,/ } sub_omit=${sub_omit//,/ } blobs=${blobs//,/ }
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
if [ -n "$sub_commit$sub_submodules$sub_omit$blobs" ] && [ "$is_git" = no ]; then
    die "${commit_var%_COMMIT}_COMMIT, _SUBMODULES, _OMIT and _BLOBS are for git sources; $input is a tarball"
fi
[ -z "$sub_submodules" ] || [ "$SUBMODULES" = yes ] || die "$submodules_var is set but $input has no submodules (${prefix}SUBMODULES)"
if [ -n "$sub_commit" ] && ! printf '%s' "$sub_commit" | grep -Eq '^[0-9a-f]{40}$'; then
    die "$commit_var must be a full commit id (40 hex digits), not '$sub_commit'"
fi

sub_tarball=$cache/$name.substitute.tar.gz
sub_text=$cache/$name.substitute.txt

# 2. Already in the cache and still matching the pin.
if [ -f "$dest" ] && [ -z "$sub_commit$sub_submodules$sub_omit" ]; then
    if [ -n "$expected" ]; then
        if [ "$(sha_of "$dest")" = "$expected" ]; then echo "$dest"; exit 0; fi
    elif [ "$is_git" = yes ] && [ -n "$commit" ] && [ "$(commit_of "$dest")" = "$commit" ]; then
        echo "$dest"
        exit 0
    fi
    echo "$prog: $dest does not match the pin; fetching it again" >&2
    rm -f -- "$dest"
fi

# 2b. A substitute packed earlier, where it was asked for by name (and the pin is not
# here): its description and sha256 are in $sub_text.
substitute_allowed() {
    local allowed=${VALKEY_BUNDLE_SUBSTITUTES:-}
    case " ${allowed//,/ } " in *" $input "* | *" all "*) return 0 ;; esac
    return 1
}
if [ -z "$sub_commit$sub_submodules$sub_omit" ] && [ -f "$sub_tarball" ] && [ -f "$sub_text" ] && substitute_allowed; then
    description=$(sed -n 1p "$sub_text")
    recorded=$(sed -n 's/^sha256 //p' "$sub_text")
    [ "$(sha_of "$sub_tarball")" = "$recorded" ] ||
        die "$sub_tarball does not match the sha256 recorded in $sub_text: fetch the substitute again"
    echo "$prog: $input: substitute: $description" >&2
    echo "$sub_tarball"
    exit 0
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

# 3b. Git source: the tag must resolve to the pinned commit (a substitute commit is
# taken as asked, and said).
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
pin_text=${SOURCE_TAG:-$VERSION}
if [ -n "$sub_commit" ]; then
    # The pin as it stands: its commit when known, and whether it is verified.
    if [ -n "$commit" ] && [ "${PIN_VERIFIED:-}" = yes ]; then
        pin_text="$pin_text (${commit:0:8})"
    else
        pin_text="$pin_text unverified"
    fi
    commit=$sub_commit
elif [ -z "$commit" ]; then
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
git -C "$work/repo" cat-file -e "$commit^{commit}" 2>/dev/null || die "commit $commit not found in $remote; $hint"

# Blobs the repository lacks, from files with the very same bytes.
for file in $blobs; do
    [ -f "$file" ] || die "$blobs_var: $file: no such file"
    blob=$(git -C "$work/repo" hash-object -w -- "$file")
    path=$(git -C "$work/repo" ls-tree -r "$commit" | awk -v b="$blob" '$3 == b && !found { sub(/^[^\t]*\t/, ""); print; found = 1 }')
    [ -n "$path" ] || die "$blobs_var: $file (blob $blob) is no file of $input at $commit"
    echo "$prog: $input: $path (blob ${blob:0:12}) from $file" >&2
done

# pack_tree REPO COMMIT PATH: REPO at COMMIT into the archive under $name/PATH (with
# the paths of OMIT left out), then each submodule at the commit the tree records,
# cloned from the URL in .gitmodules (git's url.<mirror>.insteadOf applies): all of
# them, recursively, or those named in SUBMODULES only. Packed from the object store,
# no files checked out: a mirror may lack blobs of files the build never reads.
parts=0
mkdir -p "$work/parts"
pack_tree() {
    local repo=$1 at=$2 path=$3 omit attributes _mode type sha sub full sub_name url clone
    attributes=$(git -C "$repo" rev-parse --absolute-git-dir)/info/attributes
    mkdir -p -- "$(dirname -- "$attributes")"
    for omit in $sub_omit; do
        if [ -z "$path" ]; then
            printf '/%s export-ignore\n' "${omit#/}" >>"$attributes"
        elif [[ $omit == "$path"/* ]]; then
            printf '/%s export-ignore\n' "${omit#"$path"/}" >>"$attributes"
        fi
    done
    parts=$((parts + 1))
    if ! err=$(git -C "$repo" archive --format=tar --prefix="$name/${path:+$path/}" \
        -o "$work/parts/$(printf '%04d' "$parts").tar" "$at" 2>&1); then
        die "cannot pack ${path:-$remote} at $at (${err##*$'\n'}); $hint"
    fi
    [ "$SUBMODULES" = yes ] || return 0
    while read -r _mode type sha sub; do
        [ "$type" = commit ] || continue
        full=${path:+$path/}$sub
        [ -z "$sub_submodules" ] || [[ " $sub_submodules " == *" $full "* ]] || continue
        sub_name=$(git -C "$repo" config --blob "$at:.gitmodules" --get-regexp '^submodule\..*\.path$' |
            awk -v p="$sub" '$2 == p && !found { print $1; found = 1 }')
        sub_name=${sub_name#submodule.}
        sub_name=${sub_name%.path}
        url=$(git -C "$repo" config --blob "$at:.gitmodules" "submodule.$sub_name.url" 2>/dev/null) ||
            die "submodule $full of $input has no URL in .gitmodules"
        clone=$work/sub-$parts
        if ! err=$(git clone --quiet --bare -- "$url" "$clone" 2>&1); then
            die "cannot clone submodule $full of $input from $url (${err##*$'\n'}); $hint"
        fi
        git -C "$clone" cat-file -e "$sha^{commit}" 2>/dev/null ||
            die "submodule $full of $input: commit $sha not found in $url"
        pack_tree "$clone" "$sha" "$full"
    done < <(git -C "$repo" ls-tree -r "$at")
}
pack_tree "$work/repo" "$commit" ''
# The superproject first: its commit stays in the tarball's first header.
mv -- "$work/parts/0001.tar" "$work/archive.tar"
while IFS= read -r -d '' part; do
    tar --concatenate -f "$work/archive.tar" "$part"
done < <(find "$work/parts" -name '*.tar' -print0 | sort -z)
gzip -n "$work/archive.tar"
actual=$(sha_of "$work/archive.tar.gz")

if [ -n "$sub_commit$sub_submodules$sub_omit" ]; then
    description="the pinned ${commit:0:8}"
    [ -z "$sub_commit" ] || description="${commit:0:8}${sub_note:+ ($sub_note)}; pin $pin_text"
    # shellcheck disable=SC2086  # lists, one word each
    [ -z "$sub_submodules" ] || description="$description; submodules only: $(printf '%s, ' $sub_submodules | sed 's/, $//')"
    # shellcheck disable=SC2086
    [ -z "$sub_omit" ] || description="$description; without: $(printf '%s, ' $sub_omit | sed 's/, $//')"
    printf '%s\nsha256 %s\n' "$description" "$actual" >"$work/substitute.txt"
    mv -f -- "$work/archive.tar.gz" "$sub_tarball"
    mv -f -- "$work/substitute.txt" "$sub_text"
    echo "$prog: $input: substitute: $description; packed as $sub_tarball (sha256 $actual)" >&2
    echo "$sub_tarball"
    exit 0
fi
if [ -n "$expected" ] && [ "$actual" != "$expected" ]; then
    die "checksum mismatch for the archive of $remote at $commit: expected sha256 $expected, got $actual"
fi
echo "$prog: $input $VERSION at $commit packed as $dest (sha256 $actual)" >&2
mv -f -- "$work/archive.tar.gz" "$dest"
echo "$dest"
