"""bundle-healthcheck startup|liveness|readiness|prestop: exit 0 when the server is in that state.

liveness   the process answers: PONG, or LOADING / MASTERDOWN / NOAUTH (busy, not dead)
startup    PONG: the data set is loaded
readiness  PONG, and in cluster mode cluster_state:ok and, on a replica, the link to its
           primary up and not in a full sync (a rolling restart must not take the next member
           while this one's copy of a shard is still catching up); with search loaded, every
           index its peers have is here and none is still being built (index_state.py)
prestop    (the pod's preStop hook, not a state) a primary hands its slots to an in-sync replica
           and waits until it is a replica itself; see cluster/handover.py

It connects where the entrypoint made the server listen, with TLS when the server speaks it
(local_server.py): the server's certificate verified against the CA, the client certificate
presented when the server asks for one.
"""

import os
import sys

from .resp import Connection, ReplyError, authenticate

PROG = "bundle-healthcheck"
ALIVE_ERRORS = ("LOADING", "MASTERDOWN", "NOAUTH")


def read_password(environ):
    """The password the entrypoint gave the server (same rules), or None."""
    from .secret import read_password as read

    try:
        password = read(environ)
    except ValueError:
        return None
    return password.value if password else None


def check(mode, host, port, password, tls=None, server_name=None):
    """Return (healthy, one-line reason).  ``tls``: a tls_client.ClientTLS when the server speaks
    TLS; ``server_name``: the name its certificate must carry."""
    from .tls_client import TLSFailure

    try:
        with Connection(host, port, tls=tls, server_name=server_name) as conn:
            auth_error = authenticate(conn, password)
            pong = conn.call("PING")
            if isinstance(pong, ReplyError):
                word = str(pong).split(" ", 1)[0]
                if auth_error and word != "NOAUTH":
                    return False, f"AUTH failed: {auth_error}"
                if mode == "liveness" and word in ALIVE_ERRORS:
                    return True, f"alive ({pong})"
                return False, str(pong)
            if mode != "readiness":
                return True, pong
            info = conn.call("INFO", "cluster")
            if isinstance(info, str) and "cluster_enabled:1" in info:
                state = conn.call("CLUSTER", "INFO")
                if not (isinstance(state, str) and "cluster_state:ok" in state):
                    return False, "cluster_state is not ok"
                synced, why = replica_in_sync(conn)
                if not synced:
                    return False, why
                indexed, indexes = search_indexes_ready(conn, password, tls)
                if not indexed:
                    return False, indexes
                return True, f"PONG, cluster_state:ok{why}{indexes}"
            return True, pong
    except TLSFailure as exc:
        return False, str(exc)
    except OSError as exc:
        return False, f"cannot reach {host}:{port}: {exc}"


def replica_in_sync(conn):
    """(True, "") on a primary; on a replica (True, ", replica in sync") when its link to the
    primary is up and no full sync is running, else (False, why)."""
    info = conn.call("INFO", "replication")
    if not isinstance(info, str):
        return False, f"INFO replication: {info}"
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    if fields.get("role") != "slave":
        return True, ""
    primary = f"{fields.get('master_host', '?')}:{fields.get('master_port', '?')}"
    if fields.get("master_sync_in_progress", "0") != "0":
        return False, f"replica of {primary}: full sync in progress"
    if fields.get("master_link_status") != "up":
        return False, f"replica of {primary}: link down"
    return True, ", replica in sync"


def search_indexes_ready(conn, password, tls=None):
    """(True, "") without search; (True, ", search indexes as on N peers") when this member has
    every index its reachable peers have and builds none; else (False, why)."""
    from .cluster import parse_nodes
    from .index_state import index_names, parse_info, readiness_problem

    local = index_names(conn.call("FT._LIST"))
    if local is None:
        return True, ""  # no search module (or it refused): nothing to wait for
    nodes = conn.call("CLUSTER", "NODES")
    peers = [
        (n.ip, n.port, n.hostname or None)
        for n in parse_nodes(nodes if isinstance(nodes, str) else "")
        if n.ip and n.port and not {"myself", "fail", "fail?", "handshake", "noaddr"} & n.flags
    ]
    # All peers at once: the probe has a few seconds, an unreachable peer costs one.
    # (threading, not concurrent.futures: python3-minimal in the image lacks the latter.)
    import threading

    answers = {}

    def ask(host, port, name):
        names = peer_indexes(host, port, password, tls, name)
        if names is not None:
            answers[f"{host}:{port}"] = names

    threads = [threading.Thread(target=ask, args=peer) for peer in peers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    problem = readiness_problem(local, answers, parse_info(conn.call("INFO", "search")))
    if problem:
        return False, problem
    return True, f", search indexes as on {len(answers)} peers"


def peer_indexes(host, port, password, tls=None, server_name=None):
    """FT._LIST of a peer, or None when it cannot say (unreachable, loading, refused)."""
    from .index_state import index_names

    try:
        with Connection(host, port, timeout=1.0, tls=tls, server_name=server_name) as peer:
            if authenticate(peer, password):
                return None
            return index_names(peer.call("FT._LIST"))
    except OSError:
        return None


def main(argv, environ=None):
    environ = os.environ if environ is None else environ
    usage = f"usage: {PROG} startup|liveness|readiness|prestop [--host HOST] [--port PORT]"
    if not argv or argv[0] not in ("startup", "liveness", "readiness", "prestop"):
        print(usage, file=sys.stderr)
        return 2
    mode, host, port = argv[0], None, None
    rest = argv[1:]
    try:
        while rest:
            flag, value, rest = rest[0], rest[1], rest[2:]
            if flag == "--host":
                host = value
            elif flag == "--port":
                port = int(value)
            else:
                raise ValueError(flag)
    except (IndexError, ValueError):
        print(usage, file=sys.stderr)
        return 2
    from .local_server import local_server

    # Where and how the server takes clients, as the entrypoint planned it (TLS included).
    local_port, tls = local_server(environ)
    server_name = tls.server_name if tls and host is None else host
    host, port = host or "127.0.0.1", port or local_port
    if mode == "prestop":
        from .cluster import hand_over

        healthy, reason = hand_over(host, port, read_password(environ), tls=tls, server_name=server_name)
    else:
        healthy, reason = check(mode, host, port, read_password(environ), tls, server_name)
    print(f"{mode}: {'ok' if healthy else 'failing'}: {reason}")
    return 0 if healthy else 1
