"""The creator's steps: wait for every member, look at them, create the cluster out of empty
ones.  decisions.plan_creation says how (epochs, slots, meetings, replicas); this carries it out.
"""

import time

from .decisions import classify, in_cluster, plan_creation
from .link import Member, log
from .view import known_ids, parse_info


def wait_for_members(helper):
    """Every member connected (their IDs read), or the first member found in a formed cluster."""
    link = helper.link
    members = [Member(host, port) for host, port in helper.cluster.nodes]
    waiting = {}
    last_report = [None, 0.0]
    joinable = []

    def all_up():
        for member in members:
            if member.conn:
                continue
            if not link.reach(member):
                waiting[member.name()] = link.reason.split(": ", 1)[-1]
                continue
            waiting.pop(member.name(), None)
            state = link.cluster_state(member)
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
    link.wait("every member to answer PING", all_up, cap=2.0)
    if joinable:
        return joinable[0]
    for member in members:
        member.id = member.call("CLUSTER", "MYID")
    return members


def inspect_members(members):
    """(classify's verdict on the members' states, one line of what each holds)."""
    states, details = [], []
    for member in members:
        state = parse_info(member.call("CLUSTER", "INFO"))
        keys = member.call("DBSIZE")
        known, slots = int(state.get("cluster_known_nodes", "0")), int(state.get("cluster_slots_assigned", "0"))
        states.append((known, slots, keys))
        details.append(f"{member.name()}: {known} known, {slots} slots, {keys} keys")
    return classify(states), "; ".join(details)


def create(helper, members):
    """Epochs, slots, meetings, replicas, in that order; done when every member says cluster_state:ok."""
    cluster, link = helper.cluster, helper.link
    plan = plan_creation([m.ip for m in members], cluster.replicas)
    log(f"creating the cluster: {plan.primaries} primaries, {cluster.replicas} replicas each")
    for index, epoch in plan.epochs:
        members[index].conn.call("CLUSTER", "SET-CONFIG-EPOCH", epoch)
    for index, (first, last) in plan.slots:
        members[index].call("CLUSTER", "ADDSLOTSRANGE", first, last)
        log(f"slots {first}-{last} -> {members[index].name()}")
    seed = members[plan.seed]
    for index in plan.meet:
        member = members[index]
        log(f"CLUSTER MEET {member.ip} {member.port} ({member.host}) from {seed.name()}")
        seed.call("CLUSTER", "MEET", member.ip, member.port)
    ids = {m.id for m in members}
    link.wait(
        "the members to know each other",
        lambda: all(ids <= known_ids(m.call("CLUSTER", "NODES")) for m in members),
    )
    for replica, primary in plan.replicate:
        members[replica].call("CLUSTER", "REPLICATE", members[primary].id)
        log(f"{members[replica].name()} replicates {members[primary].name()}")
    link.wait(
        "cluster_state:ok on every member",
        lambda: all(parse_info(m.call("CLUSTER", "INFO")).get("cluster_state") == "ok" for m in members),
    )
    log(f"cluster created: cluster_state:ok on all {len(members)} members after {link.elapsed()}")
