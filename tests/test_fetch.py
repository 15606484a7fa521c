"""modules/fetch.sh and modules/prepare.sh against real git repositories and a real
cargo, all local: a component pinned by commit, its dependencies (one with a
submodule, one of vendored crates), overrides, offline mode, and every refusal."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("fetch.sh", "prepare.sh")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV, **(env or {})},
        check=True,
    )
    return result.stdout.strip()


def make_repo(path: Path, files: dict[str, str], tag: str | None = None) -> str:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    if tag:
        git(path, "tag", tag)
    return git(path, "rev-parse", "HEAD")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as tar:
        return set(tar.getnames())


class Checkout:
    """A modules/ directory with the real scripts and one component, demo."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.modules = tmp / "checkout" / "modules"
        (self.modules / "demo").mkdir(parents=True)
        for script in SCRIPTS:
            shutil.copy2(ROOT / "modules" / script, self.modules / script)
        self.cache = tmp / "cache"

    def module_env(self, text: str) -> None:
        (self.modules / "demo" / "module.env").write_text(text)

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "VALKEY_BUNDLE_"))}
        return subprocess.run(
            [str(self.modules / script), *args],
            capture_output=True,
            text=True,
            env={**base, **GIT_ENV, **env},
            check=False,
        )

    def fetch(self, name: str, **env: str) -> subprocess.CompletedProcess:
        return self.run("fetch.sh", name, str(self.cache), **env)


def one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("modules/fetch.sh: "), lines[0]
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def demo(tmp_path):
    """demo 1.0.0 (tag 1.0.0) with a dependency lib at a commit, followed on a branch."""
    checkout = Checkout(tmp_path)
    commit = make_repo(tmp_path / "demo.git", {"README": "demo\n", "src/a.c": "int a;\n"}, tag="1.0.0")
    lib = make_repo(tmp_path / "lib.git", {"lib.h": "#define LIB 1\n"})
    checkout.module_env(
        f"VERSION=1.0.0\nSOURCE_URL=https://example.invalid/demo.git\nSOURCE_COMMIT={commit}\n"
        "SOURCE_STRIP=1\nPIN_VERIFIED=yes\nLICENSE=MIT\nDEPS=lib\n"
        "LIB_VERSION=main-1\nLIB_SOURCE_URL=https://example.invalid/lib.git\n"
        f"LIB_SOURCE_COMMIT={lib}\nLIB_PIN_VERIFIED=yes\nLIB_LICENSE=MIT\n"
    )
    checkout.commit, checkout.lib = commit, lib
    return checkout


def test_git_source_from_a_local_repository_is_verified_and_packed(demo):
    result = demo.fetch("demo", DEMO_GIT=str(demo.tmp / "demo.git"))
    assert result.returncode == 0, result.stderr
    tarball = Path(result.stdout.strip())
    assert tarball == demo.cache / "demo-1.0.0.tar.gz"
    assert {"demo-1.0.0/README", "demo-1.0.0/src/a.c"} <= members(tarball)
    commit = subprocess.run(
        f"gzip -dc {tarball} | git get-tar-commit-id", shell=True, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert commit == demo.commit
    # Cached: found again with no repository and no network.
    again = demo.fetch("demo", VALKEY_BUNDLE_OFFLINE="1")
    assert again.returncode == 0 and again.stdout.strip() == str(tarball)


def test_a_dependency_followed_on_a_branch_is_pinned_by_commit(demo):
    result = demo.fetch("demo/lib", DEMO_LIB_GIT=str(demo.tmp / "lib.git"))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, "a dependency pinned by commit has no tag to check"
    assert "demo-lib-main-1/lib.h" in members(Path(result.stdout.strip()))
    # The branch moves on: the pinned commit is still what is fetched.
    (demo.tmp / "lib.git" / "lib.h").write_text("#define LIB 2\n")
    git(demo.tmp / "lib.git", "commit", "-q", "-am", "second")
    (demo.cache / "demo-lib-main-1.tar.gz").unlink()
    result = demo.fetch("demo/lib", DEMO_LIB_GIT=str(demo.tmp / "lib.git"))
    with tarfile.open(result.stdout.strip()) as tar:
        assert tar.extractfile("demo-lib-main-1/lib.h").read() == b"#define LIB 1\n"


def test_a_moved_tag_is_refused_and_nothing_is_cached(demo):
    repo = demo.tmp / "demo.git"
    (repo / "README").write_text("changed\n")
    git(repo, "commit", "-q", "-am", "moved")
    git(repo, "tag", "-f", "1.0.0")
    line = one_error(demo.fetch("demo", DEMO_GIT=str(repo)))
    assert f"tag 1.0.0 of {repo} is " in line and f"not the pinned {demo.commit}" in line
    assert not list(demo.cache.glob("*.tar.gz"))


def test_an_unverified_pin_is_resolved_and_said(demo):
    text = (demo.modules / "demo" / "module.env").read_text()
    demo.module_env(
        text.replace(f"SOURCE_COMMIT={demo.commit}\n", "SOURCE_COMMIT=\n", 1).replace(
            "PIN_VERIFIED=yes\nLICENSE", "PIN_VERIFIED=no\nLICENSE", 1
        )
    )
    result = demo.fetch("demo", DEMO_GIT=str(demo.tmp / "demo.git"))
    assert result.returncode == 0, result.stderr
    assert f"resolved SOURCE_COMMIT={demo.commit} -- record it in" in result.stderr


def test_offline_and_unreachable_inputs_fail_with_one_line_naming_them(demo):
    line = one_error(demo.fetch("demo/lib", VALKEY_BUNDLE_OFFLINE="1"))
    assert "demo/lib is not in" in line and "VALKEY_BUNDLE_OFFLINE=1" in line
    line = one_error(demo.fetch("demo", DEMO_GIT=str(demo.tmp / "nowhere.git")))
    assert "cannot clone" in line and "demo-1.0.0.tar.gz" in line and "DEMO_TARBALL" in line
    line = one_error(demo.fetch("demo/nope"))
    assert "demo has no dependency 'nope'" in line


def test_a_local_tarball_must_match_its_sha256(demo, tmp_path):
    fake = tmp_path / "demo.tar.gz"
    fake.write_bytes(b"not the source")
    line = one_error(demo.fetch("demo", DEMO_TARBALL=str(fake), DEMO_SHA256="0" * 64))
    assert "checksum mismatch" in line and str(fake) in line
    ok = demo.fetch("demo", DEMO_TARBALL=str(fake), DEMO_SHA256=sha256(fake))
    assert ok.returncode == 0 and ok.stdout.strip() == str(fake)


def test_submodules_are_packed_at_the_commit_the_tree_records(demo):
    """gRPC's way: a superproject whose submodules come from their own URLs (here
    rewritten to local repositories with git's url.<base>.insteadOf)."""
    sub = demo.tmp / "sub.git"
    sub_commit = make_repo(sub, {"sub.txt": "first\n"})
    top = demo.tmp / "top.git"
    make_repo(top, {"top.txt": "top\n"})
    config = {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "protocol.file.allow",
        "GIT_CONFIG_VALUE_0": "always",
        "GIT_CONFIG_KEY_1": f"url.{sub}.insteadOf",
        "GIT_CONFIG_VALUE_1": "https://example.invalid/sub.git",
    }
    git(top, "submodule", "-q", "add", "https://example.invalid/sub.git", "third_party/sub", env=config)
    git(top, "commit", "-q", "-m", "with sub")
    git(top, "tag", "v2.0.0")
    top_commit = git(top, "rev-parse", "HEAD")
    # The submodule moves on after the superproject recorded it.
    (sub / "sub.txt").write_text("later\n")
    git(sub, "commit", "-q", "-am", "later")
    text = (demo.modules / "demo" / "module.env").read_text().replace("DEPS=lib", 'DEPS="lib top"')
    demo.module_env(
        text + "TOP_VERSION=2.0.0\nTOP_SOURCE_URL=https://example.invalid/top.git\nTOP_SOURCE_TAG=v2.0.0\n"
        f"TOP_SOURCE_COMMIT={top_commit}\nTOP_SUBMODULES=yes\nTOP_PIN_VERIFIED=yes\nTOP_LICENSE=MIT\n"
    )
    result = demo.fetch("demo/top", DEMO_TOP_GIT=str(top), **config)
    assert result.returncode == 0, result.stderr
    tarball = Path(result.stdout.strip())
    with tarfile.open(tarball) as tar:
        assert tar.extractfile("demo-top-2.0.0/top.txt").read() == b"top\n"
        assert tar.extractfile("demo-top-2.0.0/third_party/sub/sub.txt").read() == b"first\n"
    assert (
        sub_commit
        in subprocess.run(
            ["git", "-C", str(top), "ls-tree", "HEAD", "third_party/sub"], capture_output=True, text=True, check=True
        ).stdout
    )
    commit = subprocess.run(
        f"gzip -dc {tarball} | git get-tar-commit-id", shell=True, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert commit == top_commit, "the superproject's commit stays the tarball's"


def cargo_demo(demo, lock: str) -> Path:
    """demo as a Rust crate with no dependencies; crates vendored against LOCK."""
    if shutil.which("cargo") is None:
        pytest.fail("cargo is not installed: .ci/install-deps installs it (fetch.sh vendors crates with it)")
    repo = demo.tmp / "crate.git"
    files = {"Cargo.toml": '[package]\nname = "demo"\nversion = "1.0.0"\nedition = "2021"\n', "src/lib.rs": ""}
    commit = make_repo(repo, files)
    subprocess.run(["cargo", "generate-lockfile", "--offline"], cwd=repo, capture_output=True, check=True)
    if lock == "upstream":
        git(repo, "add", "Cargo.lock")
        git(repo, "commit", "-q", "-m", "lock")
        commit = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "1.0.0")
    demo.module_env(
        f"VERSION=1.0.0\nSOURCE_URL=https://example.invalid/crate.git\nSOURCE_COMMIT={commit}\nSOURCE_STRIP=1\n"
        "PIN_VERIFIED=yes\nLICENSE=MIT\nRUST_MIN=1.60\nDEPS=crates\nCRATES_KIND=crates\n"
        f"CRATES_SOURCE_URL=https://crates.io\nCRATES_LOCKFILE={lock}\n"
    )
    return repo


def test_crates_are_vendored_against_the_pinned_lock_reproducibly(demo):
    repo = cargo_demo(demo, "upstream")
    lock_sha = sha256(repo / "Cargo.lock")
    env_file = demo.modules / "demo" / "module.env"
    env_file.write_text(env_file.read_text() + "CRATES_LOCKFILE_SHA256=" + "1" * 64 + "\nCRATES_PIN_VERIFIED=yes\n")
    line = one_error(demo.fetch("demo/crates", DEMO_GIT=str(repo)))
    assert f"is sha256 {lock_sha}, not the pinned {'1' * 64}" in line
    env_file.write_text(env_file.read_text().replace("1" * 64, lock_sha))
    first = demo.fetch("demo/crates", DEMO_GIT=str(repo))
    assert first.returncode == 0, first.stderr
    tarball = Path(first.stdout.strip())
    assert tarball.name == "demo-crates-1.0.0.tar.gz"
    with tarfile.open(tarball) as tar:
        assert hashlib.sha256(tar.extractfile("crates/Cargo.lock").read()).hexdigest() == lock_sha
    digest = sha256(tarball)
    tarball.unlink()
    again = demo.fetch("demo/crates", DEMO_GIT=str(repo))
    assert again.returncode == 0 and sha256(Path(again.stdout.strip())) == digest, "same lock, same bytes"
    assert demo.fetch("demo/crates", VALKEY_BUNDLE_OFFLINE="1").returncode == 0, "cached copy checked by its lock"


def test_a_missing_lock_of_ours_is_resolved_and_said(demo):
    repo = cargo_demo(demo, "modules/demo/Cargo.lock")
    env_file = demo.modules / "demo" / "module.env"
    env_file.write_text(env_file.read_text() + "CRATES_LOCKFILE_SHA256=\nCRATES_PIN_VERIFIED=no\n")
    result = demo.fetch("demo/crates", DEMO_GIT=str(repo))
    assert result.returncode == 0, result.stderr
    assert "a Cargo.lock for Rust 1.60: copy crates/Cargo.lock out of" in result.stderr
    assert "CRATES_LOCKFILE_SHA256=" in result.stderr
    # Committed, with another sha256 than the one pinned: refused.
    (demo.modules / "demo" / "Cargo.lock").write_text("# not the lock\n")
    env_file.write_text(
        env_file.read_text().replace("CRATES_LOCKFILE_SHA256=\n", "CRATES_LOCKFILE_SHA256=" + "2" * 64 + "\n")
    )
    line = one_error(demo.fetch("demo/crates", DEMO_GIT=str(repo)))
    assert "does not match CRATES_LOCKFILE_SHA256" in line


def test_prepare_unpacks_the_source_and_every_dependency(demo, tmp_path):
    for name, var, repo in (("demo", "DEMO_GIT", "demo.git"), ("demo/lib", "DEMO_LIB_GIT", "lib.git")):
        assert demo.fetch(name, **{var: str(demo.tmp / repo)}).returncode == 0
    work = tmp_path / "work"
    result = demo.run("prepare.sh", "demo", str(demo.cache), str(work), VALKEY_BUNDLE_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    assert (work / "src" / "src" / "a.c").read_text() == "int a;\n"
    assert (work / "deps" / "lib" / "lib.h").is_file()
    # A missing input stops it, naming the input.
    (demo.cache / "demo-lib-main-1.tar.gz").unlink()
    result = demo.run("prepare.sh", "demo", str(demo.cache), str(tmp_path / "again"), VALKEY_BUNDLE_OFFLINE="1")
    assert result.returncode != 0 and "demo/lib is not in" in result.stderr


@pytest.mark.parametrize("component", ["search", "json", "bloom", "ldap"])
def test_recipes_refuse_to_run_without_their_inputs(component, tmp_path):
    """Each module recipe names DEPS_DIR before it does anything."""
    src = tmp_path / "src"
    src.mkdir()
    marker = {
        "search": {
            "CMakeLists.txt": "",
            "vmsdk/.keep": "",
            "submodules/.keep": "",
            "third_party/icu/source/configure": "#!/bin/sh\n",
        },
        "json": {"CMakeLists.txt": "project(ValkeyJSONModule)\n", "src/.keep": ""},
        "bloom": {"Cargo.toml": 'name = "valkey-bloom"\n'},
        "ldap": {"Cargo.toml": 'name = "valkey-ldap"\n', "Cargo.lock": ""},
    }[component]
    for name, text in marker.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    (src / "third_party/icu/source/configure").chmod(0o755) if component == "search" else None
    env = {k: v for k, v in os.environ.items() if k != "DEPS_DIR"}
    result = subprocess.run(
        [str(ROOT / "modules" / component / "build.sh"), str(src), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert f"modules/{component}/build.sh: DEPS_DIR is not set" in result.stderr
    assert not (tmp_path / "out").exists()


def test_search_recipe_builds_icu_and_places_the_dependencies_before_configure():
    """Upstream's CMake stops at configure without ICU built into <build>/icu/install,
    and clones what is missing from <build>/.deps: both must be ready first."""
    text = (ROOT / "modules" / "search" / "build.sh").read_text()
    icu = text.index('"$icu_source/configure" --enable-static --disable-shared --with-data-packaging=static')
    install = text.index("make install PKGDATA_MODE=static")
    place = text.index('ln -s -- "$DEPS_DIR/$dep" "$build/.deps/$dep"')
    markers = text.index('mkdir -p -- "$build/.deps/grpc/build-release" "$build/.deps/googletest/build-release"')
    # gRPC and googletest in the install prefix whose headers tell upstream's configure
    # they are built: from SEARCH_DEPS_PREFIX (the search-deps stage), or built here.
    prefix = text.index('ln -s -- "$(cd -- "$deps_prefix" && pwd)/install" "$build/.deps/install"')
    deps = text.index('"$here/build-deps.sh" "$build/.deps"')
    unset = text.index("unset SAN_BUILD")
    configure = text.index('cmake -S "$src" -B "$build"')
    assert icu < install < configure and place < markers < configure and unset < configure
    assert markers < prefix < configure and markers < deps < configure
    assert 'prefix="$icu/install"' in text and "icu=$build/icu" in text


def superproject(demo, pinned: bool) -> tuple[Path, str, dict[str, str]]:
    """demo/top: a superproject with two submodules (sub, sub2) and a large file; pinned
    by its commit, or (pinned=False) by a tag v2.0.0 that its mirror lacks, commit unknown."""
    sub = demo.tmp / "sub.git"
    make_repo(sub, {"sub.txt": "first\n"})
    sub2 = demo.tmp / "sub2.git"
    make_repo(sub2, {"sub2.txt": "second\n"})
    top = demo.tmp / "top.git"
    make_repo(top, {"top.txt": "top\n", "big.bin": "large test data\n"})
    config = {
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "protocol.file.allow",
        "GIT_CONFIG_VALUE_0": "always",
        "GIT_CONFIG_KEY_1": f"url.{sub}.insteadOf",
        "GIT_CONFIG_VALUE_1": "https://example.invalid/sub.git",
        "GIT_CONFIG_KEY_2": f"url.{sub2}.insteadOf",
        "GIT_CONFIG_VALUE_2": "https://example.invalid/sub2.git",
    }
    git(top, "submodule", "-q", "add", "https://example.invalid/sub.git", "third_party/sub", env=config)
    git(top, "submodule", "-q", "add", "https://example.invalid/sub2.git", "third_party/sub2", env=config)
    git(top, "commit", "-q", "-m", "with subs")
    commit = git(top, "rev-parse", "HEAD")
    text = (demo.modules / "demo" / "module.env").read_text().replace("DEPS=lib", 'DEPS="lib top"')
    unknown = "TOP_SOURCE_COMMIT=\nTOP_PIN_VERIFIED=no\n"
    pin = f"TOP_SOURCE_COMMIT={commit}\nTOP_PIN_VERIFIED=yes\n" if pinned else unknown
    demo.module_env(
        text + "TOP_VERSION=2.0.0\nTOP_SOURCE_URL=https://example.invalid/top.git\nTOP_SOURCE_TAG=v2.0.0\n"
        f"{pin}TOP_SUBMODULES=yes\nTOP_LICENSE=MIT\n"
    )
    return top, commit, {**config, "DEMO_TOP_GIT": str(top)}


def tar_commit(tarball: Path) -> str:
    return subprocess.run(
        f"gzip -dc {tarball} | git get-tar-commit-id", shell=True, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_substitute_is_packed_apart_said_and_used_only_where_named(demo):
    """A tag no mirror holds: another commit, some submodules and a path left out, asked
    for by name; never taken for the pin."""
    _top, commit, env = superproject(demo, pinned=False)
    substitute = {
        "DEMO_TOP_COMMIT": commit,
        "DEMO_TOP_COMMIT_NOTE": "the branch point",
        "DEMO_TOP_SUBMODULES": "third_party/sub",
        "DEMO_TOP_OMIT": "big.bin",
    }
    result = demo.fetch("demo/top", **env, **substitute)
    assert result.returncode == 0, result.stderr
    tarball = Path(result.stdout.strip())
    assert tarball == demo.cache / "demo-top-2.0.0.substitute.tar.gz"
    assert not (demo.cache / "demo-top-2.0.0.tar.gz").exists(), "never under the pin's name"
    names = members(tarball)
    assert {"demo-top-2.0.0/top.txt", "demo-top-2.0.0/third_party/sub/sub.txt"} <= names
    assert "demo-top-2.0.0/big.bin" not in names
    assert not any(n.startswith("demo-top-2.0.0/third_party/sub2/") for n in names), "sub2 left empty"
    assert tar_commit(tarball) == commit
    described = (
        f"{commit[:8]} (the branch point); pin v2.0.0 unverified; submodules only: third_party/sub; without: big.bin"
    )
    text = (demo.cache / "demo-top-2.0.0.substitute.txt").read_text().splitlines()
    assert text == [described, f"sha256 {sha256(tarball)}"]
    assert f"demo/top: substitute: {described}; packed as {tarball}" in result.stderr
    # Later, with nothing set: the pin is not there, and the substitute is not the pin.
    line = one_error(demo.fetch("demo/top", VALKEY_BUNDLE_OFFLINE="1"))
    assert "demo/top is not in" in line
    assert demo.fetch("demo/top", VALKEY_BUNDLE_OFFLINE="1", VALKEY_BUNDLE_SUBSTITUTES="demo,demo/lib").returncode != 0
    for allowed in ("demo/top", "demo, demo/top", "all"):
        used = demo.fetch("demo/top", VALKEY_BUNDLE_OFFLINE="1", VALKEY_BUNDLE_SUBSTITUTES=allowed)
        assert used.returncode == 0 and used.stdout.strip() == str(tarball), used.stderr
        assert used.stderr.strip() == f"modules/fetch.sh: demo/top: substitute: {described}"
    # A tarball that changed since is refused, naming what to do.
    with open(tarball, "ab") as f:
        f.write(b"\0")
    line = one_error(demo.fetch("demo/top", VALKEY_BUNDLE_OFFLINE="1", VALKEY_BUNDLE_SUBSTITUTES="all"))
    assert "does not match the sha256 recorded in" in line and "fetch the substitute again" in line


def test_paths_left_out_of_a_pinned_source_make_it_a_substitute_too(demo):
    _top, commit, env = superproject(demo, pinned=True)
    result = demo.fetch("demo/top", **env, DEMO_TOP_OMIT="big.bin,third_party/sub/sub.txt")
    assert result.returncode == 0, result.stderr
    tarball = Path(result.stdout.strip())
    assert tarball.name == "demo-top-2.0.0.substitute.tar.gz"
    names = members(tarball)
    assert "demo-top-2.0.0/third_party/sub2/sub2.txt" in names, "every submodule, as pinned"
    assert not {"demo-top-2.0.0/big.bin", "demo-top-2.0.0/third_party/sub/sub.txt"} & names
    assert (demo.cache / "demo-top-2.0.0.substitute.txt").read_text().splitlines()[0] == (
        f"the pinned {commit[:8]}; without: big.bin, third_party/sub/sub.txt"
    )


def test_substitute_requests_that_cannot_be_honoured_are_one_line(demo):
    line = one_error(demo.fetch("demo", DEMO_COMMIT="abc", DEMO_GIT=str(demo.tmp / "demo.git")))
    assert "DEMO_COMMIT must be a full commit id" in line
    line = one_error(demo.fetch("demo", DEMO_SUBMODULES="x", DEMO_GIT=str(demo.tmp / "demo.git")))
    assert "DEMO_SUBMODULES is set but demo has no submodules" in line
    line = one_error(demo.fetch("demo", DEMO_COMMIT="1" * 40, DEMO_GIT=str(demo.tmp / "demo.git")))
    assert f"commit {'1' * 40} not found in" in line


def test_blobs_a_mirror_lacks_come_from_files_with_the_same_bytes(demo, tmp_path):
    """A snapshot without its large files: the file supplied must be the blob the tree
    records, and the tarball is then the pin itself (same bytes), not a substitute."""
    repo = demo.tmp / "demo.git"
    blob = git(repo, "rev-parse", f"{demo.commit}:src/a.c")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    line = one_error(demo.fetch("demo", DEMO_GIT=str(repo)))
    assert "cannot pack" in line
    wrong = tmp_path / "wrong.c"
    wrong.write_text("int b;\n")
    line = one_error(demo.fetch("demo", DEMO_GIT=str(repo), DEMO_BLOBS=str(wrong)))
    assert f"DEMO_BLOBS: {wrong} (blob " in line and f"is no file of demo at {demo.commit}" in line
    right = tmp_path / "a.c"
    right.write_text("int a;\n")
    result = demo.fetch("demo", DEMO_GIT=str(repo), DEMO_BLOBS=str(right))
    assert result.returncode == 0, result.stderr
    tarball = Path(result.stdout.strip())
    assert tarball.name == "demo-1.0.0.tar.gz" and tar_commit(tarball) == demo.commit
    with tarfile.open(tarball) as tar:
        assert tar.extractfile("demo-1.0.0/src/a.c").read() == b"int a;\n"
    assert f"demo: src/a.c (blob {blob[:12]}) from {right}" in result.stderr


def test_prepare_unpacks_only_the_inputs_it_is_given(demo, tmp_path):
    for name, var, repo in (("demo", "DEMO_GIT", "demo.git"), ("demo/lib", "DEMO_LIB_GIT", "lib.git")):
        assert demo.fetch(name, **{var: str(demo.tmp / repo)}).returncode == 0
    work = tmp_path / "work"
    result = demo.run("prepare.sh", "demo", str(demo.cache), str(work), "demo/lib", VALKEY_BUNDLE_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    assert (work / "deps" / "lib" / "lib.h").is_file() and not (work / "src").exists()
    result = demo.run("prepare.sh", "demo", str(demo.cache), str(work), "other/x", VALKEY_BUNDLE_OFFLINE="1")
    assert result.returncode == 2 and "other/x is not an input of demo" in result.stderr
