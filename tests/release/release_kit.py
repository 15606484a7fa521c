"""The release workflow's build.sh commands, run in its order against a registry on this
machine, and a reader of that registry's HTTP API (the registry's own answers, not
build.sh's) for the assertions.

What differs from GitHub, and why:
- the image pushed is the container tier's, already built (`push --by-digest
  --local-image`): a release builds the pins, which this machine cannot all have (search's
  gRPC, bloom). push refuses such an image for any registry not on this machine;
- one platform, this machine's (`manifest --platform`); arm64 is bench/arm64.py's;
- signed with a key pair made by the test (`sign --key`, `verify --key`); the workflow
  signs keyless, with its OIDC identity, and verifies that identity.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from support import testbed

ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "build.sh"
# The build.sh commands of .github/workflows/release.yml, in the order its jobs run them
# (build: push, smoke; publish: manifest, sign, verify). test_release.py checks the
# workflow against this list.
WORKFLOW_COMMANDS = ["push", "smoke", "manifest", "sign", "verify"]
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def this_platform() -> str:
    machine = platform.machine()
    return {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(machine, f"linux/{machine}")


def build_sh(*args: str, image: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BUILD_SH), *args],
        cwd=ROOT,
        env={**os.environ, "IMAGE": image, "COSIGN_PASSWORD": "", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class StepFailed(AssertionError):
    def __init__(self, step: str, result: subprocess.CompletedProcess):
        self.step, self.result = step, result
        super().__init__(f"./build.sh {' '.join(result.args[1:])} exited {result.returncode}:\n{result.stderr[-3000:]}")


@dataclasses.dataclass
class Release:
    image: str  # the repository, host:port/name
    platform_digest: str = ""
    index: str = ""  # the joined image's digest
    steps: list[str] = dataclasses.field(default_factory=list)
    outputs: dict[str, subprocess.CompletedProcess] = dataclasses.field(default_factory=dict)


def rehearse(image: str, local_image: str, ref: str, key: Path, pub: Path) -> Release:
    """The release of LOCAL_IMAGE as IMAGE for the git REF, step by step as the workflow
    runs them; a failed step stops it (StepFailed), as a failed job stops the workflow."""
    release = Release(image)
    plat = this_platform()

    def step(name: str, *args: str) -> str:
        result = build_sh(name, *args, image=image)
        release.steps.append(name)
        release.outputs[name] = result
        if result.returncode != 0:
            raise StepFailed(name, result)
        return result.stdout.strip()

    release.platform_digest = step("push", "--platform", plat, "--by-digest", "--local-image", local_image)
    step("smoke", release.platform_digest)
    reference = step("manifest", "--platform", plat, "--ref", ref, release.platform_digest)
    assert reference.startswith(f"{image}@sha256:"), reference
    release.index = reference.split("@", 1)[1]
    step("sign", "--key", str(key), reference)
    step("verify", "--ref", ref, "--digest", release.index, "--key", str(pub))
    return release


def key_pair(directory: Path) -> tuple[Path, Path]:
    subprocess.run(
        ["cosign", "generate-key-pair"],
        cwd=directory,
        env={**os.environ, "COSIGN_PASSWORD": ""},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return directory / "cosign.key", directory / "cosign.pub"


# --- the registry's own answers ------------------------------------------------------


def _request(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={"Accept": MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def split(image: str) -> tuple[str, str]:
    host, _, repository = image.partition("/")
    return host, repository


def tags(image: str) -> list[str]:
    """Every tag of the repository IMAGE (none when it holds no tag, or nothing)."""
    host, repository = split(image)
    status, _headers, body = _request(f"http://{host}/v2/{repository}/tags/list")
    if status == 404:
        return []
    assert status == 200, (status, body)
    return sorted(json.loads(body).get("tags") or [])


def digest(image: str, reference: str) -> str | None:
    """The digest the registry answers for a tag or digest of IMAGE, None when it has none."""
    host, repository = split(image)
    status, headers, _body = _request(f"http://{host}/v2/{repository}/manifests/{reference}", "HEAD")
    if status == 404:
        return None
    assert status == 200, status
    return headers.get("Docker-Content-Digest")


def manifest(image: str, reference: str) -> dict:
    host, repository = split(image)
    status, _headers, body = _request(f"http://{host}/v2/{repository}/manifests/{reference}")
    assert status == 200, (status, body)
    return json.loads(body)


def snapshot(image: str) -> dict[str, str | None]:
    """Every tag of IMAGE with the digest it names."""
    return {tag: digest(image, tag) for tag in tags(image)}


def remove_pulled_images(host: str) -> None:
    """Remove the references to images pulled from the registry at HOST (only those)."""
    listing = subprocess.run(
        ["docker", "image", "ls", "--digests", "--format", "{{.Repository}}@{{.Digest}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    ours = [name for name in listing if name.startswith(f"{host}/") and "@sha256:" in name]
    if ours:
        subprocess.run(["docker", "image", "rm", *ours], capture_output=True, check=False)


@contextlib.contextmanager
def local_registry(directory: Path):
    """Debian's docker-registry on 127.0.0.1 (plain HTTP, deletes allowed), its storage and log in
    DIRECTORY; yields its host:port. Stopped at the end, and every image pulled from it removed."""
    port = testbed.free_port()
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    host = f"127.0.0.1:{port}"
    with open(directory / "registry.log", "w") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://{host}/v2/", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the registry did not start: {(directory / 'registry.log').read_text()[-2000:]}"
                    )
                time.sleep(0.2)
            yield host
        finally:
            testbed.stop_process(proc)
            remove_pulled_images(host)
