"""Reproducible binaries: two cold builds of the same pins give the same bytes.

The Dockerfile's `binaries` stage (Valkey's programs and the four stand-in modules,
`./build.sh build --files binaries=DIR --stand-ins all`) is built twice, offline, from the
container tier's inputs (the test bed's Valkey tarball, the local base image):

- each in a build directory of its own (BUILD_DIR=/build-a-<run>, /build-b-<run>), so
  that neither build is in BuildKit's cache for the other, nor for a later run;
- each without the ccache (CCACHE_DISABLE=1): every object is compiled again.

Every file must be byte-identical between the two, and no file may hold either build
directory, the builder's host name or today's date. The table of names, sha256 digests
and sizes is printed (`pytest -s`). Each build compiles Valkey (a few minutes on
2 cores). bench/reproducible.py does the same for the real json and ldap modules where
their inputs are in the cache.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import itertools
import os
import re
import uuid
from pathlib import Path

import pytest
from container import container_image
from support import testbed

pytestmark = [pytest.mark.release, pytest.mark.reproducible]

ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "build.sh"
# The host name BuildKit gives every RUN step's container (what `uname -n` says there).
BUILDER_HOST = b"buildkitsandbox"


@dataclasses.dataclass(frozen=True)
class Entry:
    """A file of a build's output: its sha256 and size, or where a symbolic link points."""

    sha256: str = ""
    size: int = 0
    link: str = ""


def build_files(
    stage: str,
    dest: Path,
    build_dir: str,
    log_path: Path,
    stand_ins: str = "all",
    substitutes: str = "none",
    build_args: tuple[str, ...] = (),
) -> None:
    """`./build.sh build --files STAGE=DEST` offline, cold (CCACHE_DISABLE=1) in BUILD_DIR,
    with BUILD_ARGS (NAME=value) too, serialised with the tests' other image builds by
    their lock in the cache; RuntimeError with the end of the log if it fails."""
    args = ["--files", f"{stage}={dest}", "--stand-ins", stand_ins, "--substitutes", substitutes]
    args += ["--", "--progress=plain"]
    for arg in (f"BUILD_DIR={build_dir}", "CCACHE_DISABLE=1", *build_args):
        args += ["--build-arg", arg]
    container_image.run_build("valkey-bundle-reproducible", args, log_path)


def entries(root: Path) -> dict[str, Entry]:
    """Every file under ROOT by its path relative to ROOT."""
    found = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = Entry(link=os.readlink(path))
        elif path.is_file():
            data = path.read_bytes()
            found[name] = Entry(hashlib.sha256(data).hexdigest(), len(data))
    return found


def table(found: dict[str, Entry]) -> str:
    rows = [f"{'file':40} {'sha256':16} {'bytes':>10}"]
    for name, entry in found.items():
        if entry.link:
            rows.append(f"{name:40} -> {entry.link}")
        else:
            rows.append(f"{name:40} {entry.sha256[:16]} {entry.size:>10,}")
    return "\n".join(rows)


PRINTABLE = re.compile(rb"[\x20-\x7e]{6,}")


def how_they_differ(a: Path, b: Path, limit: int = 8) -> str:
    """Where two files differ: the first differing offsets and the strings only one holds."""
    one, two = a.read_bytes(), b.read_bytes()
    offsets = list(itertools.islice((i for i, (x, y) in enumerate(zip(one, two, strict=False)) if x != y), limit))
    lines = [f"  sizes {len(one)} / {len(two)}; first differing offsets: {offsets}"]
    strings_one, strings_two = set(PRINTABLE.findall(one)), set(PRINTABLE.findall(two))
    for label, only in (("a", strings_one - strings_two), ("b", strings_two - strings_one)):
        for text in sorted(only)[:limit]:
            lines.append(f"  only in {label}: {text.decode()[:120]}")
    return "\n".join(lines)


def inside(root: Path, needles: list[bytes]) -> list[str]:
    """'file: needle' for each regular file under ROOT that holds one of NEEDLES."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {n.decode()}" for n in needles if n in data]
    return found


def todays_dates() -> list[bytes]:
    """Today as __DATE__ writes it ("Mar  5 2026") and as ISO 8601, in UTC and local time."""
    days = {datetime.datetime.now(datetime.UTC).date(), datetime.date.today()}
    return sorted({f"{d:%b} {d.day:2d} {d.year}".encode() for d in days} | {d.isoformat().encode() for d in days})


def compare(a: Path, b: Path) -> list[str]:
    """Every difference between the files under A and under B, explained."""
    found_a, found_b = entries(a), entries(b)
    problems = []
    for name in sorted(found_a.keys() | found_b.keys()):
        if name not in found_a or name not in found_b:
            problems.append(f"{name}: only in {'b' if name not in found_a else 'a'}")
        elif found_a[name] != found_b[name]:
            problems.append(f"{name}: differs\n{how_they_differ(a / name, b / name)}")
    return problems


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory) -> tuple[Path, Path, str, str]:
    problem = container_image.engine_problem()
    if problem:
        pytest.skip(f"the reproducibility test needs a Docker engine: {problem}")
    base = tmp_path_factory.mktemp("reproducible")
    run = uuid.uuid4().hex[:8]
    dirs = (f"/build-a-{run}", f"/build-b-{run}")
    for label, build_dir in zip("ab", dirs, strict=True):
        build_files("binaries", base / label, build_dir, base / f"build-{label}.log")
    return base / "a", base / "b", *dirs


def test_valkey_and_the_stand_ins_are_byte_identical_from_two_cold_builds(two_builds):
    a, b, dir_a, dir_b = two_builds
    found = entries(a)
    print(f"\nbinaries stage, built in {dir_a} and in {dir_b}:\n{table(found)}")
    names = set(found)
    # What was compared: Valkey's programs and the four modules, not an empty directory.
    assert {"bin/valkey-server", "bin/valkey-cli", "bin/valkey-benchmark"} <= names, sorted(names)
    modules = {name for name in names if name.startswith("modules/")}
    assert modules == {f"modules/{file}" for file, _name in testbed.FIXTURE_MODULES.values()}, sorted(modules)
    problems = compare(a, b)
    assert not problems, "the two builds differ:\n" + "\n".join(problems)


def test_no_build_directory_host_name_or_date_inside(two_builds):
    a, b, dir_a, dir_b = two_builds
    needles = [dir_a.encode(), dir_b.encode(), BUILDER_HOST, *todays_dates()]
    found = inside(a, needles) + inside(b, needles)
    assert not found, "the binaries record where or when they were built:\n" + "\n".join(found)
