"""Tier 2: clusters on distinct loopback addresses, formed by the entrypoint alone.

Every node is started only through the entrypoint, with the VALKEY_CLUSTER_*
variables a StatefulSet would give it; the tests look at the result with
valkey-cli and /proc, never through the entrypoint's own code.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ENTRYPOINT, base_env

from valkey_bundle.cluster import nodes_conf

pytestmark = pytest.mark.native
HEALTHCHECK = ENTRYPOINT.parent / "bundle-healthcheck"
CREATE_LINE = "cluster bootstrap: creating the cluster"
MEET_LINE = re.compile(r"cluster bootstrap: CLUSTER MEET ")


def cluster_port(addresses):
    """A port free on every address, with its cluster bus port (+10000)."""
    from support import testbed

    for _ in range(50):
        port = testbed.free_port()
        try:
            for address in addresses:
                for p in (port, port + 10000):
                    with socket.socket() as s:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        s.bind((address, p))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {addresses}")


class Node:
    """One member: its own directory (config, AOF, nodes.conf), started through the entrypoint."""

    def __init__(self, prefix, directory, ip, port, env, wrap=()):
        self.prefix, self.dir, self.ip, self.port = prefix, Path(directory), ip, port
        self.env, self.wrap = env, list(wrap)
        self.password = env.get("VALKEY_PASSWORD")
        self.proc = None
        self.logs = []
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "valkey.conf"
        self.conf.write_text(f'cluster-enabled yes\ndir {self.dir}\nappendonly yes\nsave ""\nloglevel notice\n')

    def start(self):
        log = self.dir / f"run-{len(self.logs)}.log"
        self.logs.append(log)
        command = [str(ENTRYPOINT), str(self.conf), "--port", str(self.port), "--bind", self.ip]
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [*self.wrap, *command], env=self.env, cwd=self.dir, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def log(self, run=-1):
        return self.logs[run].read_text(errors="replace")

    def all_logs(self):
        return "".join(log.read_text(errors="replace") for log in self.logs)

    def cli(self, *args, auth=True, cluster=False, stdin=None):
        command = [str(self.prefix / "bin" / "valkey-cli"), "-h", self.ip, "-p", str(self.port)]
        if cluster:
            command.append("-c")
        if auth and self.password:
            command += ["--no-auth-warning", "-a", self.password]
        result = subprocess.run([*command, *args], input=stdin, capture_output=True, text=True, timeout=20, check=False)
        return result.stdout

    def cluster_info(self):
        info = {}
        for line in self.cli("cluster", "info").splitlines():
            key, _, value = line.partition(":")
            info[key] = value.strip()
        return info

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.ip}: the server exited with {self.proc.returncode}:\n{self.log()}")


def wait_for(what, condition, nodes, timeout=40.0):
    end = time.monotonic() + timeout
    while True:
        for node in nodes:
            node.alive()
        if condition():
            return
        if time.monotonic() > end:
            logs = "\n".join(f"--- {n.ip}\n{n.log()[-3000:]}" for n in nodes)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


def healthy(node, members):
    """cluster_state:ok, and every member known at its current address, linked, not failing.

    cluster_state alone is not enough: right after a restart a node still reports ok
    while it cannot reach anyone (a peer only counts as failed after the node timeout).
    """
    if node.cluster_info().get("cluster_state") != "ok":
        return False
    lines = [line.split(" ") for line in node.cli("cluster", "nodes").splitlines() if line.strip()]
    seen = {fields[1].split("@")[0]: fields for fields in lines}
    return len(lines) == len(members) and all(
        (fields := seen.get(f"{m.ip}:{m.port}"))
        and fields[7] == "connected"
        and not {"fail", "fail?", "handshake", "noaddr"} & set(fields[2].split(","))
        for m in members
    )


def wait_cluster_ok(nodes, timeout=40.0):
    wait_for("a healthy cluster", lambda: all(healthy(n, nodes) for n in nodes), nodes, timeout)


@pytest.fixture
def make_cluster(valkey_prefix, modules_dir, tmp_path):
    """make_cluster(ips, names=None, wrap=(), **env) -> [Node]; every node stopped at teardown."""
    made = []

    def make(ips, hostnames=None, wrap=(), **variables):
        port = cluster_port(ips)
        members = hostnames or ips
        nodes = []
        for i, ip in enumerate(ips):
            env = base_env(
                VALKEY_MODULES_DIR=str(modules_dir),
                VALKEY_CLUSTER_NODES=",".join(f"{m}:{port}" for m in members),
                VALKEY_CLUSTER_ANNOUNCE_IP=ip,
                **variables,
            )
            if hostnames:
                env["VALKEY_CLUSTER_ANNOUNCE_HOSTNAME"] = hostnames[i]
            env["PATH"] = f"{valkey_prefix / 'bin'}{os.pathsep}{env['PATH']}"
            nodes.append(Node(valkey_prefix, tmp_path / f"node-{i}", ip, port, env, wrap))
        made.extend(nodes)
        return nodes

    yield make
    for node in made:
        node.stop()


def count(nodes, pattern):
    text = "".join(n.all_logs() for n in nodes)
    return len(re.findall(pattern, text)) if isinstance(pattern, str) else len(pattern.findall(text))


def write_keys(node, keys):
    commands = "".join(f"set {k} value-of-{k}\n" for k in keys)
    out = node.cli(cluster=True, stdin=commands)
    assert out.count("OK") == len(keys), out


def read_keys(node, keys):
    out = node.cli(cluster=True, stdin="".join(f"get {k}\n" for k in keys))
    return [line for line in out.splitlines() if not line.startswith("-> Redirected")]


def proc_text(pid, name):
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def helpers_of(node):
    """PIDs of processes started from this node's entrypoint that are not its server (the helper)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != node.proc.pid:
            cmdline = proc_text(entry, "cmdline")
            if str(ENTRYPOINT) in cmdline and str(node.conf) in cmdline:
                found.append(int(entry))
    return found


# ---------------------------------------------------------------------------


def test_three_nodes_form_one_cluster_and_survive_a_full_restart(make_cluster):
    nodes = make_cluster(["127.0.0.2", "127.0.0.3", "127.0.0.4"], VALKEY_MODULES="search,json")
    for node in nodes:
        node.start()
    wait_cluster_ok(nodes)

    assert count(nodes, CREATE_LINE) == 1
    assert count(nodes, MEET_LINE) == 2
    assert CREATE_LINE in nodes[0].log()  # the first member in VALKEY_CLUSTER_NODES made it
    for node in nodes:
        info = node.cluster_info()
        shape = (info["cluster_slots_assigned"], info["cluster_known_nodes"], info["cluster_size"])
        assert shape == ("16384", "3", "3")
        assert node.cli("search.coordinator").strip() == "1"
        assert "--use-coordinator" in json.loads(node.cli("--json", "search.args"))
    ids = [node.cli("cluster", "myid").strip() for node in nodes]
    assert len(set(ids)) == 3

    keys = [f"key:{i}" for i in range(200)]
    write_keys(nodes[1], keys)
    assert sum(int(node.cli("dbsize")) for node in nodes) == 200

    assert [node.stop() for node in nodes] == [0, 0, 0]
    for node in nodes:
        node.start()
    wait_cluster_ok(nodes)
    assert [node.cli("cluster", "myid").strip() for node in nodes] == ids
    assert read_keys(nodes[2], keys) == [f"value-of-{k}" for k in keys]
    assert count(nodes, CREATE_LINE) == 1  # the restart created nothing
    assert "already in a cluster" in nodes[0].log()


def test_password_cluster_with_replicas(make_cluster, tmp_path):
    password = "pw-Zq81 with space"
    ips = [f"127.0.0.{i}" for i in range(2, 8)]
    runtime = tmp_path / "run"
    runtime.mkdir()
    nodes = make_cluster(
        ips, VALKEY_PASSWORD=password, VALKEY_CLUSTER_REPLICAS="1", VALKEY_MODULES="search", TMPDIR=str(runtime)
    )
    first = nodes[0].start()
    # The helper waits for the others: look at it while it is alive.
    wait_for("the helper to wait", lambda: "waiting for" in first.log(), [first])
    helpers = helpers_of(first)
    assert len(helpers) == 2, helpers  # the cluster bootstrap helper and the search index guard
    for pid in [first.proc.pid, *helpers]:
        assert password not in proc_text(pid, "cmdline")
    assert "VALKEY_PASSWORD=" not in proc_text(first.proc.pid, "environ")
    assert "NOAUTH" in first.cli("ping", auth=False)

    for node in nodes[1:]:
        node.start()
    wait_cluster_ok(nodes)
    # The slots are served (state ok) before the replicas are attached: wait for the end.
    wait_for("the bootstrap to finish", lambda: "cluster bootstrap: cluster created" in first.log(), nodes)
    assert count(nodes, CREATE_LINE) == 1

    roles = {}
    for node in nodes:
        assert "NOAUTH" in node.cli("ping", auth=False)
        assert node.cli("ping").strip() == "PONG"
        assert node.cli("search.coordinator").strip() == "1"
        replication = node.cli("info", "replication")
        roles[node.ip] = "slave" if "role:slave" in replication else "master"
        if roles[node.ip] == "slave":
            # masterauth came from the same include: the replica authenticated to its primary.
            wait_for("replication link", lambda n=node: "master_link_status:up" in n.cli("info", "replication"), nodes)
    assert sorted(roles.values()) == ["master"] * 3 + ["slave"] * 3
    assert [roles[ip] for ip in ips[:3]] == ["master"] * 3  # the first members are the primaries

    # No process on the machine shows the password in its command line.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            assert password not in proc_text(entry, "cmdline"), proc_text(entry, "cmdline")
    # The secret reached each server through a private include under $TMPDIR.
    includes = sorted(runtime.glob("valkey-bundle-*/generated-*.conf"))
    assert [p.name for p in includes] == sorted(f"generated-{n.proc.pid}.conf" for n in nodes)
    for include in includes:
        assert include.stat().st_mode & 0o777 == 0o600 and include.parent.stat().st_mode & 0o777 == 0o700

    # The bootstrap helper ends; the index guard stays beside the server.
    wait_for("the bootstrap helper to finish", lambda: len(helpers_of(first)) == 1, nodes, timeout=20)

    health = subprocess.run(
        [str(HEALTHCHECK), "readiness", "--host", first.ip, "--port", str(first.port)],
        env=base_env(VALKEY_PASSWORD=password),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert health.returncode == 0, health.stdout + health.stderr


def test_members_that_are_not_empty_are_left_alone(make_cluster):
    nodes = make_cluster(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    for node in nodes[1:]:
        node.start()
    wait_for("two members", lambda: all(n.cli("ping").strip() == "PONG" for n in nodes[1:]), nodes[1:])
    assert nodes[2].cli("cluster", "addslots", "0").strip() == "OK"  # someone started by hand

    nodes[0].start()
    wait_for("the helper's verdict", lambda: "left alone" in nodes[0].log(), nodes)
    assert count(nodes, CREATE_LINE) == 0 and count(nodes, MEET_LINE) == 0
    assert [n.cluster_info()["cluster_slots_assigned"] for n in nodes] == ["0", "0", "1"]
    assert all(n.cluster_info()["cluster_known_nodes"] == "1" for n in nodes)


def test_bootstrap_gives_up_at_the_deadline_and_the_server_keeps_running(make_cluster):
    # The index guard, a helper for the server's lifetime, is not what this test watches.
    nodes = make_cluster(
        ["127.0.0.2", "127.0.0.3", "127.0.0.4"], VALKEY_CLUSTER_BOOTSTRAP_TIMEOUT="2", VALKEY_SEARCH_INDEX_GUARD="no"
    )
    first = nodes[0].start()  # the other two never come
    wait_for("the helper to give up", lambda: "gave up after 2 s" in first.log(), [first], timeout=20)
    assert "waiting for 2 of 3 members: 127.0.0.3:" in first.log()
    assert first.cli("ping").strip() == "PONG" and first.cluster_info()["cluster_known_nodes"] == "1"
    wait_for("the helper to exit", lambda: not helpers_of(first), [first], timeout=10)


def private_hosts_file_works():
    """Whether this machine lets a process see its own /etc/hosts (a mount namespace)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = ["unshare", "--mount", "sh", "-c", "mount --bind /etc/hosts /etc/hosts"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not private_hosts_file_works(), reason="needs root, unshare(1) and mount namespaces")
def test_full_restart_with_new_ips_heals_through_nodes_conf(make_cluster, tmp_path):
    """Every member comes back on a new IP; only the host names in nodes.conf lead the way back.

    Each node runs in its own mount namespace where /etc/hosts is a file of the test's,
    so the names can move to new addresses between the two runs.
    """
    hosts = tmp_path / "hosts"
    names = ["node-a.test", "node-b.test", "node-c.test"]

    def publish(ips):
        with open(hosts, "w") as f:  # in place: the bind mounts see the same inode
            f.write("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for ip, name in zip(ips, names, strict=True)))

    old_ips, new_ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"], ["127.0.0.12", "127.0.0.13", "127.0.0.14"]
    publish(old_ips)
    wrap = ["unshare", "--mount", "sh", "-c", f'mount --bind "{hosts}" /etc/hosts && exec "$@"', "sh"]
    nodes = make_cluster(old_ips, hostnames=names, wrap=wrap)
    for node in nodes:
        node.start()
    wait_cluster_ok(nodes)
    assert CREATE_LINE in nodes[0].log() and count(nodes, CREATE_LINE) == 1
    ids = [n.cli("cluster", "myid").strip() for n in nodes]
    keys = [f"k{i}" for i in range(50)]
    write_keys(nodes[0], keys)

    # The format the real server writes is the one the refresh reads.
    written = (nodes[0].dir / "nodes.conf").read_text()
    moved = dict(zip(names, ([ip] for ip in new_ips), strict=True))
    text, changes = nodes_conf.refresh_text(written, lambda name: moved.get(name, []))
    assert sorted(c[1] for c in changes) == names[1:]
    assert f"{old_ips[0]}:{nodes[0].port}@" in text  # its own line stays

    assert [n.stop() for n in nodes] == [0, 0, 0]
    publish(new_ips)
    for node, ip in zip(nodes, new_ips, strict=True):
        node.ip = ip
        node.env["VALKEY_CLUSTER_ANNOUNCE_IP"] = ip
        node.start()
    wait_cluster_ok(nodes)
    assert [n.cli("cluster", "myid").strip() for n in nodes] == ids
    assert re.search(r"peer \w+ \(node-b\.test\) 127\.0\.0\.3 -> 127\.0\.0\.13", nodes[0].log(1))
    for node in nodes:
        known = node.cli("cluster", "nodes")
        assert all(f"{ip}:{node.port}@" in known for ip in new_ips), known
    assert read_keys(nodes[1], keys) == [f"value-of-{k}" for k in keys]
