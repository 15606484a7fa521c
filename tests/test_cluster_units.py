"""Pieces of cluster mode with no server: nodes.conf refresh, addresses, files, who starts the helper.

The bootstrap helper's decisions have their own tests: test_bootstrap_plan.py.
"""

import os
import stat

import pytest

from valkey_bundle.addresses import first_label, is_ip, is_ipv6, parse_host_port
from valkey_bundle.cluster import nodes_conf
from valkey_bundle.cluster.bootstrap import is_first_member
from valkey_bundle.cluster.link import Helper
from valkey_bundle.cluster.plan import ClusterPlan, Identity
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
    return Helper(cluster, None, os.getpid())


def test_first_member_by_name_when_nothing_else_tells(capsys):
    # Listening on every address: a name that resolves to one of this machine's is this node.
    assert is_first_member(helper_for(("localhost", 6379), Identity(6379))) is True
    assert is_first_member(helper_for(("localhost", 6379), Identity(6379, announce_ip="127.0.0.1"))) is True
    assert is_first_member(helper_for(("localhost", 6379), Identity(6379, binds=["127.0.0.9"]))) is False
    assert is_first_member(helper_for(("localhost", 6379), Identity(6379, announce_ip="10.9.9.9"))) is False
    assert "localhost:6379 is not this node" in capsys.readouterr().err


# ------------------------------------------------------------- who starts the helper

A, NEW = "a" * 40, "9" * 40  # a primary, this node


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
    assert nodes_conf.alone(cluster) is alone


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
