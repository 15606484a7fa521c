"""Tier 3: the image, run as real containers (pytest + testcontainers).

The session builds the test image once (see container_image.py). Without a reachable
Docker engine every test here is skipped, with the reason; with one, nothing skips:
a failed image build is an error.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

# The reaper (Ryuk) is an image from a registry: unreachable here, and not needed since
# every fixture removes what it started. Read by testcontainers at import time.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

import docker
from testcontainers.core.container import DockerContainer

from . import container_image

READY_TIMEOUT = 30.0
# Listed by MODULE LIST but part of the server (scripting became a module in Valkey 9.1).
BUILTIN_MODULES = {"lua"}


def pytest_configure(config):
    config.addinivalue_line("markers", "container: builds and runs the image with Docker")


@pytest.fixture(scope="session")
def docker_client():
    problem = container_image.engine_problem()
    if problem:
        pytest.skip(f"container tests need a Docker engine: {problem}")
    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def bundle_image(docker_client, tmp_path_factory):
    """The test image (built once per session; BuildKit's cache makes rebuilds cheap)."""
    log = tmp_path_factory.mktemp("image") / "docker-build.log"
    return container_image.build_test_image(log)


class Bundle:
    """One running container of the image."""

    def __init__(self, wrapper: DockerContainer):
        self.wrapper = wrapper
        self.container = wrapper.get_wrapped_container()

    def exec(self, *cmd: str, user: str = "") -> tuple[int, str]:
        code, out = self.container.exec_run(list(cmd), user=user, demux=False)
        return code, out.decode(errors="replace") if out else ""

    def cli(self, *args: str) -> str:
        code, out = self.exec("valkey-cli", *args)
        if code != 0:
            raise AssertionError(f"valkey-cli {' '.join(args)} exited {code}: {out}\nlogs:\n{self.logs()}")
        return out.strip()

    def cli_json(self, *args: str):
        return json.loads(self.cli("--json", *args))

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")

    def state(self) -> dict:
        self.container.reload()
        return self.container.attrs["State"]

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Bundle:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state["Status"] in ("exited", "dead"):
                raise AssertionError(f"container exited ({state['ExitCode']}) before PONG:\n{self.logs()}")
            code, out = self.exec("valkey-cli", "ping")
            if code == 0 and out.strip() == "PONG":
                return self
            if time.monotonic() > deadline:
                raise AssertionError(f"no PONG after {timeout}s:\n{self.logs()}")
            time.sleep(0.2)  # poll interval, not a wait for readiness

    def processes(self) -> list[dict[str, str]]:
        """Name, Pid, PPid, State, Uid, Gid... of every process in the container, from /proc/*/status."""
        code, out = self.exec("sh", "-c", 'for f in /proc/[0-9]*/status; do cat "$f" && echo; done 2>/dev/null')
        assert code == 0, out
        found = []
        for block in out.split("\n\n"):
            fields = {}
            for line in block.splitlines():
                name, _, value = line.partition(":")
                fields[name] = value.strip()
            if fields.get("Pid"):
                found.append(fields)
        return found

    def pid1(self) -> dict[str, str]:
        """The container's PID 1 (tini)."""
        return next(p for p in self.processes() if p["Pid"] == "1")

    def server(self, name: str = "valkey-server") -> dict[str, str]:
        """The server process (``name``): PID 1's one child besides the entrypoint's helpers,
        with the entrypoint's PID (it was exec'd)."""
        processes = self.processes()
        children = [p for p in processes if p["PPid"] == "1" and p not in self.helpers(processes)]
        assert [p["Name"] for p in children] == [name], processes
        return children[0]

    def helpers(self, processes=None) -> list[dict[str, str]]:
        """The helpers the entrypoint forked beside the server (children of PID 1 running
        bundle-docker-entrypoint): the index guard where search loads, the cluster bootstrap."""
        found = []
        for p in processes or self.processes():
            if p["PPid"] == "1" and p["Name"].startswith("python3"):
                _code, cmdline = self.exec("cat", f"/proc/{p['Pid']}/cmdline")
                if "bundle-docker-entrypoint" in cmdline:
                    found.append(p)
        return found

    def module_names(self) -> list[str]:
        """MODULE LIST, less the server's own built-in modules (Valkey 9.1's lua)."""
        return sorted(m["name"] for m in self.cli_json("module", "list") if m["name"] not in BUILTIN_MODULES)

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.container.wait(timeout=timeout)["StatusCode"]


@pytest.fixture
def run_bundle(bundle_image, docker_client):
    """run_bundle(command=None, env=None, volumes=None, tmpfs=(), ready=True, **run_kwargs)
    -> Bundle. volumes: {volume name or host path: (container path, mode)}; tmpfs:
    container paths; run_kwargs go to docker-py's containers.create (user, read_only,
    network, ...). Every container is removed at teardown."""
    started: list[DockerContainer] = []

    def run(command=None, env=None, volumes=None, tmpfs=(), ready=True, **run_kwargs) -> Bundle:
        wrapper = DockerContainer(bundle_image.name)
        if command is not None:
            wrapper.with_command(list(command))
        for name, value in (env or {}).items():
            wrapper.with_env(name, value)
        for source, (target, mode) in (volumes or {}).items():
            wrapper.with_volume_mapping(str(source), target, mode)
        for path in tmpfs:
            wrapper.with_tmpfs_mount(path)
        if run_kwargs:
            wrapper.with_kwargs(**run_kwargs)
        wrapper.start()
        started.append(wrapper)
        bundle = Bundle(wrapper)
        return bundle.wait_ready() if ready else bundle

    yield run
    for wrapper in started:
        try:
            wrapper.get_wrapped_container().remove(force=True, v=False)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def data_volume(docker_client):
    """A fresh named volume, removed at teardown."""
    volume = docker_client.volumes.create(name=f"valkey-bundle-test-{uuid.uuid4().hex[:12]}")
    yield volume.name
    # Containers still using it (torn down after this fixture) go first.
    for container in docker_client.containers.list(all=True, filters={"volume": volume.name}):
        container.remove(force=True)
    try:
        volume.remove(force=True)
    except docker.errors.NotFound:
        pass
