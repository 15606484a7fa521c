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

This module gathers the facts (member_link talks to the members) and carries
out what bootstrap_plan decides from them.
"""

import os
import sys
import time

from .bootstrap_plan import (
    classify,
    first_look,
    forget_targets,
    in_cluster,
    is_first_member,
    lost_line,
    plan_creation,
    plan_join_start,
    plan_rejoin,
    watch_verdict,
)
from .cluster_view import known_ids, parse_info, parse_nodes, slot_text
from .errors import PROG
from .member_link import GiveUp, Link, Member, ask, can_bind, resolve

CREATION_PATIENCE = 30.0  # seconds a member waits for a creation that set its epoch


def log(message):
    print(f"{PROG}: cluster bootstrap: {message}", file=sys.stderr, flush=True)


def start_helper(cluster, password, tls=None):
    """Fork the helper (twice) and return in the entrypoint, which then execs the server.
    ``tls``: a tls_client.ClientTLS when the members speak TLS."""
    from .detach import run_beside_server

    server_pid = os.getpid()
    run_beside_server(lambda: Bootstrap(cluster, password, server_pid, tls).run(), log)


class Bootstrap:
    def __init__(self, cluster, password, server_pid, tls=None):
        self.cluster = cluster
        self.password = password.value if password else None
        self.tls = tls
        self.link = Link(self.password, server_pid, cluster.timeout, tls)
        self.local = None  # a connection to this node's own server

    def run(self):
        try:
            known, slots = self.this_node()
            look = first_look(known, slots)
            if look == "member":
                log(f"this node is already in a cluster ({known} nodes known): nothing to do")
                return 0
            creator = self.cluster.creator
            if creator is None:
                creator = self.is_first_member()
            if not creator:
                return self.watch()  # "assigned": the creator is adding it, which watch() sees through
            if look == "assigned":
                log(f"this node is already in a cluster ({known} nodes known): nothing to do")
                return 0
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
            self.link.close_all()

    # -- the facts

    def this_node(self):
        """(known nodes, slots assigned) of this node's own server, once it answers."""
        host, port = self.cluster.local_host, self.cluster.port
        name = self.tls.server_name if self.tls else None
        self.local = self.link.wait(f"this server on {host}:{port}", lambda: self.link.connect(host, port, name))
        state = parse_info(self.local.call("CLUSTER", "INFO"))
        return int(state.get("cluster_known_nodes", "1")), int(state.get("cluster_slots_assigned", "0"))

    def is_first_member(self):
        """For auto without an announced name or IP to compare: does the first member resolve to us?"""
        host, port = self.cluster.nodes[0]
        me = self.cluster.identity
        addresses = self.link.wait(f"{host} to resolve", lambda: resolve(host, port))
        mine = [me.announce_ip] if me.announce_ip else me.binds
        found = is_first_member(addresses, mine)
        if found is None:
            found = any(can_bind(address) for address in addresses)
        if not found:
            log(f"{host}:{port} is not this node: the first member creates the cluster")
        return found

    def wait_for_members(self):
        """Every member connected (their IDs read), or the first member found in a formed cluster."""
        link = self.link
        members = [Member(host, port) for host, port in self.cluster.nodes]
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

    def own_state(self):
        """(known nodes, slots assigned, keys, config epoch) of this node, or None while it is loading."""
        from .resp import ReplyError

        info = self.local.call("CLUSTER", "INFO")
        keys = self.local.call("DBSIZE")
        if isinstance(info, ReplyError) or isinstance(keys, ReplyError):
            self.link.reason = f"this server: {info if isinstance(info, ReplyError) else keys}"
            return None
        state = parse_info(info)
        return (
            int(state.get("cluster_known_nodes", "1")),
            int(state.get("cluster_slots_assigned", "0")),
            keys,
            int(state.get("cluster_my_epoch", "0")),
        )

    def inspect(self, members):
        states, details = [], []
        for member in members:
            state = parse_info(member.call("CLUSTER", "INFO"))
            keys = member.call("DBSIZE")
            known, slots = int(state.get("cluster_known_nodes", "0")), int(state.get("cluster_slots_assigned", "0"))
            states.append((known, slots, keys))
            details.append(f"{member.name()}: {known} known, {slots} slots, {keys} keys")
        return classify(states), "; ".join(details)

    # -- not the creator

    def watch(self):
        """Not the creator: wait to be added, or join the cluster the other members already form."""
        link = self.link
        members = [Member(host, port) for host, port in self.cluster.nodes]
        first_seen = {}  # verdict -> when it was first seen

        def look():
            own = self.own_state()
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
                again = self.own_state()
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
        return self.join(detail)

    def join(self, peer):
        """Join the cluster ``peer`` (a connected Member) belongs to; this node is empty and alone."""
        link = self.link
        me = self.cluster.identity
        my_id = ask(self.local, "CLUSTER", "MYID")
        view = parse_nodes(ask(peer.conn, "CLUSTER", "NODES"))
        start = plan_join_start(view, me, my_id, (peer.ip, peer.port))
        ghosts = ", ".join(g.name() for g in start.ghosts)
        before = f"; it was {ghosts} before it lost its state" if ghosts else ""
        log(f"this node is empty and the members form a cluster of {len(view)} nodes without it: joining it{before}")
        meet = ["CLUSTER", "MEET", *start.meet]
        log(f"joining through {peer.name()}: {' '.join(str(a) for a in meet)}")
        ask(self.local, *meet)
        link.wait(
            "this node to know the members of the cluster",
            lambda: start.expected <= known_ids(ask(self.local, "CLUSTER", "NODES")),
        )
        reasons = []

        def decided():
            plan = plan_rejoin(parse_nodes(ask(peer.conn, "CLUSTER", "NODES")), me, my_id, self.cluster.replicas)
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
            self.forget(ghost, view, (peer.ip, peer.port))
        for ranges, owner in plan.unserved:
            log(f"slots {slot_text(ranges)} are not served: {owner.name()} is gone and has no replica")
        if plan.lost:
            where = (me.announce_ip or me.hostname or self.cluster.local_host, me.port)
            for ranges, owner in plan.lost:
                log(lost_line(ranges, owner, where, self.password, self.tls))
            log(f"this node joined the cluster as a primary without slots after {link.elapsed()}")
            return 1
        if plan.replicate is None:
            log(f"this node joined the cluster after {link.elapsed()}: {plan.why}")
            return 0
        target = plan.replicate
        link.wait(
            f"this node to know {target.name()} as a primary",
            lambda: any(
                n.id == target.id and "master" in n.flags for n in parse_nodes(ask(self.local, "CLUSTER", "NODES"))
            ),
        )
        ask(self.local, "CLUSTER", "REPLICATE", target.id)
        log(f"this node replicates {target.name()}: {plan.why}")
        link.wait(
            f"the replication link to {target.name()}",
            lambda: "master_link_status:up" in ask(self.local, "INFO", "replication"),
        )
        log(f"this node rejoined the cluster as a replica of {target.name()}, in sync after {link.elapsed()}")
        return 0

    def forget(self, ghost, view, reached):
        """CLUSTER FORGET this node's previous incarnation on every member that still lists it."""
        from .resp import ReplyError

        done = 0
        names = {(node.ip, node.port): node.hostname or None for node in view}
        for ip, port in forget_targets(view, ghost, reached):
            conn = self.link.connect(ip, port, names.get((ip, port)))
            if conn is None:
                continue
            reply = conn.call("CLUSTER", "FORGET", ghost.id)
            if not isinstance(reply, ReplyError):
                done += 1
        self.local.call("CLUSTER", "FORGET", ghost.id)  # "Unknown node" when it never learnt of it
        log(f"forgot {ghost.name()}, this node's previous incarnation, on {done} members")

    # -- the creator

    def create(self, members):
        cluster = self.cluster
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
        self.link.wait(
            "the members to know each other",
            lambda: all(ids <= known_ids(m.call("CLUSTER", "NODES")) for m in members),
        )
        for replica, primary in plan.replicate:
            members[replica].call("CLUSTER", "REPLICATE", members[primary].id)
            log(f"{members[replica].name()} replicates {members[primary].name()}")
        self.link.wait(
            "cluster_state:ok on every member",
            lambda: all(parse_info(m.call("CLUSTER", "INFO")).get("cluster_state") == "ok" for m in members),
        )
        log(f"cluster created: cluster_state:ok on all {len(members)} members after {self.link.elapsed()}")
