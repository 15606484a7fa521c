"""The README documents every environment variable the code reads (and the deployment sets),
and names the Valkey that is pinned."""

import re
from pathlib import Path

from valkey_bundle.module_files import parse_env_file

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# Variables of the platform, not of the project.
GENERAL = {"PATH", "HOME", "POD_NAME", "POD_NAMESPACE"}


def documented(name):
    return f"`{name}`" in README


def test_every_variable_the_entrypoint_reads_is_in_the_readme():
    source = "\n".join(p.read_text() for p in (ROOT / "entrypoint").rglob("*.py"))
    names = set(re.findall(r'"((?:VALKEY|POD)_[A-Z0-9_]*[A-Z0-9]|DEBUG|TMPDIR)"', source))
    assert {"VALKEY_MODULES", "DEBUG", "VALKEY_PASSWORD_FILE"} <= names  # the scan finds them
    missing = sorted(n for n in names - GENERAL if not documented(n))
    assert not missing, f"read by the entrypoint, missing from README.md: {missing}"
    assert documented("<KEY>_MODULE_ARGS")


def test_every_variable_the_deployment_sets_is_in_the_readme():
    manifest = (ROOT / "deploy" / "k8s" / "base" / "statefulset.yaml").read_text()
    names = set(re.findall(r"- name: ([A-Z][A-Z0-9_]+)\n", manifest))
    assert "VALKEY_CLUSTER_NODES" in names
    missing = sorted(n for n in names - GENERAL if not documented(n))
    assert not missing, f"set in deploy/k8s, missing from README.md: {missing}"


# Ports only the cluster's members may reach: the cluster bus and search's coordinator,
# which takes no password (port + 10000 and port + 20294 for 6379).
MEMBER_ONLY_PORTS = (16379, 26673)


def shell_examples(path):
    """Every command in the ```sh blocks of a Markdown file, continuation lines joined."""
    commands, block = [], None
    for line in path.read_text().splitlines():
        if block is None:
            if line.strip().startswith("```sh"):
                block = []
        elif line.strip().startswith("```"):
            commands += "\n".join(block).replace("\\\n", " ").splitlines()
            block = None
        else:
            block.append(line)
    return commands


def published_ports(command):
    """(container port ranges published by a docker command, whether it publishes every exposed port)."""
    import shlex

    tokens = shlex.split(command, comments=True)
    ranges, every = [], False
    for i, token in enumerate(tokens):
        spec = None
        if token in ("-p", "--publish") and i + 1 < len(tokens):
            spec = tokens[i + 1]
        elif token.startswith("--publish="):
            spec = token.split("=", 1)[1]
        elif token.startswith("-p") and token[2:3].isdigit():
            spec = token[2:]
        elif token in ("-P", "--publish-all") or token.startswith("--publish-all="):
            every = True
        if spec:
            first, _, last = spec.split("/")[0].rsplit(":", 1)[-1].partition("-")
            ranges.append((int(first), int(last or first)))
    return ranges, every


def test_the_port_scan_sees_publishing():
    assert published_ports("docker run -d -p 6379:6379 -p 127.0.0.1:26000-27000:26000-27000/tcp x") == (
        [(6379, 6379), (26000, 27000)],
        False,
    )
    assert published_ports("docker run --publish=26673 -P x") == ([(26673, 26673)], True)
    commands = shell_examples(ROOT / "README.md")
    assert any("-p 6379:6379" in c and "SEARCH_MODULE_ARGS" in c for c in commands), "continuations are joined"


def test_no_example_publishes_the_member_only_ports():
    """Published, 26673 would let anyone query the indexes without the password."""
    docs = [ROOT / "README.md", *sorted((ROOT / "deploy").rglob("*.md"))]
    for doc in docs:
        for command in shell_examples(doc):
            ranges, every = published_ports(command)
            assert not every, f"{doc.name}: -P publishes every exposed port, 26673 too: {command}"
            for first, last in ranges:
                for port in MEMBER_ONLY_PORTS:
                    assert not first <= port <= last, f"{doc.name}: publishes {port}: {command}"


# A release named in prose (9.0.5, v9.0.5; not inside 10.9.0.5 or 9.0.5.1), and the
# forms that name a minimum instead (">= 9.0.1", "≥ 9.0.1", "9.0.1 or newer"), as
# modules/update-pins reads them when it rewrites the README.
RELEASE = re.compile(r"(?<![\w.])v?(\d+)\.(\d+)\.(\d+)(?![\w]|\.\d)")
MINIMUM_BEFORE = re.compile(r"(?:>=|≥)\s*$")
MINIMUM_AFTER = re.compile(r"^\s+or (?:newer|later)\b")


def valkey_mentions(text, line):
    """(line number, version) of every release of Valkey's X.Y LINE the text names, minimums aside."""
    found = []
    for match in RELEASE.finditer(text):
        before, after = text[max(0, match.start() - 4) : match.start()], text[match.end() : match.end() + 12]
        if (match[1], match[2]) != line or MINIMUM_BEFORE.search(before) or MINIMUM_AFTER.match(after):
            continue
        found.append((text.count("\n", 0, match.start()) + 1, ".".join(match.group(1, 2, 3))))
    return found


def test_the_readme_names_the_pinned_valkey():
    """The image tags and examples name the Valkey of modules/valkey/module.env, which
    modules/update-pins rewrites them to: a release of that line written by hand
    elsewhere would fall behind the pin."""
    version = parse_env_file((ROOT / "modules" / "valkey" / "module.env").read_text())["VERSION"]
    major, minor, _ = version.split(".")
    assert valkey_mentions("valkey-bundle:9.0.3, v9.0.3, 10.9.0.3, >= 9.0.1, 9.0.1 or newer", ("9", "0")) == [
        (1, "9.0.3"),
        (1, "9.0.3"),
    ]
    mentions = valkey_mentions(README, (major, minor))
    assert f"`{version}`" in README and f"valkey-bundle:{version}" in README, "the tags table and examples"
    stale = [f"README.md:{number}: {found}" for number, found in mentions if found != version]
    assert not stale, f"not the pinned Valkey {version} (modules/valkey/module.env): {stale}"
