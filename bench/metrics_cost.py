"""What the metrics exporter costs beside a member, and what its scrapes cost the member.

Three members of the container tests' image (tests/container/cluster_kit.py: 3 primaries on
a network of their own, the password in a file, formed by the entrypoint) and redis_exporter
(Debian's prometheus-redis-exporter, as tests/metrics runs it: a process of this machine
scraping member 0, the password from a file, the search metrics script of deploy/k8s).
Figures:

  scrape          wall time of one GET /metrics (back to back, --scrapes of them), and the
                  exporter's own redis_exporter_last_scrape_duration_seconds
  exporter        its CPU time per scrape, and its resident memory after them (and its peak)
  server          valkey-server's CPU time (INFO used_cpu_user + used_cpu_sys) and commands
                  (total_commands_processed) per scrape, less the same time idle
  every 15 s      over a fixed --window: the server's and the exporter's CPU time and the
                  server's commands without scrapes, then with a scrape every 15 s

Printed, not asserted.

    python3 bench/metrics_cost.py [--scrapes N] [--window SECONDS] [--image NAME]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container"), str(ROOT / "tests" / "metrics")]

import cluster_kit  # noqa: E402
import container_image  # noqa: E402
import metrics_kit  # noqa: E402

INTERVAL = 15.0


def server_state(member) -> tuple[float, int]:
    """(CPU seconds, commands processed) of the member's valkey-server."""
    info = member.info("INFO")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), int(info["total_commands_processed"])


def idle_cost(member, exporter, seconds: float) -> tuple[float, int, float]:
    """(server CPU s, server commands, exporter CPU s) over ``seconds`` without a scrape."""
    cpu0, commands0 = server_state(member)
    exporter0 = exporter.cpu_seconds()
    time.sleep(seconds)
    cpu1, commands1 = server_state(member)
    return cpu1 - cpu0, commands1 - commands0 - 1, exporter.cpu_seconds() - exporter0


def per_scrape(member, exporter, scrapes: int) -> dict:
    durations, reported = [], []
    cpu0, commands0 = server_state(member)
    exporter0 = exporter.cpu_seconds()
    began = time.monotonic()
    for _ in range(scrapes):
        started = time.perf_counter()
        samples = exporter.scrape()
        durations.append(time.perf_counter() - started)
        reported.append(metrics_kit.value(samples, "redis_exporter_last_scrape_duration_seconds"))
    wall = time.monotonic() - began
    cpu1, commands1 = server_state(member)
    exporter_cpu = exporter.cpu_seconds() - exporter0
    idle_cpu, idle_commands, _ = idle_cost(member, exporter, wall)
    return {
        "samples": len(samples),
        "wall": durations,
        "reported": reported,
        "exporter_cpu": exporter_cpu / scrapes,
        "server_cpu": max(0.0, (cpu1 - cpu0) - idle_cpu) / scrapes,
        "server_commands": ((commands1 - commands0 - 1) - idle_commands) / scrapes,
    }


def every_interval(member, exporter, window: float) -> tuple[tuple, tuple, int]:
    """(idle cost, cost with a scrape every INTERVAL, scrapes) over ``window`` seconds each."""
    idle = idle_cost(member, exporter, window)
    cpu0, commands0 = server_state(member)
    exporter0 = exporter.cpu_seconds()
    began, scrapes = time.monotonic(), 0
    while time.monotonic() - began < window:
        exporter.scrape()
        scrapes += 1
        time.sleep(max(0.0, began + scrapes * INTERVAL - time.monotonic()))
    time.sleep(max(0.0, began + window - time.monotonic()))
    cpu1, commands1 = server_state(member)
    scraping = (cpu1 - cpu0, commands1 - commands0 - 1, exporter.cpu_seconds() - exporter0)
    return idle, scraping, scrapes


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=100, help="back-to-back scrapes (default 100)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of each fixed window (default 60)")
    parser.add_argument("--image", help="an image to run instead of the container tests' image")
    args = parser.parse_args(argv)
    binary = metrics_kit.exporter_binary()
    if not binary:
        print(f"redis_exporter not found: run {metrics_kit.INSTALL_HINT}", file=sys.stderr)
        return 1
    image = args.image or container_image.build_test_image().name
    labels = container_image.labels(image)
    modules = ", ".join(
        f"{m} {labels.get(f'org.valkey-bundle.{m}.build', '?')}" for m in container_image.MODULE_COMPONENTS
    )
    with tempfile.TemporaryDirectory() as workdir:
        kit = cluster_kit.ClusterKit(image, Path(workdir))
        exporter = None
        try:
            members = kit.group("valkey", 3, replicas=0)
            kit.start(members, [kit.address(11 + i) for i in range(3)])
            kit.wait("three members to form a cluster", lambda: kit.formed(members), members, timeout=120)
            exporter = metrics_kit.Exporter(binary, Path(workdir), f"{members[0].ip}:6379", kit.password)
            for _ in range(3):
                exporter.scrape()  # warm-up: connections, the script cached by the server
            figures = per_scrape(members[0], exporter, args.scrapes)
            rss = exporter.rss_bytes()
            peak = next(
                int(line.split()[1]) * 1024
                for line in Path(f"/proc/{exporter.proc.pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")
            )
            idle, scraping, scrapes = every_interval(members[0], exporter, args.window)
        finally:
            if exporter:
                exporter.stop()
            kit.destroy()

    wall = figures["wall"]
    print(f"image {image} ({modules}); redis_exporter {metrics_kit.exporter_version(binary)} beside member 0 of 3")
    print(f"{args.scrapes} scrapes back to back, {figures['samples']} samples each:")
    print(
        f"  scrape wall time      median {ms(statistics.median(wall))}, p90 "
        f"{ms(statistics.quantiles(wall, n=10)[-1])}, max {ms(max(wall))}"
    )
    print(f"  exporter's own        median {ms(statistics.median(figures['reported']))}")
    print(f"  exporter CPU          {ms(figures['exporter_cpu'])} per scrape")
    print(f"  exporter memory       {rss / 2**20:.1f} MiB resident after them, peak {peak / 2**20:.1f} MiB")
    print(f"  server CPU            {ms(figures['server_cpu'])} per scrape")
    print(f"  server commands       {figures['server_commands']:.1f} per scrape")
    w = args.window
    print(f"over {w:.0f} s, without scrapes / with one every {INTERVAL:.0f} s ({scrapes} scrapes):")
    print(
        f"  server CPU            {idle[0]:.3f} s ({idle[0] / w:.3%} of a core) / "
        f"{scraping[0]:.3f} s ({scraping[0] / w:.3%})"
    )
    print(f"  server commands       {idle[1]} / {scraping[1]} ({scraping[1] / w:.2f}/s)")
    print(f"  exporter CPU          {idle[2]:.3f} s / {scraping[2]:.3f} s ({scraping[2] / w:.3%} of a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
