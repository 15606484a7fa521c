"""Tier 1: what readiness, the preStop hand-over and the AOF repair read, on fixed inputs.

The fault tier (tests/faults) and tests/native/test_aof_holes.py run them against real
servers; these pin down the parsing: which replica counts as in sync, which NUL bytes are
a hole.
"""

from __future__ import annotations

from valkey_bundle import aof_holes
from valkey_bundle.cluster.handover import in_sync_replicas
from valkey_bundle.health import replica_in_sync


class Reply:
    """A connection that answers INFO replication with fixed text."""

    def __init__(self, text):
        self.text = text

    def call(self, *args):
        assert args == ("INFO", "replication")
        return self.text


def info(**fields):
    return "# Replication\r\n" + "".join(f"{k}:{v}\r\n" for k, v in fields.items())


def test_readiness_of_a_primary_and_of_its_replicas():
    assert replica_in_sync(Reply(info(role="master", connected_slaves=1))) == (True, "")
    replica = {"role": "slave", "master_host": "10.0.0.2", "master_port": 6379}
    synced = info(**replica, master_link_status="up", master_sync_in_progress=0)
    assert replica_in_sync(Reply(synced)) == (True, ", replica in sync")
    syncing = info(**replica, master_link_status="down", master_sync_in_progress=1)
    assert replica_in_sync(Reply(syncing)) == (False, "replica of 10.0.0.2:6379: full sync in progress")
    down = info(**replica, master_link_status="down", master_sync_in_progress=0)
    assert replica_in_sync(Reply(down)) == (False, "replica of 10.0.0.2:6379: link down")


def test_only_online_replicas_are_handed_the_slots_most_advanced_first():
    replication = {
        "role": "master",
        "slave0": "ip=10.0.0.5,port=6379,state=online,offset=90,lag=0",
        "slave1": "ip=10.0.0.6,port=6379,state=wait_bgsave,offset=0,lag=0",
        "slave2": "ip=10.0.0.7,port=6380,state=online,offset=120,lag=1",
        "slave_read_repl_offset": "120",
    }
    assert in_sync_replicas(replication) == [("10.0.0.7", 6380, 120), ("10.0.0.5", 6379, 90)]
    assert in_sync_replicas({"role": "master", "connected_slaves": "0"}) == []


def test_a_hole_is_nul_bytes_between_two_commands(tmp_path):
    set_a = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
    set_b = b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n"
    binary = b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$9\r\n\r\n\x00\x00*1\r\n$\r\n"  # a value that looks like one
    path = tmp_path / "appendonly.aof.1.incr.aof"
    path.write_bytes(b"\x00" * 5 + set_a + b"\x00" * (3 << 20) + set_b + binary)
    holes = aof_holes.holes(str(path))
    assert holes[0] == 5 and holes[5 + len(set_a)] == 3 << 20
    # NUL bytes inside a value look the same from here: valkey-check-aof decides (first_error).
    assert len(holes) == 3
    path.write_bytes(set_a + set_b)
    assert aof_holes.holes(str(path)) == {}


def test_the_incremental_files_come_from_the_manifests(tmp_path):
    aof = tmp_path / "appendonlydir"
    aof.mkdir()
    (aof / "appendonly.aof.manifest").write_text(
        "file appendonly.aof.3.base.rdb seq 3 type b\n"
        "file appendonly.aof.2.incr.aof seq 2 type h\n"
        "file appendonly.aof.3.incr.aof seq 3 type i\n"
        "file appendonly.aof.4.incr.aof seq 4 type i\n"
    )
    (tmp_path / "nodes.conf").write_text("")
    assert aof_holes.incremental_files(str(tmp_path)) == [
        str(aof / "appendonly.aof.3.incr.aof"),
        str(aof / "appendonly.aof.4.incr.aof"),
    ]
    assert aof_holes.incremental_files(str(tmp_path / "missing")) == []


def test_a_cut_keeps_every_byte_around_the_hole(tmp_path):
    path = tmp_path / "incr.aof"
    before, after = b"*1\r\n$4\r\nPING\r\n" * 1000, b"*1\r\n$4\r\nECHO\r\n" * 100000
    path.write_bytes(before + b"\x00" * 43 + after)
    path.chmod(0o600)
    aof_holes.cut(str(path), len(before), 43)
    assert path.read_bytes() == before + after
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["incr.aof"]
