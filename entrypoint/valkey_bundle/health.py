"""bundle-healthcheck startup|liveness|readiness|prestop: exit 0 when the server is in that state.

liveness   the process answers: PONG, or LOADING / MASTERDOWN / NOAUTH (busy, not dead)
startup    PONG: the data set is loaded
readiness  PONG, and in cluster mode cluster_state:ok and, on a replica, the link to its
           primary up and not in a full sync (a rolling restart must not take the next member
           while this one's copy of a shard is still catching up)
prestop    (the pod's preStop hook, not a state) a primary hands its slots to an in-sync replica
           and waits until it is a replica itself; see handover.py
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


def check(mode, host, port, password):
    """Return (healthy, one-line reason)."""
    try:
        with Connection(host, port) as conn:
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
                return True, f"PONG, cluster_state:ok{why}"
            return True, pong
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


def main(argv, environ=None):
    environ = os.environ if environ is None else environ
    usage = f"usage: {PROG} startup|liveness|readiness|prestop [--host HOST] [--port PORT]"
    if not argv or argv[0] not in ("startup", "liveness", "readiness", "prestop"):
        print(usage, file=sys.stderr)
        return 2
    mode, host, port = argv[0], "127.0.0.1", 6379
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
    if mode == "prestop":
        from .handover import hand_over

        healthy, reason = hand_over(host, port, read_password(environ))
    else:
        healthy, reason = check(mode, host, port, read_password(environ))
    print(f"{mode}: {'ok' if healthy else 'failing'}: {reason}")
    return 0 if healthy else 1
