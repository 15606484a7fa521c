"""The server's idle memory with every module loaded, beside the same image with no
module loaded (VALKEY_MODULES=none) and with each module alone, measured in one run.

    python3 bench/idle_memory.py [--settle SECONDS] [--image real|stand-in]

Uses the real-module tier's image by default (tests/container/container_image.py: the
real modules whose inputs are cached, stand-ins for the others; which is which is
printed). Each case starts a container (host network, 127.0.0.1, a free port), waits
for PONG, lets it settle, then reads INFO memory (used_memory: the allocator's view;
used_memory_rss: the process's resident set) and the container's cgroup
memory use, and checks MODULE LIST.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container")]

import container_image  # noqa: E402
from support import testbed  # noqa: E402

CGROUP_V2 = "/sys/fs/cgroup/memory.current"
CGROUP_V1 = "/sys/fs/cgroup/memory/memory.usage_in_bytes"


def info_memory(port: int) -> dict[str, int]:
    text = testbed.valkey_command(port, "INFO", "memory").decode()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name: int(fields[name]) for name in ("used_memory", "used_memory_rss")}


def measure(image: str, env: dict[str, str], settle: float) -> dict[str, object]:
    port = testbed.free_port()
    cmd = ["docker", "run", "-d", "--rm", "--network", "host"]
    for name, value in env.items():
        cmd += ["-e", f"{name}={value}"]
    container = subprocess.run(
        [*cmd, image, "--bind", "127.0.0.1", "--port", str(port)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        testbed.wait_until_ready(testbed.valkey_build(), port, timeout=60)
        time.sleep(settle)
        memory = info_memory(port)
        # cgroup v2, else v1: the container's memory as the kernel charges it.
        cgroup = subprocess.run(
            ["docker", "exec", container, "sh", "-c", f"cat {CGROUP_V2} 2>/dev/null || cat {CGROUP_V1}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        modules = sorted(m[1].decode() for m in testbed.valkey_command(port, "MODULE", "LIST") if m[1] != b"lua")
        return {**memory, "cgroup": int(cgroup) if cgroup.isdigit() else None, "modules": modules}
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def mib(value: int | None) -> str:
    return "      n/a" if value is None else f"{value / 2**20:6.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after PONG (default 5)")
    parser.add_argument("--image", choices=("real", "stand-in"), default="real")
    args = parser.parse_args()
    problem = container_image.engine_problem()
    if problem:
        print(f"idle_memory: {problem}", file=sys.stderr)
        return 1
    image = container_image.build_real_image() if args.image == "real" else container_image.build_test_image()
    kinds = ", ".join(f"{c} {kind}" for c, kind in image.builds.items())
    print(f"idle memory of {image.name} ({kinds}), {args.settle:g} s after PONG:")
    cases = {"no module": {"VALKEY_MODULES": "none"}}
    for component, kind in image.builds.items():
        cases[f"{component} ({kind})"] = {"VALKEY_MODULES": component}
    cases["every module"] = {}
    results = {label: measure(image.name, env, args.settle) for label, env in cases.items()}
    print(f"  {'case':20} {'used_memory':>12} {'used_memory_rss':>16} {'cgroup':>12}  modules")
    for label, r in results.items():
        print(
            f"  {label:20} {mib(r['used_memory']):>12} {mib(r['used_memory_rss']):>16} {mib(r['cgroup']):>12}"
            f"  {' '.join(r['modules']) or '-'}"
        )
    base, full = results["no module"], results["every module"]
    print(
        f"  the modules add {mib(full['used_memory'] - base['used_memory'])} used_memory, "
        f"{mib(full['used_memory_rss'] - base['used_memory_rss'])} resident"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
