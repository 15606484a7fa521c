"""Tier 5: faults under load, on the real-module tier's image (see fault_kit.py).

The session builds the real-module tier's image (container_image.build_real_image(), cached:
the modules whose inputs the cache holds are real, the others the fixture module; where
search is real the load queries it too), or takes the image named by
$VALKEY_BUNDLE_FAULTS_IMAGE as it is. Without a reachable Docker engine every test here is
skipped, with the reason; with one, nothing skips.
"""

from __future__ import annotations

import pytest
from container import container_image


@pytest.fixture(scope="session")
def faults_image(tmp_path_factory) -> str:
    log_dir = tmp_path_factory.mktemp("faults-image")
    return container_image.image_for_tier(
        "fault", "VALKEY_BUNDLE_FAULTS_IMAGE", container_image.build_real_image, log_dir
    )


@pytest.fixture(scope="session")
def search_real(faults_image) -> bool:
    """Whether the image's search module is real (its label): then the load queries it."""
    real = container_image.search_is_real(faults_image)
    print(f"\nfault tier: {faults_image}; search {'real: queried under the load' if real else 'a stand-in: not run'}")
    return real
