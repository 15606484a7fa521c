"""Cold and warm build time of each stage of the image, on this machine.

    python3 bench/build_times.py

The image is the real-module tier's (tests/container/container_image.py): every module
whose pinned inputs (or substitutes of them, --substitutes auto) are in the cache is
compiled for real, the others are stand-ins;
Valkey comes from the test bed's tarball. Nothing is downloaded but Debian packages.

- cold: the cache mounts emptied first (ccache, the cargo target directories:
  `docker builder prune --filter type=exec.cachemount`), then `./build.sh build --
  --no-cache`: every step runs, every compiler starts from nothing, and the stages
  that install Debian packages download them -- except search's gRPC build, which
  build.sh keeps as an image of its own (valkey-bundle-cache/search-deps:<key>) and
  does not redo while its inputs are the same (--with-grpc removes it first);
- warm: right after, every compile step invalidated (JOBS passed as another string of
  the same number), the rest cached: the compile steps run again with the cache mounts
  warm, as after a change of inputs. (`--no-cache` cannot measure this: BuildKit then
  gives every cache mount a fresh, empty directory.)
- cached: once more with nothing changed.

Per stage: the sum of the durations of its steps, from BuildKit's plain progress
output; stages run in parallel (2 cores here), so the wall time is printed too.
Other layers stay in the build cache: the tests' images are not rebuilt afterwards.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container")]

import container_image  # noqa: E402

STEP = re.compile(r"^#(\d+) \[([\w.-]+)(?: \d+/\d+)?\] ")
DONE = re.compile(r"^#(\d+) DONE (\d+(?:\.\d+)?)s$")


def stage_seconds(log: str) -> dict[str, float]:
    """Stage -> seconds, summed over its steps that ran (cached steps count 0)."""
    stage_of: dict[str, str] = {}
    seconds: dict[str, float] = collections.defaultdict(float)
    # Each `docker build` numbers its steps from 1: a new build starts a new map.
    for chunk in log.split("\n+ build\n"):
        stage_of.clear()
        for line in chunk.splitlines():
            if match := STEP.match(line):
                stage_of[match[1]] = match[2]
            elif (match := DONE.match(line)) and match[1] in stage_of:
                stage = stage_of[match[1]]
                if stage not in ("internal", "auth"):
                    seconds[stage] += float(match[2])
    return dict(seconds)


def build(name: str, docker_args: tuple[str, ...], log_path: Path, jobs: str) -> tuple[float, str]:
    image = container_image.build_image(name, "auto", log_path, docker_args, jobs, substitutes="auto")
    # build.sh runs several builds (the package stages first on an old engine).
    text = log_path.read_text().replace("build.sh: docker buildx build", "\n+ build\nbuild.sh: docker buildx build")
    return image.build_seconds, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--with-grpc",
        action="store_true",
        help="also build search's gRPC cold (its kept image removed first; about 40 minutes on 2 cores)",
    )
    args = parser.parse_args()
    problem = container_image.engine_problem()
    if problem:
        print(f"build_times: {problem}", file=sys.stderr)
        return 1
    name = container_image.REAL_IMAGE
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.with_grpc:
            kept = subprocess.run(
                ["docker", "image", "ls", "-q", "valkey-bundle-cache/search-deps"], capture_output=True, text=True
            ).stdout.split()
            if kept:
                subprocess.run(["docker", "image", "rm", "-f", *kept], capture_output=True, check=False)
        prune = ["docker", "builder", "prune", "--force", "--filter", "type=exec.cachemount"]
        subprocess.run(prune, capture_output=True, check=True)
        runs["cold"] = build(name, ("--no-cache",), Path(tmp) / "cold.log", str(os.cpu_count()))
        # The same number of jobs, another string: every compile step's cache key changes.
        runs["warm"] = build(name, (), Path(tmp) / "warm.log", f"0{os.cpu_count()}")
        runs["cached"] = build(name, (), Path(tmp) / "cached.log", f"0{os.cpu_count()}")
    labels = container_image.labels(name)
    kinds = ", ".join(
        f"{c} {labels.get(f'org.valkey-bundle.{c}.build', '?')}" for c in container_image.MODULE_COMPONENTS
    )
    print(f"build of {name} on {os.cpu_count()} cores ({kinds}):")
    per_run = {kind: stage_seconds(text) for kind, (_wall, text) in runs.items()}
    stages = sorted(
        {s for seconds in per_run.values() for s in seconds},
        key=lambda s: -max(seconds.get(s, 0) for seconds in per_run.values()),
    )
    print(f"  {'stage':24}" + "".join(f"{kind:>10}" for kind in runs))
    for stage in stages:
        print(f"  {stage:24}" + "".join(f"{per_run[kind].get(stage, 0.0):9.1f}s" for kind in runs))
    print(f"  {'wall time':24}" + "".join(f"{wall:9.1f}s" for wall, _ in runs.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
