"""Tier 5: faults under load, on the container tier's image (see fault_kit.py).

The session builds the container tier's image (container_image.build_test_image(), cached),
or takes the image named by $VALKEY_BUNDLE_FAULTS_IMAGE as it is. Without a reachable Docker
engine every test here is skipped, with the reason; with one, nothing skips.
"""

from __future__ import annotations

import os

import pytest
from container import container_image


@pytest.fixture(scope="session")
def faults_image(tmp_path_factory) -> str:
    problem = container_image.engine_problem()
    if problem:
        pytest.skip(f"fault tests need a Docker engine: {problem}")
    given = os.environ.get("VALKEY_BUNDLE_FAULTS_IMAGE")
    if given:
        return given
    return container_image.build_test_image(tmp_path_factory.mktemp("faults-image") / "docker-build.log").name
