"""The README's Docker cluster, run exactly as written (no announce IP: Docker sets no POD_IP).

The block of "### In a cluster" runs in bash as the README prints it; a `docker` in front
of the real one on PATH only makes the names unique to this run (network, containers,
volumes, labelled for removal), gives the network a subnet of its own (so that old
addresses can be taken on purpose) and puts the tests' image in place of
valkey-bundle:9.0. Then:

1. the three members form the cluster, and the README's own wait ends with readiness ok;
2. all three are re-run on new addresses (the same lines of the README, with fillers
   holding every old address, so that a stale address leads to another container): every
   member names itself and the others at their current addresses (CLUSTER NODES, CLUSTER
   SLOTS), not only reports cluster_state:ok;
3. a member re-run on an empty volume rejoins through the address that answered.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .cluster_kit import LABEL, docker, pick_subnet, used_subnets

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
IMAGE_IN_README = "valkey-bundle:9.0"
MEMBERS = ["valkey-0", "valkey-1", "valkey-2"]
PASSWORD_IN_README = "s3cret-password"

# The `docker` the README's commands meet first on PATH: the same commands, with this run's
# names. Arguments are rewritten, never added to what the README runs, but the network's
# label and subnet and the containers' label (for removal).
SHIM = """\
#!{python}
import os, sys
real, prefix, image, subnet, label = (os.environ[n] for n in (
    "SHIM_REAL_DOCKER", "SHIM_PREFIX", "SHIM_IMAGE", "SHIM_SUBNET", "SHIM_LABEL"))
names = {{"valkey"}} | {{f"valkey-{{i}}" for i in range(3)}}
args = sys.argv[1:]
out = []
for i, arg in enumerate(args):
    before = args[i - 1] if i else ""
    if arg in names and (before in ("--name", "--network", "exec") or args[:2] == ["network", "create"]):
        arg = prefix + arg
    elif ":" in arg and arg.split(":", 1)[0] in names and before == "-v":
        arg = prefix + arg
    elif arg == {image_in_readme!r}:
        arg = image
    out.append(arg)
if out[:2] == ["network", "create"]:
    out[2:2] = ["--label", label, "--subnet", subnet]
elif out[:1] == ["run"]:
    out[1:1] = ["--label", label]
os.execv(real, [real, *out])
"""


@pytest.fixture
def readme_run(bundle_image, tmp_path):
    """(run the README's shell text, the names of this run); removes what the run made."""
    run_id = uuid.uuid4().hex[:8]
    prefix = f"vbr-{run_id}-"
    label = f"{LABEL}={run_id}"
    subnet = pick_subnet(used_subnets(), random.Random())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "docker"
    shim.write_text(SHIM.format(python=sys.executable, image_in_readme=IMAGE_IN_README))
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SHIM_REAL_DOCKER": shutil.which("docker"),
        "SHIM_PREFIX": prefix,
        "SHIM_IMAGE": bundle_image.name,
        "SHIM_SUBNET": str(subnet),
        "SHIM_LABEL": label,
    }

    def run(script: str, timeout: float = 240) -> str:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            logs = "\n".join(f"--- {m}\n{container_logs(prefix + m)[-3000:]}" for m in MEMBERS)
            raise AssertionError(f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}\n{logs}")
        return result.stdout

    yield run, prefix, label
    containers = docker("ps", "-aq", "--filter", f"label={label}", check=False).split()
    if containers:
        docker("rm", "-f", *containers, check=False)
    for member in MEMBERS:
        docker("volume", "rm", "-f", prefix + member, check=False)
    docker("network", "rm", prefix + "valkey", check=False)


def readme_cluster_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n### In a cluster\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def container_logs(name: str) -> str:
    result = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60, check=False)
    return result.stdout + result.stderr


def ip_of(name: str) -> str:
    return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).strip()


def cli(name: str, *args: str) -> str:
    """valkey-cli inside the member, the password from its file (as the README's Connect says)."""
    command = 'VALKEYCLI_AUTH="$(cat "$VALKEY_PASSWORD_FILE")" exec valkey-cli "$@"'
    return docker("exec", name, "sh", "-c", command, "sh", *args).strip()


def myself_address(name: str) -> str:
    line = next(line for line in cli(name, "cluster", "nodes").splitlines() if "myself" in line)
    return line.split(" ")[1].split("@")[0].rsplit(":", 1)[0]


def slot_addresses(name: str) -> set[str]:
    """The primaries' addresses CLUSTER SLOTS gives clients (valkey-cli prints one value a line)."""
    return set(re.findall(r"^(\d+\.\d+\.\d+\.\d+)$", cli(name, "cluster", "slots"), re.MULTILINE))


def wait_for(what: str, condition, names: list[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except RuntimeError:  # not answering yet
            pass
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n}\n{container_logs(n)[-3000:]}" for n in names)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.5)


def test_the_readme_cluster_as_written_forms_heals_on_new_addresses_and_takes_a_member_back(readme_run, bundle_image):
    run, prefix, label = readme_run
    block = readme_cluster_block()
    assert "VALKEY_CLUSTER_ANNOUNCE_IP" not in block and IMAGE_IN_README in block
    names = [prefix + m for m in MEMBERS]

    # 1. As written: the members form the cluster, and the README's wait ends once it is ready.
    out = run(block)
    assert "readiness: ok: PONG, cluster_state:ok" in out.splitlines()[-1], out
    first = {name: ip_of(name) for name in names}
    for name in names:
        assert myself_address(name) == first[name]
        assert slot_addresses(name) == set(first.values())

    # 2. Every member re-run on a new address, the old ones held by other containers.
    docker("rm", "-f", *names)
    for index, old in enumerate(first.values()):
        docker(
            "run", "-d", "--name", f"{prefix}filler-{index}", "--label", label, "--network", prefix + "valkey",
            "--ip", old, "--entrypoint", "sleep", bundle_image.name, "infinity",
        )  # fmt: skip
    loop = block[block.index("nodes=") :]  # the README's lines from the member list to its wait
    run(loop)
    now = {name: ip_of(name) for name in names}
    assert not set(now.values()) & set(first.values())
    for name in names:
        # Clients follow CLUSTER SLOTS and MOVED: an old address would lead them to a filler.
        assert myself_address(name) == now[name], cli(name, "cluster", "nodes")
        assert slot_addresses(name) == set(now.values()), cli(name, "cluster", "slots")

    # 3. valkey-2 comes back on an empty volume (the README's line for it) and rejoins.
    docker("rm", "-f", names[2])
    docker("volume", "rm", prefix + MEMBERS[2])
    # Its slots had no other copy: the cluster stays without them, so no wait for readiness.
    one = loop.replace("for i in 0 1 2; do", "for i in 2; do", 1)
    run(one[: one.index("# The cluster forms")])
    member = names[2]
    member_ip = ip_of(member)
    wait_for("valkey-2 to answer", lambda: cli(member, "ping") == "PONG", names)
    member_id = cli(member, "cluster", "myid")

    def rejoined():
        """valkey-0 knows the new valkey-2 (its new node ID) at its address, linked."""
        for line in cli(names[0], "cluster", "nodes").splitlines():
            fields = line.split(" ")
            if fields[0] == member_id:
                return fields[1].startswith(f"{member_ip}:6379@") and fields[7] == "connected"
        return False

    wait_for("valkey-2 to rejoin", rejoined, names)
    logs = container_logs(member)
    meet = re.search(r"joining through \S+ \((\S+)\): CLUSTER MEET (\S+) 6379", logs)
    assert meet and meet[2] == meet[1] and meet[2] in set(now.values()), logs
    assert "slots" in logs and "have no owner" in logs, logs  # its slots had no other copy: said, not taken
    assert myself_address(member) == member_ip


def test_the_readme_block_has_what_the_test_takes_apart():
    """The test runs the README's own lines: the member loop for the re-runs, its wait apart."""
    block = readme_cluster_block()
    assert "for i in 0 1 2; do" in block and "nodes=" in block and "# The cluster forms" in block
    assert "until docker exec valkey-0 bundle-healthcheck readiness" in block
