"""Pieces of cluster mode with no server: nodes.conf refresh, slot and replica layout, files."""

import itertools
import os
import stat

import pytest

from valkey_bundle import apply, nodes_conf
from valkey_bundle import bootstrap as rejoin
from valkey_bundle.addresses import first_label, is_ip, is_ipv6, parse_host_port
from valkey_bundle.bootstrap import SLOTS, Bootstrap, assign_replicas, classify, known_ids, parse_info, slot_ranges
from valkey_bundle.cluster_plan import ClusterPlan, Identity
from valkey_bundle.command import normalise_command
from valkey_bundle.plan import final_server_args, make_plan
from valkey_bundle.secret import Password, include_text, write_private_file
from valkey_bundle.server_config import read_server_config
from valkey_bundle.settings import read_bundle_env
from valkey_bundle.tokens import split_config_args

# As valkey 9 writes it: hostname (or an empty one) and aux fields after the address;
# an IPv6 address without brackets (the port is after the last colon).
NODES_CONF = """\
1111111111111111111111111111111111111111 10.0.0.1:6379@16379,db-0.svc,tls-port=0,shard-id=aaaa myself,master - 0 0 1 connected 0-5460
2222222222222222222222222222222222222222 10.0.0.2:6379@16379,db-1.svc,tls-port=0,shard-id=bbbb master - 0 1700000000000 2 connected 5461-10922
3333333333333333333333333333333333333333 10.0.0.3:6379@16379,db-2.svc,tls-port=0,shard-id=cccc master - 0 1700000000000 3 connected 10923-16383
4444444444444444444444444444444444444444 10.0.0.4:6379@16379,,tls-port=0,shard-id=aaaa slave 1111111111111111111111111111111111111111 0 1700000000000 1 connected
5555555555555555555555555555555555555555 fd00::5:6379@16379,db-4.svc master,fail - 0 0 0 disconnected
vars currentEpoch 3 lastVoteEpoch 0
"""  # noqa: E501
NEW_IPS = {"db-0.svc": ["10.9.0.1"], "db-1.svc": ["10.9.0.2"], "db-2.svc": ["fd00::9", "10.9.0.3"]}


def fake_resolver(table, calls=None):
    def resolve(name):
        if calls is not None:
            calls.append(name)
        return table.get(name, [])

    return resolve


def line_of(text, node_id):
    return next(line for line in text.splitlines() if line.startswith(node_id))


# ------------------------------------------------------------- nodes.conf


def test_refresh_replaces_peer_ips_from_their_hostnames():
    calls = []
    text, changes = nodes_conf.refresh_text(NODES_CONF, fake_resolver(NEW_IPS, calls))
    assert line_of(text, "2222").split(" ")[1] == "10.9.0.2:6379@16379,db-1.svc,tls-port=0,shard-id=bbbb"
    # Same family as before is preferred.
    assert line_of(text, "3333").split(" ")[1].startswith("10.9.0.3:6379@16379,db-2.svc,")
    assert [c[1:] for c in changes] == [("db-1.svc", "10.0.0.2", "10.9.0.2"), ("db-2.svc", "10.0.0.3", "10.9.0.3")]
    assert "db-0.svc" not in calls  # this node's own line is never looked at


def test_refresh_leaves_everything_else_byte_for_byte():
    text, _ = nodes_conf.refresh_text(NODES_CONF, fake_resolver(NEW_IPS))
    before, after = NODES_CONF.split("\n"), text.split("\n")
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        if not new.startswith(("2222", "3333")):
            assert old == new
        else:
            assert old.split(" ")[2:] == new.split(" ")[2:]


def test_refresh_keeps_unresolved_unchanged_and_no_hostname_peers():
    text, changes = nodes_conf.refresh_text(NODES_CONF, fake_resolver({}))
    assert text == NODES_CONF and changes == []
    # Still at a resolved address: nothing to do.
    same = {"db-1.svc": ["10.0.0.7", "10.0.0.2"]}
    assert nodes_conf.refresh_text(NODES_CONF, fake_resolver(same)) == (NODES_CONF, [])


def test_refresh_ipv6_peer():
    table = {"db-4.svc": ["fd00::44"]}
    text, changes = nodes_conf.refresh_text(NODES_CONF, fake_resolver(table))
    assert line_of(text, "5555").split(" ")[1] == "fd00::44:6379@16379,db-4.svc"
    assert changes == [("5555555555555555555555555555555555555555", "db-4.svc", "fd00::5", "fd00::44")]


def test_peer_hostnames():
    assert nodes_conf.peer_hostnames(NODES_CONF) == ["db-1.svc", "db-2.svc", "db-4.svc"]
    assert nodes_conf.peer_hostnames("") == []


def test_refresh_file_is_atomic_and_keeps_mode_and_owner(tmp_path):
    path = tmp_path / "nodes.conf"
    path.write_text(NODES_CONF)
    os.chmod(path, 0o640)
    before = os.stat(path)
    nodes_conf.refresh_file(str(path), resolve=lambda names: {n: NEW_IPS[n] for n in names if n in NEW_IPS})
    after = os.stat(path)
    assert after.st_ino != before.st_ino  # replaced by rename, never rewritten in place
    assert stat.S_IMODE(after.st_mode) == 0o640 and (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert "10.9.0.2:6379@16379" in path.read_text()
    assert sorted(os.listdir(tmp_path)) == ["nodes.conf"]  # no temporary left


def test_refresh_file_untouched_when_nothing_changes(tmp_path):
    path = tmp_path / "nodes.conf"
    path.write_text(NODES_CONF)
    inode = os.stat(path).st_ino
    nodes_conf.refresh_file(str(path), resolve=lambda names: {})
    assert os.stat(path).st_ino == inode and path.read_text() == NODES_CONF
    nodes_conf.refresh_file(str(tmp_path / "missing.conf"), resolve=lambda names: pytest.fail("resolved"))


def test_resolve_all_gives_up_at_the_deadline():
    found = nodes_conf.resolve_all(["localhost", "no-such-host.invalid"], budget=0.5)
    assert "127.0.0.1" in found["localhost"] or "::1" in found["localhost"]
    assert "no-such-host.invalid" not in found


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


# ------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "text, ok",
    [("::1", True), ("fd00::5", True), ("::ffff:10.0.0.1", True), ("1:2:3:4:5:6:7:8", True), (":::", False)]
    + [("1:2:3:4:5:6:7", False), ("fd00::5::1", False), ("g::1", False), (":1::", False), ("10.0.0.1", False)],
)
def test_is_ipv6(text, ok):
    assert is_ipv6(text) is ok


def test_addresses():
    assert parse_host_port("[::1]:7000", "V") == ("::1", 7000)
    assert parse_host_port("Db-0.Svc.", "V") == ("db-0.svc", 6379)
    assert is_ip("10.0.0.255") and not is_ip("10.0.0") and not is_ip("１0.0.0.1")
    assert first_label("db-0.headless.ns.svc") == "db-0" and first_label("10.0.0.1") == "10.0.0.1"


# ------------------------------------------------------------- password include


def test_include_round_trips_any_printable_password():
    password = "p@ss \"word\" with 'quotes' \\ and spaces ünï"
    lines = include_text(Password(password, "VALKEY_PASSWORD")).splitlines()
    directives = [split_config_args(line) for line in lines if not line.startswith("#")]
    assert directives == [["requirepass", password], ["masterauth", password]]


def test_private_file_and_directory(tmp_path):
    path = tmp_path / "valkey-bundle-x" / "generated-1.conf"
    stale = tmp_path / "valkey-bundle-x" / "generated-999999999.conf"
    os.mkdir(path.parent, 0o755)
    stale.write_text("old")
    write_private_file(str(path), "requirepass x\n")
    assert path.read_text() == "requirepass x\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert not stale.exists()  # that server is gone
    write_private_file(str(path), "requirepass y\n")  # a restart with the same PID (PID 1 in a container)
    assert path.read_text() == "requirepass y\n"


def test_private_file_refuses_a_directory_it_does_not_own(tmp_path):
    link = tmp_path / "valkey-bundle-x"
    os.symlink(tmp_path, link)
    with pytest.raises(PermissionError, match="is not a directory of uid"):
        write_private_file(str(link / "generated-1.conf"), "x")


# ------------------------------------------------------------- run-time election


def helper_for(first, identity):
    cluster = ClusterPlan()
    cluster.nodes = [first, ("db-1", 6379), ("db-2", 6379)]
    cluster.identity = identity
    cluster.timeout = 5.0
    return Bootstrap(cluster, None, os.getpid())


def test_first_member_by_name_when_nothing_else_tells(capsys):
    # Listening on every address: a name that resolves to one of this machine's is this node.
    assert helper_for(("localhost", 6379), Identity(6379)).is_first_member() is True
    assert helper_for(("localhost", 6379), Identity(6379, announce_ip="127.0.0.1")).is_first_member() is True
    assert helper_for(("localhost", 6379), Identity(6379, binds=["127.0.0.9"])).is_first_member() is False
    assert helper_for(("localhost", 6379), Identity(6379, announce_ip="10.9.9.9")).is_first_member() is False
    assert "localhost:6379 is not this node" in capsys.readouterr().err


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
    return rejoin.parse_nodes("\n".join(lines) + "\n")


HEALTHY = [
    node_line(A, "db-0.svc", "master", slots="0-5460"),
    node_line(B, "db-1.svc", "myself,master", slots="5461-10922"),
    node_line(C, "db-2.svc", "master", slots="10923-16383"),
    node_line(RA, "db-3.svc", "slave", A),
    node_line(RC, "db-5.svc", "slave", C),
]


def test_parse_nodes():
    nodes = rejoin.parse_nodes(
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
    assert rejoin.slot_text([(0, 5460), (7, 7)]) == "0-5460, 7"
    assert rejoin.uncovered(view(*HEALTHY)) == []
    assert rejoin.uncovered(view(*HEALTHY[1:])) == [(0, 5460)]
    assert rejoin.uncovered([]) == [(0, SLOTS - 1)]


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
    bare = rejoin.parse_nodes(f"{RB} 10.0.0.24:6379@16379 slave,fail {B} 0 0 1 disconnected\n")[0]
    assert rejoin.previous_self(bare, Identity(6379, announce_ip="10.0.0.24"), NEW)
    assert not rejoin.previous_self(bare, Identity(7000, announce_ip="10.0.0.24"), NEW)
    handshake = rejoin.parse_nodes(f"{RB} 10.0.0.24:6379@16379 handshake - 0 0 0 disconnected\n")[0]
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


# ------------------------------------------------------------- who starts the helper


@pytest.mark.parametrize(
    "text, alone",
    [
        (None, True),  # a first start, or a lost volume
        ("", True),
        (f"{NEW} :0@0,,tls-port=0 myself,master - 0 0 0 connected\nvars currentEpoch 0 lastVoteEpoch 0\n", True),
        (NODES_CONF, False),
        (
            f"{NEW} 10.0.0.4:6379@16379 myself,slave {A} 0 0 0 connected\n{A} 10.0.0.1:6379@16379 master - 0 0 1 x\n",
            False,
        ),
    ],
)
def test_helper_only_for_a_node_without_peers(tmp_path, text, alone):
    cluster = ClusterPlan()
    cluster.nodes_conf = str(tmp_path / "nodes.conf")
    if text is not None:
        (tmp_path / "nodes.conf").write_text(text)
    assert apply.alone(cluster) is alone


def plan_of(environ, command=("valkey-server", "--cluster-enabled", "yes")):
    env = read_bundle_env(environ)
    args, server_mode = normalise_command(list(command))
    config = read_server_config(final_server_args(args, env), "/")
    return make_plan(args, server_mode, env, {}, {}, config, identity=(999, None))


def test_every_member_but_the_creator_may_join():
    three = "db-0.svc:6379,db-1.svc:6379,db-2.svc:6379"
    member = {"VALKEY_CLUSTER_NODES": three, "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db-1.svc"}
    plan = plan_of(member).cluster
    assert (plan.creator, plan.join) == (False, True) and plan.as_dict()["join"] is True
    creator = plan_of(dict(member, VALKEY_CLUSTER_ANNOUNCE_HOSTNAME="db-0.svc")).cluster
    assert (creator.creator, creator.join) == (True, False)  # its helper starts anyway
    assert plan_of(dict(member, VALKEY_CLUSTER_BOOTSTRAP="no")).cluster.join is False
    stranger = plan_of(dict(member, VALKEY_CLUSTER_ANNOUNCE_HOSTNAME="other.svc")).cluster
    assert stranger.join is False  # not one of the members
    by_ip = plan_of({"VALKEY_CLUSTER_NODES": "10.0.0.5 10.0.0.6 10.0.0.7", "VALKEY_CLUSTER_ANNOUNCE_IP": "10.0.0.6"})
    assert (by_ip.cluster.creator, by_ip.cluster.join) == (False, True)
