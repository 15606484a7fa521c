#!/usr/bin/env bash
# valkey-bundle: one entry point for building, pushing, linting and testing the image.
# Run `./build.sh help` for the commands.
#
# This file is the command line: the usage, the options of build and push, and which
# script each command goes to. The work is done in scripts/, one library of functions
# per concern, each loading those it builds on:
#   scripts/common.sh   the checkout, the settings, die and note (every command)
#   scripts/inputs.sh   the pins and the cache of inputs (versions, check-pins, fetch)
#   scripts/image.sh    the tags and the docker build (tags, build, push, test)
#   scripts/release.sh  push by digest, manifest, smoke, sign, verify, release notes
#   scripts/checks.sh   lint (lint, test)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=scripts/common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/scripts/common.sh"

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

# The script of the command's concern; it loads those it builds on.
case $command in
    help | platforms) ;;
    versions | check-pins | fetch)
        # shellcheck source-path=SCRIPTDIR source=scripts/inputs.sh
        . "$root/scripts/inputs.sh"
        ;;
    tags)
        # shellcheck source-path=SCRIPTDIR source=scripts/image.sh
        . "$root/scripts/image.sh"
        ;;
    lint | test)
        # shellcheck source-path=SCRIPTDIR source=scripts/checks.sh
        . "$root/scripts/checks.sh"
        if [ "$command" = test ]; then
            # What the real-module tier gets (inputs_summary).
            # shellcheck source-path=SCRIPTDIR source=scripts/image.sh
            . "$root/scripts/image.sh"
        fi
        ;;
    *)
        # build, push, manifest, smoke, sign, verify, release-notes.
        # shellcheck source-path=SCRIPTDIR source=scripts/release.sh
        . "$root/scripts/release.sh"
        ;;
esac

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
        # The tiers build on the base image tests/support/make-base-image.sh makes (unless
        # BASE_IMAGE says otherwise): the summary looks for search's gRPC build on that one.
        if [ -z "${BASE_IMAGE:-}${BUILD_IMAGE:-}" ] &&
            tests_base=$("$root/tests/support/make-base-image.sh" 2>/dev/null); then
            BASE_IMAGE=$tests_base inputs_summary
        else
            inputs_summary
        fi
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
