"""Tier 4: the real modules at work, in containers of the image as ./build.sh builds it.

The session picks the image once (real_kit.real_image(): $VALKEY_BUNDLE_REAL_IMAGE, else
built here). Without a reachable Docker engine every test here is skipped, with the
reason. Each test module starts by requiring its module to be real in that image: where
it is a stand-in, its tests are skipped as "not run: <module> is a stand-in (...)".
"""

from __future__ import annotations

import pytest
from container import container_image
from container.cluster_kit import ClusterKit

from . import real_kit


@pytest.fixture(scope="session")
def real_image(tmp_path_factory) -> real_kit.RealImage:
    problem = container_image.engine_problem()
    if problem:
        pytest.skip(f"real-module tests need a Docker engine: {problem}")
    image = real_kit.real_image(tmp_path_factory.mktemp("real-image") / "docker-build.log")
    print(f"\nreal-module tier: {image.name}, Valkey {image.valkey_version}, modules {image.builds}")
    return image


@pytest.fixture(scope="module")
def kit(real_image, tmp_path_factory):
    """A network of the test module's own, with its nodes; all removed at the end of the module."""
    kit = ClusterKit(real_image.name, tmp_path_factory.mktemp("kit"))
    yield kit
    kit.destroy()
