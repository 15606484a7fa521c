# valkey-bundle: Valkey 9.0 with the search (cluster coordinator), json, bloom and
# ldap modules, compiled from the sources pinned in modules/*/module.env, and a
# stdlib-only Python entrypoint that loads them.
#
# `docker build .` works as is on a networked machine. `./build.sh` is the usual way
# in: it passes the versions for the labels and takes the sources from its cache.
#
# Stages (BuildKit builds only what the target needs, independent stages in parallel):
#   build-base   C toolchain, curl, git, ccache (on BUILD_IMAGE)
#   valkey       Valkey server            -> /opt/valkey/bin
#   cmake-base   + cmake, ninja
#   search       valkey-search            -> /out/libsearch.so
#   json         valkey-json              -> /out/libjson.so
#   rust-base    + rustup, clang, the Rust toolchain(s) pinned in module.env
#   bloom        valkey-bloom             -> /out/libvalkey_bloom.so, /out/Cargo.lock
#   ldap         valkey-ldap              -> /out/libvalkey_ldap.so
#   modules      the four modules, from the stages above (scratch)
#   runtime      the image (the last stage, the default target)
# and, for builds that bring their own parts (the container tests do):
#   modules-prebuilt  *.so from PREBUILT_DIR in the build context
#   valkey-prebuilt   PREBUILT_DIR/valkey/bin from the build context
#   bloom-lock        /Cargo.lock only: the lock a floating bloom build resolved
#
# Sources: each stage runs modules/fetch.sh on the context's modules/sources/ (which
# `./build.sh fetch` fills); a source that is not there is downloaded inside the stage.
# Either way it is verified (sha256, or the commit of the pinned tag) before it is
# built.

# Image of the runtime stage.
ARG BASE_IMAGE=debian:trixie-slim
# Image the compile stages start from: the same Debian as the runtime by default, so
# that the binaries match its glibc and OpenSSL.
ARG BUILD_IMAGE=${BASE_IMAGE}
# Where the runtime stage takes the module files and Valkey from: a stage of this
# file, or an image. modules-prebuilt / valkey-prebuilt take them from the context.
ARG MODULES_FROM=modules
ARG VALKEY_FROM=valkey

# ---------------------------------------------------------------------------------
FROM ${BUILD_IMAGE} AS build-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        binutils ca-certificates ccache curl g++ gcc git libc6-dev libssl-dev make \
        pkg-config \
 && rm -rf /var/lib/apt/lists/*
# ccache through PATH covers every compiler call, the sub-builds' too.
ENV PATH=/usr/lib/ccache:$PATH \
    CCACHE_DIR=/root/.ccache
WORKDIR /src
COPY modules/fetch.sh modules/unpack.sh modules/recipe.sh /src/modules/

# ---------------------------------------------------------------------------------
FROM build-base AS valkey
# Build a different Valkey tarball (the tests use Debian's copy of the upstream tree):
# its file name in modules/sources/ (must start with "valkey") and its sha256.
ARG VALKEY_SOURCE_FILE=
ARG VALKEY_SOURCE_SHA256=
# Caps the parallelism of every compile stage (empty: each recipe's default, see modules/README.md).
ARG JOBS=
COPY modules/valkey/ /src/modules/valkey/
COPY modules/sources/README.md modules/sources/valkey* /src/sources/
RUN --mount=type=cache,target=/root/.ccache,id=valkey-bundle-ccache \
    . modules/valkey/module.env \
 && if [ -n "$VALKEY_SOURCE_FILE" ]; then \
        export VALKEY_TARBALL="/src/sources/$VALKEY_SOURCE_FILE" VALKEY_SHA256="$VALKEY_SOURCE_SHA256"; \
    fi \
 && tarball="$(modules/fetch.sh valkey sources)" \
 && modules/unpack.sh "$tarball" "${VALKEY_SOURCE_SHA256:-$SOURCE_SHA256}" "$SOURCE_STRIP" /build/src \
 && modules/valkey/build.sh /build/src /opt/valkey \
 && find /opt/valkey/bin -type f -exec strip --strip-debug {} + \
 && rm -rf /build

# ---------------------------------------------------------------------------------
FROM build-base AS cmake-base
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake ninja-build \
 && rm -rf /var/lib/apt/lists/*

# ---------------------------------------------------------------------------------
FROM cmake-base AS search
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG JOBS=
COPY modules/search/ /src/modules/search/
COPY modules/sources/README.md modules/sources/search* /src/sources/
RUN --mount=type=cache,target=/root/.ccache,id=valkey-bundle-ccache \
    . modules/search/module.env \
 && tarball="$(modules/fetch.sh search sources)" \
 && modules/unpack.sh "$tarball" "$(sha256sum "$tarball" | cut -d' ' -f1)" "$SOURCE_STRIP" /build/src \
 && modules/search/build.sh /build/src /out \
 && rm -rf /build

# ---------------------------------------------------------------------------------
FROM cmake-base AS json
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG JOBS=
COPY modules/valkey/module.env /src/modules/valkey/
COPY modules/json/ /src/modules/json/
COPY modules/sources/README.md modules/sources/json* /src/sources/
RUN --mount=type=cache,target=/root/.ccache,id=valkey-bundle-ccache \
    . modules/json/module.env \
 && tarball="$(modules/fetch.sh json sources)" \
 && modules/unpack.sh "$tarball" "$(sha256sum "$tarball" | cut -d' ' -f1)" "$SOURCE_STRIP" /build/src \
 && modules/json/build.sh /build/src /out \
 && rm -rf /build

# ---------------------------------------------------------------------------------
FROM build-base AS rust-base
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev rustup \
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo
COPY modules/rust.sh /src/modules/
COPY modules/bloom/module.env /src/modules/bloom/
COPY modules/ldap/module.env /src/modules/ldap/
# The toolchains pinned in module.env (the recipes select them with cargo +VERSION).
RUN for component in bloom ldap; do \
        ( . "modules/$component/module.env" \
          && rustup toolchain install --profile minimal "$RUST_TOOLCHAIN" ) || exit 1; \
    done

# ---------------------------------------------------------------------------------
FROM rust-base AS bloom
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG JOBS=
COPY modules/bloom/ /src/modules/bloom/
COPY modules/sources/README.md modules/sources/bloom* /src/sources/
RUN --mount=type=cache,target=/usr/local/cargo/registry,id=valkey-bundle-cargo-registry \
    --mount=type=cache,target=/usr/local/cargo/git,id=valkey-bundle-cargo-git \
    --mount=type=cache,target=/cargo-target,id=valkey-bundle-cargo-target-bloom \
    . modules/bloom/module.env \
 && tarball="$(modules/fetch.sh bloom sources)" \
 && modules/unpack.sh "$tarball" "$(sha256sum "$tarball" | cut -d' ' -f1)" "$SOURCE_STRIP" /build/src \
 && CARGO_TARGET_DIR=/cargo-target modules/bloom/build.sh /build/src /out \
 && rm -rf /build

# ---------------------------------------------------------------------------------
FROM rust-base AS ldap
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG JOBS=
COPY modules/ldap/ /src/modules/ldap/
COPY modules/sources/README.md modules/sources/ldap* /src/sources/
RUN --mount=type=cache,target=/usr/local/cargo/registry,id=valkey-bundle-cargo-registry \
    --mount=type=cache,target=/usr/local/cargo/git,id=valkey-bundle-cargo-git \
    --mount=type=cache,target=/cargo-target,id=valkey-bundle-cargo-target-ldap \
    . modules/ldap/module.env \
 && tarball="$(modules/fetch.sh ldap sources)" \
 && modules/unpack.sh "$tarball" "$(sha256sum "$tarball" | cut -d' ' -f1)" "$SOURCE_STRIP" /build/src \
 && CARGO_TARGET_DIR=/cargo-target modules/ldap/build.sh /build/src /out \
 && rm -rf /build

# ---------------------------------------------------------------------------------
FROM scratch AS modules
COPY --from=search /out/*.so /
COPY --from=json /out/*.so /
COPY --from=bloom /out/*.so /
COPY --from=ldap /out/*.so /

FROM scratch AS bloom-lock
COPY --from=bloom /out/Cargo.lock /

# Parts built elsewhere, placed in the build context (a git-ignored directory).
FROM scratch AS modules-prebuilt
ARG PREBUILT_DIR=modules/prebuilt
COPY ${PREBUILT_DIR}/*.so /

FROM scratch AS valkey-prebuilt
ARG PREBUILT_DIR=modules/prebuilt
COPY ${PREBUILT_DIR}/valkey/bin/ /opt/valkey/bin/

FROM ${MODULES_FROM} AS modules-selected
FROM ${VALKEY_FROM} AS valkey-selected

# ---------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries only: libssl3 (Valkey TLS, search's gRPC, ldap), libstdc++6 and
# libgcc-s1 (search, json, the Rust modules), python3-minimal (the entrypoint).
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 valkey \
 && useradd --system --uid 999 --gid valkey --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin valkey \
 && apt-get update \
 && apt-get install -y --no-install-recommends libgcc-s1 libssl3 libstdc++6 python3-minimal \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mkdir /data \
 && chown valkey:valkey /data \
 && chmod 0777 /data

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
RUN ln -s /usr/local/lib/valkey-bundle/entrypoint/bundle-docker-entrypoint /usr/local/bin/bundle-docker-entrypoint \
 && ln -s /usr/local/lib/valkey-bundle/entrypoint/bundle-healthcheck /usr/local/bin/bundle-healthcheck \
 && python3 -m compileall -q --invalidation-mode checked-hash /usr/local/lib/valkey-bundle/entrypoint \
 && for file in /usr/local/bin/valkey-server /usr/lib/valkey/*.so; do \
        if ldd "$file" | grep 'not found'; then echo "$file: missing libraries" >&2; exit 1; fi; \
    done \
 && valkey-server --version

ARG IMAGE_VERSION=9.0.4
ARG IMAGE_REVISION=unknown
ARG IMAGE_SOURCE=
ARG VALKEY_VERSION=9.0.4
ARG SEARCH_VERSION=1.2.1
ARG JSON_VERSION=1.0.2
ARG BLOOM_VERSION=1.0.1
ARG LDAP_VERSION=1.0.0
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
      org.valkey-bundle.ldap.version="${LDAP_VERSION}"

WORKDIR /data
EXPOSE 6379 16379 26673
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bundle-healthcheck", "liveness"]
ENTRYPOINT ["bundle-docker-entrypoint"]
CMD ["valkey-server"]
