"""How the cluster bootstrap helper reaches the members: resolve, connect (AUTH, PING), ask,
and wait, backing off, until something holds, the server is gone or the deadline passes;
what every one of its steps carries (Helper) and how it says what it does (log).

The entrypoint imports this before it execs the server; the client (and socket) load in the
helper only, when it first talks to someone.
"""

import sys
import time

from ..errors import PROG
from .view import parse_info


def log(message):
    print(f"{PROG}: cluster bootstrap: {message}", file=sys.stderr, flush=True)


class GiveUp(Exception):
    """Stop the helper with a final log line."""


class Member:
    """One member of VALKEY_CLUSTER_NODES: its name, and once reached, its address, connection and ID."""

    __slots__ = ("conn", "host", "id", "ip", "port")

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.ip = self.conn = self.id = None

    def name(self):
        shown = f"{self.host}:{self.port}"
        return shown if self.host == self.ip or not self.ip else f"{shown} ({self.ip})"

    def call(self, *args):
        from ..resp import ReplyError

        reply = self.conn.call(*args)
        if isinstance(reply, ReplyError):
            raise GiveUp(f"{' '.join(str(a) for a in args[:2])} on {self.name()} failed: {reply}")
        return reply


class Link:
    """The helper's connections and its patience: one deadline for the whole bootstrap."""

    def __init__(self, password, server_pid, timeout, tls=None):
        self.password = password
        self.tls = tls  # tls_client.ClientTLS when the members speak TLS
        self.server_pid = server_pid
        self.timeout = timeout
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.reason = None  # why the last attempt failed, for the final log line
        self.open_conns = []

    def server_alive(self):
        from ..detach import server_alive

        return server_alive(self.server_pid)

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
                raise GiveUp(f"gave up after {self.timeout:g} s waiting for {what}{last}")
            time.sleep(delay)
            delay = min(delay * 1.5, cap)

    def elapsed(self):
        return f"{time.monotonic() - self.started:.1f} s"

    def connect(self, host, port, server_name=None):
        """A connection that answered PING (after AUTH), or None; ``self.reason`` says why not.
        ``server_name``: the member's name, which its certificate must carry (TLS)."""
        from ..resp import Connection, ReplyError, authenticate

        try:
            conn = Connection(host, port, timeout=3.0, tls=self.tls, server_name=server_name)
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

    def close_all(self):
        for conn in self.open_conns:
            try:
                conn.close()
            except OSError:
                pass

    def reach(self, member):
        """Connect ``member`` when it is not yet; True when it is."""
        if member.conn is None:
            addresses = resolve(member.host, member.port)
            if not addresses:
                self.reason = f"{member.host} does not resolve"
                return False
            member.ip = addresses[0]
            member.conn = self.connect(member.ip, member.port, member.host)
        return member.conn is not None

    def cluster_state(self, member):
        """(known nodes, slots assigned) of a connected member, or None (its connection is dropped)."""
        from ..resp import ReplyError

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


def ask(conn, *args):
    """``conn.call(*args)``; an error reply raises GiveUp."""
    from ..resp import ReplyError

    reply = conn.call(*args)
    if isinstance(reply, ReplyError):
        raise GiveUp(f"{' '.join(str(a) for a in args[:2])} failed: {reply}")
    return reply


def resolve(host, port):
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


def can_bind(address):
    """Whether ``address`` belongs to this machine: only such an address can be bound."""
    import socket

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


class Helper:
    """What every step of the helper works with: the cluster's plan (plan.ClusterPlan), the
    password, the link to the members and, once it answers, this node's own server (``local``)."""

    __slots__ = ("cluster", "link", "local", "password", "tls")

    def __init__(self, cluster, password, server_pid, tls=None):
        self.cluster = cluster
        self.password = password.value if password else None
        self.tls = tls  # tls_client.ClientTLS when the members speak TLS
        self.link = Link(self.password, server_pid, cluster.timeout, tls)
        self.local = None
