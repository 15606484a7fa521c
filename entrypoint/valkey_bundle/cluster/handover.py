"""bundle-healthcheck prestop: before a primary is stopped, hand its slots to a replica.

Run as the pod's preStop hook (the kubelet runs it, then sends SIGTERM). A primary with
slots asks its in-sync replica for a manual failover (``CLUSTER FAILOVER`` on the replica:
the primary pauses writes, the replica catches up to the last one, wins the election and
takes the slots), then waits until it is a replica itself. Its clients are redirected
after a pause of a few hundred milliseconds, where a SIGTERM alone leaves the slots
without a primary until the server's own failover on shutdown (or the node timeout).

Nothing to do (exit 0) on a replica, a primary without slots, or outside cluster mode. Exit 1
when no replica is in sync or the failover did not finish in time: the kubelet then logs a
FailedPreStopHook event and stops the pod anyway, and the server's shutdown does what it can.
"""

import time

from ..resp import Connection, ReplyError, authenticate

# A manual failover normally ends within a second; the server gives up after
# cluster-manual-failover-timeout (5 s by default).
HANDOVER_TIMEOUT = 10.0


def info_fields(conn, section):
    reply = conn.call("INFO", section)
    if not isinstance(reply, str):
        raise ConnectionError(f"INFO {section}: {reply}")
    return dict(line.split(":", 1) for line in reply.splitlines() if ":" in line)


def in_sync_replicas(replication):
    """[(ip, port, offset)] of the replicas the primary sees online, most advanced first."""
    found = []
    for name, value in replication.items():
        if not (name.startswith("slave") and name[5:].isdigit()):
            continue
        fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
        if fields.get("state") == "online":
            found.append((fields.get("ip", ""), int(fields.get("port", 0)), int(fields.get("offset", 0))))
    return sorted(found, key=lambda replica: -replica[2])


def myself(conn):
    """(node ID, flags, slot fields) of this node, from CLUSTER NODES."""
    nodes = conn.call("CLUSTER", "NODES")
    if not isinstance(nodes, str):
        raise ConnectionError(f"CLUSTER NODES: {nodes}")
    for line in nodes.splitlines():
        fields = line.split(" ")
        if len(fields) >= 8 and "myself" in fields[2].split(","):
            return fields[0], fields[2].split(","), fields[8:]
    raise ConnectionError("CLUSTER NODES lists no 'myself'")


def replica_name(conn, ip, port):
    """The name the replica at ip:port announces (CLUSTER NODES), which its certificate carries; or None."""
    from .view import parse_nodes

    nodes = conn.call("CLUSTER", "NODES")
    for node in parse_nodes(nodes if isinstance(nodes, str) else ""):
        if (node.ip, node.port) == (ip, port) and node.hostname:
            return node.hostname
    return None


def role_of(conn):
    """The role the server on ``conn`` reports ("master", "slave"), or None once it no longer answers."""
    try:
        return info_fields(conn, "replication").get("role")
    except OSError:
        return None


def hand_over(host, port, password, timeout=HANDOVER_TIMEOUT, tls=None, server_name=None):
    """Return (ok, one-line reason).  ``tls``: a tls_client.ClientTLS when the members speak TLS;
    ``server_name``: the name this member's certificate carries."""
    started = time.monotonic()
    try:
        with Connection(host, port, tls=tls, server_name=server_name) as conn:
            refused = authenticate(conn, password)
            if refused:
                return False, f"AUTH failed: {refused}"
            if info_fields(conn, "cluster").get("cluster_enabled") != "1":
                return True, "not in cluster mode: nothing to hand over"
            replication = info_fields(conn, "replication")
            if replication.get("role") != "master":
                return True, "a replica: nothing to hand over"
            node_id, _flags, slots = myself(conn)
            if not slots:
                return True, "a primary without slots: nothing to hand over"
            replicas = in_sync_replicas(replication)
            if not replicas:
                return False, f"no replica of {node_id[:8]} is in sync: the slots stay until the shutdown"
            ip, replica_port, _ = replicas[0]
            name = replica_name(conn, ip, replica_port) if tls else None
            with Connection(ip, replica_port, tls=tls, server_name=name) as replica:
                reply = authenticate(replica, password) or replica.call("CLUSTER", "FAILOVER")
                if isinstance(reply, ReplyError):
                    return False, f"CLUSTER FAILOVER on {ip}:{replica_port}: {reply}"
                while time.monotonic() - started < timeout:
                    replication = info_fields(conn, "replication")
                    if replication.get("role") == "slave":
                        took = time.monotonic() - started
                        return True, f"slots handed to {ip}:{replica_port} in {took:.2f} s"
                    gone = not any(r[:2] == (ip, replica_port) for r in in_sync_replicas(replication))
                    # A replica that won leaves this list before gossip demotes this primary;
                    # one that no longer answers is stopping too (a whole node pool drained), and
                    # waiting on would only keep this primary's writes paused until the timeout.
                    if gone and role_of(replica) != "master":
                        return False, f"{ip}:{replica_port} went away before it took the slots"
                    time.sleep(0.05)
                return False, f"{ip}:{replica_port} did not take the slots within {timeout:.0f} s"
    except OSError as exc:
        return False, f"cannot hand over: {exc}"
