"""Faults under load: six members of the image with the settings of deploy/k8s, a bounded load
through the `valkey` package's cluster client, the faults a StatefulSet meets, and what the
clients saw.

Shared by tests/faults/test_faults.py (which asserts what must hold: no write acknowledged by
a replica lost, one primary per slot range, cluster_state:ok) and bench/faults.py (which
prints the figures).

- The members are a ClusterKit group (tests/container/cluster_kit.py) started through the
  entrypoint alone, with deploy/k8s/base/valkey.conf mounted as the config file the way the
  StatefulSet mounts it; the grace period and the probe periods come from
  deploy/k8s/base/statefulset.yaml, so the faults meet the settings users deploy.
- The load: per slot range, one thread of plain writes, one of writes followed by `WAIT 1`
  on the same connection, and one of reads of the keys just written, each paced and bounded
  in time. Every write goes to a new key whose value carries its sequence number, so a lost
  write is a key that is missing afterwards.
- A restart is a pod's: the preStop hook if the manifests have one, SIGTERM with the grace
  period, a new container on the same volume and a new address, then the startup and the
  readiness probe at their periods until the member is ready.
- Where the image's search module is real (its label), an index over documents in every
  slot range is made when the cluster forms, and one more thread of the load sends an
  FT.SEARCH to each member in turn: each answer is complete (every document), partial (a
  count short of them, with no error: what valkey-search's partial results would give) or
  failed (an error, no connection). A partial answer must never come.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from valkey.cluster import ClusterNode, ValkeyCluster

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from container.cluster_kit import (  # noqa: E402
    CREATE_LINE,
    PASSWORD_PATH,
    PORT,
    ClusterKit,
    Member,
    docker,
    key_slot,
)
from real.search_kit import changed_here, reindex_setting  # noqa: E402

DEPLOY = ROOT / "deploy" / "k8s" / "base"
CONF_PATH = "/etc/valkey/valkey.conf"
MEMBERS = 6
DISK_MEMBER = 2  # the member whose /data is a small tmpfs (the full-disk case)
DISK_MB = 96
BEFORE = 4.0  # seconds of load before a fault, and after the recovery
AFTER = 4.0
WAIT_MS = 500  # WAIT 1 <ms> after an acknowledged write
CLIENT_TIMEOUT = 1.0  # the cluster client's socket timeouts, seconds
CLIENT_LOST = 3.0  # seconds without a success after which a thread looks for the cluster anew
LOAD_LIMIT = 600.0  # no load runs longer than this, whatever happens to the case
SETTLE_LIMIT = 180.0  # longest wait for the cluster to recover from anything
SEARCH_INDEX = "faults"
SEARCH_DOCUMENTS = 60  # spread over every slot range
SEARCH_RATE = 20  # FT.SEARCH per second, to the members in turn


# ------------------------------------------------------------------ the manifests


@dataclasses.dataclass(frozen=True)
class Manifests:
    """What deploy/k8s sets that the faults meet."""

    conf: Path
    node_timeout: float  # cluster-node-timeout, seconds
    grace: int  # terminationGracePeriodSeconds
    startup_period: float
    startup_failures: int
    readiness_period: float
    pre_stop: tuple[str, ...] | None  # the preStop hook's exec command


def conf_setting(path: Path, name: str) -> str | None:
    """The last value of ``name`` in a config file (no includes: deploy's file has none)."""
    value = None
    for line in path.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].lower() == name:
            value = " ".join(words[1:])
    return value


def manifests(conf: Path | None = None) -> Manifests:
    """Settings of deploy/k8s/base, with ``conf`` in place of its valkey.conf if given."""
    conf = conf or DEPLOY / "valkey.conf"
    statefulset = yaml.safe_load((DEPLOY / "statefulset.yaml").read_text())
    pod = statefulset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    hook = ((container.get("lifecycle") or {}).get("preStop") or {}).get("exec")
    return Manifests(
        conf=conf,
        node_timeout=int(conf_setting(conf, "cluster-node-timeout") or 15000) / 1000,
        grace=int(pod.get("terminationGracePeriodSeconds", 30)),
        startup_period=float(container["startupProbe"].get("periodSeconds", 10)),
        startup_failures=int(container["startupProbe"].get("failureThreshold", 3)),
        readiness_period=float(container["readinessProbe"].get("periodSeconds", 10)),
        pre_stop=tuple(hook["command"]) if hook else None,
    )


# ------------------------------------------------------------------ the load


class Pacer:
    """Sleeps so that calls come ``rate`` times a second; never catches up more than a second."""

    def __init__(self, rate: float):
        self.step, self.next = 1.0 / rate, time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        self.next = max(self.next + self.step, now - 1.0)
        if self.next > now:
            time.sleep(self.next - now)


def error_name(exc: BaseException) -> str:
    """The server's error code (MISCONF, CLUSTERDOWN, ...) or the exception's class."""
    text = str(exc).split(" ", 1)[0]
    return text if text.isupper() and text.isalpha() else type(exc).__name__


@dataclasses.dataclass
class Stream:
    """What one thread of the load did: (time it ended, ok) per operation, the errors by name."""

    range_index: int
    kind: str  # "plain", "acked", "read" or "search"
    ops: list[tuple[float, bool]] = dataclasses.field(default_factory=list)
    errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    # key -> value of the writes that the server took (plain: OK; acked: OK and WAIT >= 1)
    written: dict[str, str] = dataclasses.field(default_factory=dict)
    not_acked: int = 0  # acked kind: SET OK, but WAIT found no replica in time
    mismatches: int = 0  # read kind: a key just written read back missing or different
    last_ok: float = 0.0
    last_error: float = 0.0
    last_error_text: str = ""
    keys: Iterator[tuple[int, str]] | None = dataclasses.field(default=None, repr=False)
    # (time, error) of the first errors, to see what a figure is made of
    error_log: list[tuple[float, str]] = dataclasses.field(default_factory=list, repr=False)
    clients: int = 0  # cluster clients this thread made
    answers: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # search kind


class Load:
    """A bounded load: per slot range a thread of plain writes, one of replica-acknowledged
    writes and one of reads, until ``stop()`` or ``seconds``. Use it as a context manager."""

    def __init__(self, cluster: FaultCluster, case: str, rate: float = 150, payload: int = 64, seconds=LOAD_LIMIT):
        self.cluster, self.case, self.rate, self.payload = cluster, case, rate, payload
        self.deadline = time.monotonic() + seconds
        self.stopping = threading.Event()
        self.marks: dict[str, float] = {}
        self.streams: list[Stream] = []
        self.recent = [collections.deque(maxlen=64) for _ in cluster.ranges]
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        self.marks["start"] = time.monotonic()
        for index in range(len(self.cluster.ranges)):
            for kind, work in (("plain", self._writes), ("acked", self._writes), ("read", self._reads)):
                stream = Stream(index, kind)
                self.streams.append(stream)
                thread = threading.Thread(target=self._run, args=(work, stream), daemon=True)
                thread.name = f"load-{self.case}-{index}-{kind}"
                self.threads.append(thread)
        if self.cluster.search:
            stream = Stream(-1, "search")
            self.streams.append(stream)
            thread = threading.Thread(target=self._searches, args=(stream,), daemon=True)
            thread.name = f"load-{self.case}-search"
            self.threads.append(thread)
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if "end" in self.marks:
            return
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)
        self.marks["end"] = time.monotonic()
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"load threads still running after stop: {alive}")

    def mark(self, name: str) -> float:
        self.marks[name] = time.monotonic()
        return self.marks[name]

    def hold(self, seconds: float) -> None:
        """Let the load run for ``seconds``."""
        time.sleep(seconds)

    def running(self) -> bool:
        return not self.stopping.is_set() and time.monotonic() < self.deadline

    # -- the threads

    def _run(self, work, stream: Stream) -> None:
        client = None
        pacer = Pacer(self.rate)
        made = 0.0
        try:
            while self.running():
                pacer.wait()
                if client is None:
                    try:
                        made = time.monotonic()
                        client = self.cluster.client()
                        stream.clients += 1
                    except Exception as exc:  # nothing answers yet: the fault is still on
                        self._record(stream, False, exc)
                        time.sleep(0.2)
                        continue
                if work(client, stream):
                    continue
                lost = stream.last_error_text.startswith("ValkeyClusterException")
                if lost or time.monotonic() - max(stream.last_ok, made) > CLIENT_LOST:
                    # The client lost the cluster (every address it knew is gone, as after
                    # restarts that gave each pod a new IP): find it again from the members'
                    # current addresses, as an application whose startup node is the client
                    # Service's name does (the Service follows the pods).
                    client.close()
                    client = None
        finally:
            if client is not None:
                client.close()

    def _record(self, stream: Stream, ok: bool, exc: BaseException | None = None) -> None:
        now = time.monotonic()
        stream.ops.append((now, ok))
        if ok:
            stream.last_ok = now
        else:
            stream.last_error = now
            stream.last_error_text = f"{type(exc).__name__}: {exc}" if exc else "refused"
            stream.errors[error_name(exc) if exc else "refused"] += 1
            if len(stream.error_log) < 200:
                stream.error_log.append((now, stream.last_error_text))

    def _keys(self, stream: Stream) -> Iterator[tuple[int, str]]:
        """(sequence number, key) of this thread's writes: a new key each time, in its slot range."""
        first, last = self.cluster.ranges[stream.range_index]
        number = 0
        while True:
            number += 1
            key = f"{self.case}:{stream.kind}:{number}"
            if first <= key_slot(key) <= last:
                yield number, key

    def _writes(self, client: ValkeyCluster, stream: Stream) -> bool:
        if stream.keys is None:
            stream.keys = self._keys(stream)
        number, key = next(stream.keys)
        value = f"{number}:{'x' * self.payload}"
        try:
            if stream.kind == "plain":
                ok = client.set(key, value) is True
                acked = ok
            else:
                ok, acked = acknowledged_write(client, key, value)
        except Exception as exc:
            self._record(stream, False, exc)
            return False
        self._record(stream, ok)
        if acked:
            stream.written[key] = value
        elif ok:
            stream.not_acked += 1
        if ok:
            self.recent[stream.range_index].append((key, value))
        return ok

    def _reads(self, client: ValkeyCluster, stream: Stream) -> bool:
        recent = self.recent[stream.range_index]
        if not recent:
            time.sleep(0.01)
            return True
        key, value = recent[-1]
        try:
            got = client.get(key)
        except Exception as exc:
            self._record(stream, False, exc)
            return False
        self._record(stream, True)
        if got != value:
            stream.mismatches += 1
        return True

    def _searches(self, stream: Stream) -> None:
        """FT.SEARCH to each member in turn, over a connection of its own (no redirect to
        follow: every member answers for every shard through the coordinator)."""
        pacer = Pacer(SEARCH_RATE)
        turn = 0
        while self.running():
            pacer.wait()
            member = self.cluster.members[turn % len(self.cluster.members)]
            turn += 1
            try:
                count = self.cluster.search_count(member)
            except Exception as exc:
                stream.answers["failed"] += 1
                self._record(stream, False, exc)
                continue
            stream.answers["complete" if count == SEARCH_DOCUMENTS else "partial"] += 1
            self._record(stream, count == SEARCH_DOCUMENTS)

    def search_answers(self) -> collections.Counter:
        """complete / partial / failed FT.SEARCH answers (empty without search)."""
        answers: collections.Counter = collections.Counter()
        for stream in self.streams:
            answers.update(stream.answers)
        return answers

    # -- what it saw

    def written(self, kind: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for stream in self.streams:
            if stream.kind == kind:
                found.update(stream.written)
        return found

    def errors(self, range_index: int, kind: str = "plain") -> collections.Counter:
        return next(s.errors for s in self.streams if s.range_index == range_index and s.kind == kind)

    def stream(self, range_index: int, kind: str) -> Stream:
        return next(s for s in self.streams if s.range_index == range_index and s.kind == kind)

    def longest_gap(self, kind: str) -> tuple[float, int, float]:
        """(seconds, range, when it began) of the longest time a range went without a successful
        operation of ``kind`` while the load ran."""
        start, end = self.marks["start"], self.marks["end"]
        worst = (0.0, -1, start)
        for stream in self.streams:
            if stream.kind != kind:
                continue
            previous = start
            for at, ok in stream.ops:
                if ok:
                    worst = max(worst, (at - previous, stream.range_index, previous))
                    previous = at
            worst = max(worst, (end - previous, stream.range_index, previous))
        return worst

    def longest_gaps(self, kind: str) -> dict[int, float]:
        """range -> the longest time it went without a successful operation of ``kind``."""
        gaps: dict[int, float] = {}
        for stream in self.streams:
            if stream.kind == kind:
                previous = self.marks["start"]
                for at, ok in stream.ops:
                    if ok:
                        gaps[stream.range_index] = max(gaps.get(stream.range_index, 0.0), at - previous)
                        previous = at
        return gaps

    def gap_within(self, kind: str, begin: float, end: float) -> float:
        """The longest time a range went without a successful operation of ``kind``, among the
        gaps that overlap [begin, end]."""
        worst = 0.0
        for stream in self.streams:
            if stream.kind != kind:
                continue
            previous = self.marks["start"]
            for at, ok in stream.ops:
                if ok:
                    if at >= begin and previous <= end:
                        worst = max(worst, at - previous)
                    previous = at
        return worst

    def rate_between(self, first: str, last: str) -> float:
        """Successful operations per second (all kinds) between two marks."""
        begin, end = self.marks[first], self.marks[last]
        if end <= begin:
            return 0.0
        done = sum(1 for s in self.streams if s.kind != "search" for at, ok in s.ops if ok and begin <= at < end)
        return done / (end - begin)


def acknowledged_write(client: ValkeyCluster, key: str, value: str) -> tuple[bool, bool]:
    """SET, then WAIT 1 on the same connection: (the SET took, a replica has it).

    WAIT counts the replicas that have this connection's writes, so it must follow the SET on
    the connection that carried it; the cluster client sends a WAIT of its own to every
    primary. Both go as one pipeline to the node the client's slot map names. A redirect or a
    lost connection fails the write and refreshes the map, as the client does for its own
    commands.
    """
    node = client.get_node_from_key(key)
    pipe = client.get_valkey_connection(node).pipeline(transaction=False)
    try:
        pipe.set(key, value)
        pipe.wait(1, WAIT_MS)
        took, replicas = pipe.execute(raise_on_error=False)
    except Exception:
        with contextlib.suppress(Exception):
            client.nodes_manager.initialize()
        raise
    finally:
        pipe.reset()
    if isinstance(took, Exception):
        with contextlib.suppress(Exception):
            client.nodes_manager.initialize()
        raise took
    return took is True, isinstance(replicas, int) and replicas >= 1


# ------------------------------------------------------------------ the cluster


@dataclasses.dataclass
class Figures:
    """What the clients saw during one case."""

    case: str
    write_gap: float  # longest time a slot range took no plain write, seconds
    write_gap_range: int
    write_gap_began: float  # monotonic
    read_gap: float  # longest time a slot range answered no read
    plain_written: int
    plain_lost: int
    acked_written: int
    acked_lost: int
    not_acked: int  # acknowledged-kind writes the server took but no replica confirmed in time
    read_mismatches: int
    ops_before: float
    ops_during: float
    ops_after: float
    errors: dict[str, int]
    notes: list[str] = dataclasses.field(default_factory=list)
    # FT.SEARCH answers through the members: complete / partial / failed; None without search
    search: dict[str, int] | None = None


@dataclasses.dataclass(frozen=True)
class Step:
    """One member's turn in a rolling restart."""

    alias: str
    began: float  # monotonic, when its stop began
    role_before: str  # master or slave when it was stopped
    stop: float  # seconds from the preStop hook (or SIGTERM) until the container had exited
    ready: float  # seconds from its new container's start until the readiness probe passed
    role_after: str  # when it was ready
    synced: bool  # a primary, or a replica with its link up and no sync running, when ready
    hook: str = ""  # what the preStop hook printed


@dataclasses.dataclass
class CaseResult:
    figures: Figures
    lost_acked: list[str]  # up to 10 of them, for the assertion's message
    owners: dict[tuple[int, int], set[str]]  # slot range -> node IDs that claim it, over every view
    facts: dict[str, object] = dataclasses.field(default_factory=dict)


def probe_image(member: Member, mode: str) -> bool:
    """The StatefulSet's exec probe: ``bundle-healthcheck MODE`` in the container."""
    try:
        code, _ = member.exec("bundle-healthcheck", mode)
    except Exception:
        return False
    return code == 0


def probe_state_only(member: Member, mode: str) -> bool:
    """Readiness as it was before the replica link was looked at: PONG and cluster_state:ok
    (bench/faults.py's before figures); startup and liveness as the image's."""
    if mode != "readiness":
        return probe_image(member, mode)
    try:
        return member.call("PING") == "PONG" and member.info("CLUSTER", "INFO").get("cluster_state") == "ok"
    except OSError:
        return False


PROBES = {"image": probe_image, "state-only": probe_state_only}


class FaultCluster:
    """Six members with deploy/k8s's settings, one of them on a small disk, and the
    StatefulSet's ways of stopping and starting them."""

    def __init__(
        self,
        kit: ClusterKit,
        workdir: Path,
        settings: Manifests | None = None,
        probe: str = "image",
        search: bool = False,
    ):
        self.kit, self.workdir = kit, workdir
        self.search = search  # the image's search module is real: index, and query under the load
        self.settings = settings or manifests()
        self.probe = PROBES[probe]
        self.members = kit.group("valkey", MEMBERS, replicas=1)
        for member in self.members:
            self.configure(member, self.settings.conf)
        self.disk = self.members[DISK_MEMBER]
        kit.small_disk(self.disk, DISK_MB)
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ranges: list[tuple[int, int]] = []
        self.ids: dict[str, str] = {}
        self.history: list[Load] = []
        self.hook_output: dict[str, str] = {}  # alias -> what its last preStop hook printed

    @staticmethod
    def configure(member: Member, conf: Path) -> None:
        """The StatefulSet's container: the config file mounted and given as the argument."""
        member.mounts = {str(conf): CONF_PATH}
        member.args = [CONF_PATH]

    def form(self) -> float:
        """Start all six at once (a Parallel StatefulSet) and wait until formed; returns seconds."""
        began = self.kit.start(self.members, [self.kit.next_address() for _ in self.members])
        done = self.wait("six members to form a cluster", self.formed, timeout=120)
        self.ranges = sorted({(first, last) for first, last, _ in self.kit.slot_owners(self.members[0])})
        self.ids = {m.alias: m.call("CLUSTER", "MYID") for m in self.members}
        if self.search:
            self.index_documents()
        return done - began

    def index_documents(self) -> None:
        """The search index and its documents, in every slot range; until every member counts
        them all."""
        first = self.members[0]
        create = ("FT.CREATE", SEARCH_INDEX, "ON", "HASH", "PREFIX", "1", "fdoc:", "SCHEMA", "kind", "TAG")
        reply = first.call(*create, timeout=10)
        if not changed_here(reply):  # then waited for below, on every member
            raise RuntimeError(f"FT.CREATE on {first.alias}: {reply}")
        client = self.client()
        try:
            for i in range(SEARCH_DOCUMENTS):
                client.hset(f"fdoc:{i}", mapping={"kind": "book", "n": str(i)})
        finally:
            client.close()

        self.wait("every member to count every document", self.searches_complete, timeout=120)
        # The index has no FLAT field: each member's index guard turns search.skip-rdb-load off
        # and records that, so a restart loads the index rather than indexing again (while a
        # member indexes again, the coordinator counts its shard as far as it got, without an
        # error; the tier asserts that no answer is partial. README: Search indexes and restarts).
        self.wait("every member to load its index on restart", self.indexes_load_on_restart, timeout=30)

    def indexes_load_on_restart(self) -> bool:
        return all(reindex_setting(m) == "no" for m in self.members)

    def searches_complete(self) -> bool:
        try:
            return all(self.search_count(m) == SEARCH_DOCUMENTS for m in self.members)
        except Exception:
            return False

    def search_count(self, member: Member) -> int:
        """The count FT.SEARCH answers on ``member`` (an error reply raises)."""
        reply = member.call("FT.SEARCH", SEARCH_INDEX, "@kind:{book}", "NOCONTENT", "LIMIT", "0", "0", timeout=3.0)
        if not isinstance(reply, list):
            raise RuntimeError(f"FT.SEARCH on {member.alias}: {reply}")
        return int(reply[0])

    def client(self) -> ValkeyCluster:
        """A cluster client as an application would configure one: every member as a startup node."""
        return ValkeyCluster(
            startup_nodes=[ClusterNode(m.ip, PORT) for m in self.members],
            password=self.kit.password,
            decode_responses=True,
            socket_timeout=CLIENT_TIMEOUT,
            socket_connect_timeout=CLIENT_TIMEOUT,
        )

    def load(self, case: str, **settings) -> Load:
        load = Load(self, case, **settings)
        self.history.append(load)
        return load

    # -- looking

    def wait(self, what: str, condition, timeout: float = SETTLE_LIMIT, members: list[Member] | None = None) -> float:
        def looking() -> bool:
            try:
                return condition()
            except (KeyError, StopIteration, ValueError, IndexError):
                return False  # a view in the middle of a change (a node without its name yet)

        return self.kit.wait(what, looking, members or self.members, timeout=timeout, interval=0.1)

    def formed(self) -> bool:
        return self.kit.formed(self.members)

    def roles(self, view: Member) -> dict[str, tuple[str, str | None]]:
        """alias -> (master|slave, alias of its primary), as ``view`` sees the cluster."""
        return self.kit.roles([view])

    def by_alias(self, alias: str) -> Member:
        return next(m for m in self.members if m.alias == alias)

    def owner_of(self, range_index: int, view: Member | None = None) -> Member:
        first, last = self.ranges[range_index]
        for start, end, ip in self.kit.slot_owners(view or self.members[0]):
            if start <= first <= end:
                return next(m for m in self.members if m.ip == ip)
        raise AssertionError(f"no owner of slots {first}-{last}")

    def range_of(self, member: Member) -> int:
        return next(i for i in range(len(self.ranges)) if self.owner_of(i).alias == member.alias)

    def replica_of(self, primary: Member) -> Member:
        roles = self.roles(primary)
        return self.by_alias(next(alias for alias, (role, of) in roles.items() if of == primary.alias))

    def owners(self) -> dict[tuple[int, int], set[str]]:
        """Slot range -> the node IDs that claim it as primary, over every member's view."""
        claims: dict[tuple[int, int], set[str]] = {r: set() for r in self.ranges}
        for member in self.members:
            for fields in member.nodes():
                if "master" not in fields[2].split(","):
                    continue
                for part in fields[8:]:
                    if part.startswith("["):
                        continue  # a slot being migrated
                    first, _, last = part.partition("-")
                    for start, end in self.ranges:
                        if start <= int(first) <= end or start <= int(last or first) <= end:
                            claims[(start, end)].add(fields[0])
        return claims

    def created_lines(self) -> int:
        """How often any run of any member logged that it created the cluster."""
        saved = sum(p.read_text(errors="replace").count(CREATE_LINE) for p in self.logs.glob("*.log"))
        return saved + sum(m.logs().count(CREATE_LINE) for m in self.members if m.running())

    # -- a pod's life

    def save_logs(self, member: Member) -> None:
        with open(self.logs / f"{member.alias.split('.')[0]}.log", "a") as out:
            out.write(f"--- {member.name} at {member.ip}\n{member.logs()}")

    def stop_pod(self, member: Member) -> float:
        """preStop hook (if any), SIGTERM with the grace period, container removed; returns the seconds
        from the first step until the container had exited."""
        began = time.monotonic()
        grace = self.settings.grace
        self.hook_output[member.alias] = ""
        if self.settings.pre_stop:
            with contextlib.suppress(Exception):
                self.hook_output[member.alias] = member.exec(*self.settings.pre_stop)[1].strip()
        left = max(1, int(grace - (time.monotonic() - began)))
        docker("stop", "-t", str(left), member.name, timeout=left + 60)
        stopped = time.monotonic() - began
        self.save_logs(member)
        member.remove()
        return stopped

    def start_pod(self, member: Member) -> float:
        """A new container of the member on its volume, at a new address; returns when issued."""
        return member.run(self.kit.next_address())

    def wait_ready(self, member: Member, issued: float) -> float:
        """The kubelet's probes from ``issued``: startup every period until it passes, then
        readiness at the ticks of its period until it passes; returns when it was ready."""
        period, limit = self.settings.startup_period, self.settings.startup_failures
        tick = issued
        for _ in range(limit):
            time.sleep(max(0.0, tick - time.monotonic()))
            if self.probe(member, "startup"):
                break
            if not member.running():
                raise AssertionError(f"{member.alias} exited:\n{member.logs()[-3000:]}")
            tick += period
        else:
            raise AssertionError(f"{member.alias}: startup probe failing after {limit} tries:\n{member.logs()[-3000:]}")
        period = self.settings.readiness_period
        tick = issued + period * max(0, int((time.monotonic() - issued) / period))
        while True:
            time.sleep(max(0.0, tick - time.monotonic()))
            if self.probe(member, "readiness"):
                return time.monotonic()
            if time.monotonic() - issued > SETTLE_LIMIT:
                raise AssertionError(f"{member.alias}: not ready after {SETTLE_LIMIT:.0f} s:\n{member.logs()[-3000:]}")
            if not member.running():
                raise AssertionError(f"{member.alias} exited:\n{member.logs()[-3000:]}")
            tick += period

    def restart(self, member: Member, conf: Path | None = None) -> Step:
        """One member's turn in a rolling update: stopped, started again (with ``conf`` as its
        config file if given), and probed until ready."""
        if conf is not None:
            self.configure(member, conf)
        role = self.roles(member)[member.alias][0]
        began = time.monotonic()
        stopped = self.stop_pod(member)
        issued = self.start_pod(member)
        ready = self.wait_ready(member, issued)
        replication = member.info("INFO", "replication")
        synced = replication.get("role") == "master" or (
            replication.get("master_link_status") == "up" and replication.get("master_sync_in_progress") == "0"
        )
        after = replication.get("role", "?")
        return Step(member.alias, began, role, stopped, ready - issued, after, synced, self.hook_output[member.alias])

    def rolling_restart(self, conf: Path | None = None) -> list[Step]:
        """A RollingUpdate: highest ordinal first, each stopped and started again, the next only
        once this one is ready."""
        return [self.restart(member, conf) for member in reversed(self.members)]

    # -- after a case

    def read_back(self, written: dict[str, str]) -> list[str]:
        """The keys of ``written`` that do not read back with their value."""
        keys = list(written)
        lost: list[str] = []
        client = self.client()
        try:
            for start in range(0, len(keys), 1000):
                batch = keys[start : start + 1000]
                for attempt in range(10):
                    try:
                        values = client.mget_nonatomic(batch)
                        break
                    except Exception:
                        if attempt == 9:
                            raise
                        time.sleep(0.5)
                lost += [k for k, v in zip(batch, values, strict=True) if v != written[k]]
        finally:
            client.close()
        return lost

    def check(self, load: Load, everything: bool = False) -> CaseResult:
        """After a case: formed again, who claims which range, and which writes are gone."""
        load.stop()
        self.wait(f"the cluster to be whole after {load.case}", self.formed)
        if self.search:
            self.wait(f"every member to answer FT.SEARCH in full after {load.case}", self.searches_complete)
        loads = self.history if everything else [load]
        plain = {k: v for each in loads for k, v in each.written("plain").items()}
        acked = {k: v for each in loads for k, v in each.written("acked").items()}
        lost_plain, lost_acked = self.read_back(plain), self.read_back(acked)
        gap, gap_range, gap_began = load.longest_gap("plain")
        errors: collections.Counter = collections.Counter()
        for stream in load.streams:
            errors.update(stream.errors)
        marks = load.marks
        figures = Figures(
            case=load.case,
            write_gap=gap,
            write_gap_range=gap_range,
            write_gap_began=gap_began,
            read_gap=load.longest_gap("read")[0],
            plain_written=len(plain),
            plain_lost=len(lost_plain),
            acked_written=len(acked),
            acked_lost=len(lost_acked),
            not_acked=sum(s.not_acked for s in load.streams),
            read_mismatches=sum(s.mismatches for s in load.streams),
            ops_before=load.rate_between("start", "fault"),
            ops_during=load.rate_between("fault", "recovered"),
            ops_after=load.rate_between("recovered", "end"),
            errors=dict(errors.most_common()),
            search=dict(load.search_answers()) if self.search else None,
        )
        if "fault" in marks and "recovered" in marks:
            figures.notes.append(f"fault to recovered {marks['recovered'] - marks['fault']:.1f} s")
        figures.notes.append(f"{figures.not_acked} writes taken but not acknowledged by a replica within {WAIT_MS} ms")
        return CaseResult(figures, sorted(lost_acked)[:10], self.owners())


# ------------------------------------------------------------------ the cases


def case_rolling_restart(cluster: FaultCluster, upgraded_conf: Path) -> CaseResult:
    """All six restarted the StatefulSet's way, twice; the second time with ``upgraded_conf``."""
    with cluster.load("rolling") as load:
        load.hold(BEFORE)
        load.mark("fault")
        first = cluster.rolling_restart()
        second = cluster.rolling_restart(upgraded_conf)
        load.mark("recovered")
        load.hold(AFTER)
    result = cluster.check(load)
    for name, steps in (("first", first), ("second", second)):
        total = sum(step.stop + step.ready for step in steps)
        slowest = max(steps, key=lambda step: step.stop + step.ready)
        result.figures.notes.append(
            f"{name} round {total:.0f} s (slowest {slowest.alias.split('.')[0]}: "
            f"stop {slowest.stop:.1f} s, start to ready {slowest.ready:.1f} s)"
        )
    unsynced = [step.alias.split(".")[0] for step in first + second if not step.synced]
    for role, name in (("master", "primary"), ("slave", "replica")):
        turns = [step for step in first + second if step.role_before == role]
        writes = sorted(load.gap_within("plain", t.began, t.began + t.stop + t.ready) for t in turns)
        reads = sorted(load.gap_within("read", t.began, t.began + t.stop + t.ready) for t in turns)
        if turns:
            result.figures.notes.append(
                f"a {name}'s turn ({len(turns)}): writes refused up to {writes[-1]:.2f} s "
                f"(median {writes[len(writes) // 2]:.2f} s), reads up to {reads[-1]:.2f} s"
            )
    during = [step for step in first + second if step.began <= result.figures.write_gap_began]
    if during:
        step = during[-1]
        result.figures.notes.append(
            f"longest write refusal {result.figures.write_gap_began - step.began:.1f} s into "
            f"{step.alias.split('.')[0]}'s turn (a {'primary' if step.role_before == 'master' else 'replica'})"
        )
    result.figures.notes.append(f"ready before its replica link was in sync: {len(unsynced)} of 12 {unsynced}")
    result.facts["steps"] = first + second
    return result


def others_note(load: Load, index: int) -> str:
    """How long the slot ranges beside the failing one refused writes and reads."""
    writes = max(gap for i, gap in load.longest_gaps("plain").items() if i != index)
    reads = max(gap for i, gap in load.longest_gaps("read").items() if i != index)
    return f"the other slot ranges: writes refused up to {writes:.2f} s, reads up to {reads:.2f} s"


def case_replica_then_primary(cluster: FaultCluster) -> CaseResult:
    """A rolling restart's two steps in which the member restarted just before a primary is
    that primary's replica (ordinals are not paired so after a member rejoined with an empty
    volume): the replica restarted and, once ready, its primary. bench/faults.py only."""
    primary = next(m for m in cluster.members if m is not cluster.disk and cluster.roles(m)[m.alias][0] == "master")
    replica = cluster.replica_of(primary)
    with cluster.load("replica, then its primary") as load:
        load.hold(BEFORE)
        load.mark("fault")
        steps = [cluster.restart(replica), cluster.restart(primary)]
        cluster.wait("the cluster to be whole again", cluster.formed)
        load.mark("recovered")
        load.hold(AFTER)
    result = cluster.check(load)
    result.figures.notes.append(
        f"the replica was {'in sync' if steps[0].synced else 'still syncing'} when ready "
        f"({steps[0].ready:.1f} s after its start); its primary was "
        f"{'handed over' if steps[1].role_after == 'slave' else 'restarted as the primary'}"
    )
    result.facts["steps"] = steps
    return result


def case_primary_killed(cluster: FaultCluster) -> CaseResult:
    """SIGKILL a primary; its replica takes over; the killed one, started again on its volume
    (the same container, as the kubelet restarts it), comes back as that replica's replica."""
    victim = next(m for m in cluster.members if m is not cluster.disk and cluster.roles(m)[m.alias][0] == "master")
    heir = cluster.replica_of(victim)
    index = cluster.range_of(victim)
    others = [m for m in cluster.members if m is not victim]
    with cluster.load("killed") as load:
        load.hold(BEFORE)
        load.mark("fault")
        victim.kill("KILL")
        took_over = cluster.wait(
            "the replica to take over", lambda: cluster.roles(heir)[heir.alias][0] == "master", members=others
        )
        victim.start_again()
        cluster.wait(
            "the killed member back as a replica",
            lambda: cluster.roles(heir)[victim.alias] == ("slave", heir.alias) and cluster.formed(),
        )
        load.mark("recovered")
        load.hold(AFTER)
    result = cluster.check(load)
    result.figures.notes.append(f"kill to replica promoted {took_over - load.marks['fault']:.1f} s")
    result.figures.notes.append(others_note(load, index))
    result.facts.update(victim=victim.alias, heir=heir.alias, roles=cluster.roles(heir))
    return result


def case_member_cut_off(cluster: FaultCluster) -> CaseResult:
    """A primary off the network for longer than the node timeout, then back."""
    victim = next(
        m for m in reversed(cluster.members) if m is not cluster.disk and cluster.roles(m)[m.alias][0] == "master"
    )
    heir = cluster.replica_of(victim)
    others = [m for m in cluster.members if m is not victim]
    index = cluster.range_of(victim)
    first, last = cluster.ranges[index]
    probe_key = next(k for k in (f"probe:{i}" for i in range(100000)) if first <= key_slot(k) <= last)
    refused_after = None
    answers = []
    with cluster.load("cut off") as load:
        load.hold(BEFORE)
        cut = load.mark("fault")
        victim.disconnect()
        # What the isolated primary answers a client beside it (the load cannot reach it).
        while time.monotonic() - cut < 4 * cluster.settings.node_timeout + 10:
            _, out = victim.exec("sh", "-c", f'VALKEYCLI_AUTH="$(cat {PASSWORD_PATH})" valkey-cli SET {probe_key} 1')
            answers.append(out.strip())
            if "CLUSTERDOWN" in out:
                refused_after = time.monotonic() - cut
                break
            time.sleep(0.25)
        cluster.wait("the replica to take over", lambda: cluster.roles(heir)[heir.alias][0] == "master", members=others)
        took_over = time.monotonic() - cut
        # Stay cut off a little longer than the node timeout asks, as a real split would.
        time.sleep(max(0.0, 2 * cluster.settings.node_timeout - (time.monotonic() - cut)))
        victim.reconnect()
        cluster.wait(
            "the cut-off member back as a replica",
            lambda: cluster.roles(heir)[victim.alias] == ("slave", heir.alias) and cluster.formed(),
        )
        load.mark("recovered")
        load.hold(AFTER)
    result = cluster.check(load)
    result.figures.notes.append(others_note(load, index))
    result.figures.notes.append(
        f"cut off {time.monotonic() - cut:.0f} s; the isolated primary refused writes after "
        f"{refused_after or float('nan'):.1f} s, its replica took over after {took_over:.1f} s"
    )
    result.facts.update(
        victim=victim.alias, heir=heir.alias, refused_after=refused_after, answers=answers, roles=cluster.roles(heir)
    )
    return result


BALLAST = "/data/ballast"


def case_full_disk(cluster: FaultCluster, hold: float = 5.0) -> CaseResult:
    """The member on the small disk, a primary, has its /data filled (a ballast file leaves
    little room; the load takes the rest), then the ballast goes."""
    disk = cluster.disk
    if cluster.roles(disk)[disk.alias][0] != "master":
        assert disk.call("CLUSTER", "FAILOVER") == "OK"  # a manual failover, as an operator would
        cluster.wait("the small-disk member to be a primary", lambda: cluster.roles(disk)[disk.alias][0] == "master")
        cluster.wait("the cluster to settle", cluster.formed)
    index = cluster.range_of(disk)
    # An AOF rewrite first, as the server makes one by itself when its AOF has doubled and
    # after a replica's full sync: the file the disk fills under is then one it opened since.
    assert str(disk.call("BGREWRITEAOF")).startswith("Background append only file rewriting")
    cluster.wait(
        "the AOF rewrite",
        lambda: (
            (p := disk.info("INFO", "persistence"))["aof_rewrite_in_progress"] == "0"
            and p["aof_rewrite_scheduled"] == "0"
        ),
    )
    started = disk.started_at()
    pid = disk.info("INFO", "server")["process_id"]
    fill = (
        "import os; s = os.statvfs('/data'); free = s.f_bavail * s.f_frsize; "
        f"fd = os.open('{BALLAST}', os.O_CREAT | os.O_WRONLY, 0o600); "
        "os.posix_fallocate(fd, 0, max(1, free - 256 * 1024)); os.close(fd)"
    )
    facts: dict[str, object] = {}
    with cluster.load("disk", payload=1024) as load:
        load.hold(BEFORE)
        load.mark("fault")
        code, out = disk.exec("python3", "-c", fill)
        assert code == 0, out
        plain = load.stream(index, "plain")
        full = cluster.wait("writes to the full disk's slots to fail", lambda: plain.last_error > load.marks["fault"])
        time.sleep(hold)
        facts["persistence"] = disk.info("INFO", "persistence")
        facts["errors while full"] = dict(load.errors(index))
        freed = load.mark("freed")
        code, out = disk.exec("rm", "-f", BALLAST)
        assert code == 0, out
        resumed = cluster.wait("writes to resume", lambda: plain.last_ok > freed and plain.last_ok > plain.last_error)
        facts.update(
            restarted=disk.started_at() != started,
            same_process=disk.info("INFO", "server")["process_id"] == pid,
            persistence_after=disk.info("INFO", "persistence"),
        )
        # Then the member is restarted (a pod's restart): its AOF must load, with every write.
        cluster.stop_pod(disk)
        cluster.wait_ready(disk, cluster.start_pod(disk))
        cluster.wait("the cluster to be whole again", cluster.formed)
        load.mark("recovered")
        load.hold(AFTER)
    result = cluster.check(load)
    facts["repaired"] = [line for line in disk.logs().splitlines() if "NUL bytes" in line]
    result.facts.update(facts)
    result.figures.notes.append(
        f"filled to writes refused {full - load.marks['fault']:.1f} s; freed to writes taken {resumed - freed:.1f} s; "
        f"restarted after: {'AOF hole cut out' if facts['repaired'] else 'no AOF hole'}"
    )
    return result


def case_everything_stopped(cluster: FaultCluster) -> CaseResult:
    """All six stopped at once (SIGTERM, the grace period) and started again on new addresses."""
    members = cluster.members
    with cluster.load("all stopped") as load:
        load.hold(BEFORE)
        load.mark("fault")
        with ThreadPoolExecutor(len(members)) as pool:
            stops = list(pool.map(cluster.stop_pod, members))
        down = time.monotonic()
        with ThreadPoolExecutor(len(members)) as pool:
            list(pool.map(cluster.start_pod, members))
        cluster.wait("the cluster to be whole again", cluster.formed)
        load.mark("recovered")
        load.hold(AFTER)
    result = cluster.check(load, everything=True)
    result.figures.notes.append(
        f"longest stop {max(stops):.1f} s; started to whole {load.marks['recovered'] - down:.1f} s"
    )
    result.facts["ids"] = {m.alias: m.call("CLUSTER", "MYID") for m in members}
    return result


# ------------------------------------------------------------------ printing


def table(results: list[Figures]) -> str:
    """The figures as a Markdown table, with the notes under it."""
    rows = [
        "| case | writes refused, longest (range) | reads failed, longest | plain writes lost | "
        "replica-acknowledged writes lost | ops/s before / during / after |",
        "|---|---|---|---|---|---|",
    ]
    for f in results:
        rows.append(
            f"| {f.case} | {f.write_gap:.2f} s ({f.write_gap_range}) | {f.read_gap:.2f} s | "
            f"{f.plain_lost} of {f.plain_written} | {f.acked_lost} of {f.acked_written} | "
            f"{f.ops_before:.0f} / {f.ops_during:.0f} / {f.ops_after:.0f} |"
        )
    notes = [f"- {f.case}: {'; '.join(f.notes)}; errors {f.errors or 'none'}" for f in results]
    for f in results:
        if f.search is not None:
            shown = ", ".join(f"{f.search.get(k, 0)} {k}" for k in ("complete", "partial", "failed"))
            notes.append(f"- {f.case}: FT.SEARCH through the members: {shown}")
    return "\n".join(rows + [""] + notes)
