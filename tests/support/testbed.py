"""Native test bed: a real valkey-server built by the project's own recipe, and small
fixture modules compiled against its valkeymodule.h.

Everything expensive is cached under cache_dir() and shared between test runs and
between concurrent pytest processes (a file lock guards the build):

    sources/            verified source tarballs (modules/fetch.sh)
    valkey/<key>/       a Valkey build: bin/, include/valkeymodule.h, BUILD_INFO
    valkey/<key>.log    the output of that build

<key> is the sha256 of the source tarball's sha256 together with the sha256 of
modules/valkey/build.sh (and modules/recipe.sh), so a new source or a changed recipe gives
a new build.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT / "entrypoint") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "entrypoint"))  # the module.env parser the image uses
MODULES_DIR = REPO_ROOT / "modules"
FIXTURE_SOURCE = REPO_ROOT / "tests" / "fixtures" / "fixture_module.c"

# key -> (file name, module name), as the real modules are installed.
FIXTURE_MODULES = {
    "SEARCH": ("libsearch.so", "search"),
    "JSON": ("libjson.so", "json"),
    "BLOOM": ("libvalkey_bloom.so", "bf"),
    "LDAP": ("libvalkey_ldap.so", "ldap"),
}


def cache_dir() -> Path:
    """$VALKEY_BUNDLE_CACHE, else $XDG_CACHE_HOME/valkey-bundle, else ~/.cache/valkey-bundle."""
    explicit = os.environ.get("VALKEY_BUNDLE_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg if xdg else Path.home() / ".cache") / "valkey-bundle"


def module_env(component: str) -> dict[str, str]:
    """The NAME=value pairs of modules/<component>/module.env, read as the entrypoint reads them."""
    from valkey_bundle.module_files import parse_env_file

    return parse_env_file((MODULES_DIR / component / "module.env").read_text())


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@functools.cache
def valkey_source_tarball() -> tuple[Path, str, int]:
    """(path, sha256, strip) of a verified Valkey source tarball.

    The pinned release through modules/fetch.sh (which honours VALKEY_TARBALL and
    VALKEY_SHA256); if that fails -- GitHub unreachable -- Debian's copy through
    modules/valkey/fetch-debian-fallback.sh. RuntimeError if both fail.
    """
    sources = cache_dir() / "sources"
    env = module_env("valkey")
    pinned = subprocess.run(
        [str(MODULES_DIR / "fetch.sh"), "valkey", str(sources)],
        capture_output=True,
        text=True,
        check=False,
    )
    if pinned.returncode == 0:
        path = Path(pinned.stdout.strip())
        return path, _sha256_file(path), int(env.get("SOURCE_STRIP", "1"))
    fallback = subprocess.run(
        [str(MODULES_DIR / "valkey" / "fetch-debian-fallback.sh"), str(sources)],
        capture_output=True,
        text=True,
        check=False,
    )
    if fallback.returncode == 0:
        path = Path(fallback.stdout.strip())
        return path, _sha256_file(path), int(env.get("DEBIAN_FALLBACK_STRIP", "1"))
    raise RuntimeError(
        "no Valkey source tarball:\n"
        f"  pinned release: {_last_line(pinned.stderr)}\n"
        f"  Debian fallback: {_last_line(fallback.stderr)}"
    )


def valkey_source_version(sha256: str) -> str:
    """The Valkey version a tarball with this sha256 contains, per modules/valkey/module.env."""
    env = module_env("valkey")
    if sha256 == env["SOURCE_SHA256"]:
        return env["VERSION"]
    if sha256 == env.get("DEBIAN_FALLBACK_SHA256"):
        return env["DEBIAN_FALLBACK_VERSION"]
    raise LookupError(f"sha256 {sha256} is neither the pinned Valkey nor the Debian fallback")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@functools.cache
def valkey_build() -> Path:
    """PREFIX of a Valkey built by modules/valkey/build.sh: bin/valkey-server,
    bin/valkey-cli, include/valkeymodule.h. Built once per (source, recipe)."""
    tarball, sha256, strip = valkey_source_tarball()
    recipe = MODULES_DIR / "valkey" / "build.sh"
    recipe_sha = _sha256_file(recipe) + _sha256_file(MODULES_DIR / "recipe.sh")  # and what it sources
    key = hashlib.sha256(f"{sha256}\n{recipe_sha}\n".encode()).hexdigest()
    builds = cache_dir() / "valkey"
    prefix = builds / key
    log = builds / f"{key}.log"

    def complete() -> bool:
        return all(
            (prefix / p).is_file()
            for p in ("bin/valkey-server", "bin/valkey-cli", "include/valkeymodule.h", "BUILD_INFO")
        )

    if complete():
        return prefix
    builds.mkdir(parents=True, exist_ok=True)
    with open(builds / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building this
        if complete():
            return prefix
        for stale in builds.glob(f".build-{key[:16]}-*"):  # left by an interrupted build
            shutil.rmtree(stale, ignore_errors=True)
        if prefix.exists():
            shutil.rmtree(prefix)
        work = Path(tempfile.mkdtemp(prefix=f".build-{key[:16]}-", dir=builds))
        try:
            with open(log, "w") as out:
                for step in (
                    [str(MODULES_DIR / "unpack.sh"), str(tarball), sha256, str(strip), str(work / "src")],
                    [str(recipe), str(work / "src"), str(work / "prefix")],
                ):
                    out.write(f"+ {' '.join(step)}\n")
                    out.flush()
                    rc = subprocess.run(
                        step, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
                    ).returncode
                    if rc != 0:
                        raise RuntimeError(
                            f"Valkey build failed ({Path(step[0]).name} exited {rc}); "
                            f"log {log}, last lines:\n{_tail(log)}"
                        )
            (work / "prefix" / "BUILD_INFO").write_text(
                f"source={tarball.name}\nsource_sha256={sha256}\n"
                f"recipe_sha256={recipe_sha}\nversion={_version_or_unknown(sha256)}\n"
            )
            os.rename(work / "prefix", prefix)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if not complete():
        raise RuntimeError(f"Valkey build in {prefix} is incomplete; log {log}:\n{_tail(log)}")
    return prefix


def _version_or_unknown(sha256: str) -> str:
    try:
        return valkey_source_version(sha256)
    except LookupError:
        return "unknown"


def fixture_modules(dest_dir: Path | str) -> dict[str, Path]:
    """Compile tests/fixtures/fixture_module.c into dest_dir once per module:
    {"SEARCH": .../libsearch.so, "JSON": .../libjson.so,
     "BLOOM": .../libvalkey_bloom.so, "LDAP": .../libvalkey_ldap.so}."""
    include = valkey_build() / "include"
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    compiler = os.environ.get("CC", "cc")
    built = {}
    for key, (file_name, module_name) in FIXTURE_MODULES.items():
        out = dest / file_name
        cmd = [
            compiler,
            "-shared",
            "-fPIC",
            "-O1",
            "-Wall",
            "-Werror",
            f"-I{include}",
            f'-DFIXTURE_NAME="{module_name}"',
            "-o",
            str(out),
            str(FIXTURE_SOURCE),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"compiling {file_name} failed: {' '.join(cmd)}\n{result.stdout}{result.stderr}")
        built[key] = out
    return built


_ports_given: set[int] = set()


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> int:
    """SIGTERM, then SIGKILL after TIMEOUT seconds; its exit status (nothing done if it has ended)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as valkey-server does
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port below 40000 that is free on 127.0.0.1, together with port + 10000
    (cluster bus) and port + 20294 (search coordinator); not handed out before by
    this process. Random, so that concurrent test processes rarely collide."""
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(11000, 32000)  # below Linux's ephemeral range (32768-)
        if port in _ports_given:
            continue
        if all(_can_bind(p) for p in (port, port + 10000, port + 20294)):
            _ports_given.add(port)
            return port
    raise RuntimeError("no free port found on 127.0.0.1")


# The image's own RESP client, in its byte-exact mode.
from valkey_bundle.resp import Connection  # noqa: E402
from valkey_bundle.resp import ReplyError as ValkeyError  # noqa: E402


def valkey_command(port: int, *args: str | bytes, timeout: float = 10.0, host: str = "127.0.0.1"):
    """Send one command (RESP2) to host:port and return the reply: bulk strings
    as bytes, arrays as lists; an error reply raises ValkeyError."""
    with Connection(host, port, timeout=timeout, decode=False) as conn:
        reply = conn.call(*args)
    if isinstance(reply, ValkeyError):
        raise reply
    return reply


def wait_until_ready(prefix: Path, port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Poll `valkey-cli -p PORT ping` until PONG; RuntimeError if proc exits first
    or the deadline passes."""
    cli = str(Path(prefix) / "bin" / "valkey-cli")
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"valkey-server exited with status {proc.returncode} before it was ready")
        try:
            out = subprocess.run(
                [cli, "-p", str(port), "ping"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        except subprocess.TimeoutExpired:
            out = ""
        if out.strip() == "PONG":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"valkey-server on port {port} not ready after {timeout}s")
        time.sleep(0.05)  # poll interval, not a wait for readiness


@contextlib.contextmanager
def running_server(
    args: Sequence[str], port: int, workdir: Path | str, prefix: Path | None = None, timeout: float = 30.0
) -> Iterator[subprocess.Popen]:
    """Start `valkey-server ARGS` (ARGS must include `--port PORT`) in workdir, wait
    until it answers PING, yield the process; always stopped on exit. Its output is
    in workdir/valkey-server.log (the RuntimeError for a failed start quotes it)."""
    prefix = Path(prefix) if prefix is not None else valkey_build()
    log = Path(workdir) / "valkey-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(prefix / "bin" / "valkey-server"), *args],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_until_ready(prefix, port, proc, timeout)
        except RuntimeError as e:
            raise RuntimeError(f"{e}; log {log}:\n{_tail(log)}") from None
        yield proc
    finally:
        stop_process(proc, 15)
