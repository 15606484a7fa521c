"""Create the cluster once, from a helper that runs next to the server as it starts.

The entrypoint forks the helper twice just before it execs valkey-server: the
server keeps the entrypoint's PID and is not the helper's parent (outside a
container the helper ends up with init; inside one, with the server as PID 1,
it stays a zombie there until the server next reaps a child).

The helper waits (backing off, logging progress) until every member answers
PING, and creates the cluster only when every member is empty: one known node,
no slots, no keys.  A cluster that exists is never touched; anything in between
is logged and left alone.  It gives up at the deadline; the server keeps running.
"""

import os
import sys
import time

from .errors import PROG

SLOTS = 16384


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
        return conn

    # -- steps

    def run(self):
        try:
            self.check_this_node()
            if self.cluster.creator is None and not self.is_first_member():
                return 0
            members = self.wait_for_members()
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
            for conn in getattr(self, "open_conns", []):
                try:
                    conn.close()
                except OSError:
                    pass

    def check_this_node(self):
        """Stop at once when this node already belongs to a cluster (a restart)."""
        host, port = self.cluster.local_host, self.cluster.port
        conn = self.wait(f"this server on {host}:{port}", lambda: self.connect(host, port))
        try:
            state = parse_info(conn.call("CLUSTER", "INFO"))
        finally:
            conn.close()
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

    def wait_for_members(self):
        members = [Member(host, port) for host, port in self.cluster.nodes]
        waiting = {}
        self.open_conns = []
        last_report = [None, 0.0]

        def all_up():
            for member in members:
                if member.conn:
                    continue
                addresses = _resolve(member.host, member.port)
                if not addresses:
                    waiting[member.name()] = "does not resolve"
                    self.reason = f"{member.host} does not resolve"
                    continue
                member.ip = addresses[0]
                conn = self.connect(member.ip, member.port)
                if conn is None:
                    waiting[member.name()] = self.reason.split(": ", 1)[1]
                    continue
                member.conn = conn
                self.open_conns.append(conn)
                waiting.pop(member.name(), None)
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
        for member in members:
            member.id = member.call("CLUSTER", "MYID")
        return members

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
