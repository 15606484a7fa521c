"""modules/update-pins against recorded upstream data, offline.

Each test works on a copy of modules/, the Dockerfile and README.md in a temporary
directory. Upstream is a JSON file of tags (--from-json), local git repositories that
the script runs a real `git ls-remote` against, a local tarball whose sha256 it
computes, and official hash lists in valkey-hashes' format.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "modules" / "update-pins"
# Its steps, one module per job, which it imports.
PACKAGE = ROOT / "modules" / "update_pins"
COMPONENTS = ["valkey", "search", "json", "bloom", "ldap"]
HEX40 = re.compile(r"^[0-9a-f]{40}$")
# As tests/test_modules.py reads module.env.
LINE = re.compile(r'^([A-Z][A-Z0-9_]*)=(?:"([^"$`\\]*)"|([^"$`\\\s]*))$')


def env_values(path: Path) -> dict[str, str]:
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f"{path}: {raw!r}"
        values[match[1]] = match[2] if match[2] is not None else match[3]
    return values


def layout(path: Path) -> list[str]:
    """Comments and blank lines as they are, NAME= for assignments: what must not move."""
    return [line if not LINE.match(line) else line.split("=", 1)[0] + "=" for line in path.read_text().splitlines()]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    files = [root / "Dockerfile", root / "README.md", root / "modules" / "README.md"]
    files += [root / "modules" / c / "module.env" for c in COMPONENTS]
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env).stdout


def make_repo(path: Path, tags: dict[str, str]) -> dict[str, str]:
    """A git repository with one commit per tag; tag -> 'light' or 'annotated'.
    Returns tag -> the commit it points to."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    commits = {}
    for number, (tag, kind) in enumerate(tags.items()):
        (path / "VERSION").write_text(f"{tag}\n")
        git(path, "add", "VERSION")
        git(path, "commit", "-q", "-m", f"release {tag} ({number})")
        if kind == "annotated":
            git(path, "tag", "-a", "-m", f"release {tag}", tag)
        else:
            git(path, "tag", tag)
        commits[tag] = git(path, "rev-parse", "HEAD").strip()
    return commits


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "checkout"
    shutil.copytree(ROOT / "modules", root / "modules", ignore=shutil.ignore_patterns("sources", "prebuilt"))
    shutil.copy2(ROOT / "Dockerfile", root / "Dockerfile")
    shutil.copy2(ROOT / "README.md", root / "README.md")
    return root


@pytest.fixture
def upstream(tmp_path):
    """Recorded upstream: Valkey 9.0.7 is out (and 9.1.x, which must be ignored), search
    has a newer line only, json nothing new, bloom's pinned 1.0.1 exists (annotated
    tag), ldap has 1.0.1."""
    sources = tmp_path / "upstream"
    sources.mkdir()
    tree = sources / "valkey-9.0.7"
    tree.mkdir()
    (tree / "README.md").write_text("Valkey 9.0.7 (test tree)\n")
    tarball = sources / "valkey-9.0.7.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tree, arcname="valkey-9.0.7")
    bloom = make_repo(sources / "valkey-bloom.git", {"1.0.0": "light", "1.0.1": "annotated", "1.0.2-rc1": "light"})
    ldap = make_repo(sources / "valkey-ldap.git", {"1.0.0": "annotated", "1.0.1": "light", "2.0.0-rc1": "light"})
    search = env_values(ROOT / "modules" / "search" / "module.env")
    json_pin = env_values(ROOT / "modules" / "json" / "module.env")
    data = {
        "valkey": {
            "tags": ["8.1.4", "9.0.3", "9.0.4", "9.0.5", "9.0.6", "9.0.7", "9.0.8-rc1", "9.1.0", "9.1.2", "unstable"],
            "tarball_url": sources.as_uri() + "/valkey-{version}.tar.gz",
        },
        "search": {
            "tags": {
                "1.0.3": "4e81a1401b80b86441a8eea9685e94967167bd4d",
                "1.1.1": "f0e3c16214d74372061fc1389a7b169475231f91",
                search["VERSION"]: search["SOURCE_COMMIT"],
                "1.9.0": "1" * 40,
            }
        },
        "json": {"tags": {json_pin["VERSION"]: json_pin["SOURCE_COMMIT"]}},
        "bloom": {"remote": (sources / "valkey-bloom.git").as_uri()},
        "ldap": {"remote": (sources / "valkey-ldap.git").as_uri()},
    }
    path = tmp_path / "upstream.json"
    path.write_text(json.dumps(data, indent=2))
    return {
        "json": path,
        "data": data,
        "valkey_sha256": hashlib.sha256(tarball.read_bytes()).hexdigest(),
        "bloom": bloom,
        "ldap": ldap,
    }


def update_pins(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), "--root", str(root), *args], capture_output=True, text=True, timeout=120, check=False
    )


def write_json(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "recorded.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_the_script_is_a_stdlib_only_executable():
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().splitlines()[0] == "#!/usr/bin/env python3"
    for path in [SCRIPT, *sorted(PACKAGE.glob("*.py"))]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in ("__future__", PACKAGE.name) or top in sys.stdlib_module_names, f"not stdlib: {name}"
    result = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "--dry-run" in result.stdout and "--from-json" in result.stdout


def test_updates_pins_keeps_comments_and_layout(checkout, upstream):
    layouts = {c: layout(checkout / "modules" / c / "module.env") for c in COMPONENTS}
    before = {c: env_values(checkout / "modules" / c / "module.env") for c in COMPONENTS}
    result = update_pins(checkout, "--from-json", str(upstream["json"]), "--summary", str(checkout / "summary.md"))
    assert result.returncode == 0, result.stderr

    valkey = env_values(checkout / "modules" / "valkey" / "module.env")
    assert valkey["VERSION"] == "9.0.7", "the newest 9.0.x, never 9.1.x"
    assert valkey["SOURCE_URL"] == "https://github.com/valkey-io/valkey/archive/refs/tags/9.0.7.tar.gz"
    assert valkey["SOURCE_SHA256"] == upstream["valkey_sha256"]
    assert valkey["PIN_VERIFIED"] == "yes"
    assert valkey["DEBIAN_FALLBACK_SHA256"] == before["valkey"]["DEBIAN_FALLBACK_SHA256"]

    bloom = env_values(checkout / "modules" / "bloom" / "module.env")
    assert bloom["VERSION"] == before["bloom"]["VERSION"] == "1.0.1"
    assert bloom["SOURCE_COMMIT"] == upstream["bloom"]["1.0.1"], "the commit, not the annotated tag object"
    assert HEX40.match(bloom["SOURCE_COMMIT"]) and bloom["PIN_VERIFIED"] == "yes"

    ldap = env_values(checkout / "modules" / "ldap" / "module.env")
    assert (ldap["VERSION"], ldap["SOURCE_COMMIT"], ldap["PIN_VERIFIED"]) == ("1.0.1", upstream["ldap"]["1.0.1"], "yes")
    # Its crates follow: 1.0.1's own Cargo.lock is not pinned yet.
    assert (ldap["CRATES_LOCKFILE_SHA256"], ldap["CRATES_PIN_VERIFIED"]) == ("", "no")

    for component in ("search", "json"):
        assert env_values(checkout / "modules" / component / "module.env") == before[component]
    for component in COMPONENTS:
        assert layout(checkout / "modules" / component / "module.env") == layouts[component], component
        changed = {
            k
            for k, v in env_values(checkout / "modules" / component / "module.env").items()
            if before[component][k] != v
        }
        crates = {"CRATES_LOCKFILE_SHA256", "CRATES_PIN_VERIFIED"} if component == "ldap" else set()
        assert changed <= {"VERSION", "SOURCE_URL", "SOURCE_SHA256", "SOURCE_COMMIT", "PIN_VERIFIED", *crates}, (
            component
        )
        # Still readable by the shell recipes.
        script = '. "$1" && printf %s "$VERSION"'
        path = str(checkout / "modules" / component / "module.env")
        shell = subprocess.run(["bash", "-c", script, "bash", path], capture_output=True, text=True, check=True)
        assert shell.stdout == env_values(checkout / "modules" / component / "module.env")["VERSION"]

    dockerfile = (checkout / "Dockerfile").read_text()
    assert re.search(r"^ARG VALKEY_VERSION=9\.0\.7$", dockerfile, re.M)
    assert re.search(r"^ARG IMAGE_VERSION=9\.0\.7$", dockerfile, re.M)
    assert re.search(r"^ARG LDAP_VERSION=1\.0\.1$", dockerfile, re.M)
    assert re.search(rf"^ARG SEARCH_VERSION={re.escape(before['search']['VERSION'])}$", dockerfile, re.M)
    readme = (checkout / "modules" / "README.md").read_text()
    # Only the rows of the components that changed.
    old_lines = (ROOT / "modules" / "README.md").read_text().splitlines()
    new_lines = readme.splitlines()
    assert len(new_lines) == len(old_lines)
    differing = {new.split("|")[1].strip() for old, new in zip(old_lines, new_lines, strict=True) if old != new}
    assert differing == {"valkey", "bloom", "ldap"}
    assert re.search(rf"^\| valkey \| 9\.0\.7 \|.*\| sha256 `{upstream['valkey_sha256']}` \| yes \|$", readme, re.M)
    assert re.search(rf"^\| bloom \| 1\.0\.1 \|.*\| commit `{upstream['bloom']['1.0.1']}` \| yes \|$", readme, re.M)

    summary = (checkout / "summary.md").read_text()
    assert summary == result.stdout
    assert "9.0.4 -> 9.0.7" in summary or f"{before['valkey']['VERSION']} -> 9.0.7" in summary
    assert "newer line available: 9.1.2" in summary and "newer line available: 1.9.0" in summary
    assert "9.0.8" not in summary.replace("9.0.8-rc1", ""), "release candidates are not releases"
    assert "ldap/crates: 1.0.1's Cargo.lock to pin (./build.sh fetch prints its sha256)" in summary
    assert "search/grpc: not checked (not in --from-json)" in summary
    # Comments that still speak of the old state are pointed out, not rewritten.
    assert "bloom/module.env:2:" in summary and "ldap/module.env:2:" in summary


def test_a_second_run_changes_nothing(checkout, upstream):
    assert update_pins(checkout, "--from-json", str(upstream["json"])).returncode == 0
    before = snapshot(checkout)
    result = update_pins(checkout, "--from-json", str(upstream["json"]))
    assert result.returncode == 0, result.stderr
    assert "No changes." in result.stdout
    assert snapshot(checkout) == before


def test_nothing_newer_leaves_every_file_untouched(checkout, tmp_path):
    valkey = env_values(checkout / "modules" / "valkey" / "module.env")
    json_pin = env_values(checkout / "modules" / "json" / "module.env")
    recorded = {
        # 9.1 and 10.0 are other lines: refused.
        "valkey": {
            "tags": [valkey["VERSION"], "9.1.0", "9.1.2", "10.0.0"],
            "tarball_url": "file:///nonexistent/{version}",
        },
        "json": {"tags": {json_pin["VERSION"]: json_pin["SOURCE_COMMIT"], "v" + json_pin["VERSION"]: "2" * 40}},
    }
    before = snapshot(checkout)
    result = update_pins(checkout, "--from-json", write_json(tmp_path, recorded))
    assert result.returncode == 0, result.stderr
    assert snapshot(checkout) == before
    assert "No changes." in result.stdout
    assert "not checked" in result.stdout  # search, bloom, ldap are not in the file
    assert "newer line available: 10.0.0" in result.stdout


def test_dry_run_shows_the_diff_and_writes_nothing(checkout, upstream):
    before = snapshot(checkout)
    result = update_pins(checkout, "--dry-run", "--from-json", str(upstream["json"]), "valkey")
    assert result.returncode == 0, result.stderr
    assert snapshot(checkout) == before
    assert "+VERSION=9.0.7" in result.stdout and "+ARG IMAGE_VERSION=9.0.7" in result.stdout
    assert "dry run" in result.stderr


def test_a_moved_tag_is_an_error_and_changes_nothing(checkout, tmp_path):
    json_pin = env_values(checkout / "modules" / "json" / "module.env")
    before = snapshot(checkout)
    recorded = {"json": {"tags": {json_pin["VERSION"]: "3" * 40}}}
    result = update_pins(checkout, "--from-json", write_json(tmp_path, recorded))
    assert result.returncode == 3
    assert snapshot(checkout) == before
    assert f"update-pins: error: json: tag {json_pin['VERSION']} now points to {'3' * 40}" in result.stderr


def test_only_the_named_components(checkout, upstream):
    result = update_pins(checkout, "--from-json", str(upstream["json"]), "bloom")
    assert result.returncode == 0, result.stderr
    assert env_values(checkout / "modules" / "bloom" / "module.env")["PIN_VERIFIED"] == "yes"
    assert env_values(checkout / "modules" / "valkey" / "module.env")["VERSION"] != "9.0.7"
    result = update_pins(checkout, "nonesuch")
    assert result.returncode == 1 and "unknown component 'nonesuch'" in result.stderr


def test_unreachable_upstream_is_a_clear_error(checkout, tmp_path):
    before = snapshot(checkout)
    recorded = {
        "bloom": {"remote": "http://127.0.0.1:9/valkey-bloom.git"},
        "valkey": {"tags": ["9.0.99"], "tarball_url": "http://127.0.0.1:9/valkey-{version}.tar.gz"},
    }
    result = update_pins(checkout, "--from-json", write_json(tmp_path, recorded))
    assert result.returncode == 3
    assert snapshot(checkout) == before
    errors = [line for line in result.stderr.splitlines() if line.startswith("update-pins: error: ")]
    assert any("cannot list the tags of http://127.0.0.1:9/valkey-bloom.git" in line for line in errors)
    assert any("cannot download http://127.0.0.1:9/valkey-9.0.99.tar.gz" in line for line in errors)
    assert "Traceback" not in result.stderr


def test_bad_recorded_data_is_a_clear_error(checkout, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = update_pins(checkout, "--from-json", str(bad))
    assert result.returncode == 1 and result.stderr.startswith("update-pins: error: --from-json")
    result = update_pins(checkout, "--from-json", write_json(tmp_path, {"valkey": {"tags": ["9.0.99"]}}))
    assert result.returncode == 3 and "tarball_url" in result.stderr  # that component only
    assert "Traceback" not in result.stderr


def test_a_failing_component_does_not_hold_the_others_back(checkout, upstream, tmp_path):
    """json's tag moved and bloom's upstream is unreachable: valkey and ldap are bumped all the same."""
    data = json.loads(upstream["json"].read_text())
    json_pin = env_values(checkout / "modules" / "json" / "module.env")
    data["json"] = {"tags": {json_pin["VERSION"]: "3" * 40}}
    data["bloom"] = {"remote": "http://127.0.0.1:9/valkey-bloom.git"}
    before = {c: (checkout / "modules" / c / "module.env").read_text() for c in COMPONENTS}
    summary = checkout / "summary.md"
    result = update_pins(checkout, "--from-json", write_json(tmp_path, data), "--summary", str(summary))
    assert result.returncode == 3, result.stderr

    assert env_values(checkout / "modules" / "valkey" / "module.env")["VERSION"] == "9.0.7"
    assert env_values(checkout / "modules" / "ldap" / "module.env")["SOURCE_COMMIT"] == upstream["ldap"]["1.0.1"]
    for component in ("json", "bloom", "search"):
        assert (checkout / "modules" / component / "module.env").read_text() == before[component], component
    assert re.search(r"^ARG VALKEY_VERSION=9\.0\.7$", (checkout / "Dockerfile").read_text(), re.M)

    text = summary.read_text()
    assert text == result.stdout
    assert "Not checked: json, bloom (see Problems below); the updates of the other components are applied." in text
    assert "`modules/valkey/module.env`" in text and "`modules/ldap/module.env`" in text
    assert f"| valkey | {env_values(ROOT / 'modules' / 'valkey' / 'module.env')['VERSION']} | 9.0.7 |" in text
    assert f"| json | {json_pin['VERSION']} | {json_pin['VERSION']} | **error** (below) |" in text
    problems = text.split("Problems:", 1)[1]
    assert f"json: tag {json_pin['VERSION']} now points to {'3' * 40}" in problems
    assert "cannot list the tags of http://127.0.0.1:9/valkey-bloom.git" in problems
    errors = [line for line in result.stderr.splitlines() if line.startswith("update-pins: error: ")]
    assert len(errors) == 2, result.stderr


def test_other_variables_in_module_env_are_left_alone(checkout, upstream):
    """Lines update-pins does not own (dependency pins, anything new) stay byte for byte."""
    extra = (
        "\n# A dependency of the build, pinned with the module.\n"
        "DEP_RAPIDJSON_VERSION=1.1.0-24b5e7a\n"
        'DEP_RAPIDJSON_URL="https://example.invalid/rapidjson-9.0.4.tar.gz"\n'
        "DEP_RAPIDJSON_SHA256=" + "ab" * 32 + "\n"
        "VERSION_NOTE=9.0.4\n"
    )
    for component in ("valkey", "ldap"):
        path = checkout / "modules" / component / "module.env"
        path.write_text(path.read_text() + extra)
    result = update_pins(checkout, "--from-json", str(upstream["json"]))
    assert result.returncode == 0, result.stderr
    for component in ("valkey", "ldap"):
        text = (checkout / "modules" / component / "module.env").read_text()
        assert text.endswith(extra), component
    assert env_values(checkout / "modules" / "valkey" / "module.env")["VERSION"] == "9.0.7"
    assert env_values(checkout / "modules" / "ldap" / "module.env")["VERSION"] == "1.0.1"


def test_an_unverified_dependency_is_resolved_from_its_tag(checkout, upstream, tmp_path):
    """search/grpc is pinned by its tag only: its commit is resolved, the rest of search kept."""
    grpc = make_repo(tmp_path / "grpc.git", {"v1.69.0": "light", "v1.70.1": "annotated", "v1.71.0": "light"})
    data = dict(upstream["data"])
    data["search/grpc"] = {"remote": (tmp_path / "grpc.git").as_uri()}
    recorded = tmp_path / "with-grpc.json"
    recorded.write_text(json.dumps(data))
    before = env_values(checkout / "modules" / "search" / "module.env")
    assert before["GRPC_SOURCE_TAG"] == "v1.70.1" and before["GRPC_PIN_VERIFIED"] == "no"
    result = update_pins(checkout, "--from-json", str(recorded), "search")
    assert result.returncode == 0, result.stderr
    after = env_values(checkout / "modules" / "search" / "module.env")
    assert after["GRPC_SOURCE_COMMIT"] == grpc["v1.70.1"], "the tag's commit, not a newer tag's"
    assert after["GRPC_PIN_VERIFIED"] == "yes"
    assert {k for k in after if after[k] != before[k]} == {"GRPC_SOURCE_COMMIT", "GRPC_PIN_VERIFIED"}
    assert f"search/grpc: pin verified: commit {grpc['v1.70.1']}" in result.stdout
    # The tag moves later: refused, nothing written.
    git(tmp_path / "grpc.git", "tag", "-f", "v1.70.1", grpc["v1.71.0"])
    moved = update_pins(checkout, "--from-json", str(recorded), "search")
    assert moved.returncode == 3, moved.stderr
    assert f"search/grpc: tag v1.70.1 now points to {grpc['v1.71.0']}, pinned {grpc['v1.70.1']}" in moved.stderr
    assert env_values(checkout / "modules" / "search" / "module.env") == after


# --- the official hash list -------------------------------------------------------

VALKEY_URL = "https://github.com/valkey-io/valkey/archive/refs/tags/{}.tar.gz"
# As valkey-io/valkey-hashes writes its README: comments, and a line of zeros for unstable.
HASHES_HEADER = (
    "# Valkey hashes file.\n"
    "#\n"
    "# hash <filename> <algo> <digest> <url>\n"
    "\n"
    "hash valkey-unstable.tar.gz sha256 " + "0" * 64 + " https://github.com/valkey-io/valkey/archive/unstable.tar.gz\n"
)


def hash_line(version: str, digest: str, url: str = "", file: str = "", algo: str = "sha256") -> str:
    return f"hash {file or f'valkey-{version}.tar.gz'} {algo} {digest} {url or VALKEY_URL.format(version)}\n"


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def releases_after_the_pin() -> tuple[str, str, str]:
    """The pinned Valkey and the two patch releases after it, whatever the pin is today."""
    pinned = env_values(ROOT / "modules" / "valkey" / "module.env")["VERSION"]
    major, minor, patch = (int(part) for part in pinned.split("."))
    return pinned, f"{major}.{minor}.{patch + 1}", f"{major}.{minor}.{patch + 2}"


def mentions(text: str, version: str) -> list[str]:
    return re.findall(rf"(?<![\w.])v?{re.escape(version)}(?![\w]|\.\d)", text)


def test_the_pin_names_the_official_hash_list():
    valkey = env_values(ROOT / "modules" / "valkey" / "module.env")
    assert valkey["SOURCE_HASHES_URL"] == "https://raw.githubusercontent.com/valkey-io/valkey-hashes/main/README"


@pytest.mark.parametrize("given", ["--hashes", "hashes_url"])
def test_a_new_valkey_takes_its_sha256_from_the_official_hash_list(checkout, tmp_path, given):
    """No download at all (no tarball_url): the list alone pins the new release."""
    pinned, new, _ = releases_after_the_pin()
    digest = digest_of(f"valkey {new}")
    hashes = tmp_path / "valkey-hashes" / "README"
    hashes.parent.mkdir()
    hashes.write_text(
        HASHES_HEADER + hash_line("8.1.9", digest_of("8.1.9")) + hash_line(new, digest) + hash_line("9.1.1", "ab" * 32)
    )
    before = env_values(checkout / "modules" / "valkey" / "module.env")
    entry = {"tags": [pinned, new, "9.1.1"]}
    args = ["--hashes", str(hashes)]
    if given == "hashes_url":
        entry["hashes_url"] = hashes.as_uri()
        args = []
    result = update_pins(checkout, "--from-json", write_json(tmp_path, {"valkey": entry}), *args)
    assert result.returncode == 0, result.stderr

    valkey = env_values(checkout / "modules" / "valkey" / "module.env")
    assert (valkey["VERSION"], valkey["SOURCE_URL"], valkey["SOURCE_SHA256"], valkey["PIN_VERIFIED"]) == (
        new,
        VALKEY_URL.format(new),
        digest,
        "yes",
    )
    assert valkey["SOURCE_HASHES_URL"] == before["SOURCE_HASHES_URL"]
    assert f"{pinned} -> {new}, sha256 {digest} (from the official hash list; not downloaded to compare)" in (
        result.stdout
    )
    dockerfile = (checkout / "Dockerfile").read_text()
    assert re.search(rf"^ARG VALKEY_VERSION={re.escape(new)}$", dockerfile, re.M)
    assert re.search(rf"^ARG IMAGE_VERSION={re.escape(new)}$", dockerfile, re.M)
    table = (checkout / "modules" / "README.md").read_text()
    assert re.search(rf"^\| valkey \| {re.escape(new)} \|.*\| sha256 `{digest}` \| yes \|$", table, re.M)
    readme = (checkout / "README.md").read_text()
    assert f"valkey-bundle:{new}" in readme and not mentions(readme, pinned)


def test_the_download_must_agree_with_the_official_hash_list(checkout, tmp_path):
    pinned, new, _ = releases_after_the_pin()
    (tmp_path / "upstream").mkdir()
    tarball = tmp_path / "upstream" / f"valkey-{new}.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(ROOT / "modules" / "valkey" / "module.env", arcname=f"valkey-{new}/module.env")
    downloaded = hashlib.sha256(tarball.read_bytes()).hexdigest()
    tarball_url = (tmp_path / "upstream").as_uri() + "/valkey-{version}.tar.gz"
    recorded = write_json(tmp_path, {"valkey": {"tags": [pinned, new], "tarball_url": tarball_url}})
    hashes = tmp_path / "hashes"

    hashes.write_text(HASHES_HEADER + hash_line(new, "cd" * 32))
    before = snapshot(checkout)
    result = update_pins(checkout, "--from-json", recorded, "--hashes", str(hashes))
    assert result.returncode == 3, result.stderr
    assert snapshot(checkout) == before
    assert (
        f"update-pins: error: valkey: {new} not pinned: {hashes} gives sha256 {'cd' * 32} for "
        f"{VALKEY_URL.format(new)}, the download has {downloaded}: not pinned"
    ) in result.stderr

    hashes.write_text(HASHES_HEADER + hash_line(new, downloaded))
    result = update_pins(checkout, "--from-json", recorded, "--hashes", str(hashes))
    assert result.returncode == 0, result.stderr
    assert env_values(checkout / "modules" / "valkey" / "module.env")["SOURCE_SHA256"] == downloaded
    assert f"sha256 {downloaded} (from the official hash list, as downloaded)" in result.stdout


@pytest.mark.parametrize(
    "line, why",
    [
        # The file name is right, the URL is not the pin's: another tarball (a release
        # tarball is not GitHub's archive of the tag), another sha256.
        (
            lambda v: hash_line(v, "ef" * 32, url=f"https://download.valkey.io/releases/valkey-{v}.tar.gz"),
            lambda v: f"lists valkey-{v}.tar.gz at https://download.valkey.io/releases/valkey-{v}.tar.gz, not at",
        ),
        (lambda v: hash_line(v, "ef" * 32, file=f"valkey-{v}-src.tar.gz"), lambda v: f"not valkey-{v}.tar.gz"),
        (lambda v: hash_line(v, "0" * 64), lambda v: f"no sha256 of valkey-{v}.tar.gz"),
        (lambda v: hash_line(v, "ef" * 16, algo="md5"), lambda v: f"no sha256 of valkey-{v}.tar.gz (md5"),
        (lambda v: hash_line(v, "ef" * 31), lambda v: f"no sha256 of valkey-{v}.tar.gz (sha256"),
    ],
)
def test_a_hash_line_counts_only_for_the_pins_url_and_file_name(checkout, tmp_path, line, why):
    pinned, new, _ = releases_after_the_pin()
    hashes = tmp_path / "hashes"
    hashes.write_text(HASHES_HEADER + line(new))
    before = snapshot(checkout)
    recorded = write_json(tmp_path, {"valkey": {"tags": [pinned, new]}})
    result = update_pins(checkout, "--from-json", recorded, "--hashes", str(hashes))
    assert result.returncode == 3, result.stderr
    assert snapshot(checkout) == before
    assert why(new) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_newer_release_without_a_sha256_is_named_not_guessed(checkout, tmp_path):
    """The list has the next release, not the one after: the next is pinned, the other is a
    problem (exit status 3), and no sha256 of it is written anywhere."""
    pinned, new, newer = releases_after_the_pin()
    digest = digest_of(new)
    hashes = tmp_path / "hashes"
    hashes.write_text(HASHES_HEADER + hash_line(pinned, "12" * 32) + hash_line(new, digest))
    recorded = write_json(tmp_path, {"valkey": {"tags": [pinned, new, newer]}})
    summary = tmp_path / "summary.md"
    result = update_pins(checkout, "--from-json", recorded, "--hashes", str(hashes), "--summary", str(summary))
    assert result.returncode == 3, result.stderr

    valkey = env_values(checkout / "modules" / "valkey" / "module.env")
    assert (valkey["VERSION"], valkey["SOURCE_SHA256"], valkey["PIN_VERIFIED"]) == (new, digest, "yes")
    assert newer not in (checkout / "modules" / "valkey" / "module.env").read_text()
    assert not mentions((checkout / "Dockerfile").read_text() + (checkout / "README.md").read_text(), newer)
    errors = [line for line in result.stderr.splitlines() if line.startswith("update-pins: error: ")]
    assert errors == [
        f"update-pins: error: valkey: {newer} not pinned: no sha256 for {VALKEY_URL.format(newer)}: "
        f"not in {hashes}; --from-json: valkey has no 'tarball_url' to download from"
    ]
    text = summary.read_text()
    assert f"| valkey | {pinned} | {new} | {pinned} -> {new}, sha256 {digest}" in text
    assert f"newer, not pinned: {newer} (no sha256, below)" in text
    assert "Not checked:" not in text, "valkey was checked, and its update applied"

    # The next run: still nothing to pin the newer release with. The pin is kept, and
    # checked against the list all the same.
    before = snapshot(checkout)
    again = update_pins(checkout, "--from-json", recorded, "--hashes", str(hashes))
    assert again.returncode == 3 and snapshot(checkout) == before
    assert f"valkey: {newer} not pinned: no sha256 for {VALKEY_URL.format(newer)}" in again.stderr
    assert (
        f"| valkey | {new} | {new} | kept: no newer release with a sha256; newer, not pinned: {newer} "
        "(no sha256, below); sha256 as in the official hash list |"
    ) in again.stdout
    assert "Not checked:" not in again.stdout


def test_a_tarball_listed_twice_counts_by_its_last_line(checkout, tmp_path):
    pinned, new, _ = releases_after_the_pin()
    first, last = digest_of("first"), digest_of("last")
    hashes = tmp_path / "hashes"
    hashes.write_text(HASHES_HEADER + hash_line(new, first) + hash_line("8.0.10", "34" * 32) + hash_line(new, last))
    recorded = write_json(tmp_path, {"valkey": {"tags": [pinned, new]}})
    result = update_pins(checkout, "--from-json", recorded, "--hashes", str(hashes))
    assert result.returncode == 0, result.stderr
    assert env_values(checkout / "modules" / "valkey" / "module.env")["SOURCE_SHA256"] == last
    assert f"{hashes} lists valkey-{new}.tar.gz 2 times: line 8 counts (earlier: {first})" in result.stdout


def test_a_verified_pin_is_checked_against_the_official_hash_list(checkout, tmp_path):
    valkey = env_values(checkout / "modules" / "valkey" / "module.env")
    pinned, sha = valkey["VERSION"], valkey["SOURCE_SHA256"]
    recorded = write_json(tmp_path, {"valkey": {"tags": [pinned, "9.1.1"]}})
    hashes = tmp_path / "hashes"
    before = snapshot(checkout)

    hashes.write_text(HASHES_HEADER + hash_line(pinned, sha))
    result = update_pins(checkout, "--from-json", recorded, "--hashes", str(hashes))
    assert result.returncode == 0, result.stderr
    assert "up to date; sha256 as in the official hash list" in result.stdout
    assert snapshot(checkout) == before

    # Upstream re-made the tarball (or the list is wrong): refused, like a moved tag.
    hashes.write_text(HASHES_HEADER + hash_line(pinned, sha) + hash_line(pinned, "56" * 32))
    result = update_pins(checkout, "--from-json", recorded, "--hashes", str(hashes))
    assert result.returncode == 3
    assert snapshot(checkout) == before
    assert (
        f"update-pins: error: valkey: {hashes} gives sha256 {'56' * 32} for {VALKEY_URL.format(pinned)}, "
        f"pinned {sha}: upstream re-made the tarball"
    ) in result.stderr


def test_without_the_official_hash_list_the_download_still_pins(checkout, upstream, tmp_path):
    """A list that cannot be read is said so in the summary; the download's sha256 is pinned."""
    data = {"valkey": dict(upstream["data"]["valkey"], hashes_url=(tmp_path / "nonesuch").as_uri())}
    result = update_pins(checkout, "--from-json", write_json(tmp_path, data))
    assert result.returncode == 0, result.stderr
    assert env_values(checkout / "modules" / "valkey" / "module.env")["SOURCE_SHA256"] == upstream["valkey_sha256"]
    assert f"sha256 {upstream['valkey_sha256']} (of the download; the official hash list: cannot read" in (
        result.stdout
    )


def test_an_unreadable_hashes_file_stops_everything(checkout, tmp_path):
    before = snapshot(checkout)
    result = update_pins(checkout, "--hashes", str(tmp_path / "nonesuch"))
    assert result.returncode == 1 and result.stderr.startswith("update-pins: error: --hashes")
    empty = tmp_path / "empty"
    empty.write_text(HASHES_HEADER.replace("hash ", "# hash "))
    result = update_pins(checkout, "--hashes", str(empty))
    assert result.returncode == 1 and "no 'hash <file> <algo> <digest> <url>' line" in result.stderr
    assert snapshot(checkout) == before


def test_the_readme_follows_the_valkey_pin(checkout, tmp_path):
    """Every mention of the old release in README.md (image tags, version tags, examples)
    names the new one; a minimum, an address or a longer version that contains it does not."""
    pinned, new, _ = releases_after_the_pin()
    kept = [
        f"Search needs Valkey >= {pinned}.",
        f"Search needs Valkey ≥ {pinned}.",
        f"Valkey {pinned} or newer.",
        f"An address: 10.{pinned}, a build {pinned}.1, a release {pinned}0.",
    ]
    readme = checkout / "README.md"
    readme.write_text(readme.read_text() + "\n" + "\n".join(kept) + "\n")
    old = readme.read_text().splitlines()
    assert mentions(readme.read_text(), pinned), "the README names the pinned Valkey"
    hashes = tmp_path / "hashes"
    hashes.write_text(HASHES_HEADER + hash_line(new, digest_of(new)))
    result = update_pins(
        checkout, "--from-json", write_json(tmp_path, {"valkey": {"tags": [pinned, new]}}), "--hashes", str(hashes)
    )
    assert result.returncode == 0, result.stderr
    text = readme.read_text()
    lines = text.splitlines()
    assert len(lines) == len(old)
    changed = [(a, b) for a, b in zip(old, lines, strict=True) if a != b]
    assert changed, "the README's mentions follow"
    for was, now in changed:
        assert now.replace(new, pinned) == was, now
    assert lines[-len(kept) :] == kept
    assert mentions(text, pinned) == [pinned] * 3, "the three minimums only"
    assert f"valkey-bundle:{new}" in text and f"v{new}" in text
