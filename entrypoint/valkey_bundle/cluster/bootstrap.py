"""Form the cluster, or join it, from a helper that runs next to the server as it starts
(forked by detach.run_beside_server).

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

The steps, in order, are bootstrap() below: the creator's are in form.py, a joining member's
in join.py; decisions.py decides from the facts they gather, link.py talks to the members.
"""

import os

from .decisions import first_look
from .decisions import is_first_member as first_member_among
from .form import create, inspect_members, wait_for_members
from .join import join, watch
from .link import GiveUp, Helper, Member, can_bind, log, resolve
from .view import parse_info


def start_helper(cluster, password, tls=None):
    """Fork the helper (twice) and return in the entrypoint, which then execs the server.
    ``tls``: a tls_client.ClientTLS when the members speak TLS."""
    from ..detach import run_beside_server

    server_pid = os.getpid()
    run_beside_server(lambda: run(Helper(cluster, password, server_pid, tls)), log)


def run(helper):
    """bootstrap(), with every way out logged; the helper's exit status."""
    try:
        return bootstrap(helper)
    except SystemExit as exc:
        return exc.code or 0
    except GiveUp as exc:
        log(f"{exc}; the server keeps running without a formed cluster")
        return 1
    except OSError as exc:
        log(f"lost a connection to a member ({exc}); the server keeps running without a formed cluster")
        return 1
    finally:
        helper.link.close_all()


def bootstrap(helper):
    """Look at this node; then wait to be added or join (not the creator), or create the cluster."""
    known, slots = read_this_node(helper)
    look = first_look(known, slots)
    if look == "member":
        log(f"this node is already in a cluster ({known} nodes known): nothing to do")
        return 0
    creator = helper.cluster.creator
    if creator is None:
        creator = is_first_member(helper)
    if not creator:
        return watch(helper)  # "assigned": the creator is adding it, which watch() sees through
    if look == "assigned":
        log(f"this node is already in a cluster ({known} nodes known): nothing to do")
        return 0
    members = wait_for_members(helper)
    if isinstance(members, Member):  # a member that already belongs to a cluster
        return join(helper, members)
    verdict, detail = inspect_members(members)
    if verdict == "formed":
        log(f"the members already form a cluster ({detail}): nothing to do")
        return 0
    if verdict == "mixed":
        log(
            f"the members are neither all empty nor one cluster ({detail}): left alone; "
            "join or reset them by hand (valkey-cli --cluster)"
        )
        return 1
    create(helper, members)
    return 0


def read_this_node(helper):
    """(known nodes, slots assigned) of this node's own server, once it answers; it stays connected."""
    host, port = helper.cluster.local_host, helper.cluster.port
    link = helper.link
    name = helper.tls.server_name if helper.tls else None
    helper.local = link.wait(f"this server on {host}:{port}", lambda: link.connect(host, port, name))
    state = parse_info(helper.local.call("CLUSTER", "INFO"))
    return int(state.get("cluster_known_nodes", "1")), int(state.get("cluster_slots_assigned", "0"))


def is_first_member(helper):
    """For auto without an announced name or IP to compare: does the first member resolve to us?"""
    host, port = helper.cluster.nodes[0]
    me = helper.cluster.identity
    addresses = helper.link.wait(f"{host} to resolve", lambda: resolve(host, port))
    mine = [me.announce_ip] if me.announce_ip else me.binds
    found = first_member_among(addresses, mine)
    if found is None:
        found = any(can_bind(address) for address in addresses)
    if not found:
        log(f"{host}:{port} is not this node: the first member creates the cluster")
    return found
