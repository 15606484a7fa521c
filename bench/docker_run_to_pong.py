"""Time from `docker run` to the first PONG, with all four (fixture) modules loaded,
through the real entrypoint: the median of N runs (and min/max).

    python3 bench/docker_run_to_pong.py [--runs N]

Uses the container tests' image (built first if needed). Each run shares the host's
network namespace (--network host) and binds the server to 127.0.0.1 on a free port,
so the PING polls (every 5 ms) stay on the loopback; MODULE LIST is checked after.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container")]

import container_image  # noqa: E402
from support import testbed  # noqa: E402

MODULES = ["bf", "json", "ldap", "search"]


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def one_run(image: str, timeout: float = 30.0) -> float:
    port = testbed.free_port()
    started = time.perf_counter()
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "--network", "host", image, "--bind", "127.0.0.1", "--port", str(port)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        while not ping(port):
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"no PONG after {timeout}s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        names = sorted(m[1].decode() for m in testbed.valkey_command(port, "MODULE", "LIST") if m[1] != b"lua")
        if names != MODULES:
            raise RuntimeError(f"modules loaded: {names}, expected {MODULES}")
        return elapsed
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    problem = container_image.engine_problem()
    if problem:
        print(f"docker_run_to_pong: {problem}", file=sys.stderr)
        return 1
    image = container_image.build_test_image()
    one_run(image.name)  # warm-up: page cache, first container on the network
    times = [one_run(image.name) for _ in range(args.runs)]
    print(f"docker run -> PONG, 4 modules loaded, {args.runs} runs of {image.name}:")
    print(f"  median {statistics.median(times) * 1000:7.0f} ms")
    print(f"  min    {min(times) * 1000:7.0f} ms")
    print(f"  max    {max(times) * 1000:7.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
