"""Time from `docker run` to the first PONG, with all four modules loaded, through the
real entrypoint: the real-module tier's image (the real modules whose inputs are cached)
beside the container tier's (four stand-ins), runs alternating, the median of N each
(and min/max).

    python3 bench/docker_run_to_pong.py [--runs N]

Both images are built first if needed. Each run shares the host's network namespace
(--network host) and binds the server to 127.0.0.1 on a free port, so the PING polls
(every 5 ms) stay on the loopback; MODULE LIST is checked after.
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


def one_run(image: str, timeout: float = 30.0, docker_args: tuple[str, ...] = ()) -> float:
    """Seconds from ``docker run [docker_args] image`` to PONG (bench/pid1.py passes --entrypoint, --init)."""
    port = testbed.free_port()
    started = time.perf_counter()
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "--network", "host", *docker_args, image]
        + ["--bind", "127.0.0.1", "--port", str(port)],
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
    images = [container_image.build_real_image(), container_image.build_test_image()]
    times: dict[str, list[float]] = {image.name: [] for image in images}
    for image in images:
        one_run(image.name)  # warm-up: page cache, first container on the network
    for _ in range(args.runs):
        for image in images:
            times[image.name].append(one_run(image.name))
    print(f"docker run -> PONG, 4 modules loaded, {args.runs} runs each:")
    for image in images:
        kinds = ", ".join(f"{c} {kind}" for c, kind in image.builds.items())
        t = times[image.name]
        print(f"  {image.name} ({kinds})")
        median, low, high = (statistics.median(t) * 1000, min(t) * 1000, max(t) * 1000)
        print(f"    median {median:5.0f} ms   min {low:5.0f} ms   max {high:5.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
