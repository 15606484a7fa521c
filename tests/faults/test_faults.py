"""Faults under load: what a client of the cluster sees when a StatefulSet's members are
restarted, killed, cut off, run out of disk or all stopped at once.

Six members of the container tier's image with the settings of deploy/k8s (fault_kit.py),
formed by the entrypoint alone; each case runs under a bounded load of plain and
replica-acknowledged writes and reads through the `valkey` package's cluster client, in file
order on the one cluster (module scope), each leaving it whole for the next. After each: every
write a replica acknowledged reads back, each slot range has one primary in every member's
view, and the cluster is formed (cluster_state:ok everywhere, a replica per primary, in sync).
Plain writes may be lost in a failover or a partition (replication is asynchronous): they are
counted and printed, with the other figures (bench/faults.py prints them as a table). Where
the image's search module is real, FT.SEARCH goes to every member in turn under the load:
no answer may be partial (an error is what a client must get instead), and after each case
every member answers in full again.
"""

from __future__ import annotations

import pytest

from . import fault_kit
from .fault_kit import ClusterKit, FaultCluster

pytestmark = pytest.mark.faults

UPGRADE = "\n# The setting the second round of the rolling restart brings, as an upgrade would.\nmaxmemory 1gb\n"


@pytest.fixture(scope="module")
def kit(faults_image, tmp_path_factory):
    kit = ClusterKit(faults_image, tmp_path_factory.mktemp("faults-kit"))
    yield kit
    kit.destroy()


@pytest.fixture(scope="module")
def cluster(kit, tmp_path_factory, search_real):
    cluster = FaultCluster(kit, tmp_path_factory.mktemp("faults"), search=search_real)
    seconds = cluster.form()
    print(f"\nsix members formed in {seconds:.1f} s; settings {cluster.settings}")
    return cluster


def report(result: fault_kit.CaseResult) -> fault_kit.Figures:
    """Print the case's figures and check what every case must leave behind."""
    figures = result.figures
    print("\n" + fault_kit.table([figures]))
    assert figures.plain_written > 0 and figures.acked_written > 0, f"the load wrote nothing: {figures}"
    assert figures.acked_lost == 0, f"replica-acknowledged writes lost: {result.lost_acked} ({figures})"
    for slots, claims in result.owners.items():
        assert len(claims) == 1, f"slots {slots[0]}-{slots[1]} claimed by {sorted(claims)}"
    if figures.search is not None:
        # An answer short of documents must be an error the client sees, never a quiet count.
        assert figures.search.get("partial", 0) == 0, f"partial FT.SEARCH answers: {figures.search}"
        assert figures.search.get("complete", 0) > 0, f"no complete FT.SEARCH answer: {figures.search}"
    return figures


def test_rolling_restart_twice(cluster, tmp_path):
    upgraded = tmp_path / "valkey.conf"
    upgraded.write_text(cluster.settings.conf.read_text() + UPGRADE)
    upgraded.chmod(0o644)
    result = fault_kit.case_rolling_restart(cluster, upgraded)
    report(result)
    assert [step.alias.split(".")[0] for step in result.facts["steps"]] == [
        f"valkey-{i}" for i in (5, 4, 3, 2, 1, 0)
    ] * 2
    for step in result.facts["steps"]:
        assert step.synced, f"{step.alias} was ready before its replica link was in sync"
        if step.role_before == "master":
            assert step.role_after == "slave" and "handed" in step.hook, f"{step.alias} kept its slots: {step}"
    for member in cluster.members:
        assert member.call("CONFIG", "GET", "maxmemory") == ["maxmemory", str(1 << 30)], member.alias
    assert {m.alias: m.call("CLUSTER", "MYID") for m in cluster.members} == cluster.ids
    assert cluster.created_lines() == 1


def test_killed_primary_comes_back_as_a_replica(cluster):
    result = fault_kit.case_primary_killed(cluster)
    report(result)
    victim, heir = result.facts["victim"], result.facts["heir"]
    assert result.facts["roles"][heir] == ("master", None)
    assert result.facts["roles"][victim] == ("slave", heir)
    assert {m.alias: m.call("CLUSTER", "MYID") for m in cluster.members} == cluster.ids
    assert cluster.created_lines() == 1


def test_member_cut_off_longer_than_the_node_timeout(cluster):
    result = fault_kit.case_member_cut_off(cluster)
    report(result)
    facts = result.facts
    assert facts["refused_after"] is not None, f"the isolated primary kept taking writes: {facts['answers']}"
    assert facts["roles"][facts["heir"]] == ("master", None)
    assert facts["roles"][facts["victim"]] == ("slave", facts["heir"])


def test_full_disk_refuses_writes_then_resumes(cluster):
    result = fault_kit.case_full_disk(cluster)
    figures = report(result)
    facts = result.facts
    assert "MISCONF" in facts["errors while full"], f"no error from the server reached the client: {facts}"
    assert facts["persistence"]["aof_last_write_status"] == "err", facts["persistence"]
    assert not facts["restarted"] and facts["same_process"], "the server restarted"
    assert facts["persistence_after"]["aof_last_write_status"] == "ok", facts["persistence_after"]
    assert figures.ops_after > 0


def test_everything_stopped_and_started_again(cluster):
    result = fault_kit.case_everything_stopped(cluster)
    figures = report(result)
    # check() read back every acknowledged write of every case: the AOFs brought them all back.
    assert figures.acked_written == sum(len(load.written("acked")) for load in cluster.history)
    assert result.facts["ids"] == cluster.ids, "a member came back as another node"
    assert cluster.created_lines() == 1, "a member created the cluster again"
