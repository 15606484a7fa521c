"""Size of the image, next to the base it is built on, and what each module adds:
the real-module tier's image (the real modules whose inputs are cached) beside the
container tier's (all four modules stand-ins: the fixture module, a few KB each),
measured in one run.

    python3 bench/image_size.py

Builds both images first if needed (as the tests do), on the debootstrapped trixie
minbase the tests use (debian:trixie-slim, the default base, is smaller).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container")]

import container_image  # noqa: E402
from support import testbed  # noqa: E402


def mib(size: int) -> str:
    return f"{size / 2**20:8.1f} MiB"


def kib(size: int) -> str:
    return f"{size / 2**10:8.0f} KiB"


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


def module_sizes(image: str) -> dict[str, int]:
    """The size of each file in /usr/lib/valkey, by its component."""
    files = {testbed.module_env(c)["MODULE_FILE"]: c for c in container_image.MODULE_COMPONENTS}
    out = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "stat",
            image,
            "-c",
            "%n %s",
            *(f"/usr/lib/valkey/{f}" for f in files),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sizes = {}
    for line in out.splitlines():
        path, size = line.rsplit(" ", 1)
        sizes[files[Path(path).name]] = int(size)
    return sizes


def main() -> int:
    problem = container_image.engine_problem()
    if problem:
        print(f"image_size: {problem}", file=sys.stderr)
        return 1
    real = container_image.build_real_image()
    stand_in = container_image.build_test_image()
    base = container_image.image_size(real.base_image)
    print(f"base image       {real.base_image:48} {mib(base)}")
    for image in (real, stand_in):
        total = container_image.image_size(image.name)
        print(f"image            {image.name:48} {mib(total)}  (+{mib(total - base).strip()} on the base)")
    print("modules (in /usr/lib/valkey):")
    real_sizes, stand_in_sizes = module_sizes(real.name), module_sizes(stand_in.name)
    for component in container_image.MODULE_COMPONENTS:
        print(
            f"  {component:8} {real.builds[component]:9} {kib(real_sizes[component])}"
            f"   (stand-in {kib(stand_in_sizes[component]).strip()})"
        )
    print(f"largest layers of {real.name} above the base:")
    base_layers = {created for _, created in layers(real.base_image)}
    for size, created_by in sorted(layers(real.name), reverse=True)[:8]:
        if created_by not in base_layers:
            print(f"  {mib(size)}  {created_by}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
