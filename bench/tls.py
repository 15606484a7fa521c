"""What TLS costs one node of the image, beside the same node in clear, measured in one run:

  throughput  valkey-benchmark SET and GET (requests/s, p50 latency), TLS beside plaintext
  start-up    `docker run` to the first `bundle-healthcheck readiness` that passes

    python3 bench/tls.py [--image NAME] [--requests N] [--clients C] [--pipeline P] [--rounds R] [--runs N]

Uses the container tier's image (tests/container/container_image.py build_test_image(): four
stand-in modules) unless --image names one. The two nodes differ only in TLS: the TLS node
gets a server certificate from tests/support/certs.py, mounted as a Secret holds it
(tests/container/test_tls.py's secret_dir), and the VALKEY_TLS_* variables, so that 6379 is
the TLS port, nothing listens in clear and clients must present a certificate.

Throughput: valkey-benchmark (the image's own) runs inside each node's container with
`docker exec`, against 127.0.0.1:6379 (with --tls --cacert --cert --key on the TLS node:
the handshake happens once per connection, the figures are the steady state after it).
Rounds alternate plaintext and TLS; the figures are the median of R rounds.

Start-up: each run starts a container, then runs `docker exec <it> bundle-healthcheck
readiness` back to back until one passes (in TLS mode it speaks TLS); the time is from
before `docker run` to the end of that exec, so it includes one exec's round trip (its
median is printed). Runs alternate; median (min, max) of N each, after one warm-up of each.

Printed, not asserted.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from container import container_image  # noqa: E402
from container.test_tls import CERTS, TLS_ENV, secret_dir  # noqa: E402
from support import certs  # noqa: E402

MODES = ("plaintext", "TLS")
TESTS = ("SET", "GET")
PROBE = (
    "import socket, ssl\n"
    "c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
    f"c.load_verify_locations('{CERTS}/ca.crt')\n"
    f"c.load_cert_chain('{CERTS}/client.crt', '{CERTS}/client.key')\n"
    "with c.wrap_socket(socket.create_connection(('127.0.0.1', 6379)), server_hostname='localhost') as s:\n"
    "    print(s.version(), s.cipher()[0])\n"
)


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"docker {' '.join(args[:3])} ... exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def make_pki(directory: Path) -> Path:
    """A CA, the server's Secret (tls.crt, tls.key for uid 999, ca.crt) and a client certificate beside it."""
    directory.chmod(0o755)
    ca = certs.CA()
    server = secret_dir(directory / "server", ca.issue("valkey", ("valkey", "localhost"), ("127.0.0.1",)), ca)
    certs.write_pair(server, "client", ca.issue("a client", usages=("client",)), key_mode=0o644)
    return server


def docker_run_args(mode: str, secret: Path) -> list[str]:
    """`docker run` options of a node in MODE (the TLS variables and the Secret's mount, or nothing)."""
    if mode == "plaintext":
        return []
    args = ["-v", f"{secret}:{CERTS}:ro"]
    for name, value in TLS_ENV.items():
        args += ["-e", f"{name}={value}"]
    return args


def start(image: str, mode: str, secret: Path) -> str:
    return docker("run", "-d", *docker_run_args(mode, secret), image).stdout.strip()


def remove(container: str) -> None:
    docker("rm", "-f", container, check=False)


def wait_ready(container: str, timeout: float = 60.0) -> tuple[float, list[float]]:
    """Poll readiness until it passes: (time.perf_counter() at the end of the passing exec, each poll's seconds)."""
    polls: list[float] = []
    deadline = time.perf_counter() + timeout
    while True:
        began = time.perf_counter()
        result = docker("exec", container, "bundle-healthcheck", "readiness", check=False)
        ended = time.perf_counter()
        polls.append(ended - began)
        if result.returncode == 0:
            return ended, polls
        if ended > deadline:
            logs = docker("logs", container, check=False)
            raise RuntimeError(f"not ready after {timeout:g} s: {result.stdout}{result.stderr}\n{logs.stderr}")
        if "is not running" in result.stderr:  # docker exec's own answer: the container has exited
            logs = docker("logs", container, check=False)
            raise RuntimeError(f"the container exited before ready:\n{logs.stdout}{logs.stderr}")


def start_to_ready(image: str, mode: str, secret: Path) -> tuple[float, list[float]]:
    """Seconds from `docker run` to the first passing readiness check, and each poll's seconds."""
    started = time.perf_counter()
    container = start(image, mode, secret)
    try:
        ready, polls = wait_ready(container)
        return ready - started, polls
    finally:
        remove(container)


def client_args(mode: str) -> list[str]:
    if mode == "plaintext":
        return []
    return ["--tls", "--cacert", f"{CERTS}/ca.crt", "--cert", f"{CERTS}/client.crt", "--key", f"{CERTS}/client.key"]


def benchmark(container: str, mode: str, args) -> dict[str, dict[str, float]]:
    """One `valkey-benchmark -t set,get --csv` in the node's container: test -> {rps, p50_latency_ms, ...}."""
    tool = ["valkey-benchmark", "-h", "127.0.0.1", "-p", "6379", *client_args(mode)]
    tool += ["-n", str(args.requests), "-c", str(args.clients), "-P", str(args.pipeline), "-t", "set,get", "--csv"]
    out = docker("exec", container, *tool, timeout=600).stdout
    rows = {row["test"]: row for row in csv.DictReader(io.StringIO(out))}
    if sorted(rows) != sorted(TESTS):
        raise RuntimeError(f"valkey-benchmark ({mode}): unexpected output:\n{out}")
    return {test: {k: float(v) for k, v in row.items() if k != "test"} for test, row in rows.items()}


def throughput(image: str, secret: Path, args) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, str]]:
    """Medians of R rounds per mode and test, and what the nodes said about themselves."""
    containers: dict[str, str] = {}
    facts: dict[str, str] = {}
    try:
        for mode in MODES:
            containers[mode] = start(image, mode, secret)
            wait_ready(containers[mode])
        tls = containers["TLS"]
        facts["valkey"] = docker("exec", containers["plaintext"], "valkey-server", "--version").stdout.strip()
        port = docker("exec", tls, "valkey-cli", *client_args("TLS"), "config", "get", "port").stdout.split()
        tls_port = docker("exec", tls, "valkey-cli", *client_args("TLS"), "config", "get", "tls-port").stdout.split()
        if port[-1:] != ["0"] or tls_port[-1:] != ["6379"]:
            raise RuntimeError(f"the TLS node is not TLS-only: {port} {tls_port}")
        facts["tls"] = docker("exec", tls, "python3", "-c", PROBE).stdout.strip()
        for mode in MODES:  # warm-up: the server's first allocations, the page cache
            benchmark(containers[mode], mode, argparse.Namespace(**{**vars(args), "requests": 10_000}))
        runs: dict[str, list[dict[str, dict[str, float]]]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                runs[mode].append(benchmark(containers[mode], mode, args))
    finally:
        for container in containers.values():
            remove(container)
    medians = {
        mode: {
            test: {field: statistics.median(r[test][field] for r in rounds) for field in ("rps", "p50_latency_ms")}
            for test in TESTS
        }
        for mode, rounds in runs.items()
    }
    return medians, facts


def main() -> int:
    # A SIGTERM (a timeout's) unwinds like Ctrl-C, so that the containers go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="an image to use as it is (default: build the container tier's image)")
    parser.add_argument("--requests", type=int, default=100_000, help="requests per test (default 100000)")
    parser.add_argument("--clients", type=int, default=50, help="parallel connections (default 50)")
    parser.add_argument("--pipeline", type=int, default=1, help="pipeline depth (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="benchmark rounds of each mode (default 3)")
    parser.add_argument("--runs", type=int, default=5, help="start-up runs of each mode (default 5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("tls: the server's key is handed to its uid (999): needs root", file=sys.stderr)
        return 1
    problem = container_image.engine_problem()
    if problem:
        print(f"tls: {problem}", file=sys.stderr)
        return 1
    image = args.image or container_image.build_test_image().name
    labels = container_image.labels(image)

    with tempfile.TemporaryDirectory() as tmp:
        secret = make_pki(Path(tmp))
        print(f"measuring throughput, {args.rounds} rounds of each mode ...", file=sys.stderr, flush=True)
        figures, facts = throughput(image, secret, args)
        print(f"measuring start-up, {args.runs} runs of each mode ...", file=sys.stderr, flush=True)
        for mode in MODES:
            start_to_ready(image, mode, secret)  # warm-up
        startup: dict[str, list[float]] = {mode: [] for mode in MODES}
        polls: list[float] = []
        for _ in range(args.runs):
            for mode in MODES:
                seconds, times = start_to_ready(image, mode, secret)
                startup[mode].append(seconds)
                polls += times

    modules = ", ".join(
        f"{c} {labels.get(f'org.valkey-bundle.{c}.build', '?')}" for c in container_image.MODULE_COMPONENTS
    )
    print(f"image: {image} (version label {labels.get('org.opencontainers.image.version', '?')}; {modules})")
    print(f"valkey: {labels.get('org.valkey-bundle.valkey.version', '?')} (label); {facts['valkey']}")
    print(f"machine: {os.cpu_count()} cores (os.cpu_count()), shared by the server and valkey-benchmark, no CPU limit")
    print(f"TLS: {facts['tls']} (as negotiated by the image's python3), ECDSA P-256 certificates, client certificate")
    print()
    print(
        f"valkey-benchmark -t set,get -n {args.requests} -c {args.clients} -P {args.pipeline} --csv, "
        f"in the node's container, median of {args.rounds} rounds:"
    )
    print()
    print("| mode | SET req/s | SET p50 ms | GET req/s | GET p50 ms |")
    print("|---|---:|---:|---:|---:|")
    for mode in MODES:
        f = figures[mode]
        print(
            f"| {mode} | {f['SET']['rps']:,.0f} | {f['SET']['p50_latency_ms']:.3f} "
            f"| {f['GET']['rps']:,.0f} | {f['GET']['p50_latency_ms']:.3f} |"
        )
    plain, tls = figures["plaintext"], figures["TLS"]
    ratios = "; ".join(
        f"{test} req/s {tls[test]['rps'] / plain[test]['rps']:.2f}, "
        f"p50 {tls[test]['p50_latency_ms'] / plain[test]['p50_latency_ms']:.2f}"
        for test in TESTS
    )
    print()
    print(f"TLS/plaintext: {ratios}")
    print()
    print(
        f"docker run -> first bundle-healthcheck readiness that passes, {args.runs} runs each "
        f"(polled by docker exec, median {statistics.median(polls) * 1000:.0f} ms per poll):"
    )
    for mode in MODES:
        t = startup[mode]
        median, low, high = statistics.median(t) * 1000, min(t) * 1000, max(t) * 1000
        print(f"  {mode:<10} median {median:5.0f} ms   min {low:5.0f} ms   max {high:5.0f} ms")
    ratio = statistics.median(startup["TLS"]) / statistics.median(startup["plaintext"])
    print(f"  TLS/plaintext {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
