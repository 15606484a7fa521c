"""Shared fixtures: the entrypoint on sys.path, the native Valkey build, fixture modules."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "entrypoint" / "bundle-docker-entrypoint"
sys.path.insert(0, str(ROOT / "entrypoint"))


@pytest.fixture(scope="session")
def valkey_prefix():
    """A valkey-server built from source by modules/valkey/build.sh (cached)."""
    from support import testbed

    return testbed.valkey_build()


@pytest.fixture(scope="session")
def modules_dir(tmp_path_factory, valkey_prefix):
    """A modules directory holding the four fixture modules under their real file names."""
    from support import testbed

    directory = tmp_path_factory.mktemp("modules")
    testbed.fixture_modules(directory)
    return directory


def base_env(**extra):
    """A clean environment: nothing from the developer's shell leaks into a test."""
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def run_entrypoint(args=(), env=None, cwd=None, timeout=30):
    """Run the entrypoint as a real process (through its own shebang) and wait for it."""
    return subprocess.run(
        [str(ENTRYPOINT), *args],
        env=env if env is not None else base_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Server:
    """valkey-server started through the entrypoint; stopped at teardown."""

    def __init__(self, prefix, port, proc, log_path):
        self.prefix, self.port, self.proc, self.log_path = prefix, port, proc, log_path

    def log(self):
        return self.log_path.read_text(errors="replace")

    def cli(self, *args, check=True):
        result = subprocess.run(
            [str(self.prefix / "bin" / "valkey-cli"), "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"valkey-cli {args} failed: {result.stderr}")
        return result.stdout

    def wait_ready(self, deadline=20.0):
        from support import testbed

        try:
            testbed.wait_until_ready(self.prefix, self.port, self.proc, timeout=deadline)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}:\n{self.log()}") from None
        return self

    def stop(self):
        from support import testbed

        return testbed.stop_process(self.proc)

    def module_names(self):
        out = self.cli("--json", "module", "list")
        import json

        return sorted(m["name"] for m in json.loads(out))


@pytest.fixture
def start_server(valkey_prefix, tmp_path):
    """start_server(args, **env) -> Server, through the entrypoint, on a free port."""
    from support import testbed

    servers = []

    def start(args=(), cwd=None, port=None, **env_vars):
        port = port or testbed.free_port()
        env = base_env(**{k: v.replace("{port}", str(port)) for k, v in env_vars.items()})
        env["PATH"] = f"{valkey_prefix / 'bin'}{os.pathsep}{env['PATH']}"
        argv = [str(ENTRYPOINT), *[a.replace("{port}", str(port)) for a in args]]
        log_path = tmp_path / f"server-{port}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, env=env, cwd=cwd or tmp_path, stdout=log, stderr=subprocess.STDOUT)
        server = Server(valkey_prefix, port, proc, log_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
