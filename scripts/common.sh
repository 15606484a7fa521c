#!/usr/bin/env bash
# What every command of build.sh shares: where the checkout is, the components, the
# default platforms, the image name, and how it reports (die, note). Sourced (not run):
# by build.sh first, for every command, and by inputs.sh and checks.sh, which build on
# it; it only sets these and defines functions, so loading it again changes nothing.
# shellcheck disable=SC2034  # the settings are read by build.sh and the scripts that source this file

prog=build.sh
# The checkout: the directory above this one.
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
modules_dir=$root/modules
components=(valkey search json bloom ldap)
default_platforms=linux/amd64,linux/arm64
# Lower-cased: a repository path in a Docker reference must be (GitHub owners need not be).
image=$(printf '%s' "${IMAGE:-valkey-bundle}" | tr '[:upper:]' '[:lower:]')
# The branch whose pushes publish "edge" images.
default_branch=main

die() {
    echo "$prog: error: $*" >&2
    exit 1
}
note() { echo "$prog: $*" >&2; }
