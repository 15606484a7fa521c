#!/usr/bin/env bash
# Verify a component's pinned inputs in SOURCES_DIR and unpack them for its recipe:
#   modules/prepare.sh COMPONENT SOURCES_DIR WORK_DIR [INPUT...]
# -> WORK_DIR/src (the component's source) and WORK_DIR/deps/<dep> for each name in
# its DEPS (module.env), each with its top directory stripped; with INPUTs (COMPONENT,
# COMPONENT/DEP), those only. Every input goes through modules/fetch.sh, so it is
# verified; one that is not in SOURCES_DIR is downloaded there -- which fails, as it
# should, where the network is cut (the Dockerfile's compile stages). The recipe
# then runs with DEPS_DIR=WORK_DIR/deps.
set -euo pipefail

prog=modules/prepare.sh
if [ "$#" -lt 3 ]; then
    echo "usage: $prog COMPONENT SOURCES_DIR WORK_DIR [INPUT...]" >&2
    exit 2
fi
component=$1 sources=$2 work=$3
shift 3
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
[ -f "$here/$component/module.env" ] || { echo "$prog: unknown component '$component'" >&2; exit 2; }
if [ "$#" -eq 0 ]; then
    # shellcheck source=/dev/null
    deps=$(DEPS='' && . "$here/$component/module.env" && printf '%s' "$DEPS")
    set -- "$component"
    for dep in $deps; do set -- "$@" "$component/$dep"; done
fi

unpack() {
    local input=$1 dest=$2 tarball
    tarball=$("$here/fetch.sh" "$input" "$sources")
    mkdir -p -- "$dest"
    tar -xzf "$tarball" -C "$dest" --strip-components=1 --no-same-owner
    echo "$prog: $input: $(basename -- "$tarball") -> $dest" >&2
}

for input in "$@"; do
    case $input in
        "$component") unpack "$input" "$work/src" ;;
        "$component"/*) unpack "$input" "$work/deps/${input#*/}" ;;
        *) echo "$prog: $input is not an input of $component" >&2; exit 2 ;;
    esac
done
