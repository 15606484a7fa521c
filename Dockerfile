# valkey-bundle: Valkey 9.0 with the search (cluster coordinator), json, bloom and
# ldap modules, compiled from the inputs pinned in modules/*/module.env, and a
# stdlib-only Python entrypoint that loads them.
#
# `./build.sh` is the way in. `./build.sh fetch` brings every pinned input (sources,
# the dependencies their builds would download, vendored crates) into its cache and
# verifies it; every build links them into modules/sources/, and the compile steps
# run with no network at all: what is missing there fails the build instead of being
# downloaded. The network is cut per step (RUN --network=none) where the builder's
# Dockerfile frontend knows the flag; with an older one (Docker 20.10's built-in
# BuildKit) build.sh builds the stages that install packages first, then the rest
# with `docker build --network=none` (the *_BASE_FROM args below).
#
# Stages (BuildKit builds only what the target needs, independent stages in parallel):
#   build-base     C toolchain, git, ccache (on BUILD_IMAGE)       } the only steps
#   cmake-base     + cmake, ninja                                  } that reach a
#   rust-base      + Debian's cargo and rustc, clang               } network: Debian's
#   runtime-base   the runtime's user and libraries (on BASE_IMAGE)} archive, via apt
#   valkey         Valkey server            -> /opt/valkey/bin, /opt/valkey/include
#   search-deps    search's gRPC and googletest -> /opt/search-deps/install
#   search         valkey-search            -> /out/libsearch.so
#   json           valkey-json              -> /out/libjson.so (against valkey's header)
#   bloom          valkey-bloom             -> /out/libvalkey_bloom.so
#   ldap           valkey-ldap              -> /out/libvalkey_ldap.so
#   stand-ins      the test fixture module under each module's file and module name:
#                  <module>-stand-in replaces a module whose inputs cannot be had
#   modules        the four modules, <module>-${<MODULE>_BUILD} each (real or stand-in;
#                  the image's labels say which)
#   binaries       Valkey's and the modules' compiled files alone (reproducibility checks)
#   runtime        the image (the last stage, the default target)
# and, for builds that bring their own parts:
#   modules-prebuilt  *.so from PREBUILT_DIR in the build context
#   valkey-prebuilt   PREBUILT_DIR/valkey/ (bin/, include/) from the build context
#
# Inputs: each compile stage runs modules/prepare.sh, which verifies every input of
# its component in the context's modules/sources/ through modules/fetch.sh (sha256,
# the commit of the pinned tag, or the pinned Cargo.lock) and unpacks it.

# Image of the runtime stage.
ARG BASE_IMAGE=debian:trixie-slim
# Image the compile stages start from: the same Debian as the runtime by default, so
# that the binaries match its glibc and OpenSSL.
ARG BUILD_IMAGE=${BASE_IMAGE}
# The package-installing stages, or images built from them earlier (build.sh's
# two-step build for builders that cannot cut the network per step).
ARG BUILD_BASE_FROM=build-base
ARG CMAKE_BASE_FROM=cmake-base
ARG RUST_BASE_FROM=rust-base
ARG RUNTIME_BASE_FROM=runtime-base
# Where the runtime stage takes the module files and Valkey from: a stage of this
# file, or an image. modules-prebuilt / valkey-prebuilt take them from the context.
ARG MODULES_FROM=modules
ARG VALKEY_FROM=valkey
# search's gRPC build: the stage, or an image of it built earlier (build.sh).
ARG SEARCH_DEPS_FROM=search-deps
# Each module: real (compiled from its pinned inputs) or stand-in (the test fixture
# module under its names, for a build where its inputs cannot be had; never silent:
# ./build.sh prints it and the image's labels say it).
ARG SEARCH_BUILD=real
ARG JSON_BUILD=real
ARG BLOOM_BUILD=real
ARG LDAP_BUILD=real

# --- the stages that install packages --------------------------------------------

FROM ${BUILD_IMAGE} AS build-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        binutils ca-certificates ccache g++ gcc git libc6-dev libssl-dev make pkg-config \
 && rm -rf /var/lib/apt/lists/*
# ccache through PATH covers every compiler call, the sub-builds' too.
ENV PATH=/usr/lib/ccache:$PATH \
    CCACHE_DIR=/root/.ccache
WORKDIR /src

FROM build-base AS cmake-base
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake ninja-build \
 && rm -rf /var/lib/apt/lists/*

# Rust from Debian's archive (trixie: 1.85), not a rustup download; the recipes check
# it against RUST_MIN/RUST_BELOW in module.env.
FROM build-base AS rust-base
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cargo clang libclang-dev rustc \
 && rm -rf /var/lib/apt/lists/*

# Runtime libraries only: libssl3 (Valkey TLS, search's gRPC, ldap), libstdc++6 and
# libgcc-s1 (search, json, the Rust modules), python3-minimal (the entrypoint), tini
# (PID 1: reaps the cluster helper and other orphans, forwards signals to the server).
FROM ${BASE_IMAGE} AS runtime-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 valkey \
 && useradd --system --uid 999 --gid valkey --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin valkey \
 && apt-get update \
 && apt-get install -y --no-install-recommends libgcc-s1 libssl3 libstdc++6 python3-minimal tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mkdir /data \
 && chown valkey:valkey /data \
 && chmod 0777 /data

# hadolint ignore=DL3006
FROM ${BUILD_BASE_FROM} AS build-base-selected
# hadolint ignore=DL3006
FROM ${CMAKE_BASE_FROM} AS cmake-base-selected
# hadolint ignore=DL3006
FROM ${RUST_BASE_FROM} AS rust-base-selected
# hadolint ignore=DL3006
FROM ${RUNTIME_BASE_FROM} AS runtime-base-selected

# --- compile stages: no network from here on ------------------------------------

FROM build-base-selected AS valkey
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Build a different Valkey tarball (the tests use Debian's copy of the upstream tree):
# its file name in modules/sources/ (must start with "valkey") and its sha256.
ARG VALKEY_SOURCE_FILE=
ARG VALKEY_SOURCE_SHA256=
# Caps the parallelism of every compile stage (empty: each recipe's default, see modules/README.md).
ARG JOBS=
# Where the source is unpacked and built, and 1 to compile without the ccache: the
# reproducibility checks build twice, cold, in two places (the binaries must not differ).
ARG BUILD_DIR=/build
ARG CCACHE_DISABLE
COPY modules/fetch.sh modules/prepare.sh modules/recipe.sh /src/modules/
COPY modules/valkey/ /src/modules/valkey/
COPY modules/sources/README.md modules/sources/valkey* /src/sources/
RUN --network=none --mount=type=cache,target=/root/.ccache,id=valkey-bundle-ccache \
    if [ -n "$VALKEY_SOURCE_FILE" ]; then \
        export VALKEY_TARBALL="/src/sources/$VALKEY_SOURCE_FILE" VALKEY_SHA256="$VALKEY_SOURCE_SHA256"; \
    fi \
 && modules/prepare.sh valkey /src/sources "$BUILD_DIR" \
 && modules/valkey/build.sh "$BUILD_DIR/src" /opt/valkey \
 && find /opt/valkey/bin -type f -exec strip --strip-debug {} + \
 && rm -rf "$BUILD_DIR"

FROM scratch AS valkey-prebuilt
ARG PREBUILT_DIR=modules/prebuilt
COPY ${PREBUILT_DIR}/valkey/ /opt/valkey/

# hadolint ignore=DL3006
FROM ${VALKEY_FROM} AS valkey-selected

# search's gRPC (with protobuf, abseil, re2, c-ares, zlib) and googletest: the longest
# compile of the image, in stages of its own so that a change to search, to another
# module or to the runtime never redoes it. The first verifies and unpacks its inputs;
# the second sees only what that unpacked (and its recipe), so a change elsewhere in
# modules/search/ leaves its cache alone. ./build.sh keeps its result as an image
# keyed by those inputs (SEARCH_DEPS_FROM) where the builder cannot cut the network
# per step. JOBS is left out on purpose: the recipe caps its jobs by memory.
FROM cmake-base-selected AS search-deps-inputs
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SEARCH_SUBSTITUTES=
COPY modules/fetch.sh modules/prepare.sh /src/modules/
COPY modules/search/module.env /src/modules/search/
COPY modules/sources/README.md modules/sources/search-grpc* modules/sources/search-googletest* /src/sources/
RUN --network=none VALKEY_BUNDLE_SUBSTITUTES="$SEARCH_SUBSTITUTES" \
    modules/prepare.sh search /src/sources /build search/grpc search/googletest

FROM cmake-base-selected AS search-deps
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY modules/recipe.sh /src/modules/
COPY modules/search/build-deps.sh /src/modules/search/
COPY --from=search-deps-inputs /build/deps /build/deps
RUN --network=none --mount=type=cache,target=/root/.ccache,id=valkey-bundle-ccache \
    DEPS_DIR=/build/deps modules/search/build-deps.sh /opt/search-deps \
 && rm -rf /build

# hadolint ignore=DL3006
FROM ${SEARCH_DEPS_FROM} AS search-deps-selected

FROM cmake-base-selected AS search
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG JOBS=
ARG SEARCH_SUBSTITUTES=
COPY modules/fetch.sh modules/prepare.sh modules/recipe.sh /src/modules/
COPY modules/search/ /src/modules/search/
COPY modules/sources/README.md modules/sources/search-[0-9]* modules/sources/search-highwayhash* /src/sources/
COPY --from=search-deps-selected /opt/search-deps /opt/search-deps
RUN --network=none --mount=type=cache,target=/root/.ccache,id=valkey-bundle-ccache \
    VALKEY_BUNDLE_SUBSTITUTES="$SEARCH_SUBSTITUTES" \
    modules/prepare.sh search /src/sources /build search search/highwayhash \
 && DEPS_DIR=/build/deps SEARCH_DEPS_PREFIX=/opt/search-deps modules/search/build.sh /build/src /out \
 && rm -rf /build

FROM cmake-base-selected AS json
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG JOBS=
COPY modules/fetch.sh modules/prepare.sh modules/recipe.sh /src/modules/
COPY modules/json/ /src/modules/json/
COPY modules/sources/README.md modules/sources/json* /src/sources/
ARG BUILD_DIR=/build
ARG CCACHE_DISABLE
# The header of the server this image ships, not a second copy of the Valkey repository.
COPY --from=valkey-selected /opt/valkey/include/valkeymodule.h /src/valkey-include/
RUN --network=none --mount=type=cache,target=/root/.ccache,id=valkey-bundle-ccache \
    modules/prepare.sh json /src/sources "$BUILD_DIR" \
 && DEPS_DIR="$BUILD_DIR/deps" VALKEY_INCLUDE_DIR=/src/valkey-include modules/json/build.sh "$BUILD_DIR/src" /out \
 && rm -rf "$BUILD_DIR"

# The crates are vendored in modules/sources/ (no registry, no shared cache); each
# module keeps a target directory of its own between builds.
FROM rust-base-selected AS bloom
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG JOBS=
COPY modules/fetch.sh modules/prepare.sh modules/recipe.sh modules/rust.sh /src/modules/
COPY modules/bloom/ /src/modules/bloom/
COPY modules/sources/README.md modules/sources/bloom* /src/sources/
# A CARGO_TARGET_DIR of its own (not the cache mount's) compiles every crate again, and
# goes with the build directory (it would only weigh on the build cache).
ARG BUILD_DIR=/build
ARG CARGO_TARGET_DIR=/cargo-target
RUN --network=none --mount=type=cache,target=/cargo-target,id=valkey-bundle-cargo-target-bloom \
    modules/prepare.sh bloom /src/sources "$BUILD_DIR" \
 && DEPS_DIR="$BUILD_DIR/deps" modules/bloom/build.sh "$BUILD_DIR/src" /out \
 && rm -rf "$BUILD_DIR" \
 && if [ "$CARGO_TARGET_DIR" != /cargo-target ]; then rm -rf "$CARGO_TARGET_DIR"; fi

FROM rust-base-selected AS ldap
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG JOBS=
COPY modules/fetch.sh modules/prepare.sh modules/recipe.sh modules/rust.sh /src/modules/
COPY modules/ldap/ /src/modules/ldap/
COPY modules/sources/README.md modules/sources/ldap* /src/sources/
# A CARGO_TARGET_DIR of its own (not the cache mount's) compiles every crate again, and
# goes with the build directory (it would only weigh on the build cache).
ARG BUILD_DIR=/build
ARG CARGO_TARGET_DIR=/cargo-target
RUN --network=none --mount=type=cache,target=/cargo-target,id=valkey-bundle-cargo-target-ldap \
    modules/prepare.sh ldap /src/sources "$BUILD_DIR" \
 && DEPS_DIR="$BUILD_DIR/deps" modules/ldap/build.sh "$BUILD_DIR/src" /out \
 && rm -rf "$BUILD_DIR" \
 && if [ "$CARGO_TARGET_DIR" != /cargo-target ]; then rm -rf "$CARGO_TARGET_DIR"; fi

# The tests' fixture module (tests/fixtures/fixture_module.c) under each module's file
# and module name, against the header of the server the image ships: what replaces a
# module whose inputs cannot be had, when <MODULE>_BUILD=stand-in.
FROM build-base-selected AS stand-ins
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG BUILD_DIR=/build
ARG CCACHE_DISABLE
COPY tests/fixtures/fixture_module.c /src/stand-in/
COPY modules/search/module.env /src/modules/search/
COPY modules/json/module.env /src/modules/json/
COPY modules/bloom/module.env /src/modules/bloom/
COPY modules/ldap/module.env /src/modules/ldap/
COPY --from=valkey-selected /opt/valkey/include/valkeymodule.h /src/valkey-include/
RUN --network=none mkdir -p "$BUILD_DIR" && cp -r /src/stand-in /src/valkey-include "$BUILD_DIR/" \
 && for component in search json bloom ldap; do \
        ( . "/src/modules/$component/module.env" \
          && mkdir -p "/out/$component" \
          && gcc -shared -fPIC -O1 -Wall -Werror "-ffile-prefix-map=$BUILD_DIR=." -I"$BUILD_DIR/valkey-include" \
                 "-DFIXTURE_NAME=\"$MODULE_NAME\"" -o "/out/$component/$MODULE_FILE" "$BUILD_DIR/stand-in/fixture_module.c" \
          && strip --strip-debug "/out/$component/$MODULE_FILE" ) || exit 1; \
    done \
 && rm -rf "$BUILD_DIR"

FROM search AS search-real
FROM scratch AS search-stand-in
COPY --from=stand-ins /out/search/ /out/
# hadolint ignore=DL3006
FROM search-${SEARCH_BUILD} AS search-selected

FROM json AS json-real
FROM scratch AS json-stand-in
COPY --from=stand-ins /out/json/ /out/
# hadolint ignore=DL3006
FROM json-${JSON_BUILD} AS json-selected

FROM bloom AS bloom-real
FROM scratch AS bloom-stand-in
COPY --from=stand-ins /out/bloom/ /out/
# hadolint ignore=DL3006
FROM bloom-${BLOOM_BUILD} AS bloom-selected

FROM ldap AS ldap-real
FROM scratch AS ldap-stand-in
COPY --from=stand-ins /out/ldap/ /out/
# hadolint ignore=DL3006
FROM ldap-${LDAP_BUILD} AS ldap-selected

FROM scratch AS modules
COPY --from=search-selected /out/*.so /
COPY --from=json-selected /out/*.so /
COPY --from=bloom-selected /out/*.so /
COPY --from=ldap-selected /out/*.so /

# Module files built elsewhere, placed in the build context (a git-ignored directory).
FROM scratch AS modules-prebuilt
ARG PREBUILT_DIR=modules/prebuilt
COPY ${PREBUILT_DIR}/*.so /

# hadolint ignore=DL3006
FROM ${MODULES_FROM} AS modules-selected

# The compiled files the image takes, alone (./build.sh build --files binaries=DIR): what
# the reproducibility checks compare between two builds.
FROM scratch AS binaries
COPY --from=valkey-selected /opt/valkey/bin/ /bin/
COPY --from=modules-selected /*.so /modules/

# --- the image ---------------------------------------------------------------------

FROM runtime-base-selected AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=valkey-selected /opt/valkey/bin/ /usr/local/bin/
COPY --from=modules-selected /*.so /usr/lib/valkey/
COPY entrypoint/ /usr/local/lib/valkey-bundle/entrypoint/
COPY modules/valkey/module.env /usr/local/lib/valkey-bundle/modules/valkey/module.env
COPY modules/search/module.env /usr/local/lib/valkey-bundle/modules/search/module.env
COPY modules/json/module.env /usr/local/lib/valkey-bundle/modules/json/module.env
COPY modules/bloom/module.env /usr/local/lib/valkey-bundle/modules/bloom/module.env
COPY modules/ldap/module.env /usr/local/lib/valkey-bundle/modules/ldap/module.env

# Byte-code compiled now, so that a read-only root costs nothing at start; every
# library the server and the modules need must resolve.
RUN --network=none ln -s /usr/local/lib/valkey-bundle/entrypoint/bundle-docker-entrypoint /usr/local/bin/bundle-docker-entrypoint \
 && ln -s /usr/local/lib/valkey-bundle/entrypoint/bundle-healthcheck /usr/local/bin/bundle-healthcheck \
 && ln -s /usr/local/lib/valkey-bundle/entrypoint/bundle-info /usr/local/bin/bundle-info \
 && python3 -m compileall -q --invalidation-mode checked-hash /usr/local/lib/valkey-bundle/entrypoint \
 && for file in /usr/local/bin/valkey-server /usr/lib/valkey/*.so; do \
        if ldd "$file" | grep 'not found'; then echo "$file: missing libraries" >&2; exit 1; fi; \
    done \
 && valkey-server --version

ARG IMAGE_VERSION=9.0.5
ARG IMAGE_REVISION=unknown
ARG IMAGE_SOURCE=
ARG VALKEY_VERSION=9.0.5
ARG SEARCH_VERSION=1.2.1
ARG JSON_VERSION=1.0.2
ARG BLOOM_VERSION=1.0.1
ARG LDAP_VERSION=1.0.0
ARG SEARCH_BUILD
ARG JSON_BUILD
ARG BLOOM_BUILD
ARG LDAP_BUILD
# Inputs built from a substitute instead of their pin (build.sh --substitutes): empty
# for every image built from the pins.
ARG SUBSTITUTES=
LABEL org.opencontainers.image.title="valkey-bundle" \
      org.opencontainers.image.description="Valkey with the search (cluster coordinator), json, bloom and ldap modules" \
      org.opencontainers.image.source="${IMAGE_SOURCE}" \
      org.opencontainers.image.version="${IMAGE_VERSION}" \
      org.opencontainers.image.revision="${IMAGE_REVISION}" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.valkey-bundle.valkey.version="${VALKEY_VERSION}" \
      org.valkey-bundle.search.version="${SEARCH_VERSION}" \
      org.valkey-bundle.json.version="${JSON_VERSION}" \
      org.valkey-bundle.bloom.version="${BLOOM_VERSION}" \
      org.valkey-bundle.ldap.version="${LDAP_VERSION}" \
      org.valkey-bundle.search.build="${SEARCH_BUILD}" \
      org.valkey-bundle.json.build="${JSON_BUILD}" \
      org.valkey-bundle.bloom.build="${BLOOM_BUILD}" \
      org.valkey-bundle.ldap.build="${LDAP_BUILD}" \
      org.valkey-bundle.substitutes="${SUBSTITUTES}"
# The same labels, readable inside the container: bundle-info prints them beside the
# modules the server has loaded (a stand-in answers MODULE LIST like a real module).
RUN --network=none printf '%s\n' \
        "org.opencontainers.image.version=${IMAGE_VERSION}" \
        "org.opencontainers.image.revision=${IMAGE_REVISION}" \
        "org.valkey-bundle.valkey.version=${VALKEY_VERSION}" \
        "org.valkey-bundle.search.version=${SEARCH_VERSION}" \
        "org.valkey-bundle.json.version=${JSON_VERSION}" \
        "org.valkey-bundle.bloom.version=${BLOOM_VERSION}" \
        "org.valkey-bundle.ldap.version=${LDAP_VERSION}" \
        "org.valkey-bundle.search.build=${SEARCH_BUILD}" \
        "org.valkey-bundle.json.build=${JSON_BUILD}" \
        "org.valkey-bundle.bloom.build=${BLOOM_BUILD}" \
        "org.valkey-bundle.ldap.build=${LDAP_BUILD}" \
        "org.valkey-bundle.substitutes=${SUBSTITUTES}" \
        > /usr/local/lib/valkey-bundle/image-labels

WORKDIR /data
EXPOSE 6379 16379 26673
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bundle-healthcheck", "liveness"]
# -s: tini also reaps when it is not PID 1 (docker run --init, a shared process namespace).
ENTRYPOINT ["tini", "-s", "--", "bundle-docker-entrypoint"]
CMD ["valkey-server"]
