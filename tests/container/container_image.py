"""The images the container tests run, built by `./build.sh build` from the production
Dockerfile, as users build it:

- on a base image made locally by tests/support/make-base-image.sh (no registry here),
- with Valkey compiled by the Dockerfile's own `valkey` stage, from the tarball the
  native test bed uses (testbed.valkey_source_tarball(): the pinned release, or Debian's
  copy of the upstream tree where GitHub is out of reach), passed as VALKEY_TARBALL,
- and the modules: for the container tier (build_test_image) all four stand-ins, the
  fixture module under each module's names (`--stand-ins all`), so that what is checked
  is the image and the entrypoint; for the real-module tier (build_real_image) every
  module whose pinned inputs are in the cache, or substitutes of them that
  `./build.sh fetch` packed when asked (`--substitutes auto`), a stand-in for the
  others and for search while its gRPC build is not in Docker yet (`--stand-ins
  cached`: a test run never starts that 40-minute compile), nothing downloaded. The
  image's labels say which is which, and which inputs were substitutes.

Shared by tests/container/, tests/real/ and the benchmarks in bench/.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from support import testbed

ROOT = Path(__file__).resolve().parents[2]
MAKE_BASE_IMAGE = ROOT / "tests" / "support" / "make-base-image.sh"
BUILD_SH = ROOT / "build.sh"
# build.sh tags an image that is not built from the pins alone <IMAGE>:local.
IMAGE = os.environ.get("VALKEY_BUNDLE_TEST_IMAGE", "valkey-bundle-test:local")
REAL_IMAGE = os.environ.get("VALKEY_BUNDLE_REAL_TEST_IMAGE", "valkey-bundle-real-test:local")
MODULE_COMPONENTS = ("search", "json", "bloom", "ldap")


@dataclasses.dataclass(frozen=True)
class TestImage:
    name: str
    base_image: str
    valkey_version: str
    build_seconds: float
    # component -> "real" or "stand-in", from the image's labels
    builds: dict[str, str]
    log: Path


def engine_problem() -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    if shutil.which("docker") is None:
        return "docker CLI not found"
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 30 s"
    if result.returncode != 0 or not result.stdout.strip():
        last = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker engine reachable: {last}"
    return None


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def base_image() -> str:
    result = subprocess.run([str(MAKE_BASE_IMAGE)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{MAKE_BASE_IMAGE.name} failed ({result.returncode}):\n{_tail(result.stderr)}")
    return result.stdout.strip().splitlines()[-1]


def _inspect(name: str, template: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", template, name], capture_output=True, text=True, check=True
    ).stdout.strip()


def labels(name: str) -> dict[str, str]:
    return json.loads(_inspect(name, "{{json .Config.Labels}}")) or {}


def build_image(
    name: str,
    stand_ins: str,
    log_path: Path | None = None,
    docker_args: tuple[str, ...] = (),
    jobs: str = "",
    substitutes: str = "none",
) -> TestImage:
    """Build NAME (which must end in :local) with `./build.sh build --stand-ins STAND_INS
    --substitutes SUBSTITUTES`,
    offline (from the cache only), DOCKER_ARGS passed on to docker, JOBS (if given) as
    build.sh's JOBS; RuntimeError with the end of the build log if it fails. Serialised
    between processes by a lock in the cache."""
    repository, _, tag = name.rpartition(":")
    if tag != "local" or not repository:
        raise RuntimeError(f"{name}: a test image is named <repository>:local (build.sh's tag for such builds)")
    base = base_image()
    _tarball, sha256, _strip = testbed.valkey_source_tarball()
    version = testbed.valkey_source_version(sha256)
    log_path = log_path or testbed.cache_dir() / f"{repository.replace('/', '-')}-image.log"
    build_args = ["--stand-ins", stand_ins, "--substitutes", substitutes, "--", "--progress=plain", *docker_args]
    seconds = run_build(repository, build_args, log_path, jobs)
    image_labels = labels(name)
    builds = {c: image_labels.get(f"org.valkey-bundle.{c}.build", "") for c in MODULE_COMPONENTS}
    return TestImage(name, base, version, seconds, builds, log_path)


def run_build(repository: str, args: list[str], log_path: Path, jobs: str = "", base: str = "") -> float:
    """`./build.sh build ARGS` offline (from the cache only) with IMAGE=REPOSITORY, the base
    image BASE (default: the test base image) and the test bed's Valkey tarball, JOBS (if given) as build.sh's JOBS, its
    output in LOG_PATH; serialised between processes by a lock in the cache. The seconds it
    took; RuntimeError with the end of the log if it fails."""
    tarball, sha256, _strip = testbed.valkey_source_tarball()
    lock_dir = testbed.cache_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        IMAGE=repository,
        BASE_IMAGE=base or base_image(),
        VALKEY_TARBALL=str(tarball),
        VALKEY_SHA256=sha256,
        VALKEY_BUNDLE_OFFLINE="1",
    )
    if jobs:
        env["JOBS"] = jobs
    cmd = [str(BUILD_SH), "build", *args]
    with open(lock_dir / "container-test-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        with open(log_path, "w") as log:
            log.write("+ " + " ".join(cmd) + "\n")
            log.flush()
            rc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, check=False
            ).returncode
        seconds = time.monotonic() - started
    if rc != 0:
        raise RuntimeError(
            f"./build.sh build {' '.join(args[:4])} failed ({rc}); log {log_path}:\n{_tail(log_path.read_text())}"
        )
    return seconds


def build_test_image(log_path: Path | None = None) -> TestImage:
    """The container tier's image: every module a stand-in (the fixture module)."""
    return build_image(IMAGE, "all", log_path)


def build_real_image(log_path: Path | None = None) -> TestImage:
    """The real-module tier's image: every module whose inputs are cached, real."""
    return build_image(REAL_IMAGE, "cached", log_path, substitutes="auto")


def image_for_tier(tier: str, variable: str, build, log_dir: Path) -> str:
    """The image TIER's tests run on: the one $VARIABLE names, as it is, else BUILD(log path)'s
    (cached by BuildKit); skipped, with the reason, without a reachable Docker engine."""
    import pytest

    problem = engine_problem()
    if problem:
        pytest.skip(f"{tier} tests need a Docker engine: {problem}")
    given = os.environ.get(variable)
    if given:
        return given
    return build(log_dir / "docker-build.log").name


def search_is_real(name: str) -> bool:
    """Whether image NAME's search module is real (its label), not the stand-in."""
    return labels(name).get("org.valkey-bundle.search.build") == "real"


def image_size(name: str) -> int:
    return int(_inspect(name, "{{.Size}}"))
