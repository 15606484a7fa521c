"""Size of the runtime image (the container tests' image: the production Dockerfile's
runtime stage with the fixture modules) next to the base image it is built on.

    python3 bench/image_size.py

Builds the test image first if needed (as the container tests do). The fixture
modules are a few KB each: the real modules add their own size on top (valkey-search
alone is tens of MB).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container")]

import container_image  # noqa: E402


def mib(size: int) -> str:
    return f"{size / 2**20:8.1f} MiB"


def layers(image: str) -> list[tuple[int, str]]:
    out = subprocess.run(
        ["docker", "history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        size, _, created_by = line.partition("\t")
        if int(size) > 0:
            rows.append((int(size), " ".join(created_by.split())[:90]))
    return rows


def main() -> int:
    problem = container_image.engine_problem()
    if problem:
        print(f"image_size: {problem}", file=sys.stderr)
        return 1
    image = container_image.build_test_image()
    total = container_image.image_size(image.name)
    base = container_image.image_size(image.base_image)
    print(f"runtime image  {image.name:48} {mib(total)}")
    print(f"base image     {image.base_image:48} {mib(base)}")
    print(f"added on top   {'':48} {mib(total - base)}")
    print("largest layers added:")
    base_layers = {created for _, created in layers(image.base_image)}
    for size, created_by in sorted(layers(image.name), reverse=True)[:8]:
        if created_by not in base_layers:
            print(f"  {mib(size)}  {created_by}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
