"""A cluster of the test image on a Docker network of its own, as a StatefulSet would run it.

Shared by tests/container/test_cluster_containers.py and bench/cluster_heal.py.

- The network is internal (nothing in it reaches beyond this machine) and has an explicit
  subnet that overlaps no Docker network and no route of this machine; members get fixed
  addresses in it (``--ip``) and a pod-like name (``--network-alias``,
  ``valkey-0.valkey-headless.test.svc``).
- Every member is started with ``docker run`` through the image's entrypoint only, with the
  VALKEY_CLUSTER_* variables of deploy/k8s, its own named volume at /data and the password
  in a mounted file.
- The test side talks RESP to the members' addresses from this machine (the network's
  bridge), with the entrypoint's own client.

Docker 20.10's embedded DNS never answers a query for a name it does not know on an
internal network (it tries to forward it, and the forward has nowhere to go): the client
waits out its timeout.  ``--dns-option timeout:1 attempts:1`` makes a member that is not
running yet cost a lookup 1 s, which is what an NXDOMAIN followed by a retry costs in
Kubernetes.  Everything made is labelled with the run's id and removed by ``destroy()``.
"""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "entrypoint") not in sys.path:
    sys.path.insert(0, str(ROOT / "entrypoint"))

from valkey_bundle.resp import Connection, ReplyError, authenticate  # noqa: E402

DOMAIN = "valkey-headless.test.svc"
PORT = 6379
SLOTS = 16384
PASSWORD_PATH = "/run/secrets/valkey-password"
LABEL = "org.valkey-bundle.test-run"
CREATE_LINE = "cluster bootstrap: creating the cluster"
BAD_FLAGS = {"fail", "fail?", "handshake", "noaddr"}


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


# ------------------------------------------------------------------ network


def used_subnets() -> list[ipaddress.IPv4Network]:
    """Subnets of every Docker network and every IPv4 route and address of this machine."""
    used = []
    ids = docker("network", "ls", "-q").split()
    if ids:
        # A network removed since `ls` (another test run's) makes inspect fail; the rest still prints.
        for network in json.loads(docker("network", "inspect", *ids, check=False) or "[]"):
            for config in (network.get("IPAM") or {}).get("Config") or []:
                subnet = config.get("Subnet", "")
                if subnet and ":" not in subnet:
                    used.append(ipaddress.ip_network(subnet, strict=False))
    lines = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    lines += subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for word in lines.split():
        if word[:1].isdigit() and word.count(".") == 3:
            try:
                used.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                pass
    return used


def pick_subnet(used: list[ipaddress.IPv4Network], rng: random.Random) -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0-10.249.255.0 that overlaps nothing in ``used``."""
    for _ in range(500):
        candidate = ipaddress.ip_network(f"10.{rng.randint(200, 249)}.{rng.randint(0, 255)}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise RuntimeError("no free /24 left in 10.200.0.0/13")


# ------------------------------------------------------------------ slots and keys


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XModem), the cluster's key hash."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    data = key.encode()
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return crc16(data) % SLOTS


# ------------------------------------------------------------------ containers


class Node:
    """One container of the image on the kit's network, started through the entrypoint:
    name, alias and volume stay; the address changes with each run.

    ``extra_env`` adds (or overrides) environment variables, ``mounts`` maps host files to
    read-only container paths, and ``args`` is the container's command (the entrypoint's
    arguments: a config file, server flags).
    """

    def __init__(
        self,
        kit: ClusterKit,
        alias: str,
        extra_env: dict[str, str] | None = None,
        mounts: dict[str, str] | None = None,
        args: list[str] | None = None,
    ):
        self.kit, self.alias = kit, alias
        self.name = f"vbc-{kit.run_id}-{alias.split('.')[0]}"
        self.volume = f"vbc-{kit.run_id}-data-{alias.split('.')[0]}"
        self.extra_env = dict(extra_env or {})
        self.mounts = dict(mounts or {})
        self.args = list(args or [])
        self.read_only = False  # --read-only with a tmpfs at /tmp
        self.ip: str | None = None

    def env(self) -> dict[str, str]:
        return {"VALKEY_PASSWORD_FILE": PASSWORD_PATH, **self.extra_env}

    def run(self, ip: str) -> float:
        """``docker run`` on ``ip``; returns when the command was issued (monotonic)."""
        self.ip = ip
        args = ["run", "-d", "--name", self.name, "--label", f"{LABEL}={self.kit.run_id}"]
        args += ["--network", self.kit.network, "--ip", ip, "--network-alias", self.alias]
        args += ["--dns-option", "timeout:1", "--dns-option", "attempts:1"]
        args += ["-v", f"{self.volume}:/data", "-v", f"{self.kit.password_file}:{PASSWORD_PATH}:ro"]
        for source, target in self.mounts.items():
            args += ["-v", f"{source}:{target}:ro"]
        if self.read_only:
            args += ["--read-only", "--tmpfs", "/tmp"]
        for name, value in self.env().items():
            args += ["-e", f"{name}={value}"]
        args += self.kit.run_args
        issued = time.monotonic()
        docker(*args, self.kit.image, *self.args)
        return issued

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)

    def stop(self, timeout: int = 30) -> None:
        """``docker stop`` (SIGTERM: the server shuts down as it would in production), then remove."""
        docker("stop", "-t", str(timeout), self.name, timeout=timeout + 60)
        self.remove()

    def logs(self) -> str:
        result = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True, timeout=60, check=False)
        return result.stdout + result.stderr

    # -- faults (tests/faults)

    def kill(self, signal: str = "KILL") -> None:
        """``docker kill -s SIGNAL``: the container stays, stopped, with its address."""
        docker("kill", "-s", signal, self.name)

    def start_again(self) -> float:
        """``docker start`` of the same container (same address, same volume), as the kubelet restarts
        a container of a pod; returns when the command was issued."""
        issued = time.monotonic()
        docker("start", self.name)
        return issued

    def disconnect(self) -> None:
        """Cut the container off the kit's network (it keeps running, alone)."""
        docker("network", "disconnect", self.kit.network, self.name)

    def reconnect(self) -> None:
        """Back on the kit's network with the address and the alias it had."""
        docker("network", "connect", "--ip", self.ip, "--alias", self.alias, self.kit.network, self.name)

    def started_at(self) -> str:
        """When Docker last started the container (changes with every restart)."""
        return docker("inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", self.name).strip()

    def exec(self, *cmd: str) -> tuple[int, str]:
        result = subprocess.run(["docker", "exec", self.name, *cmd], capture_output=True, timeout=60, check=False)
        return result.returncode, (result.stdout + result.stderr).decode(errors="replace")

    def running(self) -> bool:
        return docker("inspect", "-f", "{{.State.Running}}", self.name, check=False).strip() == "true"

    def connect(self, auth: bool = True, timeout: float = 1.0, decode: bool = True) -> Connection:
        """A connection to the node, authenticated with the kit's password unless ``auth`` is false
        (over TLS, its certificate checked against its name, when the kit has ``tls``)."""
        conn = Connection(self.ip, PORT, timeout=timeout, decode=decode, tls=self.kit.tls, server_name=self.alias)
        refused = authenticate(conn, self.kit.password) if auth else None
        if refused:
            conn.close()
            raise ConnectionError(f"AUTH on {self.alias}: {refused}")
        return conn

    def call(self, *args, auth: bool = True, timeout: float = 1.0):
        """One command over a fresh connection; an error reply is returned, not raised."""
        with Connection(self.ip, PORT, timeout=timeout, tls=self.kit.tls, server_name=self.alias) as conn:
            refused = authenticate(conn, self.kit.password) if auth else None
            return refused or conn.call(*args)

    def info(self, *args: str) -> dict[str, str]:
        reply = self.call(*args)
        if isinstance(reply, ReplyError):
            return {}
        values = {}
        for line in reply.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                values[key] = value.strip()
        return values

    def nodes(self) -> list[list[str]]:
        reply = self.call("CLUSTER", "NODES")
        return [] if isinstance(reply, ReplyError) else [line.split(" ") for line in reply.splitlines() if line]


class Member(Node):
    """A cluster member: a node with the VALKEY_CLUSTER_* variables of deploy/k8s."""

    def __init__(self, kit: ClusterKit, index: int, aliases: list[str], replicas: int):
        super().__init__(kit, aliases[index])
        self.index, self.replicas, self.aliases = index, replicas, aliases

    def env(self) -> dict[str, str]:
        return {
            "VALKEY_CLUSTER_NODES": ",".join(f"{a}:{PORT}" for a in self.aliases),
            "VALKEY_CLUSTER_ANNOUNCE_IP": self.ip,
            "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": self.alias,
            "VALKEY_CLUSTER_REPLICAS": str(self.replicas),
            "VALKEY_EXTRA_FLAGS": "--cluster-enabled yes --appendonly yes",
            "VALKEY_PASSWORD_FILE": PASSWORD_PATH,
            **self.extra_env,
        }


class ClusterKit:
    """The network, the password file and the containers (cluster members, single nodes) of
    one run; ``destroy()`` removes them all."""

    def __init__(self, image: str, workdir: Path):
        self.image = image
        self.run_id = uuid.uuid4().hex[:8]
        self.network = f"vbc-{self.run_id}"
        self.password = f"vb-{uuid.uuid4().hex}"
        self.password_file = workdir / "valkey-password"
        self.password_file.write_text(self.password + "\n")
        self.password_file.chmod(0o644)
        self.members: list[Node] = []
        self.run_args: list[str] = []  # more `docker run` options for every member (bench/pid1.py)
        # A valkey_bundle.tls_client.ClientTLS when the members speak TLS only: the test side's client.
        self.tls = None
        self.subnet = self._create_network()
        self._last_host = 1  # .1 is the bridge: next_address() hands out .2, .3, ...

    def _create_network(self) -> ipaddress.IPv4Network:
        rng = random.Random()
        for _ in range(5):
            subnet = pick_subnet(used_subnets(), rng)
            result = subprocess.run(
                ["docker", "network", "create", "--internal", "--subnet", str(subnet)]
                + ["--label", f"{LABEL}={self.run_id}", self.network],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                return subnet
            if "overlap" not in result.stderr:
                raise RuntimeError(f"docker network create failed: {result.stderr.strip()}")
        raise RuntimeError("could not create a network with a free subnet")

    def address(self, host: int) -> str:
        return str(self.subnet.network_address + host)

    def next_address(self) -> str:
        """An address of the subnet that no container of this kit had yet (for callers that
        do not pick their own)."""
        used = {m.ip for m in self.members}
        while True:
            self._last_host += 1
            if self._last_host >= self.subnet.num_addresses - 1:
                raise RuntimeError(f"no address left in {self.subnet}")
            address = self.address(self._last_host)
            if address not in used:
                return address

    def node(self, name: str, **settings) -> Node:
        """A single node ``name.DOMAIN`` (not started); ``settings`` as for Node."""
        node = Node(self, f"{name}.{DOMAIN}", **settings)
        self.members.append(node)
        return node

    def group(self, prefix: str, size: int, replicas: int) -> list[Member]:
        """The members of one cluster: ``prefix-0.DOMAIN`` ... listed in each one's VALKEY_CLUSTER_NODES."""
        aliases = [f"{prefix}-{i}.{DOMAIN}" for i in range(size)]
        members = [Member(self, i, aliases, replicas) for i in range(size)]
        self.members += members
        return members

    def start(self, members: list[Member], ips: list[str]) -> float:
        """``docker run`` them all at once (as a Parallel StatefulSet does); returns when that began."""
        began = time.monotonic()
        with ThreadPoolExecutor(len(members)) as pool:
            list(pool.map(lambda pair: pair[0].run(pair[1]), zip(members, ips, strict=True)))
        return began

    def remove(self, members: list[Member]) -> None:
        with ThreadPoolExecutor(len(members)) as pool:
            list(pool.map(lambda m: m.remove(), members))

    def small_disk(self, node: Node, size_mb: int) -> None:
        """Give ``node`` (not started yet) a data volume of ``size_mb`` MiB on a tmpfs, which fills up.

        A tmpfs volume lives as long as a container mounts it: a holder container (no network,
        asleep) keeps it mounted, so the data outlives the node's restarts as a disk's would.
        """
        label = ["--label", f"{LABEL}={self.run_id}"]
        tmpfs = ["--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", f"o=size={size_mb}m"]
        docker("volume", "create", *label, *tmpfs, node.volume)
        holder = ["--name", f"{node.name}-disk", *label, "--network", "none", "-v", f"{node.volume}:/data"]
        docker("run", "-d", *holder, "--entrypoint", "sleep", self.image, "infinity")

    def destroy(self) -> None:
        containers = docker("ps", "-aq", "--filter", f"label={LABEL}={self.run_id}", check=False).split()
        if containers:
            docker("rm", "-f", *containers, check=False)
        for member in self.members:
            docker("volume", "rm", "-f", member.volume, check=False)
        docker("network", "rm", self.network, check=False)

    # -- looking at the cluster

    def healthy(self, member: Member, members: list[Member]) -> bool:
        """cluster_state:ok, and it knows exactly ``members``, each at its current address, linked, not failing.

        cluster_state alone is not enough: right after a restart a node still reports ok while
        it reaches no one (a peer only counts as failed after the node timeout).
        """
        try:
            if member.info("CLUSTER", "INFO").get("cluster_state") != "ok":
                return False
            lines = member.nodes()
        except OSError:
            return False
        seen = {fields[1].split("@")[0]: fields for fields in lines}
        return len(lines) == len(members) and all(
            (fields := seen.get(f"{m.ip}:{PORT}"))
            and fields[7] == "connected"
            and not BAD_FLAGS & set(fields[2].split(","))
            for m in members
        )

    def formed(self, members: list[Member]) -> bool:
        """Every member healthy, its ``replicas`` replica(s) per primary, every replication link up."""
        replicas = members[0].replicas
        if not all(self.healthy(m, members) for m in members):
            return False
        roles = self.roles(members)
        if any(m.alias not in roles for m in members):
            return False  # a member's hostname has not reached the first member's view yet
        primaries = [m for m in members if roles[m.alias][0] == "master"]
        if len(primaries) * (1 + replicas) != len(members):
            return False
        for member in members:
            replication = member.info("INFO", "replication") if roles[member.alias][0] == "slave" else {}
            if replication and replication.get("master_link_status") != "up":
                return False
        per_primary = {p.alias: 0 for p in primaries}
        for role, primary in roles.values():
            if role == "slave":
                per_primary[primary] = per_primary.get(primary, 0) + 1
        return all(count == replicas for count in per_primary.values())

    def roles(self, members: list[Member]) -> dict[str, tuple[str, str | None]]:
        """alias -> ("master" | "slave", alias of its primary or None), from the first member's view."""
        lines = members[0].nodes()
        by_id = {fields[0]: fields for fields in lines}
        roles = {}
        for fields in lines:
            alias = fields[1].split(",")[1] if "," in fields[1] else fields[1]
            flags = set(fields[2].split(","))
            if "master" in flags:
                roles[alias] = ("master", None)
            else:
                primary = by_id.get(fields[3])
                roles[alias] = ("slave", primary[1].split(",")[1] if primary and "," in primary[1] else None)
        return roles

    def wait(self, what: str, condition, members: list[Member], timeout: float = 60.0, interval: float = 0.05):
        """Poll ``condition()`` until true; on the deadline (or a member that exited) fail with the logs."""
        deadline = time.monotonic() + timeout
        next_look = time.monotonic() + 2.0
        while True:
            try:
                if condition():
                    return time.monotonic()
            except OSError:
                pass
            now = time.monotonic()
            exited = False
            if now > next_look:  # docker inspect is slow: look at the containers now and then
                exited = not all(m.running() for m in members)
                next_look = now + 2.0
            if now > deadline or exited:
                logs = "\n".join(f"--- {m.name} ({m.ip})\n{m.logs()[-4000:]}" for m in members)
                raise AssertionError(f"timed out waiting for {what}\n{logs}")
            time.sleep(interval)

    # -- keys

    def slot_owners(self, member: Member) -> list[tuple[int, int, str]]:
        """[(first, last, ip of the primary)] from CLUSTER SLOTS."""
        return [(entry[0], entry[1], entry[2][0]) for entry in member.call("CLUSTER", "SLOTS")]

    def write_keys(self, members: list[Member], keys: list[str]) -> dict[str, int]:
        """SET each key on the primary that owns its slot; returns how many went to each primary (by IP)."""
        written: dict[str, int] = {}
        for key, target, reply in self.each_key(members, keys, "SET", lambda k: [f"value-of-{k}"]):
            if reply != "OK":
                raise AssertionError(f"SET {key} on {target}: {reply}")
            written[target] = written.get(target, 0) + 1
        return written

    def read_keys(self, members: list[Member], keys: list[str]) -> dict[str, object]:
        """GET each key from the primary that owns its slot: {key: value}."""
        return {key: reply for key, _target, reply in self.each_key(members, keys, "GET", lambda k: [])}

    def each_key(self, members, keys, command, extra, entry: Node | None = None):
        """(key, primary IP, reply) of ``command key *extra(key)`` sent where the key's slot lives.

        The slot comes from CRC16 and the owner from CLUSTER SLOTS; a MOVED (the map changed)
        is followed, as a cluster client does. With ``entry``, every command goes to that node
        first and only the MOVED replies lead it on, as a client that knows no slot map.
        """
        owners = [] if entry else self.slot_owners(members[0])
        conns: dict[str, Connection] = {}

        def connection(ip):
            if ip not in conns:
                conns[ip] = Connection(ip, PORT, timeout=3.0, tls=self.tls)  # a redirect names no host
                conns[ip].call("AUTH", self.password)
            return conns[ip]

        try:
            for key in keys:
                slot = key_slot(key)
                target = entry.ip if entry else next(owner for first, last, owner in owners if first <= slot <= last)
                for _ in range(3):
                    reply = connection(target).call(command, key, *extra(key))
                    if not (isinstance(reply, ReplyError) and str(reply).startswith("MOVED ")):
                        break
                    target = str(reply).split(" ")[2].rsplit(":", 1)[0]
                yield key, target, reply
        finally:
            for conn in conns.values():
                conn.close()
