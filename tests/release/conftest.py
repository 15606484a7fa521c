"""Tier 6: the release, rehearsed against a real registry on this machine.

The session starts the CNCF distribution registry (Debian's `docker-registry`, installed
by .ci/install-deps) on 127.0.0.1, makes a cosign key pair, and takes the container
tier's image (container_image.build_test_image(), cached) or the image named by
$VALKEY_BUNDLE_RELEASE_IMAGE. Each test runs the build.sh commands of the release
workflow against its own repository in that registry (release_kit.py). Without a
reachable Docker engine every test here is skipped, with the reason; with one, nothing
skips: a missing tool is an error naming .ci/install-deps.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from container import container_image

from . import release_kit


@pytest.fixture(scope="session")
def release_image(tmp_path_factory) -> str:
    problem = container_image.engine_problem()
    if problem:
        pytest.skip(f"release tests need a Docker engine: {problem}")
    missing = [tool for tool in ("docker-registry", "skopeo", "cosign") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"release tests need {', '.join(missing)}: run .ci/install-deps (as root)")
    given = os.environ.get("VALKEY_BUNDLE_RELEASE_IMAGE")
    if given:
        return given
    return container_image.build_test_image(tmp_path_factory.mktemp("release-image") / "docker-build.log").name


@pytest.fixture(scope="session")
def registry(release_image, tmp_path_factory):
    """A registry on 127.0.0.1 (plain HTTP), its storage in a temporary directory;
    yields its host:port. Every image pulled from it is removed at the end."""
    with release_kit.local_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


@pytest.fixture(scope="session")
def cosign_keys(tmp_path_factory) -> tuple[Path, Path]:
    """A cosign key pair (no password) made for this session: (private, public)."""
    return release_kit.key_pair(tmp_path_factory.mktemp("cosign"))
