"""The cluster bootstrap helper's decisions, and its reading of CLUSTER NODES, with no server.

cluster/bootstrap.py, form.py and join.py gather the facts from the members and carry out
what cluster/decisions.py decides; here each decision gets the facts as a server would give
them (CLUSTER NODES text, counts, addresses) and its answer is checked.
"""

import itertools

import pytest

from valkey_bundle.cluster import decisions as rejoin
from valkey_bundle.cluster.decisions import assign_replicas, classify, slot_ranges
from valkey_bundle.cluster.plan import Identity
from valkey_bundle.cluster.view import SLOTS, known_ids, parse_info, parse_nodes, slot_text, uncovered

# ------------------------------------------------------------- layout


@pytest.mark.parametrize("primaries", [1, 3, 4, 7, 100])
def test_slot_ranges_cover_every_slot_once_evenly(primaries):
    ranges = slot_ranges(primaries)
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [last - first + 1 for first, last in ranges]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == SLOTS


def test_slot_ranges_for_three():
    assert slot_ranges(3) == [(0, 5461), (5462, 10922), (10923, 16383)]


def test_replicas_spread_evenly_and_avoid_their_primarys_host():
    assert assign_replicas(["a", "b", "c"], ["d", "e", "f"], 1) == [0, 1, 2]
    # The replica on host a goes to a primary elsewhere.
    assert assign_replicas(["a", "b", "c"], ["a", "b", "c"], 1) in ([1, 2, 0], [1, 0, 2], [2, 0, 1])
    chosen = assign_replicas(["a", "b", "c"], ["a", "a", "b", "b", "c", "c"], 2)
    assert sorted(chosen) == [0, 0, 1, 1, 2, 2]
    hosts = ["a", "b", "c"]
    assert all(hosts[p] != r for p, r in zip(chosen, ["a", "a", "b", "b", "c", "c"], strict=True))
    # One host only: no choice, still balanced.
    assert sorted(assign_replicas(["h", "h", "h"], ["h", "h", "h"], 1)) == [0, 1, 2]


def test_classify():
    assert classify([(1, 0, 0)] * 3) == "empty"
    assert classify([(3, 5461, 0), (3, 5461, 10), (3, 5462, 0)]) == "formed"
    assert classify([(3, 0, 0), (3, 0, 0), (3, 16384, 0)]) == "formed"  # replicas own no slots
    assert classify([(1, 0, 0), (1, 0, 0), (1, 0, 1)]) == "mixed"  # data somewhere: never overwrite
    assert classify([(3, 16384, 0), (1, 0, 0), (1, 0, 0)]) == "mixed"
    assert classify([(3, 0, 0), (3, 0, 0), (3, 0, 0)]) == "mixed"  # met, no slots: half made


def test_known_ids_skips_handshakes():
    text = (
        "aaa 10.0.0.1:6379@16379 myself,master - 0 0 1 connected\n"
        "bbb 10.0.0.2:6379@16379 master - 0 0 2 connected\n"
        "ccc 10.0.0.3:6379@16379 handshake - 0 0 0 disconnected\n"
        "ddd :0@0 master,noaddr - 0 0 0 disconnected\n"
    )
    assert known_ids(text) == {"aaa", "bbb"}
    assert parse_info("cluster_state:ok\r\ncluster_known_nodes:3\r\n") == {
        "cluster_state": "ok",
        "cluster_known_nodes": "3",
    }


# ------------------------------------------------------------- joining a cluster that exists

# A cluster seen from valkey-1 (3 primaries, a replica each), as CLUSTER NODES shows it.
A, B, C = "a" * 40, "b" * 40, "c" * 40
RA, RB, RC = "d" * 40, "e" * 40, "f" * 40
NEW = "9" * 40
ME = Identity(6379, announce_ip="10.0.0.24", hostname="db-4.svc")


def node_line(node_id, host, flags, primary="-", slots="", ip=None, link="connected"):
    ip = ip if ip is not None else f"10.0.0.{host[3]}"
    address = f"{ip}:6379@16379,{host}" if ip else f":0@0,{host}"
    return f"{node_id} {address} {flags} {primary} 0 1700000000000 1 {link} {slots}".rstrip()


def view(*lines):
    return parse_nodes("\n".join(lines) + "\n")


HEALTHY = [
    node_line(A, "db-0.svc", "master", slots="0-5460"),
    node_line(B, "db-1.svc", "myself,master", slots="5461-10922"),
    node_line(C, "db-2.svc", "master", slots="10923-16383"),
    node_line(RA, "db-3.svc", "slave", A),
    node_line(RC, "db-5.svc", "slave", C),
]


def test_parse_nodes():
    nodes = parse_nodes(
        f"{A} 10.0.0.1:6379@16379,db-0.svc myself,master - 0 0 1 connected 0-5460 7000 [7001->-{B}]\n"
        f"{B} fd00::2:7000@17000 slave {A} 0 1700000000000 1 connected\n"
        f"{C} :0@0,db-2.svc master,fail,noaddr - 0 1700000000000 3 disconnected\n"
        "garbage\n"
    )
    first, second, third = nodes
    assert (first.ip, first.port, first.cport, first.hostname) == ("10.0.0.1", 6379, 16379, "db-0.svc")
    assert first.slots == [(0, 5460), (7000, 7000)]  # a slot on its way out is not counted twice
    assert first.flags == {"myself", "master"} and first.primary is None
    assert (second.ip, second.port, second.hostname, second.primary) == ("fd00::2", 7000, "", A)
    assert (third.ip, third.port, third.hostname) == ("", 0, "db-2.svc")
    assert third.name() == "cccccccc (db-2.svc)" and second.name() == "bbbbbbbb ([fd00::2]:7000)"


def test_slot_text_and_uncovered():
    assert slot_text([(0, 5460), (7, 7)]) == "0-5460, 7"
    assert uncovered(view(*HEALTHY)) == []
    assert uncovered(view(*HEALTHY[1:])) == [(0, 5460)]
    assert uncovered([]) == [(0, SLOTS - 1)]


@pytest.mark.parametrize(
    "own, peers, patient, verdict",
    [
        ((1, 0, 0, 0), [(1, 0), (1, 0)], True, ("wait", None)),
        ((1, 0, 0, 0), [(1, 0), (6, 16384)], True, ("join", 1)),
        # Its epoch is set: the creator has begun and is about to MEET it; joining now would race.
        ((1, 0, 0, 3), [(6, 16384)], True, ("creating", 0)),
        ((1, 0, 0, 3), [(6, 16384)], False, ("join", 0)),  # waited long enough: the creation never came
        ((2, 0, 0, 3), [(6, 16384)], True, ("member", None)),  # met by the creator
        ((1, 5461, 0, 1), [(1, 5461)], True, ("member", None)),  # given slots by the creator
        ((1, 0, 12, 0), [(6, 16384)], True, ("not-empty", None)),  # keys: never made a replica
        ((1, 0, 0, 0), [(1, 1)], True, ("wait", None)),  # a lone node with slots is no cluster
        ((1, 0, 0, 0), [(3, 0)], True, ("wait", None)),  # met but no slots yet: a creation under way
    ],
)
def test_watch_verdict(own, peers, patient, verdict):
    assert rejoin.watch_verdict(own, peers, patient) == verdict


def test_previous_self_by_name_then_by_address():
    ghost = view(node_line(RB, "db-4.svc", "slave,fail", B))[0]
    assert rejoin.previous_self(ghost, ME, NEW)
    assert not rejoin.previous_self(ghost, ME, RB)  # that is this node's ID now
    assert not rejoin.previous_self(ghost, Identity(6379, hostname="db-5.svc"), NEW)
    # Same address as an old node of another name (an address reused): not this node.
    other = view(node_line(RB, "db-9.svc", "slave", B, ip="10.0.0.24"))[0]
    assert not rejoin.previous_self(other, ME, NEW)
    # Without announced names, the announced address and port tell.
    bare = parse_nodes(f"{RB} 10.0.0.24:6379@16379 slave,fail {B} 0 0 1 disconnected\n")[0]
    assert rejoin.previous_self(bare, Identity(6379, announce_ip="10.0.0.24"), NEW)
    assert not rejoin.previous_self(bare, Identity(7000, announce_ip="10.0.0.24"), NEW)
    handshake = parse_nodes(f"{RB} 10.0.0.24:6379@16379 handshake - 0 0 0 disconnected\n")[0]
    assert not rejoin.previous_self(handshake, Identity(6379, announce_ip="10.0.0.24"), NEW)


@pytest.mark.parametrize(
    "ghost",
    [
        node_line(RB, "db-4.svc", "slave", B),  # still looks alive (its old address is not failed yet)
        node_line(RB, "db-4.svc", "slave,fail", B, link="disconnected"),
        node_line(RB, "db-4.svc", "slave,fail,noaddr", B, ip=""),  # its address answered with another ID
    ],
)
def test_an_empty_replica_goes_back_to_its_primary_and_forgets_its_old_id(ghost):
    plan = rejoin.plan_rejoin(view(*HEALTHY, ghost), ME, NEW, 1)
    assert not plan.wait and not plan.lost and not plan.unserved
    assert [g.id for g in plan.forget] == [RB]
    assert plan.replicate.id == B
    assert plan.why == "bbbbbbbb (db-1.svc) has 0 of 1 replica(s), and this node replicated it before"


def test_the_primary_with_the_fewest_replicas_first_then_the_first_slots():
    without_c = [line for line in HEALTHY if not line.startswith(RC)]
    plan = rejoin.plan_rejoin(view(*without_c), ME, NEW, 1)
    assert plan.replicate.id == B  # B and C have none: B serves the lower slots
    assert plan.forget == [] and "has 0 of 1" in plan.why
    two = rejoin.plan_rejoin(view(*without_c, node_line(RC, "db-5.svc", "slave", B)), ME, NEW, 2)
    assert two.replicate.id == C  # A and B have one each, C none
    # This node itself (met, a primary without slots) is nobody's replica and no candidate.
    me_now = node_line(NEW, "db-4.svc", "master", ip="10.0.0.24")
    assert rejoin.plan_rejoin(view(*without_c, me_now), ME, NEW, 1).replicate.id == B


def test_no_primary_lacking_a_replica_or_none_wanted():
    full = [*HEALTHY, node_line(RB, "db-6.svc", "slave", B)]
    plan = rejoin.plan_rejoin(view(*full), ME, NEW, 1)
    assert plan.replicate is None and "every primary has 1 replica(s) or more" in plan.why
    plan = rejoin.plan_rejoin(view(*HEALTHY), ME, NEW, 0)
    assert plan.replicate is None and "VALKEY_CLUSTER_REPLICAS is 0" in plan.why


def test_failed_replicas_do_not_count():
    failed = node_line(RB, "db-6.svc", "slave,fail", B, link="disconnected")
    assert rejoin.plan_rejoin(view(*HEALTHY, failed), ME, NEW, 1).replicate.id == B
    # A suspected one (fail?) still counts: it may only be slow.
    suspect = node_line(RB, "db-6.svc", "slave,fail?", B)
    assert rejoin.plan_rejoin(view(*HEALTHY, suspect), ME, NEW, 1).replicate is None


def test_a_lost_primary_waits_for_its_replica_to_take_over():
    lines = [line for line in HEALTHY if not line.startswith(B)]
    lines += [node_line(B, "db-4.svc", "master", slots="5461-10922"), node_line(RB, "db-1.svc", "myself,slave", B)]
    plan = rejoin.plan_rejoin(view(*lines), ME, NEW, 1)
    assert plan.wait == [
        "slots 5461-10922 of bbbbbbbb (db-4.svc), which is gone: waiting for its replica eeeeeeee (db-1.svc) "
        "to take them over"
    ]
    assert plan.replicate is None and plan.forget == []  # its old self owns slots: not forgotten yet
    # After the failover: the old self has no slots, its replica serves them and lacks a replica.
    lines = [line for line in HEALTHY if not line.startswith(B)]
    lines += [
        node_line(B, "db-4.svc", "master,fail", link="disconnected"),
        node_line(RB, "db-1.svc", "myself,master", slots="5461-10922"),
    ]
    plan = rejoin.plan_rejoin(view(*lines), ME, NEW, 1)
    assert not plan.wait and [g.id for g in plan.forget] == [B] and plan.replicate.id == RB


def test_slots_of_a_lost_primary_without_replica_are_not_taken():
    lines = [line for line in HEALTHY if not line.startswith(B)]
    lines += [node_line(B, "db-4.svc", "master,fail", slots="5461-10922", link="disconnected")]
    lines[0] = lines[0].replace("master", "myself,master")
    plan = rejoin.plan_rejoin(view(*lines), ME, NEW, 1)
    assert [(ranges, owner.id) for ranges, owner in plan.lost] == [([(5461, 10922)], B)]
    assert plan.replicate is None and plan.forget == [] and not plan.wait
    # Slots nobody claims (the old node was forgotten by hand): lost too, with no owner to name.
    plan = rejoin.plan_rejoin(view(*lines[:-1]), ME, NEW, 1)
    assert plan.lost == [([(5461, 10922)], None)] and plan.replicate is None


def test_another_gone_primary_is_reported_and_the_join_goes_on():
    lines = [line for line in HEALTHY if not line.startswith((C, RC))]
    lines += [node_line(C, "db-2.svc", "master,fail", slots="10923-16383", link="disconnected")]
    plan = rejoin.plan_rejoin(view(*lines), ME, NEW, 1)
    assert [(ranges, owner.id) for ranges, owner in plan.unserved] == [([(10923, 16383)], C)]
    assert not plan.lost and plan.replicate.id == B


def test_lost_line_is_one_line_with_the_commands():
    owner = view(node_line(B, "db-4.svc", "master,fail", slots="0-10 20-30"))[0]
    line = rejoin.lost_line([(0, 10), (20, 30)], owner, ("10.0.0.24", 6379), "secret")
    assert "\n" not in line and "secret" not in line
    assert line.startswith("slots 0-10, 20-30 have no owner: bbbbbbbb (db-4.svc), which was this node before")
    cli = "valkey-cli -h 10.0.0.24 -p 6379 -a PASSWORD"
    assert f"{cli} CLUSTER ADDSLOTSRANGE 0 10 20 30 && {cli} CLUSTER BUMPEPOCH" in line
    assert line.endswith(f"then CLUSTER FORGET {B} on every other node")
    bare = rejoin.lost_line([(5, 5)], None, ("db-4.svc", 7000), None)
    assert "no node in the cluster serves them" in bare and "-a PASSWORD" not in bare and "FORGET" not in bare
    assert "valkey-cli -h db-4.svc -p 7000 CLUSTER ADDSLOTSRANGE 5 5 &&" in bare


# ------------------------------------------------------------- what to create


def test_creation_of_three_primaries():
    plan = rejoin.plan_creation(["10.0.0.1", "10.0.0.2", "10.0.0.3"], 0)
    assert plan.primaries == 3 and plan.seed == 0
    assert plan.epochs == [(0, 1), (1, 2), (2, 3)]  # distinct from the start
    assert plan.slots == [(0, (0, 5461)), (1, (5462, 10922)), (2, (10923, 16383))]
    assert plan.meet == [1, 2] and plan.replicate == []


def test_creation_with_replicas_on_other_hosts():
    # Six members on three hosts, listed primaries first: each replica goes to another host's primary.
    ips = ["h1", "h2", "h3", "h1", "h2", "h3"]
    plan = rejoin.plan_creation(ips, 1)
    assert plan.primaries == 3 and [index for index, _ in plan.slots] == [0, 1, 2]
    assert plan.meet == [1, 2, 3, 4, 5] and len(plan.epochs) == 6
    assert sorted(replica for replica, _ in plan.replicate) == [3, 4, 5]
    assert sorted(primary for _, primary in plan.replicate) == [0, 1, 2]
    assert all(ips[replica] != ips[primary] for replica, primary in plan.replicate)
    # Two replicas each: nine members, three primaries.
    nine = rejoin.plan_creation([f"10.0.0.{i}" for i in range(9)], 2)
    assert nine.primaries == 3 and sorted(p for _, p in nine.replicate) == [0, 0, 1, 1, 2, 2]


# ------------------------------------------------------------- how a join starts


def test_join_starts_by_meeting_the_peer_where_it_answered():
    ghost = node_line(RB, "db-4.svc", "slave,fail", B, link="disconnected")
    failing = node_line(RC, "db-5.svc", "slave,fail?", C)
    start = rejoin.plan_join_start(view(*HEALTHY[:4], ghost, failing), ME, NEW, ("10.0.0.1", 6379))
    assert start.meet == ["10.0.0.1", 6379, 16379]  # its bus port as its own line (myself) says
    # Its own line says 10.0.0.1, an address it had before a restart: the address that answered wins.
    moved = rejoin.plan_join_start(view(*HEALTHY[:4], ghost, failing), ME, NEW, ("10.0.0.77", 6379))
    assert moved.meet == ["10.0.0.77", 6379, 16379]
    other_port = rejoin.plan_join_start(view(*HEALTHY[:4], ghost, failing), ME, NEW, ("10.9.9.9", 7000))
    assert other_port.meet == ["10.9.9.9", 7000]  # the bus port it reports belongs to another port
    assert [g.id for g in start.ghosts] == [RB]
    assert start.expected == {A, B, C, RA}  # healthy and not its old self
    # A view without a line for the peer itself: the address it was reached at.
    alone = rejoin.plan_join_start(
        view(node_line(A, "db-0.svc", "master", slots="0-16383")), ME, NEW, ("10.0.0.7", 7000)
    )
    assert alone.meet == ["10.0.0.7", 7000] and alone.ghosts == [] and alone.expected == {A}


def test_a_ghost_is_forgotten_on_every_member_that_can_hear_it():
    ghost = node_line(RB, "db-4.svc", "slave,fail", B, link="disconnected")
    failed = node_line("6" * 40, "db-6.svc", "slave,fail", C, link="disconnected")
    meeting = node_line("7" * 40, "db-7.svc", "handshake")
    no_address = node_line("8" * 40, "db-8.svc", "master,noaddr", ip="", link="disconnected")
    nodes = view(*HEALTHY, ghost, failed, meeting, no_address)
    targets = rejoin.forget_targets(nodes, next(n for n in nodes if n.id == RB))
    # A, B (the peer itself), C and the two healthy replicas; not the ghost, nor who cannot answer.
    assert targets == [(f"10.0.0.{i}", 6379) for i in (0, 1, 2, 3, 5)]
    # The peer the view came from (myself there), where it answered, whatever its line says.
    reached = rejoin.forget_targets(nodes, next(n for n in nodes if n.id == RB), ("10.0.0.77", 6379))
    assert reached == [(f"10.0.0.{i}", 6379) for i in (0,)] + [("10.0.0.77", 6379)] + [
        (f"10.0.0.{i}", 6379) for i in (2, 3, 5)
    ]


def test_first_member_by_address_when_the_node_knows_its_own():
    assert rejoin.is_first_member(["10.0.0.1"], ["10.0.0.1"]) is True
    assert rejoin.is_first_member(["fd00::1"], ["fd00:0:0::1"]) is True  # one address, two spellings
    assert rejoin.is_first_member(["10.0.0.2", "fd00::2"], ["10.0.0.1"]) is False
    assert rejoin.is_first_member(["10.0.0.1"], None) is None  # every address: only binding can tell


def test_first_look_at_this_node():
    assert rejoin.first_look(6, 5461) == "member"  # a restart: its nodes.conf lists the others
    assert rejoin.first_look(6, 0) == "member"
    # The creator gave it slots before its helper looked: not done yet, it watches the creation through.
    assert rejoin.first_look(1, 5461) == "assigned"
    assert rejoin.first_look(1, 0) == "alone"
