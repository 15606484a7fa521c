"""Form the cluster, or join it, from a helper that runs next to the server as it starts.

The entrypoint forks the helper twice just before it execs valkey-server: the
server keeps the entrypoint's PID and is not the helper's parent (outside a
container the helper ends up with init; inside one, with the server as PID 1,
it stays a zombie there until the server next reaps a child).

The creator (the first member of VALKEY_CLUSTER_NODES) waits (backing off,
logging progress) until every member answers PING, and creates the cluster only
when every member is empty: one known node, no slots, no keys.  A cluster that
exists is never touched; anything in between is logged and left alone.

Any member that starts without cluster state (no peers in its nodes.conf: a
first start, or a volume that was lost) runs the helper too.  It waits to be
added by the creator; when instead the members it reaches already form a
cluster without it, it joins that cluster: CLUSTER MEET, forget its own
previous incarnation (its host name under another node ID), and CLUSTER
REPLICATE a primary with fewer replicas than VALKEY_CLUSTER_REPLICAS.  Slots
that nobody serves any more are never taken silently: it logs which, and the
commands that take them by hand.

The helper gives up at the deadline; the server keeps running.
"""

import os
import sys
import time

from .addresses import format_node, normalise_host
from .errors import PROG

SLOTS = 16384
CREATION_PATIENCE = 30.0  # seconds a member waits for a creation that set its epoch


def log(message):
    print(f"{PROG}: cluster bootstrap: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- pure parts


def slot_ranges(primaries):
    """The 16384 slots split into ``primaries`` contiguous ranges, sizes differing by at most one."""
    ranges, start = [], 0
    for i in range(primaries):
        size = SLOTS // primaries + (1 if i < SLOTS % primaries else 0)
        ranges.append((start, start + size - 1))
        start += size
    return ranges


def assign_replicas(primary_hosts, replica_hosts, per_primary):
    """For each replica, the index of its primary: every primary gets ``per_primary``, and no
    replica shares its primary's host (IP) when any assignment allows (a bipartite matching).

    Replica i prefers primary i % primaries, so members listed in order pair up predictably.
    """
    places = [i % len(primary_hosts) for i in range(len(primary_hosts) * per_primary)]
    holder = [None] * len(places)  # place -> replica

    def place(replica, seen):
        for k in range(len(places)):
            spot = (replica + k) % len(places)
            if spot in seen or primary_hosts[places[spot]] == replica_hosts[replica]:
                continue
            seen.add(spot)
            if holder[spot] is None or place(holder[spot], seen):
                holder[spot] = replica
                return True
        return False

    for replica in range(len(replica_hosts)):
        place(replica, set())
    chosen = [None] * len(replica_hosts)
    for spot, replica in enumerate(holder):
        if replica is not None:
            chosen[replica] = places[spot]
    free = [places[spot] for spot, replica in enumerate(holder) if replica is None]
    return [free.pop(0) if c is None else c for c in chosen]  # no way apart: share a host


def parse_info(text):
    """``key:value`` lines of CLUSTER INFO / INFO -> dict."""
    values = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values


def known_ids(nodes_text):
    """Node IDs in a CLUSTER NODES reply that completed the handshake and have an address."""
    ids = set()
    for line in (nodes_text or "").splitlines():
        fields = line.split(" ")
        if len(fields) >= 8 and not {"handshake", "noaddr"} & set(fields[2].split(",")):
            ids.add(fields[0])
    return ids


def classify(states):
    """``states``: [(known_nodes, slots_assigned, keys)] per member -> "empty", "formed" or "mixed"."""
    if all(s == (1, 0, 0) for s in states):
        return "empty"
    if all(known > 1 for known, _, _ in states) and any(slots for _, slots, _ in states):
        return "formed"
    return "mixed"


def in_cluster(known, slots):
    """Whether a member that reports ``known`` nodes and ``slots`` assigned belongs to a formed cluster."""
    return known > 1 and slots > 0


def watch_verdict(own, peers, patient=True):
    """What a member without cluster state does next: ``(verdict, index of the peer to join or None)``.

    ``own``: (known nodes, slots assigned, keys, config epoch) of this node;
    ``peers``: (known nodes, slots assigned) of each member that answered.

    member      it knows other nodes or serves slots now: someone added it, nothing to do
    not-empty   it holds keys: joining as a replica would drop them, leave it alone
    join        peer ``index`` belongs to a formed cluster that this node is not in
    creating    the same, but the creator already set this node's config epoch (the
                first step of a creation): it is about to be added, wait for that
    wait        nothing to join yet

    ``patient=False`` turns "creating" into "join": the creation it waited for never came.
    """
    known, slots, keys, epoch = own
    if known > 1 or slots:
        return "member", None
    if keys:
        return "not-empty", None
    for index, (peer_known, peer_slots) in enumerate(peers):
        if in_cluster(peer_known, peer_slots):
            return ("creating" if epoch and patient else "join"), index
    return "wait", None


class ClusterNode:
    """One line of CLUSTER NODES."""

    __slots__ = ("cport", "flags", "hostname", "id", "ip", "port", "primary", "slots")

    def __init__(self, node_id, ip, port, cport, hostname, flags, primary, slots):
        self.id, self.ip, self.port, self.cport = node_id, ip, port, cport
        self.hostname, self.flags, self.primary, self.slots = hostname, flags, primary, slots

    def name(self):
        where = self.hostname or (format_node((self.ip, self.port)) if self.ip else "no address")
        return f"{self.id[:8]} ({where})"


def parse_nodes(text):
    """CLUSTER NODES -> [ClusterNode]: ``<id> <ip:port@cport[,hostname]> <flags> <primary|-> ... <slots>``."""
    nodes = []
    for line in (text or "").splitlines():
        fields = line.split(" ")
        if len(fields) < 8:
            continue
        parts = fields[1].split(",")
        address, _, cport = parts[0].partition("@")
        ip, _, port = address.rpartition(":")
        hostname = parts[1] if len(parts) > 1 and "=" not in parts[1] else ""
        slots = []
        for item in fields[8:]:
            if not item or item.startswith("["):  # a slot on its way in or out: not owned yet
                continue
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        primary = fields[3] if fields[3] != "-" else None
        nodes.append(
            ClusterNode(
                fields[0], ip, _number(port), _number(cport), hostname, frozenset(fields[2].split(",")), primary, slots
            )
        )
    return nodes


def _number(text):
    return int(text) if text.isdigit() else 0


def slot_text(ranges):
    """[(0, 5460), (7, 7)] -> "0-5460, 7"."""
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)


def uncovered(nodes):
    """The slot ranges no node in ``nodes`` claims."""
    covered = bytearray(SLOTS)
    for node in nodes:
        for first, last in node.slots:
            covered[first : last + 1] = b"\x01" * (last - first + 1)
    ranges, start = [], None
    for slot in range(SLOTS + 1):
        free = slot < SLOTS and not covered[slot]
        if free and start is None:
            start = slot
        elif not free and start is not None:
            ranges.append((start, slot - 1))
            start = None
    return ranges


def previous_self(node, me, my_id):
    """Is ``node`` (a line of another member's CLUSTER NODES) this node before it lost its state?

    Same announced host name (or, without names, same announced IP and port), another node ID.
    """
    if node.id == my_id or node.flags & {"myself", "handshake"}:
        return False
    if me.hostname and node.hostname:
        return normalise_host(node.hostname) == normalise_host(me.hostname)
    return bool(me.announce_ip and node.ip) and node.ip == normalise_host(me.announce_ip) and node.port == me.port


GONE = frozenset({"fail", "noaddr"})


class Rejoin:
    """What an empty node that met a formed cluster does, decided by plan_rejoin.

    wait       [reason]: a failover is due; look again later
    forget     [ClusterNode]: this node's previous incarnations without slots, to forget everywhere
    lost       [(ranges, previous incarnation or None)]: slots nobody can serve; never taken silently
    unserved   [(ranges, ClusterNode)]: slots of another primary that is gone, with no replica
    replicate  the ClusterNode to replicate, or None (this node stays a primary without slots)
    why        one line on the choice
    """

    __slots__ = ("forget", "lost", "replicate", "unserved", "wait", "why")

    def __init__(self):
        self.wait, self.forget, self.lost, self.unserved = [], [], [], []
        self.replicate = None
        self.why = ""


def plan_rejoin(nodes, me, my_id, replicas):
    """Decide from ``nodes`` (CLUSTER NODES of a member of the cluster) how this empty node joins it.

    ``me``: cluster_plan.Identity of this node; ``my_id``: its node ID now; ``replicas``:
    VALKEY_CLUSTER_REPLICAS.  Pure: the caller carries the decision out.
    """
    plan = Rejoin()
    ghosts = {n.id for n in nodes if previous_self(n, me, my_id)}

    def gone(node):
        return node.id in ghosts or bool(node.flags & GONE)

    def replicas_of(primary):
        return [
            n for n in nodes if n.primary == primary.id and n.id != my_id and not gone(n) and "handshake" not in n.flags
        ]

    plan.forget = [n for n in nodes if n.id in ghosts and not n.slots]
    primaries = [n for n in nodes if "master" in n.flags and n.slots]
    for primary in primaries:
        if not gone(primary):
            continue
        heirs = replicas_of(primary)
        if heirs:
            plan.wait.append(
                f"slots {slot_text(primary.slots)} of {primary.name()}, which is gone: "
                f"waiting for its replica {heirs[0].name()} to take them over"
            )
        elif primary.id in ghosts:
            plan.lost.append((primary.slots, primary))
        else:
            plan.unserved.append((primary.slots, primary))
    free = uncovered(nodes)
    if free:
        plan.lost.append((free, None))
    if plan.wait or plan.lost:
        return plan
    if replicas <= 0:
        plan.why = "VALKEY_CLUSTER_REPLICAS is 0: this node stays a primary without slots"
        return plan
    # Back to the primary it replicated before, if that one still lacks a replica; else the one
    # with the fewest replicas (first slot first, so that two nodes deciding together agree).
    before = {n.primary for n in nodes if n.id in ghosts and n.primary}
    wanting = [p for p in primaries if not gone(p) and len(replicas_of(p)) < replicas]
    if not wanting:
        plan.why = f"every primary has {replicas} replica(s) or more: this node stays a primary without slots"
        return plan
    target = min(wanting, key=lambda p: (p.id not in before, len(replicas_of(p)), p.slots[0][0]))
    plan.replicate = target
    count = len(replicas_of(target))
    plan.why = f"{target.name()} has {count} of {replicas} replica(s)" + (
        ", and this node replicated it before" if target.id in before else ""
    )
    return plan


def lost_line(ranges, owner, where, password):
    """One log line: slots without an owner, why, and the commands that give them to this node."""
    slots = slot_text(ranges)
    if owner is not None:
        cause = f"{owner.name()}, which was this node before it lost its data, served them and no replica took over"
    else:
        cause = "no node in the cluster serves them"
    cli = f"valkey-cli -h {where[0]} -p {where[1]}" + (" -a PASSWORD" if password else "")
    spans = " ".join(f"{a} {b}" for a, b in ranges)
    fix = f"{cli} CLUSTER ADDSLOTSRANGE {spans} && {cli} CLUSTER BUMPEPOCH"
    if owner is not None:
        fix += f", then CLUSTER FORGET {owner.id} on every other node"
    return (
        f"slots {slots} have no owner: {cause}; the keys in them are lost. This node does not take them by itself; "
        f"to serve them again (empty) from this node: {fix}"
    )


# ---------------------------------------------------------------- the helper


def start_helper(cluster, password):
    """Fork the helper (twice) and return in the entrypoint, which then execs the server."""
    server_pid = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child:
        os.waitpid(child, 0)  # the middle process exits at once: nothing left for the server to reap
        return
    status = 1
    try:
        os.setsid()  # not in the server's process group: a terminal's ^C is for the server
        if os.fork():
            status = 0
        else:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)  # keep only stderr, for the log lines
            os.close(devnull)
            status = Bootstrap(cluster, password, server_pid).run()
    except BaseException as exc:
        try:
            log(f"stopped by an unexpected error: {exc!r}")
        except BaseException:
            pass
    finally:
        os._exit(status)  # never return into the entrypoint's code in a child


class GiveUp(Exception):
    """Stop the helper with a final log line."""


class Member:
    __slots__ = ("conn", "host", "id", "ip", "port")

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.ip = self.conn = self.id = None

    def name(self):
        shown = f"{self.host}:{self.port}"
        return shown if self.host == self.ip or not self.ip else f"{shown} ({self.ip})"

    def call(self, *args):
        reply = self.conn.call(*args)
        from .resp import ReplyError

        if isinstance(reply, ReplyError):
            raise GiveUp(f"{' '.join(str(a) for a in args[:2])} on {self.name()} failed: {reply}")
        return reply


class Bootstrap:
    def __init__(self, cluster, password, server_pid):
        self.cluster = cluster
        self.password = password.value if password else None
        self.server_pid = server_pid
        self.started = time.monotonic()
        self.deadline = self.started + cluster.timeout
        self.reason = None  # why the last connection attempt failed, for the final log line
        self.local = None  # a connection to this node's own server
        self.open_conns = []

    # -- waiting

    def server_alive(self):
        try:
            os.kill(self.server_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def wait(self, what, attempt, cap=1.0):
        """Call ``attempt()`` until it returns something true; back off between tries."""
        delay = 0.02
        while True:
            result = attempt()
            if result:
                return result
            if not self.server_alive():
                raise SystemExit(0)  # the server is gone: nothing to bootstrap for
            if time.monotonic() + delay > self.deadline:
                last = f" (last: {self.reason})" if self.reason else ""
                raise GiveUp(f"gave up after {self.cluster.timeout:g} s waiting for {what}{last}")
            time.sleep(delay)
            delay = min(delay * 1.5, cap)

    def connect(self, host, port):
        """A connection that answered PING (after AUTH), or None; ``self.reason`` says why not."""
        from .resp import Connection, ReplyError, authenticate

        try:
            conn = Connection(host, port, timeout=3.0)
        except OSError as exc:
            self.reason = f"{host}:{port}: {exc.strerror or exc}"
            return None
        try:
            error = authenticate(conn, self.password)
            reply = conn.call("PING")
        except OSError as exc:
            conn.close()
            self.reason = f"{host}:{port}: {exc}"
            return None
        if error or isinstance(reply, ReplyError):
            conn.close()
            self.reason = f"{host}:{port}: {error or reply}"
            return None
        self.open_conns.append(conn)
        return conn

    def ask(self, conn, *args):
        """``conn.call(*args)``; an error reply raises GiveUp."""
        from .resp import ReplyError

        reply = conn.call(*args)
        if isinstance(reply, ReplyError):
            raise GiveUp(f"{' '.join(str(a) for a in args[:2])} failed: {reply}")
        return reply

    # -- steps

    def run(self):
        try:
            self.check_this_node()
            creator = self.cluster.creator
            if creator is None:
                creator = self.is_first_member()
            if not creator:
                return self.watch()
            members = self.wait_for_members()
            if isinstance(members, Member):  # a member that already belongs to a cluster
                return self.join(members)
            verdict, detail = self.inspect(members)
            if verdict == "formed":
                log(f"the members already form a cluster ({detail}): nothing to do")
                return 0
            if verdict == "mixed":
                log(
                    f"the members are neither all empty nor one cluster ({detail}): left alone; "
                    "join or reset them by hand (valkey-cli --cluster)"
                )
                return 1
            self.create(members)
            return 0
        except SystemExit as exc:
            return exc.code or 0
        except GiveUp as exc:
            log(f"{exc}; the server keeps running without a formed cluster")
            return 1
        except OSError as exc:
            log(f"lost a connection to a member ({exc}); the server keeps running without a formed cluster")
            return 1
        finally:
            for conn in self.open_conns:
                try:
                    conn.close()
                except OSError:
                    pass

    def check_this_node(self):
        """Stop at once when this node already belongs to a cluster (a restart)."""
        host, port = self.cluster.local_host, self.cluster.port
        self.local = self.wait(f"this server on {host}:{port}", lambda: self.connect(host, port))
        state = parse_info(self.local.call("CLUSTER", "INFO"))
        known = int(state.get("cluster_known_nodes", "1"))
        if known > 1 or int(state.get("cluster_slots_assigned", "0")):
            log(f"this node is already in a cluster ({known} nodes known): nothing to do")
            raise SystemExit(0)

    def is_first_member(self):
        """For auto without an announced name or IP to compare: does the first member resolve to us?"""
        import socket

        host, port = self.cluster.nodes[0]
        me = self.cluster.identity
        addresses = self.wait(f"{host} to resolve", lambda: _resolve(host, port))
        mine = [me.announce_ip] if me.announce_ip else me.binds
        for address in addresses:
            if mine is not None:
                if any(_same_ip(address, m) for m in mine):
                    return True
                continue
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((address, 0))  # only an address of this machine can be bound
                    return True
                except OSError:
                    pass
        log(f"{host}:{port} is not this node: the first member creates the cluster")
        return False

    def reach(self, member):
        """Connect ``member`` when it is not yet; True when it is."""
        if member.conn is None:
            addresses = _resolve(member.host, member.port)
            if not addresses:
                self.reason = f"{member.host} does not resolve"
                return False
            member.ip = addresses[0]
            member.conn = self.connect(member.ip, member.port)
        return member.conn is not None

    def cluster_state(self, member):
        """(known nodes, slots assigned) of a connected member, or None (its connection is dropped)."""
        from .resp import ReplyError

        try:
            reply = member.conn.call("CLUSTER", "INFO")
        except OSError as exc:
            self.reason = f"{member.name()}: {exc}"
            member.conn.close()
            member.conn = None
            return None
        if isinstance(reply, ReplyError):  # LOADING: ask again later
            self.reason = f"{member.name()}: {reply}"
            return None
        state = parse_info(reply)
        return int(state.get("cluster_known_nodes", "1")), int(state.get("cluster_slots_assigned", "0"))

    def wait_for_members(self):
        """Every member connected (their IDs read), or the first member found in a formed cluster."""
        members = [Member(host, port) for host, port in self.cluster.nodes]
        waiting = {}
        last_report = [None, 0.0]
        joinable = []

        def all_up():
            for member in members:
                if member.conn:
                    continue
                if not self.reach(member):
                    waiting[member.name()] = self.reason.split(": ", 1)[-1]
                    continue
                waiting.pop(member.name(), None)
                state = self.cluster_state(member)
                if state and in_cluster(*state):
                    joinable.append(member)  # this node is new to a cluster that exists
                    return True
            pending = [m for m in members if not m.conn]
            if pending:
                report = ", ".join(f"{m.name()}: {waiting.get(m.name(), '?')}" for m in pending)
                now = time.monotonic()
                if report != last_report[0] or now - last_report[1] > 30:
                    log(f"waiting for {len(pending)} of {len(members)} members: {report}")
                    last_report[:] = [report, now]
                return False
            return True

        log(f"this node creates the cluster: waiting for {len(members)} members to answer")
        self.wait("every member to answer PING", all_up, cap=2.0)
        if joinable:
            return joinable[0]
        for member in members:
            member.id = member.call("CLUSTER", "MYID")
        return members

    # -- joining

    def own_state(self):
        """(known nodes, slots assigned, keys, config epoch) of this node, or None while it is loading."""
        from .resp import ReplyError

        info = self.local.call("CLUSTER", "INFO")
        keys = self.local.call("DBSIZE")
        if isinstance(info, ReplyError) or isinstance(keys, ReplyError):
            self.reason = f"this server: {info if isinstance(info, ReplyError) else keys}"
            return None
        state = parse_info(info)
        return (
            int(state.get("cluster_known_nodes", "1")),
            int(state.get("cluster_slots_assigned", "0")),
            keys,
            int(state.get("cluster_my_epoch", "0")),
        )

    def watch(self):
        """Not the creator: wait to be added, or join the cluster the other members already form."""
        members = [Member(host, port) for host, port in self.cluster.nodes]
        first_seen = {}  # verdict -> when it was first seen

        def look():
            own = self.own_state()
            if own is None:
                return None
            states, answered = [], []
            for member in members:
                state = self.cluster_state(member) if self.reach(member) else None
                if state:
                    states.append(state)
                    answered.append(member)
                    if in_cluster(*state):
                        break  # one member of a formed cluster is enough to decide
            patient = time.monotonic() - first_seen.setdefault("creating", time.monotonic()) < CREATION_PATIENCE
            verdict, index = watch_verdict(own, states, patient)
            if verdict != "creating":
                first_seen.pop("creating", None)
            if verdict == "join":
                # Read this node again now: a creation sets its epoch before any member has slots.
                again = self.own_state()
                if again is None or watch_verdict(again, states, patient)[0] != "join":
                    return None
                return verdict, answered[index]
            if verdict in ("member", "not-empty"):
                return verdict, own
            self.reason = "being added by the creator" if verdict == "creating" else "no member is in a cluster yet"
            return None

        log("waiting to be added to the cluster, or for a formed cluster to join")
        verdict, detail = self.wait("the creator to add this node, or a formed cluster to join", look)
        if verdict == "member":
            log(f"another member added this node to the cluster ({detail[0]} nodes known, {detail[1]} slots): done")
            return 0
        if verdict == "not-empty":
            log(
                f"this node holds {detail[2]} keys but belongs to no cluster: left alone (as a replica it "
                "would drop them); add it by hand (valkey-cli --cluster add-node)"
            )
            return 1
        return self.join(detail)

    def join(self, peer):
        """Join the cluster ``peer`` (a connected Member) belongs to; this node is empty and alone."""
        me = self.cluster.identity
        my_id = self.ask(self.local, "CLUSTER", "MYID")
        view = parse_nodes(self.ask(peer.conn, "CLUSTER", "NODES"))
        there = next((n for n in view if "myself" in n.flags), None)
        ghosts = [n for n in view if previous_self(n, me, my_id)]
        before = f"; it was {', '.join(g.name() for g in ghosts)} before it lost its state" if ghosts else ""
        log(f"this node is empty and the members form a cluster of {len(view)} nodes without it: joining it{before}")
        ip = there.ip if there and there.ip else peer.ip
        port = there.port if there and there.port else peer.port
        meet = ["CLUSTER", "MEET", ip, port] + ([there.cport] if there and there.cport else [])
        log(f"joining through {peer.name()}: {' '.join(str(a) for a in meet)}")
        self.ask(self.local, *meet)
        healthy = {n.id for n in view if not n.flags & {"fail", "fail?", "noaddr", "handshake"}} - {
            g.id for g in ghosts
        }
        self.wait(
            "this node to know the members of the cluster",
            lambda: healthy <= known_ids(self.ask(self.local, "CLUSTER", "NODES")),
        )
        reasons = []

        def decided():
            plan = plan_rejoin(parse_nodes(self.ask(peer.conn, "CLUSTER", "NODES")), me, my_id, self.cluster.replicas)
            if plan.wait:
                if plan.wait != reasons:
                    for reason in plan.wait:
                        log(reason)
                    reasons[:] = plan.wait
                self.reason = plan.wait[0]
                return None
            return plan

        plan = self.wait("a failover in the cluster", decided)
        for ghost in plan.forget:
            self.forget(ghost, view)
        for ranges, owner in plan.unserved:
            log(f"slots {slot_text(ranges)} are not served: {owner.name()} is gone and has no replica")
        if plan.lost:
            where = (me.announce_ip or me.hostname or self.cluster.local_host, me.port)
            for ranges, owner in plan.lost:
                log(lost_line(ranges, owner, where, self.password))
            log(f"this node joined the cluster as a primary without slots after {self.elapsed()}")
            return 1
        if plan.replicate is None:
            log(f"this node joined the cluster after {self.elapsed()}: {plan.why}")
            return 0
        target = plan.replicate
        self.wait(
            f"this node to know {target.name()} as a primary",
            lambda: any(
                n.id == target.id and "master" in n.flags for n in parse_nodes(self.ask(self.local, "CLUSTER", "NODES"))
            ),
        )
        self.ask(self.local, "CLUSTER", "REPLICATE", target.id)
        log(f"this node replicates {target.name()}: {plan.why}")
        self.wait(
            f"the replication link to {target.name()}",
            lambda: "master_link_status:up" in self.ask(self.local, "INFO", "replication"),
        )
        log(f"this node rejoined the cluster as a replica of {target.name()}, in sync after {self.elapsed()}")
        return 0

    def forget(self, ghost, view):
        """CLUSTER FORGET this node's previous incarnation on every member that still lists it."""
        from .resp import ReplyError

        done = 0
        for node in view:
            if node.id == ghost.id or node.flags & (GONE | {"handshake"}) or not node.ip:
                continue
            conn = self.connect(node.ip, node.port)
            if conn is None:
                continue
            reply = conn.call("CLUSTER", "FORGET", ghost.id)
            if not isinstance(reply, ReplyError):
                done += 1
        self.local.call("CLUSTER", "FORGET", ghost.id)  # "Unknown node" when it never learnt of it
        log(f"forgot {ghost.name()}, this node's previous incarnation, on {done} members")

    def inspect(self, members):
        states, details = [], []
        for member in members:
            state = parse_info(member.call("CLUSTER", "INFO"))
            keys = member.call("DBSIZE")
            known, slots = int(state.get("cluster_known_nodes", "0")), int(state.get("cluster_slots_assigned", "0"))
            states.append((known, slots, keys))
            details.append(f"{member.name()}: {known} known, {slots} slots, {keys} keys")
        return classify(states), "; ".join(details)

    def create(self, members):
        cluster = self.cluster
        primaries_count = len(members) // (1 + cluster.replicas)
        primaries, replicas = members[:primaries_count], members[primaries_count:]
        log(f"creating the cluster: {primaries_count} primaries, {cluster.replicas} replicas each")
        for epoch, member in enumerate(members, 1):
            # Distinct epochs from the start, so no collision has to be resolved later.
            member.conn.call("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        # Slots before MEET: the handshake itself then tells every member who owns what,
        # instead of the next rounds of gossip.
        for member, (first, last) in zip(primaries, slot_ranges(primaries_count), strict=True):
            member.call("CLUSTER", "ADDSLOTSRANGE", first, last)
            log(f"slots {first}-{last} -> {member.name()}")
        seed = members[0]
        for member in members[1:]:
            log(f"CLUSTER MEET {member.ip} {member.port} ({member.host}) from {seed.name()}")
            seed.call("CLUSTER", "MEET", member.ip, member.port)
        ids = {m.id for m in members}
        self.wait(
            "the members to know each other",
            lambda: all(ids <= known_ids(m.call("CLUSTER", "NODES")) for m in members),
        )
        if replicas:
            chosen = assign_replicas([p.ip for p in primaries], [r.ip for r in replicas], cluster.replicas)
            for replica, index in zip(replicas, chosen, strict=True):
                replica.call("CLUSTER", "REPLICATE", primaries[index].id)
                log(f"{replica.name()} replicates {primaries[index].name()}")
        self.wait(
            "cluster_state:ok on every member",
            lambda: all(parse_info(m.call("CLUSTER", "INFO")).get("cluster_state") == "ok" for m in members),
        )
        log(f"cluster created: cluster_state:ok on all {len(members)} members after {self.elapsed()}")

    def elapsed(self):
        return f"{time.monotonic() - self.started:.1f} s"


def _resolve(host, port):
    """The addresses ``host`` resolves to now (IPv4 first), or [] when it does not."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses = []
    for info in sorted(infos, key=lambda i: i[0] != socket.AF_INET):
        address = info[4][0].split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    return addresses


def _same_ip(a, b):
    import socket

    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, a) == socket.inet_pton(family, b)
        except OSError:
            continue
    return a == b
