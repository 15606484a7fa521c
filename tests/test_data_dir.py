"""The server's directory: what a root start hands to valkey, what it needs for that, and what
another uid cannot use although the server needs it."""

import os

import pytest

from valkey_bundle import apply, data_dir
from valkey_bundle.command import normalise_command
from valkey_bundle.data_dir import DataDir, Entry, R, W, X
from valkey_bundle.errors import UsageError
from valkey_bundle.plan import final_server_args, make_plan
from valkey_bundle.server_config import read_server_config
from valkey_bundle.settings import read_bundle_env

VALKEY = (999, 999)
ALL = frozenset(data_dir.CAPABILITY_BITS)


def entry(path, uid=999, is_dir=False, access=R | W | X, mode=None):
    mode = mode if mode is not None else (0o40700 if is_dir else 0o100600)
    return Entry(path, uid, uid, mode, is_dir, access)


def snapshot(top_uid=999, entries=(), top_access=R | W | X, top_mode=0o40755):
    top = Entry("/data", top_uid, top_uid, top_mode, True, top_access)
    return DataDir("/data", top, list(entries), "/data/appendonlydir", "/data/dump.rdb", "/data/nodes.conf")


# ------------------------------------------------------------- started as root: what is handed over


def test_a_volume_owned_by_someone_else_is_walked_whole():
    assert data_dir.handover(snapshot(top_uid=0), 999) == ([], ["/data"])


def test_a_volume_owned_by_valkey_costs_no_walk():
    data = snapshot(entries=[entry("/data/appendonlydir", is_dir=True), entry("/data/dump.rdb")])
    assert data_dir.handover(data, 999) == ([], [])


def test_what_a_root_server_left_directly_in_the_volume_is_handed_over():
    """redis-server as the command (before it counted as the server) ran as root: its AOF
    directory, RDB and nodes.conf are root's, in a volume whose top is still valkey's."""
    data = snapshot(
        entries=[
            entry("/data/appendonlydir", uid=0, is_dir=True),
            entry("/data/dump.rdb", uid=0),
            entry("/data/nodes.conf", uid=0),
            entry("/data/kept", uid=999),
            entry("/data/appendonlydir/appendonly.aof.1.base.rdb", uid=0),
        ]
    )
    assert data_dir.handover(data, 999) == (["/data/dump.rdb", "/data/nodes.conf"], ["/data/appendonlydir"])


def test_root_files_in_a_valkey_aof_directory_are_handed_over_one_by_one():
    data = snapshot(
        entries=[
            entry("/data/appendonlydir", is_dir=True),
            entry("/data/appendonlydir/appendonly.aof.1.base.rdb"),
            entry("/data/appendonlydir/appendonly.aof.2.incr.aof", uid=0),
            entry("/data/appendonlydir/appendonly.aof.manifest", uid=0),
        ]
    )
    assert data_dir.handover(data, 999) == (
        ["/data/appendonlydir/appendonly.aof.2.incr.aof", "/data/appendonlydir/appendonly.aof.manifest"],
        [],
    )


def test_look_sees_the_top_what_sits_in_it_and_the_aof_directory_only(tmp_path):
    (tmp_path / "appendonlydir" / "deeper").mkdir(parents=True)
    (tmp_path / "appendonlydir" / "deeper" / "not-looked-at").write_text("x")
    (tmp_path / "appendonlydir" / "appendonly.aof.1.incr.aof").write_text("x")
    (tmp_path / "dump.rdb").write_text("x")
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "not-looked-at").write_text("x")
    config = read_server_config([], str(tmp_path))
    data = data_dir.look(config, with_access=True)
    assert data.top.path == str(tmp_path) and data.top.can(R | W | X)
    assert [e.path[len(str(tmp_path)) + 1 :] for e in data.entries] == [
        "appendonlydir",
        "big",
        "dump.rdb",
        "appendonlydir/appendonly.aof.1.incr.aof",
        "appendonlydir/deeper",
    ]
    assert data_dir.look(read_server_config([], str(tmp_path / "missing")), True).top is None


def test_hand_over_changes_only_what_it_is_given(tmp_path, monkeypatch):
    changed = []
    monkeypatch.setattr(os, "lchown", lambda path, uid, gid: changed.append((str(path), uid, gid)))
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "a").write_text("x")
    me = os.getuid()
    apply.hand_over(([str(tmp_path / "dump.rdb")], [str(tmp_path / "appendonlydir")]), me + 1, me + 1)
    assert sorted(changed) == sorted(
        [
            (str(tmp_path / "dump.rdb"), me + 1, me + 1),
            (str(tmp_path / "appendonlydir"), me + 1, me + 1),
            (str(tmp_path / "appendonlydir" / "a"), me + 1, me + 1),
        ]
    )


# ------------------------------------------------------------- started as root: capabilities


def test_capabilities_from_proc_status():
    # Docker's default set.
    assert data_dir.read_capabilities("Name:\tx\nCapEff:\t00000000a80425fb\n") == ALL
    assert data_dir.read_capabilities("CapEff:\t0000000000000000\n") == frozenset()
    assert data_dir.read_capabilities("CapEff:\t00000000000000c0\n") == {"SETUID", "SETGID"}
    assert data_dir.read_capabilities("Name:\tx\n") is None


def plan_for(command, environ=None, cwd="/data", identity=(0, VALKEY), **kwargs):
    env = read_bundle_env(environ or {})
    args, server_mode = normalise_command(command)
    config = read_server_config(final_server_args(args, env), cwd)
    return make_plan(args, server_mode, env, {}, {}, config, identity=identity, **kwargs)


def test_cap_drop_all_is_one_line_naming_what_is_missing_and_the_ways_out():
    with pytest.raises(UsageError) as caught:
        plan_for([], capabilities=frozenset(), data=snapshot())
    assert str(caught.value) == (
        "started as root without the capabilities SETUID and SETGID (to switch to the valkey user, uid 999): "
        "add them (--cap-add SETUID --cap-add SETGID), or start the container as the valkey user "
        "(--user 999:999) on a volume that user owns"
    )
    with pytest.raises(UsageError) as caught:
        plan_for([], capabilities=frozenset(), data=snapshot(top_uid=0))
    assert "SETUID and SETGID (to switch to the valkey user, uid 999) and CHOWN and DAC_OVERRIDE (to hand " in str(
        caught.value
    )
    assert "--cap-add CHOWN --cap-add DAC_OVERRIDE" in str(caught.value)


def test_only_what_this_start_uses_is_required():
    switch = frozenset({"SETUID", "SETGID"})
    assert plan_for([], capabilities=switch, data=snapshot()).run_as == VALKEY  # nothing to hand over
    with pytest.raises(UsageError, match=r"^started as root without the capabilities CHOWN and DAC_OVERRIDE"):
        plan_for([], capabilities=switch, data=snapshot(entries=[entry("/data/dump.rdb", uid=0)]))
    assert plan_for([], capabilities=ALL, data=snapshot(top_uid=0)).handover == ([], ["/data"])
    assert plan_for([], capabilities=None, data=snapshot(top_uid=0)).run_as == VALKEY  # unknown: try
    # Not started as root: no capability is needed.
    assert plan_for([], identity=(1000, None), capabilities=frozenset(), data=snapshot(top_uid=1000)).run_as is None


def test_a_failed_switch_is_one_line(monkeypatch):
    def refuse(groups):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setgroups", refuse)
    assert apply.drop_privileges(999, 999) == (
        "cannot switch to uid 999 (Operation not permitted): the container lacks SETUID or SETGID; add them "
        "(--cap-add SETUID --cap-add SETGID), or start it as the valkey user (--user 999:999)"
    )


# ------------------------------------------------------------- started as another uid


CLOSED = R | X  # a directory this uid may enter but not write
FIX = "start the container as root (the entrypoint hands /data to the valkey user) or as the owner (--user UID:GID)"


def test_a_volume_a_root_start_used_is_an_error_with_aof():
    """The root start handed /data to valkey: its AOF directory is 0700, valkey's."""
    data = snapshot(
        entries=[
            entry("/data/appendonlydir", is_dir=True, access=0),
            entry("/data/appendonlydir/appendonly.aof.1.base.rdb", access=0),
        ],
        top_mode=0o40777,
    )
    errors, warnings = data_dir.access_problems(data, 1000, appendonly=True, cluster=False)
    assert errors == [
        "uid 1000 cannot write /data/appendonlydir (owner 999:999, mode 0700): with appendonly yes valkey-server "
        f"would exit (Error moving temp append only file); {FIX}, or chown the volume to uid 1000",
        "uid 1000 cannot read /data/appendonlydir/appendonly.aof.1.base.rdb (owner 999:999, mode 0600): with "
        f"appendonly yes valkey-server would exit (it cannot load its AOF); {FIX}, or chown the volume to uid 1000",
    ]
    assert warnings == []
    assert data_dir.access_problems(data, 1000, appendonly=False, cluster=False) == ([], [])


def test_a_directory_that_is_not_writable_is_an_error_where_the_server_must_write():
    data = snapshot(top_access=CLOSED)
    errors, _ = data_dir.access_problems(data, 1000, appendonly=True, cluster=False)
    assert errors[0].startswith("uid 1000 cannot write /data (owner 999:999, mode 0755): with appendonly yes")
    errors, _ = data_dir.access_problems(data, 1000, appendonly=False, cluster=True)
    assert "in cluster mode valkey-server would exit (it cannot write nodes.conf)" in errors[0]
    # Without AOF or cluster mode the server starts; only saving fails: a warning, as before.
    assert data_dir.access_problems(data, 1000, appendonly=False, cluster=False) == (
        [],
        [
            "/data is not writable by uid 1000: persistence (RDB/AOF, nodes.conf) will fail; "
            "mount a volume this uid can write, or start the container as root"
        ],
    )


def test_files_the_server_loads_must_be_readable():
    rdb = snapshot(entries=[entry("/data/dump.rdb", access=0)])
    assert "(Fatal error loading the DB)" in data_dir.access_problems(rdb, 1000, False, False)[0][0]
    assert data_dir.access_problems(rdb, 1000, True, False) == ([], [])  # with AOF on the RDB is not loaded
    nodes = snapshot(entries=[entry("/data/nodes.conf", access=R)])
    assert "(it cannot lock nodes.conf)" in data_dir.access_problems(nodes, 1000, False, True)[0][0]
    assert data_dir.access_problems(nodes, 1000, False, False) == ([], [])


def test_the_plan_refuses_what_the_server_would_exit_on():
    data = snapshot(entries=[entry("/data/appendonlydir", is_dir=True, access=0)])
    with pytest.raises(UsageError, match=r"^uid 1000 cannot write /data/appendonlydir"):
        plan_for(["--appendonly", "yes"], identity=(1000, None), data=data)
    plan = plan_for([], identity=(1000, None), data=snapshot(top_access=CLOSED))
    assert any(w.startswith("/data is not writable by uid 1000") for w in plan.warnings)
