"""A member's steps when it does not create the cluster: wait to be added (watch), or join the
cluster the others already form (join), forgetting its own previous incarnation (forget).
decisions.watch_verdict, plan_join_start and plan_rejoin decide; this asks and carries out.
"""

import time

from .decisions import forget_targets, in_cluster, lost_line, plan_join_start, plan_rejoin, watch_verdict
from .link import Member, ask, log
from .view import known_ids, parse_info, parse_nodes, slot_text

CREATION_PATIENCE = 30.0  # seconds a member waits for a creation that set its epoch


def own_state(helper):
    """(known nodes, slots assigned, keys, config epoch) of this node, or None while it is loading."""
    from ..resp import ReplyError

    info = helper.local.call("CLUSTER", "INFO")
    keys = helper.local.call("DBSIZE")
    if isinstance(info, ReplyError) or isinstance(keys, ReplyError):
        helper.link.reason = f"this server: {info if isinstance(info, ReplyError) else keys}"
        return None
    state = parse_info(info)
    return (
        int(state.get("cluster_known_nodes", "1")),
        int(state.get("cluster_slots_assigned", "0")),
        keys,
        int(state.get("cluster_my_epoch", "0")),
    )


def watch(helper):
    """Not the creator: wait to be added, or join the cluster the other members already form."""
    link = helper.link
    members = [Member(host, port) for host, port in helper.cluster.nodes]
    first_seen = {}  # verdict -> when it was first seen

    def look():
        own = own_state(helper)
        if own is None:
            return None
        states, answered = [], []
        for member in members:
            state = link.cluster_state(member) if link.reach(member) else None
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
            again = own_state(helper)
            if again is None or watch_verdict(again, states, patient)[0] != "join":
                return None
            return verdict, answered[index]
        if verdict in ("member", "not-empty"):
            return verdict, own
        link.reason = "being added by the creator" if verdict == "creating" else "no member is in a cluster yet"
        return None

    log("waiting to be added to the cluster, or for a formed cluster to join")
    verdict, detail = link.wait("the creator to add this node, or a formed cluster to join", look)
    if verdict == "member":
        log(f"another member added this node to the cluster ({detail[0]} nodes known, {detail[1]} slots): done")
        return 0
    if verdict == "not-empty":
        log(
            f"this node holds {detail[2]} keys but belongs to no cluster: left alone (as a replica it "
            "would drop them); add it by hand (valkey-cli --cluster add-node)"
        )
        return 1
    return join(helper, detail)


def join(helper, peer):
    """Join the cluster ``peer`` (a connected Member) belongs to; this node is empty and alone."""
    link, local, cluster = helper.link, helper.local, helper.cluster
    me = cluster.identity
    my_id = ask(local, "CLUSTER", "MYID")
    view = parse_nodes(ask(peer.conn, "CLUSTER", "NODES"))
    start = plan_join_start(view, me, my_id, (peer.ip, peer.port))
    ghosts = ", ".join(g.name() for g in start.ghosts)
    before = f"; it was {ghosts} before it lost its state" if ghosts else ""
    log(f"this node is empty and the members form a cluster of {len(view)} nodes without it: joining it{before}")
    meet = ["CLUSTER", "MEET", *start.meet]
    log(f"joining through {peer.name()}: {' '.join(str(a) for a in meet)}")
    ask(local, *meet)
    link.wait(
        "this node to know the members of the cluster",
        lambda: start.expected <= known_ids(ask(local, "CLUSTER", "NODES")),
    )
    reasons = []

    def decided():
        plan = plan_rejoin(parse_nodes(ask(peer.conn, "CLUSTER", "NODES")), me, my_id, cluster.replicas)
        if plan.wait:
            if plan.wait != reasons:
                for reason in plan.wait:
                    log(reason)
                reasons[:] = plan.wait
            link.reason = plan.wait[0]
            return None
        return plan

    plan = link.wait("a failover in the cluster", decided)
    for ghost in plan.forget:
        forget(helper, ghost, view, (peer.ip, peer.port))
    for ranges, owner in plan.unserved:
        log(f"slots {slot_text(ranges)} are not served: {owner.name()} is gone and has no replica")
    if plan.lost:
        where = (me.announce_ip or me.hostname or cluster.local_host, me.port)
        for ranges, owner in plan.lost:
            log(lost_line(ranges, owner, where, helper.password, helper.tls))
        log(f"this node joined the cluster as a primary without slots after {link.elapsed()}")
        return 1
    if plan.replicate is None:
        log(f"this node joined the cluster after {link.elapsed()}: {plan.why}")
        return 0
    target = plan.replicate
    link.wait(
        f"this node to know {target.name()} as a primary",
        lambda: any(n.id == target.id and "master" in n.flags for n in parse_nodes(ask(local, "CLUSTER", "NODES"))),
    )
    ask(local, "CLUSTER", "REPLICATE", target.id)
    log(f"this node replicates {target.name()}: {plan.why}")
    link.wait(
        f"the replication link to {target.name()}",
        lambda: "master_link_status:up" in ask(local, "INFO", "replication"),
    )
    log(f"this node rejoined the cluster as a replica of {target.name()}, in sync after {link.elapsed()}")
    return 0


def forget(helper, ghost, view, reached):
    """CLUSTER FORGET this node's previous incarnation on every member that still lists it."""
    from ..resp import ReplyError

    done = 0
    names = {(node.ip, node.port): node.hostname or None for node in view}
    for ip, port in forget_targets(view, ghost, reached):
        conn = helper.link.connect(ip, port, names.get((ip, port)))
        if conn is None:
            continue
        reply = conn.call("CLUSTER", "FORGET", ghost.id)
        if not isinstance(reply, ReplyError):
            done += 1
    helper.local.call("CLUSTER", "FORGET", ghost.id)  # "Unknown node" when it never learnt of it
    log(f"forgot {ghost.name()}, this node's previous incarnation, on {done} members")
