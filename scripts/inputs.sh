#!/usr/bin/env bash
# The inputs: the pins of every component and dependency in modules/*/module.env
# (env_value, inputs, input_pin, check_pins, versions), the cache they are fetched
# into and verified in by modules/fetch.sh (fetch_inputs), the substitutes and the
# missing among them, and a VALKEY_TARBALL that is not the pinned release. Sourced
# (not run): by build.sh for versions, check-pins and fetch, and by image.sh, which
# builds on it.

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# --- pins -------------------------------------------------------------------------

# env_value COMPONENT NAME: the value of NAME in modules/COMPONENT/module.env.
env_value() {
    local file=$modules_dir/$1/module.env line value=''
    [ -f "$file" ] || die "$file is missing"
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            "$2="*)
                value=${line#"$2="}
                value=${value#\"}
                value=${value%\"}
                ;;
        esac
    done <"$file"
    printf '%s' "$value"
}

valkey_version() {
    local version
    version=$(env_value valkey VERSION)
    [ -n "$version" ] || die "modules/valkey/module.env has no VERSION"
    printf '%s' "$version"
}

# Every input of every component: the component, then its dependencies (DEPS in its
# module.env), as modules/fetch.sh names them (search, search/grpc, ...).
inputs() {
    local c d
    for c in "${components[@]}"; do
        printf '%s\n' "$c"
        for d in $(env_value "$c" DEPS); do
            printf '%s\n' "$c/$d"
        done
    done
}

# input_value INPUT NAME: NAME of INPUT (<DEP>_NAME in the component's module.env for
# a dependency).
input_value() {
    local prefix=''
    [ "${1%%/*}" = "$1" ] || prefix=$(printf '%s' "${1#*/}" | tr '[:lower:]-' '[:upper:]_')_
    env_value "${1%%/*}" "$prefix$2"
}

# input_version INPUT: its VERSION; vendored crates have their component's.
input_version() {
    if [ "$(input_value "$1" KIND)" = crates ]; then
        env_value "${1%%/*}" VERSION
    else
        input_value "$1" VERSION
    fi
}

# input_pin INPUT: its sha256, commit or Cargo.lock sha256; empty when unknown.
input_pin() {
    local pin
    pin=$(input_value "$1" SOURCE_SHA256)
    [ -n "$pin" ] || pin=$(input_value "$1" SOURCE_COMMIT)
    [ -n "$pin" ] || pin=$(input_value "$1" LOCKFILE_SHA256)
    printf '%s' "$pin"
}

# Every pin verified: what a release is built from must not be resolved on the fly.
check_pins() {
    local i bad=()
    while IFS= read -r i; do
        if [ "$(input_value "$i" PIN_VERIFIED)" != yes ] || [ -z "$(input_pin "$i")" ]; then
            bad+=("$i")
        fi
    done < <(inputs)
    if [ "${#bad[@]}" -gt 0 ]; then
        die "unverified pins: ${bad[*]}; run ./build.sh fetch or modules/update-pins where GitHub is reachable and record what they resolve (or merge the pull request of the update-pins workflow)"
    fi
    note "every pin is verified"
}

versions() {
    local i pin
    printf '%-19s %-16s %-66s %-64s %s\n' INPUT VERSION SOURCE SHA256/COMMIT/LOCK VERIFIED
    while IFS= read -r i; do
        pin=$(input_pin "$i")
        printf '%-19s %-16s %-66s %-64s %s\n' "$i" "$(input_version "$i")" \
            "$(input_value "$i" SOURCE_URL)" "${pin:-(unknown)}" "$(input_value "$i" PIN_VERIFIED | sed 's/^$/no/')"
    done < <(inputs)
}

# --- the cache --------------------------------------------------------------------

cache_dir() {
    printf '%s' "${VALKEY_BUNDLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/valkey-bundle}"
}

# fetch_inputs MODE [INPUT...]: the inputs (default: all) into the cache, verified; one
# line per input on stdout. MODE "fetch": a missing input is an error at the end;
# "link": also linked into modules/sources/ for the Dockerfile (a verified copy already
# there is accepted too), and what is missing is left in missing_inputs for the caller.
# The path of each verified input is left in input_path.
missing_inputs=()
declare -A input_path=() input_substitute=()
# Which cached substitutes fetch.sh may take (VALKEY_BUNDLE_SUBSTITUTES): set by --substitutes.
substitutes_allowed=''
fetch_inputs() {
    local mode=$1 sources i path err name errfile all
    shift
    sources=$(cache_dir)/sources
    mkdir -p -- "$sources"
    missing_inputs=()
    if [ "$#" -eq 0 ]; then
        mapfile -t all < <(inputs)
        set -- "${all[@]}"
    fi
    for i in "$@"; do
        name=${i//\//-}-$(input_version "$i").tar.gz
        errfile=$sources/.fetch-${i//\//-}.err
        if ! path=$(VALKEY_BUNDLE_SUBSTITUTES=$substitutes_allowed "$modules_dir/fetch.sh" "$i" "$sources" 2>"$errfile"); then
            if [ "$mode" = link ] && [ -f "$modules_dir/sources/$name" ] &&
                path=$(VALKEY_BUNDLE_OFFLINE=1 "$modules_dir/fetch.sh" "$i" "$modules_dir/sources" 2>/dev/null); then
                rm -f -- "$errfile"
                input_path[$i]=$path
                printf '%-19s %s\n' "$i" "$path"
                continue
            fi
            err=$(grep -v '^$' "$errfile" | tail -n 1)
            err=${err#modules/fetch.sh: }
            rm -f -- "$errfile"
            note "${err:-modules/fetch.sh $i failed}"
            missing_inputs+=("$i")
            continue
        fi
        # Unverified pins are resolved by fetch.sh, substitutes said: show what it found.
        grep -E 'warning|resolved|packed|vendored|substitute:' "$errfile" >&2 || true
        input_substitute[$i]=$(sed -n "s|^modules/fetch.sh: $i: substitute: ||p" "$errfile" | head -n 1)
        rm -f -- "$errfile"
        input_path[$i]=$path
        printf '%-19s %s\n' "$i" "$path"
        # Another Valkey than the pin goes in under its own name (valkey_override).
        if [ "$mode" = link ] && ! { [ "$i" = valkey ] && valkey_overridden; }; then
            name=$(basename -- "$path")
            # Old versions of this input would only invalidate the build cache.
            find "$modules_dir/sources" -maxdepth 1 \( -name "${i//\//-}-*.tar.gz" -o -name "${i//\//-}-*.substitute.txt" \) \
                ! -name "$name" ! -name "${name%.tar.gz}.txt" -delete
            link_source "$path"
            [ -z "${input_substitute[$i]}" ] || link_source "${path%.tar.gz}.txt"
        fi
    done
    if [ "$mode" = fetch ] && [ "${#missing_inputs[@]}" -gt 0 ]; then
        die "missing inputs: ${missing_inputs[*]} (neither in $sources nor reachable)"
    fi
}

# link_source FILE: FILE in modules/sources/, where the Dockerfile takes its inputs.
link_source() {
    local target
    target=$modules_dir/sources/$(basename -- "$1")
    [ "$1" -ef "$target" ] || ln -f -- "$1" "$target" 2>/dev/null || cp -f -- "$1" "$target"
}

# substitutes_of COMPONENT: the inputs of COMPONENT that come from a substitute.
substitutes_of() {
    local i out=()
    for i in "${!input_substitute[@]}"; do
        [ -z "${input_substitute[$i]}" ] || [ "${i%%/*}" != "$1" ] || out+=("$i")
    done
    printf '%s' "${out[*]:-}"
}

# substitutes_text: every substitute in use, "INPUT: substitute WHAT; ...", sorted.
substitutes_text() {
    local i
    for i in "${!input_substitute[@]}"; do
        [ -z "${input_substitute[$i]}" ] || printf '%s: substitute %s\n' "$i" "${input_substitute[$i]}"
    done | sort | paste -sd '|' | sed 's/|/ | /g'
}

# missing_of COMPONENT: the inputs of COMPONENT among missing_inputs, space separated.
missing_of() {
    local i out=()
    for i in ${missing_inputs[@]+"${missing_inputs[@]}"}; do
        [ "${i%%/*}" != "$1" ] || out+=("$i")
    done
    printf '%s' "${out[*]:-}"
}

# --- another Valkey than the pin --------------------------------------------------

# Whether VALKEY_TARBALL is another Valkey than the pinned release.
valkey_overridden() {
    local sha
    [ -n "${VALKEY_TARBALL:-}" ] || return 1
    sha=$(printf '%s' "${VALKEY_SHA256:-}" | tr 'A-F' 'a-f')
    [ "$sha" != "$(env_value valkey SOURCE_SHA256)" ]
}

# valkey_override: with a VALKEY_TARBALL that is not the pinned release, that tarball
# (verified by fetch_inputs against VALKEY_SHA256) in modules/sources/ under its own name;
# prints its file name and version (from its src/version.h). Nothing otherwise.
valkey_override() {
    local tarball=${input_path[valkey]} name version
    valkey_overridden || return 0
    name=$(basename -- "$tarball")
    [[ $name == valkey* ]] || die "VALKEY_TARBALL: the Dockerfile's valkey stage takes only files named valkey*, not $name"
    [ "$tarball" -ef "$modules_dir/sources/$name" ] ||
        ln -f -- "$tarball" "$modules_dir/sources/$name" 2>/dev/null || cp -f -- "$tarball" "$modules_dir/sources/$name"
    version=$(tar -xzOf "$tarball" --wildcards '*/src/version.h' 2>/dev/null |
        sed -n 's/^#define VALKEY_VERSION "\(.*\)"$/\1/p' | head -n 1)
    [ -n "$version" ] || die "VALKEY_TARBALL=$VALKEY_TARBALL: no VALKEY_VERSION in its src/version.h"
    printf '%s %s\n' "$name" "$version"
}
