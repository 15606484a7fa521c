"""Tier 6: metrics, alerts and the dashboard (marker `metrics`).

The rule tests need promtool; the scrape tests a Docker engine and redis_exporter (Debian's
prometheus-redis-exporter, a process of this machine pointed at a member's address). Both
binaries come from .ci/install-deps: a missing one fails the test that needs it, with the
command that installs it. Without a reachable Docker engine the scrape tests are skipped, with
the reason; with one, they run on the real-module tier's image (container_image.build_real_image():
every module whose inputs are cached real, cached by BuildKit, as the fault tier's), or on the
image $VALKEY_BUNDLE_METRICS_IMAGE names.
"""

from __future__ import annotations

import pytest
from container import container_image

from . import metrics_kit


@pytest.fixture(scope="session")
def promtool() -> str:
    found = metrics_kit.promtool_binary()
    if not found:
        pytest.fail(f"promtool not found: run {metrics_kit.INSTALL_HINT}", pytrace=False)
    return found


@pytest.fixture(scope="session")
def exporter_binary() -> str:
    found = metrics_kit.exporter_binary()
    if not found:
        pytest.fail(f"redis_exporter not found: run {metrics_kit.INSTALL_HINT}", pytrace=False)
    return found


@pytest.fixture(scope="session")
def metrics_image(tmp_path_factory) -> str:
    log_dir = tmp_path_factory.mktemp("metrics-image")
    build = container_image.build_real_image
    return container_image.image_for_tier("metrics scrape", "VALKEY_BUNDLE_METRICS_IMAGE", build, log_dir)


@pytest.fixture(scope="session")
def search_real(metrics_image) -> bool:
    """Whether the image's search module is real (its label); the stand-in has no FT.* commands."""
    return container_image.search_is_real(metrics_image)
