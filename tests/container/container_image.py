"""The image the container tests run: the production Dockerfile's runtime stage, with

- the base image made locally by tests/support/make-base-image.sh (no registry here),
- Valkey compiled by the Dockerfile's own `valkey` stage, from the tarball the native
  test bed uses (testbed.valkey_source_tarball(): the pinned release, or Debian's copy
  of the upstream tree where GitHub is out of reach), passed as
  VALKEY_SOURCE_FILE / VALKEY_SOURCE_SHA256,
- the fixture modules (testbed.fixture_modules) in place of the four real modules:
  MODULES_FROM=modules-prebuilt with PREBUILT_DIR pointing at them, so BuildKit skips
  the module compile stages.

Shared by tests/container/conftest.py and the benchmarks in bench/.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

from support import testbed

ROOT = Path(__file__).resolve().parents[2]
MAKE_BASE_IMAGE = ROOT / "tests" / "support" / "make-base-image.sh"
# Inside the build context (git-ignored): the Dockerfile can only COPY from there.
PREBUILT_DIR = Path("modules") / "prebuilt" / "container-tests"
IMAGE = os.environ.get("VALKEY_BUNDLE_TEST_IMAGE", "valkey-bundle-test:local")


@dataclasses.dataclass(frozen=True)
class TestImage:
    name: str
    base_image: str
    valkey_version: str
    build_seconds: float
    build_args: dict[str, str]


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


def build_args(base: str) -> dict[str, str]:
    """The build args of the test image (the prebuilt modules must already be in place)."""
    tarball, sha256, _strip = testbed.valkey_source_tarball()
    version = testbed.valkey_source_version(sha256)
    return {
        "BASE_IMAGE": base,
        "MODULES_FROM": "modules-prebuilt",
        "PREBUILT_DIR": PREBUILT_DIR.as_posix(),
        "VALKEY_SOURCE_FILE": tarball.name,
        "VALKEY_SOURCE_SHA256": sha256,
        "VALKEY_VERSION": version,
        "IMAGE_VERSION": f"{version}-test",
        "IMAGE_REVISION": "test",
    }


def _place_sources_and_modules() -> None:
    tarball, _sha256, _strip = testbed.valkey_source_tarball()
    if not tarball.name.startswith("valkey"):
        raise RuntimeError(f"{tarball.name}: the Dockerfile's valkey stage takes only files named valkey*")
    target = ROOT / "modules" / "sources" / tarball.name
    if not target.exists() or target.stat().st_size != tarball.stat().st_size:
        target.unlink(missing_ok=True)
        try:
            os.link(tarball, target)
        except OSError:
            shutil.copyfile(tarball, target)
    prebuilt = ROOT / PREBUILT_DIR
    shutil.rmtree(prebuilt, ignore_errors=True)
    testbed.fixture_modules(prebuilt)


def build_test_image(log_path: Path | None = None) -> TestImage:
    """Build (or find in the build cache) the test image; RuntimeError with the end of
    the build log if it fails. Serialised between processes by a lock in the cache."""
    base = base_image()
    lock_dir = testbed.cache_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or lock_dir / "container-test-image.log"
    with open(lock_dir / "container-test-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _place_sources_and_modules()
        args = build_args(base)
        cmd = ["docker", "build", "--progress=plain", "--file", str(ROOT / "Dockerfile"), "--target", "runtime"]
        for name, value in args.items():
            cmd += ["--build-arg", f"{name}={value}"]
        cmd += ["--tag", IMAGE, str(ROOT)]
        env = dict(os.environ, DOCKER_BUILDKIT="1")
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
                f"docker build of the test image failed ({rc}); log {log_path}:\n{_tail(log_path.read_text())}"
            )
    return TestImage(IMAGE, base, args["VALKEY_VERSION"], seconds, args)


def image_size(name: str) -> int:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())
