"""PID 1 of the image: tini (the image's ENTRYPOINT) against valkey-server itself as PID 1
(the entrypoint without tini: --entrypoint bundle-docker-entrypoint), side by side.

    python3 bench/pid1.py [--checks N] [--orphans N] [--runs N]

Uses the container tests' image (built first if needed). For each variant it prints:

  health checks      zombies after N `docker exec bundle-healthcheck liveness` (8640: a
                     day at the HEALTHCHECK's 10 s interval)
  orphaned execs     zombies after N `docker exec sh -c 'sleep 0.01 &'` (a probe or an
                     operator's command that leaves a child behind)
  cluster formed     zombies on the 3 members of a cluster they formed by themselves (the
                     bootstrap helper ran on each); then after a BGSAVE on each, and
                     whether the server logged "detected child with unmatched pid"
  SIGTERM, SIGINT    `docker kill -s SIG`: exit status, seconds to exit, clean shutdown
  docker stop        seconds (median of --runs)
  docker run -> PONG seconds (median of --runs), as bench/docker_run_to_pong.py measures it;
                     for these two the variants take turns, run by run

Printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container"), str(ROOT / "bench")]

import cluster_kit  # noqa: E402
import container_image  # noqa: E402
import docker_run_to_pong  # noqa: E402

DAY_OF_CHECKS = 24 * 3600 // 10


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def variants(image: str) -> dict[str, list[str]]:
    """`docker run` options of each variant, whichever of the two the image's ENTRYPOINT is."""
    entrypoint = json.loads(docker("image", "inspect", "--format", "{{json .Config.Entrypoint}}", image).stdout)
    if entrypoint and entrypoint[0] == "tini":
        return {"tini": [], "server as PID 1": ["--entrypoint", "bundle-docker-entrypoint"]}
    return {"tini": ["--init"], "server as PID 1": []}


def processes(container: str) -> list[tuple[int, str, str, int]]:
    """(pid, name, state, ppid) of every process in the container, from /proc/*/stat."""
    out = docker("exec", container, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null").stdout
    found = []
    for line in out.splitlines():
        head, _, rest = line.rpartition(")")
        pid, _, name = head.partition(" (")
        fields = rest.split()
        if len(fields) >= 2:
            found.append((int(pid), name, fields[0], int(fields[1])))
    return found


def zombies(container: str) -> int:
    return sum(1 for _, _, state, _ in processes(container) if state == "Z")


def helper_running(member) -> bool:
    """The cluster bootstrap helper (python3) is still at work in the member (not a zombie)."""
    return any(name == "python3" and state != "Z" for _, name, state, _ in processes(member.name))


def pid1_name(container: str) -> str:
    return next((name for pid, name, _, _ in processes(container) if pid == 1), "?")


def start(image: str, options: list[str], *command: str) -> str:
    result = docker("run", "-d", *options, image, *command)
    if result.returncode != 0:
        raise RuntimeError(f"docker run failed: {result.stderr.strip()}")
    name = result.stdout.strip()
    deadline = time.monotonic() + 30
    while docker("exec", name, "valkey-cli", "ping").stdout.strip() != "PONG":
        if time.monotonic() > deadline:
            raise RuntimeError(f"no PONG from {name}:\n{docker('logs', name).stderr}")
        time.sleep(0.1)
    return name


def repeated_execs(container: str, command: list[str], count: int) -> float:
    """Run ``docker exec container command`` ``count`` times (4 at once); returns the seconds taken."""
    began = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        failures = sum(pool.map(lambda _: docker("exec", container, *command).returncode != 0, range(count)))
    if failures and command[0] == "bundle-healthcheck":
        raise RuntimeError(f"{failures} of {count} health checks failed")
    return time.monotonic() - began


def exec_zombies(image: str, options: list[str], checks: int, orphans: int) -> dict[str, object]:
    container = start(image, options)
    try:
        figures = {"PID 1": pid1_name(container)}
        seconds = repeated_execs(container, ["bundle-healthcheck", "liveness"], checks)
        figures[f"zombies after {checks} health checks"] = zombies(container)
        figures["health checks per second"] = f"{checks / seconds:.0f}"
        repeated_execs(container, ["sh", "-c", "sleep 0.01 &"], orphans)
        time.sleep(0.5)
        figures[f"zombies after {orphans} orphaned execs"] = zombies(container)
        return figures
    finally:
        docker("rm", "-f", container)


def cluster_zombies(image: str, options: list[str], workdir: Path) -> dict[str, object]:
    kit = cluster_kit.ClusterKit(image, workdir)
    kit.run_args = options
    try:
        members = kit.group("pid1", 3, replicas=0)
        kit.start(members, [kit.address(11 + i) for i in range(3)])
        kit.wait("three members to form a cluster", lambda: kit.formed(members), members)
        kit.wait("every bootstrap helper to exit", lambda: not any(map(helper_running, members)), members)
        formed = [zombies(m.name) for m in members]
        for member in members:
            member.call("BGSAVE")
        kit.wait(
            "BGSAVE on every member",
            lambda: all(m.info("INFO", "persistence").get("rdb_bgsave_in_progress") == "0" for m in members),
            members,
        )
        time.sleep(1.0)  # serverCron reaps one child per tick while a child is active
        saved = [zombies(m.name) for m in members]
        unmatched = sum("detected child with unmatched pid" in m.logs() for m in members)
        return {
            "zombies per member after the cluster formed": formed,
            "zombies per member after a BGSAVE": saved,
            'members that logged "detected child with unmatched pid"': unmatched,
        }
    finally:
        kit.destroy()


def signal_exit(image: str, options: list[str], how: str) -> tuple[int, float, bool]:
    """(exit status, seconds from the signal to the exit, whether the server shut down cleanly)."""
    container = start(image, options, "--appendonly", "yes")
    try:
        docker("exec", container, "valkey-cli", "set", "k", "v")
        began = time.monotonic()
        if how == "docker stop":
            docker("stop", "-t", "10", container)
        else:
            docker("kill", "-s", how, container)
        status = int(docker("wait", container).stdout.strip() or -1)
        seconds = time.monotonic() - began
        return status, seconds, "ready to exit" in docker("logs", container).stdout.lower()
    finally:
        docker("rm", "-f", container)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=DAY_OF_CHECKS, help="health checks per variant")
    parser.add_argument("--orphans", type=int, default=100, help="execs that leave a child behind, per variant")
    parser.add_argument("--runs", type=int, default=9, help="runs of the timed figures, per variant")
    args = parser.parse_args()
    problem = container_image.engine_problem()
    if problem:
        print(f"pid1: {problem}", file=sys.stderr)
        return 1
    image = container_image.build_test_image().name
    options_of = variants(image)
    table: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant, options in options_of.items():
            print(f"measuring {variant}: zombies, signals ...", file=sys.stderr, flush=True)
            figures = exec_zombies(image, options, args.checks, args.orphans)
            figures.update(cluster_zombies(image, options, Path(tmp)))
            for how in ("SIGTERM", "SIGINT"):
                status, seconds, clean = signal_exit(image, options, how)
                figures[f"{how}: exit status, seconds, clean shutdown"] = f"{status}, {seconds:.2f} s, {clean}"
            table[variant] = figures
            print(f"{variant}: {figures}", file=sys.stderr, flush=True)  # kept should a later step fail
    # Timed figures: the variants take turns, so a busy moment of the machine hits both alike.
    print("measuring docker stop and docker run -> PONG, the variants taking turns ...", file=sys.stderr, flush=True)
    stops: dict[str, list] = {variant: [] for variant in options_of}
    starts: dict[str, list] = {variant: [] for variant in options_of}
    for options in options_of.values():
        docker_run_to_pong.one_run(image, docker_args=tuple(options))  # warm-up
    for _ in range(args.runs):
        for variant, options in options_of.items():
            stops[variant].append(signal_exit(image, options, "docker stop"))
            starts[variant].append(docker_run_to_pong.one_run(image, docker_args=tuple(options)))
    for variant, figures in table.items():
        statuses = ", ".join(sorted({str(s[0]) for s in stops[variant]}))
        figures["docker stop: median seconds (exit status)"] = (
            f"{statistics.median(s[1] for s in stops[variant]):.2f} s ({statuses})"
        )
        figures["docker run -> PONG: median ms"] = f"{statistics.median(starts[variant]) * 1000:.0f} ms"
    tini_size = docker("run", "--rm", "--entrypoint", "dpkg-query", image, "-W", "-f", "${Installed-Size}", "tini")
    names = list(table)
    print(f"PID 1 in {image}:")
    print(f"  {'':58} " + " ".join(f"{n:>20}" for n in names))
    for figure in table[names[0]]:
        print(f"  {figure:58} " + " ".join(f"{table[n][figure]!s:>20}" for n in names))
    if tini_size.returncode == 0:
        print(f"  tini package installed size: {tini_size.stdout.strip()} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
