"""What clients see through the faults of tests/faults, as figures.

Six members of the container tests' image with the settings of deploy/k8s (its valkey.conf,
the StatefulSet's grace period, probes and preStop hook), formed by the entrypoint, under a
bounded load through the `valkey` package's cluster client (tests/faults/fault_kit.py). Per
case, printed, not asserted:

  writes refused   the longest time a slot range took no plain write (and which range)
  reads failed     the longest time a slot range answered no read
  lost             plain writes and replica-acknowledged writes (WAIT 1 returned 1) that do
                   not read back afterwards
  ops/s            successful operations per second before, during and after the fault

Cases: rolling (every member restarted the StatefulSet's way, twice), killed (SIGKILL of a
primary), cut (a primary off the network for twice the node timeout), disk (a primary's
/data filled, then freed, then the member restarted), stopped (all six at once), and
adjacent (bench only: a replica restarted, then its primary at once, as in a rolling
update where the two are neighbours).

The settings can be turned back to measure what a change brought:

  --readiness state-only   readiness as PONG and cluster_state:ok only (no replica link check)
  --no-prestop             no preStop hook (the primary only gets its SIGTERM)
  --conf FILE              this config file in place of deploy/k8s/base/valkey.conf
  --set 'NAME VALUE'       a line appended to valkey.conf (repeatable)
  --readiness-period S     the readiness probe's period
  --preload-mb N           N MiB of incompressible values in one slot range first (its syncs
                           and snapshots then take time, as a real data set's do)

    python3 bench/faults.py [--cases rolling,killed,cut,disk,stopped] [--image NAME] [...]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from container import container_image  # noqa: E402
from container.cluster_kit import ClusterKit, key_slot  # noqa: E402
from faults import fault_kit  # noqa: E402

CASES = ("rolling", "killed", "cut", "disk", "stopped", "adjacent")
UPGRADE = "\n# The second round's change, as an upgrade would bring one.\nmaxmemory 1gb\n"


def variant_conf(args, workdir: Path) -> Path:
    """deploy's valkey.conf (or --conf), with the --set lines."""
    lines = Path(args.conf or fault_kit.DEPLOY / "valkey.conf").read_text().splitlines()
    lines += args.set
    conf = workdir / "valkey.conf"
    conf.write_text("\n".join(lines) + "\n")
    conf.chmod(0o644)
    return conf


def preload(cluster: fault_kit.FaultCluster, mebibytes: int) -> float:
    """Values of 100 KiB of random bytes, ``mebibytes`` in all, in the first slot range
    (never the small disk's); returns the seconds it took, replicas in sync."""
    first, last = cluster.ranges[0]
    tag = next(t for t in (f"t{i}" for i in range(100000)) if first <= key_slot(t) <= last)
    blob = os.urandom(1_100_000)
    began = time.monotonic()
    client = cluster.client()
    try:
        for batch in range(mebibytes // 10):
            values = {f"{{{tag}}}preload:{batch}:{i}": blob[i * 10_000 : i * 10_000 + 100_000] for i in range(100)}
            client.mset_nonatomic(values)
    finally:
        client.close()
    cluster.wait("the replicas to be in sync after the preload", cluster.formed)
    return time.monotonic() - began


def run_case(name: str, cluster: fault_kit.FaultCluster, workdir: Path) -> fault_kit.CaseResult:
    if name == "rolling":
        upgraded = workdir / "valkey-upgraded.conf"
        upgraded.write_text(cluster.settings.conf.read_text() + UPGRADE)
        upgraded.chmod(0o644)
        return fault_kit.case_rolling_restart(cluster, upgraded)
    if name == "killed":
        return fault_kit.case_primary_killed(cluster)
    if name == "cut":
        return fault_kit.case_member_cut_off(cluster)
    if name == "disk":
        return fault_kit.case_full_disk(cluster)
    if name == "stopped":
        return fault_kit.case_everything_stopped(cluster)
    return fault_kit.case_replica_then_primary(cluster)


def main() -> int:
    # A SIGTERM (a timeout's) unwinds like Ctrl-C, so that the containers go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="rolling,killed,cut,disk,stopped")
    parser.add_argument(
        "--image", help="an image to use as it is (default: build the real-module tier's image, as the tier does)"
    )
    parser.add_argument("--readiness", choices=sorted(fault_kit.PROBES), default="image")
    parser.add_argument("--no-prestop", action="store_true")
    parser.add_argument("--conf", help="a config file in place of deploy/k8s/base/valkey.conf")
    parser.add_argument("--set", action="append", default=[], metavar="'NAME VALUE'")
    parser.add_argument("--readiness-period", type=float)
    parser.add_argument("--preload-mb", type=int, default=0)
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    problem = container_image.engine_problem()
    if problem:
        print(f"faults: {problem}", file=sys.stderr)
        return 1
    image = args.image or container_image.build_real_image().name
    search = container_image.search_is_real(image)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = fault_kit.manifests(variant_conf(args, workdir))
        if args.no_prestop:
            settings = dataclasses.replace(settings, pre_stop=None)
        if args.readiness_period:
            settings = dataclasses.replace(settings, readiness_period=args.readiness_period)
        kit = ClusterKit(image, workdir)
        try:
            cluster = fault_kit.FaultCluster(kit, workdir, settings, probe=args.readiness, search=search)
            print(f"faults: {image}; {settings}; readiness {args.readiness}; search real: {search}", flush=True)
            print(f"formed in {cluster.form():.1f} s", flush=True)
            if args.preload_mb:
                print(f"preloaded {args.preload_mb} MiB in {preload(cluster, args.preload_mb):.1f} s", flush=True)
            for name in cases:
                started = time.monotonic()
                try:
                    result = run_case(name, cluster, workdir)
                except AssertionError as exc:  # the cluster did not come back: say how, stop there
                    print(f"{name}: failed after {time.monotonic() - started:.0f} s: {str(exc)[:4000]}", flush=True)
                    break
                results.append(result.figures)
                print(fault_kit.table([result.figures]), f"\n[{time.monotonic() - started:.0f} s]\n", flush=True)
        finally:
            kit.destroy()
    print(fault_kit.table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
