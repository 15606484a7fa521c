"""modules/ is the single source of truth: its pins parse and are well-formed, every
component has a recipe that the Dockerfile runs, and what the Dockerfile, build.sh and
the test fixtures say about versions and file names agrees with it."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from valkey_bundle.module_files import parse_env_file

ROOT = Path(__file__).resolve().parent.parent
MODULES_DIR = ROOT / "modules"
DOCKERFILE = ROOT / "Dockerfile"
COMPONENTS = ["valkey", "search", "json", "bloom", "ldap"]
MODULE_COMPONENTS = COMPONENTS[1:]

COMMON_FIELDS = ["VERSION", "SOURCE_URL", "SOURCE_STRIP", "PIN_VERIFIED", "LICENSE"]
MODULE_FIELDS = [
    "MODULE_FILE",
    "MODULE_NAME",
    "MODULE_VALUELESS_FLAGS",
    "MODULE_COORDINATOR_FLAG",
    "MODULE_CPU_FEATURES_X86_64",
    "MODULE_CPU_FEATURES_AARCH64",
]
# NAME=value or NAME="value"; no $, backticks, backslashes or quotes inside values.
LINE = re.compile(r'^([A-Z][A-Z0-9_]*)=(?:"([^"$`\\]*)"|([^"$`\\\s]*))$')
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX40 = re.compile(r"^[0-9a-f]{40}$")


def parse_env(path: Path) -> dict[str, str]:
    values = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f'{path}:{number}: not NAME=value or NAME="value": {raw!r}'
        name = match.group(1)
        assert name not in values, f"{path}:{number}: {name} set twice"
        values[name] = match.group(2) if match.group(2) is not None else match.group(3)
    return values


def env(component: str) -> dict[str, str]:
    return parse_env(MODULES_DIR / component / "module.env")


def deps(component: str) -> list[str]:
    return env(component).get("DEPS", "").split()


def inputs() -> list[str]:
    """Every input modules/fetch.sh takes: each component, then its dependencies."""
    return [name for c in COMPONENTS for name in [c, *(f"{c}/{d}" for d in deps(c))]]


def input_fields(name: str) -> dict[str, str]:
    """The fields of an input (a dependency's <DEP>_ prefix removed)."""
    component, _, dep = name.partition("/")
    values = env(component)
    if not dep:
        return values
    prefix = dep.upper().replace("-", "_") + "_"
    fields = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    if fields.get("KIND") == "crates":
        assert "VERSION" not in fields, f"{name}: vendored crates take {component}'s VERSION, no version of their own"
        fields["VERSION"] = values["VERSION"]
    return fields


def dockerfile_stages() -> dict[str, str]:
    """Stage name -> the stage's text."""
    stages: dict[str, str] = {}
    name = None
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", line, re.IGNORECASE)
        if match:
            name = match.group(1)
            stages[name] = ""
        elif name:
            stages[name] += line + "\n"
    return stages


def run(*args: str) -> str:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_components_are_exactly_the_directories_with_a_module_env():
    found = sorted(p.parent.name for p in MODULES_DIR.glob("*/module.env"))
    assert found == sorted(COMPONENTS)


@pytest.mark.parametrize("component", COMPONENTS)
def test_module_env_parses_like_the_shell_does(component):
    """The entrypoint's parser (what the image reads at start) agrees with `.` in bash."""
    path = MODULES_DIR / component / "module.env"
    values = parse_env_file(path.read_text())
    assert values == parse_env(path)  # and the file keeps to the strict format
    script = '. "$1"; for n in "${@:2}"; do printf "%s=%s\\0" "$n" "${!n}"; done'
    out = subprocess.run(
        ["bash", "-c", script, "bash", str(path), *values], capture_output=True, text=True, check=True
    ).stdout
    shell = dict(item.split("=", 1) for item in out.split("\0") if item)
    assert shell == values


@pytest.mark.parametrize("component", COMPONENTS)
def test_required_fields(component):
    values = env(component)
    for field in COMMON_FIELDS:
        assert values.get(field), f"{component}: {field} is missing or empty"
    assert "SOURCE_SHA256" in values or "SOURCE_COMMIT" in values, f"{component}: no SOURCE_SHA256/SOURCE_COMMIT"
    assert values["PIN_VERIFIED"] in ("yes", "no")
    assert values["SOURCE_STRIP"].isdigit()
    assert values["SOURCE_URL"].startswith("https://")
    if component in MODULE_COMPONENTS:
        for field in MODULE_FIELDS:
            assert field in values, f"{component}: {field} is missing"
        assert values["MODULE_FILE"].endswith(".so")
        assert values["MODULE_NAME"]


@pytest.mark.parametrize("name", [i for i in inputs() if "/" in i])
def test_dependency_fields(name):
    """A dependency is a git source (a commit, or PIN_VERIFIED=no) or vendored crates."""
    values = input_fields(name)
    for field in ("VERSION", "SOURCE_URL", "PIN_VERIFIED"):
        assert values.get(field), f"{name}: {field} is missing or empty"
    assert values["PIN_VERIFIED"] in ("yes", "no")
    assert values["SOURCE_URL"].startswith("https://")
    if values.get("KIND") == "crates":
        lock = values["LOCKFILE"]
        assert lock == "upstream" or (lock.startswith("modules/") and lock.endswith("Cargo.lock")), lock
        sha = values["LOCKFILE_SHA256"]
        if values["PIN_VERIFIED"] == "yes":
            assert HEX64.match(sha), f"{name}: LOCKFILE_SHA256 {sha!r}"
        else:
            assert sha == "", f"{name}: an unverified lock has no sha256 yet"
        if lock != "upstream":
            path = ROOT / lock
            assert path.exists() == (values["PIN_VERIFIED"] == "yes"), f"{name}: {lock} and PIN_VERIFIED disagree"
            if path.exists():
                assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, f"{lock} is not LOCKFILE_SHA256"
    else:
        assert values["SOURCE_URL"].endswith(".git"), f"{name}: a dependency is a git source or crates"
        assert values.get("LICENSE"), f"{name}: LICENSE"
        commit = values.get("SOURCE_COMMIT", "")
        if values["PIN_VERIFIED"] == "yes":
            assert HEX40.match(commit), f"{name}: SOURCE_COMMIT must be 40 hex digits: {commit!r}"
        else:
            assert commit == "" and values.get("SOURCE_TAG"), f"{name}: an unverified commit is empty, its tag named"


def test_search_dependencies_are_what_its_cmake_clones():
    assert deps("search") == ["grpc", "highwayhash", "googletest"]
    grpc = input_fields("search/grpc")
    assert grpc["SOURCE_TAG"] == "v1.70.1" and grpc["SUBMODULES"] == "yes"
    assert input_fields("json/rapidjson")["SOURCE_COMMIT"] == "ebd87cb468fb4cb060b37e579718c4a4125416c1"
    for component in ("bloom", "ldap"):
        assert deps(component) == ["crates"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_pins_are_well_formed(component):
    values = env(component)
    sha = values.get("SOURCE_SHA256", "")
    commit = values.get("SOURCE_COMMIT", "")
    if "SOURCE_SHA256" in values and "SOURCE_COMMIT" not in values:
        assert HEX64.match(sha), f"{component}: SOURCE_SHA256 must be 64 lower-case hex digits: {sha!r}"
    if sha:
        assert HEX64.match(sha), f"{component}: SOURCE_SHA256 {sha!r}"
    if "SOURCE_COMMIT" in values:
        if commit:
            assert HEX40.match(commit), f"{component}: SOURCE_COMMIT must be 40 hex digits: {commit!r}"
        else:
            assert values["PIN_VERIFIED"] == "no", f"{component}: an empty SOURCE_COMMIT must be PIN_VERIFIED=no"
        assert values["SOURCE_URL"].endswith(".git"), f"{component}: a git source's URL ends in .git"
    if values["PIN_VERIFIED"] == "yes":
        assert sha or commit, f"{component}: PIN_VERIFIED=yes without a pin"


def test_default_versions():
    assert env("valkey")["VERSION"].startswith("9.0.")
    search = tuple(int(x) for x in env("search")["VERSION"].split("."))
    valkey = tuple(int(x) for x in env("valkey")["VERSION"].split("."))
    if search >= (1, 1, 0):
        assert valkey >= (9, 0, 1), "valkey-search 1.1+ needs Valkey 9.0.1 or newer"


def test_runtime_facts():
    files = [env(c)["MODULE_FILE"] for c in MODULE_COMPONENTS]
    names = [env(c)["MODULE_NAME"] for c in MODULE_COMPONENTS]
    assert len(set(files)) == len(files) and len(set(names)) == len(names)
    search = env("search")
    assert search["MODULE_COORDINATOR_FLAG"] == "--use-coordinator"
    assert search["MODULE_COORDINATOR_PORT_OFFSET"] == "20294", "the coordinator listens on port + 20294"
    assert "--use-coordinator" in search["MODULE_VALUELESS_FLAGS"].split()
    assert {"avx2", "fma"} <= set(search["MODULE_CPU_FEATURES_X86_64"].split())
    for component in MODULE_COMPONENTS:
        values = env(component)
        for flag in values["MODULE_VALUELESS_FLAGS"].split():
            assert flag.startswith("--"), f"{component}: {flag}"
        if component != "search":
            assert not values["MODULE_COORDINATOR_FLAG"]
        for feature in values["MODULE_CPU_FEATURES_X86_64"].split() + values["MODULE_CPU_FEATURES_AARCH64"].split():
            assert re.fullmatch(r"[a-z0-9_]+", feature), f"{component}: {feature!r} is no /proc/cpuinfo flag"


def test_rust_from_debian_within_the_modules_bounds():
    """Debian trixie's Rust (1.85) builds both; valkey-ldap segfaults when built with 1.88+."""
    assert env("ldap")["RUST_MIN"] == "1.85" and env("ldap")["RUST_BELOW"] == "1.88"
    assert env("bloom")["RUST_MIN"] == "1.85"
    assert "RUST_TOOLCHAIN" not in env("ldap") and "RUST_TOOLCHAIN" not in env("bloom"), "no rustup toolchain"
    assert input_fields("ldap/crates")["LOCKFILE"] == "upstream"
    assert input_fields("bloom/crates")["LOCKFILE"] == "modules/bloom/Cargo.lock"


def test_fixture_modules_match_the_real_ones():
    from support import testbed

    for key, (file_name, module_name) in testbed.FIXTURE_MODULES.items():
        values = env(key.lower())
        assert (values["MODULE_FILE"], values["MODULE_NAME"]) == (file_name, module_name)


@pytest.mark.parametrize("component", COMPONENTS)
def test_recipe_exists_and_the_dockerfile_runs_it(component):
    recipe = MODULES_DIR / component / "build.sh"
    assert recipe.is_file() and recipe.stat().st_mode & 0o111, f"{recipe} missing or not executable"
    stages = dockerfile_stages()
    assert component in stages, f"no Dockerfile stage named {component}"
    stage = stages[component]
    assert f"modules/{component}/build.sh " in stage, f"stage {component} does not run its recipe"
    # The build directory is /build, or BUILD_DIR (default /build) where the
    # reproducibility checks build in two places.
    build_dir = '"$BUILD_DIR"' if "ARG BUILD_DIR=/build\n" in stage else "/build"
    assert f"modules/prepare.sh {component} /src/sources {build_dir}" in stage, (
        f"stage {component} skips modules/prepare.sh"
    )
    assert "--mount=type=cache" in stage
    if deps(component):
        assert ("DEPS_DIR=/build/deps " if build_dir == "/build" else 'DEPS_DIR="$BUILD_DIR/deps" ') in stage
    # Every input reaches a stage that unpacks it (search's gRPC and googletest reach
    # a stage of their own, search-deps-inputs): copied from modules/sources/ and named
    # to prepare.sh, which verifies it.
    for name in [component, *(f"{component}/{d}" for d in deps(component))]:
        tarball = f"{name.replace('/', '-')}-{input_fields(name)['VERSION']}.tar.gz"
        unpacked_by = []
        for stage_name, text in stages.items():
            prepare = re.search(
                rf'modules/prepare\.sh {component} /src/sources (?:/build|"\$BUILD_DIR")([^\n\\&]*)', text
            )
            if not prepare:
                continue
            named = prepare.group(1).split()
            copied = [
                pattern.removeprefix("modules/sources/")
                for line in re.findall(r"^COPY (.*) /src/sources/$", text, re.M)
                for pattern in line.split()
            ]
            if (not named or name in named) and any(fnmatch.fnmatch(tarball, pattern) for pattern in copied):
                unpacked_by.append(stage_name)
        assert unpacked_by, f"no Dockerfile stage copies and unpacks {name} ({tarball})"


def dockerfile_runs() -> list[tuple[str, str]]:
    """(stage, RUN instruction with its continuation lines) for every RUN."""
    runs = []
    for stage, text in dockerfile_stages().items():
        for match in re.finditer(r"^RUN .*?(?<!\\)$", text, re.M | re.S):
            runs.append((stage, match.group(0)))
    return runs


def test_only_the_package_stages_reach_a_network():
    """apt-get in the four *-base stages; every other RUN has the network cut."""
    bases = {"build-base", "cmake-base", "rust-base", "runtime-base"}
    seen = set()
    for stage, run in dockerfile_runs():
        if stage in bases:
            assert "apt-get install" in run and "--network" not in run, (stage, run)
            seen.add(stage)
        else:
            assert run.startswith("RUN --network=none "), f"stage {stage}: {run.splitlines()[0]}"
            assert "apt-get" not in run and "curl" not in run, (stage, run)
    assert seen == bases
    text = DOCKERFILE.read_text()
    for base in bases:
        arg = base.upper().replace("-", "_") + "_FROM"
        assert re.search(rf"^ARG {arg}={base}$", text, re.M)
        assert f"FROM ${{{arg}}} AS {base}-selected" in text
    assert "curl" not in dockerfile_stages()["build-base"], "nothing downloads: no curl in the toolchain"


def test_modules_stage_collects_every_module_real_or_stand_in():
    stages = dockerfile_stages()
    text = DOCKERFILE.read_text()
    for component in MODULE_COMPONENTS:
        upper = component.upper()
        assert f"COPY --from={component}-selected /out/*.so /" in stages["modules"]
        assert f"FROM {component} AS {component}-real" in text
        assert f"COPY --from=stand-ins /out/{component}/ /out/" in stages[f"{component}-stand-in"]
        assert f"FROM {component}-${{{upper}_BUILD}} AS {component}-selected" in text
        assert re.search(rf"^ARG {upper}_BUILD=real$", text, re.M)
        assert f'org.valkey-bundle.{component}.build="${{{upper}_BUILD}}"' in stages["runtime"]
        assert f"COPY modules/{component}/module.env " in stages["stand-ins"]
    assert "tests/fixtures/fixture_module.c" in stages["stand-ins"]
    assert "!tests/fixtures/fixture_module.c" in (ROOT / ".dockerignore").read_text().splitlines()


def test_dockerfile_swappable_parts_and_runtime():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=debian:trixie-slim$", text, re.M)
    assert re.search(r"^ARG MODULES_FROM=modules$", text, re.M)
    assert re.search(r"^ARG VALKEY_FROM=valkey$", text, re.M)
    assert "FROM ${MODULES_FROM} AS modules-selected" in text
    assert "FROM ${VALKEY_FROM} AS valkey-selected" in text
    assert "# syntax=" not in text and "<<" not in text and "--link" not in text, "the daemon's frontend is old"
    assert "FROM ${RUNTIME_BASE_FROM} AS runtime-base-selected" in text
    runtime = dockerfile_stages()["runtime"]
    assert "\nVOLUME" not in "\n" + runtime
    assert 'ENTRYPOINT ["tini", "-s", "--", "bundle-docker-entrypoint"]' in runtime, "tini as PID 1 (README, PID 1)"
    assert 'CMD ["valkey-server"]' in runtime
    assert "EXPOSE 6379 16379 26673" in runtime
    for component in COMPONENTS:
        line = f"COPY modules/{component}/module.env /usr/local/lib/valkey-bundle/modules/{component}/module.env"
        assert line in runtime


def test_dockerfile_label_defaults_follow_module_env():
    text = DOCKERFILE.read_text()
    for component in COMPONENTS:
        version = env(component)["VERSION"]
        assert re.search(rf"^ARG {component.upper()}_VERSION={re.escape(version)}$", text, re.M), (
            f"Dockerfile: ARG {component.upper()}_VERSION must default to {version} (modules/{component}/module.env)"
        )
    assert re.search(rf"^ARG IMAGE_VERSION={re.escape(env('valkey')['VERSION'])}$", text, re.M)


# How modules/README.md's reasons ("Why these versions") name each component.
REASON_NAMES = {
    "valkey": "Valkey",
    "search": "valkey-search",
    "json": "valkey-json",
    "bloom": "valkey-bloom",
    "ldap": "valkey-ldap",
}


def test_the_modules_readme_table_follows_module_env():
    """Its first table: | component | version | source | pin | verified |, one row each."""
    rows = {}
    for line in (MODULES_DIR / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and cells[0] in COMPONENTS:
            assert cells[0] not in rows, f"modules/README.md: two rows for {cells[0]}"
            rows[cells[0]] = cells
    assert list(rows) == COMPONENTS
    for component, (_, version, _source, pin, verified) in rows.items():
        values = env(component)
        where = f"modules/README.md, the row of {component}"
        assert version == values["VERSION"], f"{where}: {version}, module.env: {values['VERSION']}"
        if values["PIN_VERIFIED"] == "yes":
            sha = values.get("SOURCE_SHA256")
            expected = f"sha256 `{sha}`" if sha else f"commit `{values['SOURCE_COMMIT']}`"
            assert (pin, verified) == (expected, "yes"), f"{where}: {pin} | {verified}, module.env: {expected}"
        else:
            assert verified == "**no**" and not re.search(r"[0-9a-f]{40}", pin), f"{where}: {pin} | {verified}"


def test_the_reasons_name_the_pinned_versions():
    """Each component's reason in modules/README.md names the version pinned: a bump
    (modules/update-pins' pull request too) is not done until its reason is."""
    text = (MODULES_DIR / "README.md").read_text()
    for component, name in REASON_NAMES.items():
        named = re.findall(rf"^- \*\*{re.escape(name)} (\S+)\*\*", text, re.M)
        version = env(component)["VERSION"]
        assert named == [version], (
            f"modules/README.md, 'Why these versions': {name} {named}, pinned {version}: update the reason"
        )


def test_tags_follow_the_scheme():
    version = env("valkey")["VERSION"]
    major, minor, _patch = version.split(".")
    expected = [version, f"{major}.{minor}", major, "latest", f"{major}.{minor}-coordinator"]
    assert run("./build.sh", "tags").split() == expected


def test_build_sh_platforms_and_versions():
    assert run("./build.sh", "platforms").strip() == "linux/amd64,linux/arm64"
    table = run("./build.sh", "versions").splitlines()
    assert table[0].split()[:2] == ["INPUT", "VERSION"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert list(rows) == inputs()
    assert {"search/grpc", "search/highwayhash", "search/googletest", "json/rapidjson", "ldap/crates"} <= set(rows)
    for name in inputs():
        values = input_fields(name)
        row = rows[name]
        assert row[1] == values["VERSION"] and row[2] == values["SOURCE_URL"]
        assert row[-1] == values["PIN_VERIFIED"]
        pin = values.get("SOURCE_SHA256") or values.get("SOURCE_COMMIT") or values.get("LOCKFILE_SHA256") or "(unknown)"
        assert row[3] == pin


def test_build_sh_help_lists_every_command():
    out = run("./build.sh", "help")
    for command in ("build", "push", "tags", "platforms", "versions", "fetch", "lint", "test", "--platform"):
        assert re.search(rf"^\s+{re.escape(command)}\b", out, re.M), f"help does not list {command}"


def shell_scripts() -> list[Path]:
    """Every shell script in the repository: *.sh, and files with a sh/bash shebang
    (.ci/run ...), as ./build.sh lint finds them."""
    skip = {ROOT / ".git", MODULES_DIR / "sources", MODULES_DIR / "prebuilt"}
    found = []
    for path in sorted(ROOT.rglob("*")):
        if any(part in ("__pycache__", "node_modules", ".venv") for part in path.parts):
            continue
        if any(path == s or s in path.parents for s in skip) or not path.is_file():
            continue
        if path.suffix == ".sh":
            found.append(path)
            continue
        with open(path, "rb") as f:
            first = f.readline(80)
        if re.match(rb"#!\S*(/|\s)(env\s+)?(ba)?sh(\s|$)", first):
            found.append(path)
    return found


def test_scripts_parse():
    for script in shell_scripts():
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{script}: {result.stderr}"
        head = script.read_text().splitlines()[:25]
        assert head[0].startswith("#!"), f"{script}: no shebang"
    for script in [ROOT / "build.sh", *MODULES_DIR.glob("*/build.sh")]:
        head = script.read_text().splitlines()[:25]
        assert "set -euo pipefail" in head, f"{script}: no set -euo pipefail"


def test_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck); ./build.sh lint requires it")
    scripts = [str(p.relative_to(ROOT)) for p in shell_scripts()]
    result = subprocess.run(["shellcheck", "-x", *scripts], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_script_discovery_finds_the_known_ones():
    scripts = {p.relative_to(ROOT).as_posix() for p in shell_scripts()}
    assert {"build.sh", "modules/fetch.sh", "modules/unpack.sh"} <= scripts
    assert {f"modules/{c}/build.sh" for c in COMPONENTS} <= scripts
    assert {"modules/prepare.sh", "modules/recipe.sh", "modules/rust.sh"} <= scripts


def reproducible(*dirs: Path, **env: str) -> list[str]:
    """recipe.sh's `reproducible DIR...`: SOURCE_DATE_EPOCH, prefix_map and remap_path."""
    script = '. "$1" && shift && reproducible "$@" && printf "%s\\n" "$SOURCE_DATE_EPOCH" "$prefix_map" "$remap_path"'
    result = subprocess.run(
        ["bash", "-c", script, "bash", str(MODULES_DIR / "recipe.sh"), *map(str, dirs)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_reproducible_dates_by_the_source_and_records_paths_relative_to_it(tmp_path):
    src, deps = tmp_path / "src", tmp_path / "deps"
    for path, mtime in (
        (src / "a.c", 1_600_000_000),
        (src / "sub" / "b.c", 1_700_000_000),
        (deps / "x.h", 1_800_000_000),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        os.utime(path, (mtime, mtime))
    # What the build writes into the source (its build directory) is not a date of it.
    (src / "build").mkdir()
    (src / "build" / "out.o").write_text("")
    epoch, prefix_map, remap_path = reproducible(src, deps, src / "build")
    assert epoch == "1700000000"
    assert prefix_map.split() == [
        f"-ffile-prefix-map={src}=.",
        f"-ffile-prefix-map={deps}=deps",
        f"-ffile-prefix-map={src}/build=build",
    ]
    assert remap_path.split() == [
        f"--remap-path-prefix={src}=.",
        f"--remap-path-prefix={deps}=deps",
        f"--remap-path-prefix={src}/build=build",
    ]
    # A date given (the build's own SOURCE_DATE_EPOCH) is kept.
    assert reproducible(src, SOURCE_DATE_EPOCH="1234")[0] == "1234"


def test_compile_recipes_build_reproducibly():
    # Dated and path-mapped before anything is compiled; C through CFLAGS, Valkey's link
    # (link-time optimisation) through LDFLAGS, Rust through RUSTFLAGS.
    valkey = (MODULES_DIR / "valkey" / "build.sh").read_text()
    assert 'reproducible "$src"' in valkey and '$prefix_map" LDFLAGS="${LDFLAGS:+$LDFLAGS }$prefix_map"' in valkey
    assert valkey.index("reproducible ") < valkey.index("make -C")
    json_recipe = (MODULES_DIR / "json" / "build.sh").read_text()
    assert json_recipe.index("reproducible ") < json_recipe.index("CMakeLists.txt.offline")
    rust = (MODULES_DIR / "rust.sh").read_text()
    assert rust.index("reproducible ") < rust.index('cp -- "$crates/Cargo.lock"')
    assert 'RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$remap_path"' in rust
    stages = dockerfile_stages()
    for stage in ("valkey", "stand-ins"):
        assert "ARG BUILD_DIR=/build\n" in stages[stage] and "ARG CCACHE_DISABLE\n" in stages[stage]
    assert "strip --strip-debug" in stages["valkey"] and "strip --strip-debug" in stages["stand-ins"]
    assert "COPY --from=valkey-selected /opt/valkey/bin/ /bin/" in stages["binaries"]


def fake_path(tmp_path: Path, docker_script: str | None) -> str:
    """A PATH with the tools build.sh needs, and a stand-in docker (or none)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "dirname", "sed", "grep", "tr", "cat", "head", "find", "sort", "mkdir", "uname"):
        target = shutil.which(tool)
        assert target, tool
        (bin_dir / tool).symlink_to(target)
    if docker_script is not None:
        docker = bin_dir / "docker"
        docker.write_text("#!/bin/bash\n" + docker_script)
        docker.chmod(0o755)
    return str(bin_dir)


def build_sh(path: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "build.sh"), *args],
        cwd=ROOT,
        env={"PATH": path, "HOME": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("build.sh: error: "), lines[0]
    return lines[0]


def test_build_sh_without_docker(tmp_path):
    line = one_error_line(build_sh(fake_path(tmp_path, None), "build"))
    assert "docker not found" in line and "install" in line


def test_build_sh_without_engine(tmp_path):
    line = one_error_line(build_sh(fake_path(tmp_path, "exit 1\n"), "build"))
    assert "Docker engine" in line


def test_build_sh_without_buildx(tmp_path):
    script = 'case $1 in info) exit 0 ;; buildx) echo "unknown command: buildx" >&2; exit 1 ;; esac\nexit 1\n'
    line = one_error_line(build_sh(fake_path(tmp_path, script), "build"))
    assert "buildx" in line and "install" in line


def test_build_sh_push_needs_a_registry_name(tmp_path):
    path = fake_path(tmp_path, "exit 0\n")
    line = one_error_line(build_sh(path, "push", IMAGE="valkey-bundle"))
    assert "ghcr.io/OWNER/valkey-bundle" in line


def test_build_sh_unknown_command(tmp_path):
    line = one_error_line(build_sh(fake_path(tmp_path, None), "frobnicate"))
    assert "frobnicate" in line and "help" in line
