"""What the cluster bootstrap helper decides, from the facts it gathered.  Pure.

bootstrap.py, form.py and join.py ask the members (CLUSTER INFO, CLUSTER NODES, DBSIZE, name
resolution) and carry out what is decided here: how to create a cluster out of
empty members (epochs, slots, meetings, who replicates whom), whether a member
without cluster state waits, is done or joins, and, joining, whom it meets,
which previous incarnation it forgets, whom it replicates and which slots are
lost.  Nothing here talks to a server, so every decision is tested without one.
"""

from ..addresses import normalise_host
from .view import SLOTS, slot_text, uncovered


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


class Creation:
    """How empty members become one cluster; members are indexes into the list the plan was made from.

    epochs     [(member, epoch)]: distinct config epochs from the start, so no collision is resolved later
    slots      [(primary, (first, last))]: assigned before MEET, so the handshake tells who owns what
    seed       the member that meets the others
    meet       [member]: the members the seed meets, in order
    replicate  [(replica, primary)]
    """

    __slots__ = ("epochs", "meet", "primaries", "replicate", "seed", "slots")

    def __init__(self):
        self.epochs, self.slots, self.meet, self.replicate = [], [], [], []
        self.primaries = 0
        self.seed = 0


def plan_creation(ips, replicas):
    """The Creation for members at ``ips`` (in VALKEY_CLUSTER_NODES order), ``replicas`` per primary.

    The first members are the primaries; each replica goes to a primary on another host when it can.
    """
    plan = Creation()
    count = plan.primaries = len(ips) // (1 + replicas)
    plan.epochs = [(member, member + 1) for member in range(len(ips))]
    plan.slots = list(enumerate(slot_ranges(count)))
    plan.meet = list(range(1, len(ips)))
    if len(ips) > count:
        chosen = assign_replicas(ips[:count], ips[count:], replicas)
        plan.replicate = [(count + index, primary) for index, primary in enumerate(chosen)]
    return plan


def first_look(known, slots):
    """What this node's own state says when its helper starts.

    member    it knows other nodes: a restart of a cluster member, nothing to do
    assigned  it serves slots but knows only itself: the creator is adding it right now (or,
              on the creator, a creation that stopped half-way)
    alone     neither
    """
    if known > 1:
        return "member"
    return "assigned" if slots else "alone"


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

    ``me``: plan.Identity of this node; ``my_id``: its node ID now; ``replicas``:
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


def lost_line(ranges, owner, where, password, tls=None):
    """One log line: slots without an owner, why, and the commands that give them to this node.
    ``tls``: the tls_client.ClientTLS the commands need."""
    slots = slot_text(ranges)
    if owner is not None:
        cause = f"{owner.name()}, which was this node before it lost its data, served them and no replica took over"
    else:
        cause = "no node in the cluster serves them"
    cli = f"valkey-cli -h {where[0]} -p {where[1]}" + (" -a PASSWORD" if password else "")
    if tls is not None:
        shown = tls.as_dict()
        cli += " --tls" + (f" --cacert {shown['ca_file']}" if shown["ca_file"] else "")
        cli += f" --cert {shown['cert']} --key {shown['key']}" if shown["cert"] else ""
    spans = " ".join(f"{a} {b}" for a, b in ranges)
    fix = f"{cli} CLUSTER ADDSLOTSRANGE {spans} && {cli} CLUSTER BUMPEPOCH"
    if owner is not None:
        fix += f", then CLUSTER FORGET {owner.id} on every other node"
    return (
        f"slots {slots} have no owner: {cause}; the keys in them are lost. This node does not take them by itself; "
        f"to serve them again (empty) from this node: {fix}"
    )


class JoinStart:
    """How an empty member starts joining a cluster, from a member's CLUSTER NODES (``view``).

    ghosts    this node's previous incarnations in the view (another node ID, same name)
    meet      the CLUSTER MEET arguments: the address the member was reached at (its own line may
              be stale: a node without an announced IP keeps the one it had before a restart)
    expected  the node IDs this node must know before it decides more: the healthy ones, not its ghosts
    """

    __slots__ = ("expected", "ghosts", "meet")

    def __init__(self, ghosts, meet, expected):
        self.ghosts, self.meet, self.expected = ghosts, meet, expected


def plan_join_start(view, me, my_id, peer_address):
    """``me``: plan.Identity; ``my_id``: this node's ID now; ``peer_address``: (ip, port) it reached."""
    there = next((n for n in view if "myself" in n.flags), None)
    ghosts = [n for n in view if previous_self(n, me, my_id)]
    ip, port = peer_address
    # Its bus port as it reports it, when it reports the port it was reached at (else port + 10000).
    same_port = there is not None and there.port == port and there.cport
    meet = [ip, port] + ([there.cport] if same_port else [])
    ghost_ids = {g.id for g in ghosts}
    expected = {n.id for n in view if not n.flags & {"fail", "fail?", "noaddr", "handshake"}} - ghost_ids
    return JoinStart(ghosts, meet, expected)


def forget_targets(view, ghost, reached=None):
    """(ip, port) of every member in ``view`` that can be asked to CLUSTER FORGET ``ghost``;
    the member the view came from at ``reached``, the address it answered on."""
    return [
        (reached if reached and "myself" in node.flags else (node.ip, node.port))
        for node in view
        if node.id != ghost.id and not node.flags & (GONE | {"handshake"}) and node.ip
    ]


def is_first_member(addresses, mine):
    """Whether the first member's ``addresses`` are this node's, when ``mine`` (its announced IP or
    specific bind addresses) can tell; None when it listens on every address (only binding can tell)."""
    if mine is None:
        return None
    return any(same_ip(address, m) for address in addresses for m in mine)


def same_ip(a, b):
    """Two spellings of one address (``::1`` and ``0::1``) are the same."""
    import socket

    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, a) == socket.inet_pton(family, b)
        except OSError:
            continue
    return a == b
