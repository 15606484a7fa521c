#!/usr/bin/env bash
# Sourced by every modules/*/build.sh (not run): the checks all recipes share.

# recipe_start COMPONENT OUT_WORD "$@": exactly two arguments, SRC_DIR and the output
# directory (named OUT_WORD in the usage line); sets prog, src, out and here (the
# component's directory, whose module.env the recipe then loads).
recipe_start() {
    local component=$1 out_word=$2
    shift 2
    prog=modules/$component/build.sh
    if [ "$#" -ne 2 ]; then
        echo "usage: $prog SRC_DIR $out_word" >&2
        exit 2
    fi
    # shellcheck disable=SC2034  # used by the recipe that sources this file
    src=$1 out=$2
    # shellcheck disable=SC2034
    here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/$component
}

# not_a_source_tree WHAT: stop, the source directory holds something else.
not_a_source_tree() {
    echo "$prog: $src does not look like a $1 source tree" >&2
    exit 2
}

# need_tools "PACKAGES" TOOL...: stop with one line naming the first missing tool.
need_tools() {
    local packages=$1 tool
    shift
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$prog: '$tool' not found; install $packages" >&2
            exit 1
        fi
    done
}

# need_deps "NAMES": DEPS_DIR must hold an unpacked tree for each name (as
# modules/prepare.sh leaves them); DEPS_DIR is made absolute.
need_deps() {
    local dep
    if [ -z "${DEPS_DIR:-}" ]; then
        echo "$prog: DEPS_DIR is not set: it must hold the unpacked inputs: $1 (modules/prepare.sh)" >&2
        exit 2
    fi
    for dep in $1; do
        if [ ! -d "$DEPS_DIR/$dep" ]; then
            echo "$prog: $DEPS_DIR/$dep is missing: DEPS_DIR must hold the unpacked inputs: $1 (modules/prepare.sh)" >&2
            exit 2
        fi
    done
    DEPS_DIR=$(cd -- "$DEPS_DIR" && pwd)
}

# jobs_for_memory GIB: nproc, but at most one job per GIB GiB of available memory (the
# cgroup's limit when lower), and at least one: for C++ builds that need much memory.
jobs_for_memory() {
    local per_gib=$1 cores avail_kb limit cap
    cores=$(nproc)
    avail_kb=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB$/\1/p' /proc/meminfo 2>/dev/null || true)
    limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || true)
    case $limit in
        '' | *[!0-9]*) ;;
        *) if [ -z "$avail_kb" ] || [ $((limit / 1024)) -lt "$avail_kb" ]; then avail_kb=$((limit / 1024)); fi ;;
    esac
    cap=$(( ${avail_kb:-0} / (per_gib * 1024 * 1024) ))
    [ "$cap" -ge 1 ] || cap=1
    [ "$cap" -lt "$cores" ] && cores=$cap
    echo "$cores"
}

# reproducible SRC_DIR [DIR...]: the same inputs give the same bytes wherever and
# whenever they are built. Exports SOURCE_DATE_EPOCH, unless given, as the newest date
# of a file in SRC_DIR (a pinned source: a release tarball, or a git archive whose files
# carry its commit's date; a DIR inside it, a build or target directory, left out), which
# compilers and build scripts use instead of the clock: call it before the recipe writes
# into SRC_DIR. Sets prefix_map to the C/C++ flags and remap_path to rustc's that record
# SRC_DIR as "." and each DIR (which must exist) as its own name wherever a path is
# written (__FILE__, panic messages, debug info; the last that matches applies).
reproducible() {
    local dir source='' newest prune=()
    prefix_map='' remap_path=''
    for dir in "$@"; do
        dir=$(cd -- "$dir" && pwd)
        if [ -z "$source" ]; then
            source=$dir
            prefix_map="-ffile-prefix-map=$dir=."
            remap_path="--remap-path-prefix=$dir=."
        else
            [[ $dir != "$source"/* ]] || prune+=(-path "$dir" -prune -o)
            prefix_map+=" -ffile-prefix-map=$dir=$(basename -- "$dir")"
            remap_path+=" --remap-path-prefix=$dir=$(basename -- "$dir")"
        fi
    done
    if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
        newest=$(find "$source" ${prune[@]+"${prune[@]}"} -type f -printf '%T@\n' | sort -n | tail -n 1)
        SOURCE_DATE_EPOCH=${newest%%.*}
    fi
    export SOURCE_DATE_EPOCH
}
