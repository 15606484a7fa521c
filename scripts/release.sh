#!/usr/bin/env bash
# The release: an image pushed by digest (push_by_digest, push_local_image), what its
# labels say against the pins (pins_problems), the multi-platform image under every tag
# (manifest), the smoke test, cosign's sign and verify, and the release notes. Sourced
# (not run) by build.sh for build, push, manifest, smoke, sign, verify and
# release-notes.

# shellcheck source-path=SCRIPTDIR source=image.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/image.sh"

# --- registries -------------------------------------------------------------------

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

# --- labels -----------------------------------------------------------------------

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

# --- push by digest ---------------------------------------------------------------

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

# --- manifest, smoke, sign, verify ------------------------------------------------

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

# --- release notes ----------------------------------------------------------------

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
