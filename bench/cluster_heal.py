"""Time for six containers to form a cluster by themselves, and to heal after all of them
were recreated on new addresses.

Six containers of the container tests' image (tests/container/cluster_kit.py: an internal
network of their own, pod-like names, a volume each, the password in a file) are started
at the same moment with `docker run`, as a Parallel StatefulSet starts its pods.  Figures,
from the first `docker run`:

  formed   every member reports cluster_state:ok and knows the other five, linked, at
           their current addresses (then also: every replica in sync with its primary)
  healed   the same, after every container was removed and started again on a new
           address, with its volume (all IPs change at once: only the host names in
           nodes.conf lead the members back to each other)

Printed, not asserted; target: healed <= 10 s.

    python3 bench/cluster_heal.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container")]

import cluster_kit  # noqa: E402
import container_image  # noqa: E402

TARGET_HEAL = 10.0


def timed_start(kit, members, ips):
    """(seconds to cluster_state:ok everywhere, seconds until the replicas are in sync too)."""
    began = kit.start(members, ips)
    ok = kit.wait("cluster_state:ok on every member", lambda: all(kit.healthy(m, members) for m in members), members)
    synced = kit.wait("the replicas in sync", lambda: kit.formed(members), members)
    return ok - began, synced - began


def one_run(image, workdir):
    kit = cluster_kit.ClusterKit(image, workdir)
    try:
        members = kit.group("valkey", 6, replicas=1)
        formed = timed_start(kit, members, [kit.address(11 + i) for i in range(6)])
        kit.write_keys(members, [f"key:{i}" for i in range(300)])
        kit.remove(members)
        healed = timed_start(kit, members, [kit.address(111 + i) for i in range(6)])
        roles = kit.roles(members)
        keys = sum(m.call("DBSIZE") for m in members if roles[m.alias][0] == "master")
        if keys != 300:
            raise RuntimeError(f"{keys} keys on the primaries after healing, 300 written")
        return formed, healed
    finally:
        kit.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    problem = container_image.engine_problem()
    if problem:
        print(f"cluster_heal: {problem}", file=sys.stderr)
        return 1
    image = container_image.build_test_image().name
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            workdir = Path(tmp) / f"run-{run}"
            workdir.mkdir()
            started = time.monotonic()
            formed, healed = one_run(image, workdir)
            results.append((formed, healed))
            print(
                f"run {run + 1}: formed {formed[0]:.1f} s (replicas in sync {formed[1]:.1f} s), "
                f"healed on new addresses {healed[0]:.1f} s (in sync {healed[1]:.1f} s)  "
                f"[{time.monotonic() - started:.0f} s]",
                flush=True,
            )
    ok = [statistics.median(r[i][0] for r in results) for i in (0, 1)]
    synced = [statistics.median(r[i][1] for r in results) for i in (0, 1)]
    print(f"6 containers of {image}, median of {args.runs} runs, from the first docker run:")
    print(f"  {'':36} {'cluster_state:ok on every member':>34} {'replicas in sync':>18}")
    print(f"  {'formed':36} {ok[0]:32.1f} s {synced[0]:16.1f} s")
    healed = "healed (all recreated on new IPs)"
    print(f"  {healed:36} {ok[1]:32.1f} s {synced[1]:16.1f} s   (target <= {TARGET_HEAL:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
