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
import socket
import subprocess
import time
import urllib.request
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def registry(release_image, tmp_path_factory):
    """A registry on 127.0.0.1 (plain HTTP), its storage in a temporary directory;
    yields its host:port. Every image pulled from it is removed at the end."""
    base = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(base / "registry.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            raise RuntimeError(f"the registry did not start: {(base / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.2)
    try:
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        release_kit.remove_pulled_images(host)


@pytest.fixture(scope="session")
def cosign_keys(tmp_path_factory) -> tuple[Path, Path]:
    """A cosign key pair (no password) made for this session: (private, public)."""
    return release_kit.key_pair(tmp_path_factory.mktemp("cosign"))
