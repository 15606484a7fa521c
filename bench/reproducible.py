"""Reproducible modules: two cold builds of the real json and ldap modules, file for file.

Valkey and the real modules built twice, cold, in two build directories, compared file for
file; the sha256 of each file is printed.

    python3 bench/reproducible.py                  # json and ldap
    python3 bench/reproducible.py --modules json   # or bloom, or a list: json,bloom,ldap

What tests/release/test_reproducible.py does for Valkey and the stand-ins, for the real
modules: the Dockerfile's `binaries` stage (`./build.sh build --files binaries=DIR`,
offline, from the cache; the other modules stand-ins), once with BUILD_DIR=/build-a-<run>
and CARGO_TARGET_DIR=/cargo-target-a-<run>, once with -b-: a build directory and a cargo
target directory of its own each (not the cache mount's: every crate compiled again),
CCACHE_DISABLE=1, neither build in BuildKit's cache for the other. A module runs only
where its pinned inputs (or substitutes of them, `--substitutes auto`) are in the cache
(`./build.sh fetch` brings them); for the others it prints "not run: <module> (inputs not
in the cache: ...)". Exit status 1 when the two builds differ, 0 otherwise (also when
nothing could run). Each build compiles Valkey and each module from nothing: ldap's
158 crates take about 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container")]

import container_image  # noqa: E402
from release.test_reproducible import BUILDER_HOST, build_files, compare, entries, inside  # noqa: E402
from support import testbed  # noqa: E402

MODULES = ("json", "bloom", "ldap")


def missing_inputs(component: str) -> list[str]:
    """The inputs of COMPONENT (itself and its DEPS) that are not in the cache, pinned or
    as a substitute: what `./build.sh build --stand-ins none` would stop at."""
    inputs = [component] + [f"{component}/{dep}" for dep in testbed.module_env(component).get("DEPS", "").split()]
    sources = testbed.cache_dir() / "sources"
    env = dict(os.environ, VALKEY_BUNDLE_OFFLINE="1", VALKEY_BUNDLE_SUBSTITUTES="all")
    missing = []
    for name in inputs:
        found = subprocess.run(
            [str(ROOT / "modules" / "fetch.sh"), name, str(sources)], capture_output=True, env=env, check=False
        )
        if found.returncode != 0:
            missing.append(name)
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modules", default="json,ldap", help=f"the real modules to build, a list of {', '.join(MODULES)}"
    )
    args = parser.parse_args()
    wanted = [m for m in args.modules.replace(",", " ").split() if m]
    unknown = [m for m in wanted if m not in MODULES]
    if unknown or not wanted:
        parser.error(f"--modules: {', '.join(unknown) or 'none given'}: choose among {', '.join(MODULES)}")

    real = []
    for module in wanted:
        missing = missing_inputs(module)
        if missing:
            print(f"not run: {module} (inputs not in the cache: {', '.join(missing)}; ./build.sh fetch brings them)")
        else:
            real.append(module)
    if not real:
        return 0
    problem = container_image.engine_problem()
    if problem:
        print(f"not run: {', '.join(real)} ({problem})")
        return 0

    stand_ins = ",".join(c for c in container_image.MODULE_COMPONENTS if c not in real)
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="reproducible-") as tmp:
        base = Path(tmp)
        dirs = {}
        for label in "ab":
            build_dir, target_dir = f"/build-{label}-{run}", f"/cargo-target-{label}-{run}"
            dirs[label] = (build_dir, target_dir)
            print(f"build {label}: {', '.join(real)} real, in {build_dir} (cargo: {target_dir}) ...", flush=True)
            build_files(
                "binaries",
                base / label,
                build_dir,
                base / f"build-{label}.log",
                stand_ins=stand_ins,
                substitutes="auto",
                build_args=(f"CARGO_TARGET_DIR={target_dir}",),
            )
        found_a, found_b = entries(base / "a"), entries(base / "b")
        print(f"\n{'file':34} {'sha256':64} {'bytes':>10}  a = b")
        for name, entry in found_a.items():
            if entry.link:
                print(f"{name:34} -> {entry.link}")
                continue
            same = "yes" if found_b.get(name) == entry else "NO"
            print(f"{name:34} {entry.sha256} {entry.size:>10,}  {same}")
        problems = compare(base / "a", base / "b")
        needles = [d.encode() for pair in dirs.values() for d in pair] + [BUILDER_HOST]
        problems += [f"holds {where}" for where in inside(base / "a", needles) + inside(base / "b", needles)]
        modules = ", ".join(f"{c} {'real' if c in real else 'stand-in'}" for c in container_image.MODULE_COMPONENTS)
        print(f"\n({modules}; {len(found_a)} files)")
    if problems:
        print("the two builds differ:\n" + "\n".join(problems))
        return 1
    print("the two builds are byte-identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
