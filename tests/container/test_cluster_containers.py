"""A cluster of the image's containers that forms, heals and takes members back by itself.

Six containers on a network of the test's own, named and addressed as a StatefulSet's
pods would be (cluster_kit.py), started only through the entrypoint with the variables
of deploy/k8s: the first member creates a cluster of 3 primaries with a replica each.
Then every container is recreated on a new address; then members come back with an
empty volume. The tests run in file order on the one cluster (module scope), each
leaving it healthy for the next; the test side only talks RESP to the members and reads
their logs and /proc.
"""

from __future__ import annotations

import re
import time

import pytest

from .cluster_kit import CREATE_LINE, SLOTS, ClusterKit, docker, key_slot

pytestmark = pytest.mark.container

KEYS = [f"key:{i}" for i in range(300)]
READ_ONLY = 5  # this member runs with a read-only root and a tmpfs at /tmp


@pytest.fixture(scope="module")
def kit(bundle_image, tmp_path_factory):
    kit = ClusterKit(bundle_image.name, tmp_path_factory.mktemp("cluster"))
    yield kit
    kit.destroy()


@pytest.fixture(scope="module")
def six(kit):
    """valkey-0 ... valkey-5 on .11 ... .16, formed: 3 primaries, 3 replicas, replication up."""
    members = kit.group("valkey", 6, replicas=1)
    members[READ_ONLY].read_only = True
    began = kit.start(members, [kit.address(11 + i) for i in range(6)])
    done = kit.wait("six members to form a cluster", lambda: kit.formed(members), members)
    print(f"\n6 containers: docker run -> formed (replicas in sync): {done - began:.1f} s")
    return members


def logs_of(members):
    return {m.alias: m.logs() for m in members}


def by_alias(members):
    return {m.alias: m for m in members}


def test_six_containers_form_one_cluster(kit, six):
    for member in six:
        info = member.info("CLUSTER", "INFO")
        assert info["cluster_state"] == "ok", (member.alias, info)
        assert (info["cluster_slots_assigned"], info["cluster_known_nodes"], info["cluster_size"]) == (
            str(SLOTS),
            "6",
            "3",
        )
        assert member.call("SEARCH.COORDINATOR") == 1, f"{member.alias}: search without --use-coordinator"
    roles = kit.roles(six)
    assert sorted(role for role, _ in roles.values()) == ["master"] * 3 + ["slave"] * 3
    assert [roles[m.alias][0] for m in six[:3]] == ["master"] * 3  # the first members are the primaries
    logs = logs_of(six)
    assert sum(text.count(CREATE_LINE) for text in logs.values()) == 1, logs
    assert CREATE_LINE in logs[six[0].alias]
    for member in six[1:]:
        assert "another member added this node to the cluster" in logs[member.alias], logs[member.alias]


def test_password_stays_out_of_sight(kit, six):
    for member in six:
        assert str(member.call("PING", auth=False)).startswith("NOAUTH"), member.alias
        assert member.call("PING") == "PONG"
    # The members authenticate to each other: every replica's link to its primary is up.
    roles = kit.roles(six)
    replicas = [m for m in six if roles[m.alias][0] == "slave"]
    assert len(replicas) == 3
    for member in replicas:
        assert member.info("INFO", "replication")["master_link_status"] == "up", member.alias
    for member in six:
        # Each file on its own: a process that ends meanwhile (a helper done) must not fail the read.
        code, out = member.exec("sh", "-c", 'for f in /proc/[0-9]*/cmdline; do cat "$f" 2>/dev/null; done; true')
        assert code == 0 and "valkey-server" in out, out
        assert kit.password not in out, f"{member.alias}: the password is in a command line"
    read_only = six[READ_ONLY]
    code, _ = read_only.exec("touch", "/probe")
    assert code != 0, "the root file system is read-only"
    # Named after the entrypoint's PID, which the server kept (exec).
    server_pid = read_only.info("INFO", "server")["process_id"]
    code, out = read_only.exec("stat", "-c", "%a %U", f"/tmp/valkey-bundle-999/generated-{server_pid}.conf")
    assert (code, out.strip()) == (0, "600 valkey"), out


def test_every_member_recreated_on_a_new_address_heals(kit, six):
    for key in KEYS[:5]:  # the test's slot function agrees with the server's
        assert six[0].call("CLUSTER", "KEYSLOT", key) == key_slot(key)
    written = kit.write_keys(six, KEYS)
    alias_of_ip = {m.ip: m.alias for m in six}
    written = {alias_of_ip[ip]: count for ip, count in written.items()}
    assert sum(written.values()) == len(KEYS) and len(written) == 3, written
    ids = {m.alias: m.call("CLUSTER", "MYID") for m in six}

    kit.remove(six)
    began = kit.start(six, [kit.address(111 + i) for i in range(6)])  # same names, aliases and volumes
    done = kit.wait("the cluster to heal on the new addresses", lambda: kit.formed(six), six)
    print(f"\n6 containers recreated on new addresses: docker run -> healed: {done - began:.1f} s")

    assert {m.alias: m.call("CLUSTER", "MYID") for m in six} == ids
    for member in six:
        assert member.info("CLUSTER", "INFO")["cluster_state"] == "ok"
    roles = kit.roles(six)
    members = by_alias(six)
    counted = {alias: members[alias].call("DBSIZE") for alias, (role, _) in roles.items() if role == "master"}
    assert counted == written, (counted, written)
    assert sum(counted.values()) == len(KEYS)
    assert kit.read_keys(six, KEYS) == {k: f"value-of-{k}" for k in KEYS}
    logs = logs_of(six)
    assert not any(CREATE_LINE in text for text in logs.values())
    assert "this node is already in a cluster" in logs[six[0].alias]
    old = re.escape(kit.address(12))
    assert re.search(rf"peer \w+ \(valkey-1\.valkey-headless\.test\.svc\) {old} -> ", logs[six[0].alias])


def lose_volume(kit, member, ip):
    """The member comes back on ``ip`` with an empty volume: a new node ID, the same name."""
    member.remove()
    docker("volume", "rm", member.volume)
    member.run(ip)


def test_replica_that_lost_its_volume_rejoins_as_a_replica(kit, six):
    roles = kit.roles(six)
    member = six[4]
    role, primary = roles[member.alias]
    assert role == "slave"
    old_id = member.call("CLUSTER", "MYID")

    began = time.monotonic()
    lose_volume(kit, member, kit.address(204))
    done = kit.wait("the empty replica to rejoin", lambda: kit.formed(six), six)
    print(f"\na replica with an empty volume: docker run -> back in sync: {done - began:.1f} s")

    new_id = member.call("CLUSTER", "MYID")
    assert new_id != old_id
    assert kit.roles(six)[member.alias] == ("slave", primary), "back with the primary that lacked it"
    for other in six:  # the old node ID is forgotten everywhere: 6 nodes, not 7
        assert other.info("CLUSTER", "INFO")["cluster_known_nodes"] == "6", other.alias
    source = by_alias(six)[primary]
    assert member.call("DBSIZE") == source.call("DBSIZE") > 0, "the data came back by replication"
    kit.wait("the helper's last line", lambda: "rejoined the cluster as a replica" in member.logs(), six, timeout=20)
    log = member.logs()
    assert f"forgot {old_id[:8]} " in log
    assert CREATE_LINE not in log


def test_primary_that_lost_its_volume_comes_back_as_a_replica(kit, six):
    """Its replica takes its slots over (after the node timeout); it then replicates that one."""
    roles = kit.roles(six)
    member = six[1]
    assert roles[member.alias][0] == "master"
    heir = next(alias for alias, (role, primary) in roles.items() if primary == member.alias)
    keys_before = by_alias(six)[heir].call("DBSIZE")

    began = time.monotonic()
    lose_volume(kit, member, kit.address(201))
    done = kit.wait("the failover and the rejoin", lambda: kit.formed(six), six, timeout=120)
    print(f"\na primary with an empty volume: docker run -> failover and back in sync: {done - began:.1f} s")

    roles = kit.roles(six)
    assert roles[heir] == ("master", None)
    assert roles[member.alias] == ("slave", heir)
    assert member.call("DBSIZE") == by_alias(six)[heir].call("DBSIZE") == keys_before
    assert kit.read_keys(six, KEYS) == {k: f"value-of-{k}" for k in KEYS}
    log = member.logs()
    assert "waiting for its replica" in log and CREATE_LINE not in log


def test_slots_whose_only_copy_is_lost_are_not_taken_silently(kit):
    """No replicas: a primary that comes back empty says what is lost and how to serve it again."""
    solo = kit.group("solo", 3, replicas=0)
    began = kit.start(solo, [kit.address(31 + i) for i in range(3)])
    done = kit.wait("three primaries to form a cluster", lambda: kit.formed(solo), solo)
    print(f"\n3 containers, no replicas: docker run -> formed: {done - began:.1f} s")
    keys = [f"solo:{i}" for i in range(90)]
    written = kit.write_keys(solo, keys)
    member = solo[1]
    lost = written[member.ip]
    first, last, _ = next(entry for entry in kit.slot_owners(solo[0]) if entry[2] == member.ip)
    old_id = member.call("CLUSTER", "MYID")

    lose_volume(kit, member, kit.address(41))
    kit.wait("the lost-slots line", lambda: "have no owner" in member.logs(), solo)
    lines = [line for line in member.logs().splitlines() if "have no owner" in line]
    assert len(lines) == 1, lines
    line = lines[0]
    assert f"slots {first}-{last} have no owner" in line and old_id[:8] in line and "lost" in line, line
    myself = next(fields for fields in member.nodes() if "myself" in fields[2])
    assert myself[8:] == [], f"it took no slot by itself: {myself}"

    # The commands from the line, as an operator would run them.
    ranges = re.search(r"CLUSTER ADDSLOTSRANGE ([\d ]+) &&", line).group(1).split()
    assert ranges == [str(first), str(last)]
    assert member.call("CLUSTER", "ADDSLOTSRANGE", *ranges) == "OK"
    assert str(member.call("CLUSTER", "BUMPEPOCH")).startswith("BUMPED")
    forget = re.search(r"CLUSTER FORGET (\w+) on every other node", line).group(1)
    assert forget == old_id
    for other in solo:
        if other is not member:
            assert other.call("CLUSTER", "FORGET", forget) == "OK"
    kit.wait("the cluster to serve every slot again", lambda: kit.formed(solo), solo)
    assert member.call("DBSIZE") == 0
    survivors = kit.read_keys(solo, keys)
    assert sum(value is not None for value in survivors.values()) == len(keys) - lost
