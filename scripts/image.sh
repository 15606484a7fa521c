#!/usr/bin/env bash
# The image: its tags, the Docker builder and the build cache, which modules are real
# and which stand-ins (plan_modules; inputs_summary for the test tiers), the stages that
# install packages built first where the builder cannot cut the network per step
# (base_images), and the docker build itself (build_image, whose push hands the image
# to push_by_digest in release.sh). Sourced (not run): by build.sh for tags and test,
# and by release.sh, which builds on it (build and push).

# shellcheck source-path=SCRIPTDIR source=inputs.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/inputs.sh"

# --- tags -------------------------------------------------------------------------

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

# --- the build --------------------------------------------------------------------

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

# shellcheck disable=SC2154,SC2034  # opt_*: build.sh sets them from the options; digest: declared, not used
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
