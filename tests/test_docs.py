"""The README documents every environment variable the code reads (and the deployment sets)."""

import re
from pathlib import Path

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
