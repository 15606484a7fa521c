"""redis_exporter scraping a real cluster of the image, and the alerts on what it scraped.

Six members of the real-module tier's image (a stand-in for each module whose inputs are not
cached) on a Docker network of their own (cluster_kit.py),
formed by the entrypoint, with a password; beside each, as the sidecar of deploy/k8s, a
redis_exporter (Debian's prometheus-redis-exporter, a process of this machine pointed at the
member's address) with the password in a file, the search metrics script
(deploy/k8s/base/search-metrics.lua) and module metrics where its version has them. The tests
run in file order on the one cluster (module scope): the last stops a member.

- every member is scraped, with the values a healthy cluster of 3 primaries and 3 replicas has;
- the password is in no exporter's argv or environment;
- the search script: without search (a node of the image with search left out) it adds
  nothing and breaks nothing; on valkey-search 1.2.1's replies (canned, shaped as its source
  writes them) it gives the series the rules and the dashboard query; on a real search
  module (the image's label says so) the same from an index made here, else "not run";
- every metric name an alert or a dashboard panel queries is one the scrape returned, as
  Prometheus stores it (the PodMonitor's relabeling applied);
- the alert rules under `promtool test rules` on series recorded from this cluster: healthy,
  nothing fires; one replica stopped and one primary near its maxmemory, the member-down,
  members-missing, primary-without-replica and memory alerts fire, and nothing else.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest
from container.cluster_kit import SLOTS, ClusterKit
from real.search_kit import changed_here

from . import metrics_kit as mk

pytestmark = pytest.mark.metrics

HERE = Path(__file__).resolve().parent
CANNED = HERE / "canned_search_replies.lua"
MEMBERS = 6
SEARCH_DOCUMENTS = 40


@pytest.fixture(scope="module")
def kit(metrics_image, tmp_path_factory):
    kit = ClusterKit(metrics_image, tmp_path_factory.mktemp("metrics-kit"))
    yield kit
    kit.destroy()


@pytest.fixture(scope="module")
def members(kit):
    members = kit.group("valkey", MEMBERS, replicas=1)
    kit.start(members, [kit.address(11 + i) for i in range(MEMBERS)])
    kit.wait("six members to form a cluster", lambda: kit.formed(members), members, timeout=120)
    return members


@pytest.fixture(scope="module")
def exporters(exporter_binary, kit, members, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("exporters")
    started = []
    try:
        for member in members:
            started.append(mk.Exporter(exporter_binary, workdir, f"{member.ip}:6379", kit.password))
        print(f"\nexporter {mk.exporter_version(exporter_binary)}: {' '.join(started[0].argv[1:])}")
        yield started
    finally:
        for exporter in started:
            exporter.stop()


def target(index: int, member) -> dict[str, str]:
    """The labels the PodMonitor's target gives member ``index``'s samples."""
    return {
        "namespace": mk.NAMESPACE,
        "pod": f"valkey-bundle-{index}",
        "instance": f"{member.ip}:9121",
        "job": mk.JOB,
        "container": "exporter",
        "endpoint": "metrics",
    }


def scrape_all(exporters, members) -> tuple[list[list[mk.Sample]], list[mk.Sample]]:
    """(each exporter's samples, all of them as Prometheus stores them)."""
    raw = [exporter.scrape() for exporter in exporters]
    configs = mk.metric_relabelings()
    stored = []
    for i, (samples, member) in enumerate(zip(raw, members, strict=True)):
        stored += mk.as_prometheus_stores(samples, target(i, member), configs)
    return raw, stored


@pytest.fixture(scope="module")
def search_docs(kit, members, search_real):
    """Where search is real: an index made on one member and documents in every shard."""
    if not search_real:
        return None
    reply = members[0].call(
        "FT.CREATE", "metrics_books", "ON", "HASH", "PREFIX", "1", "mbook:", "SCHEMA", "year", "NUMERIC", timeout=10
    )
    assert changed_here(reply), reply
    keys = [f"mbook:{i}" for i in range(SEARCH_DOCUMENTS)]
    for key, where, answer in kit.each_key(members, keys, "HSET", lambda k: ["year", k.split(":")[1]]):
        assert answer == 1, (key, where, answer)

    def indexed():
        counts = []
        for member in members:
            info = member.call("FT.INFO", "metrics_books")
            if not isinstance(info, list):
                return False  # not on this member yet
            fields = dict(zip(info[::2], info[1::2], strict=False))
            if member.info("INFO", "replication").get("role") == "master":
                counts.append(int(fields.get("num_docs", 0)))
        return sum(counts) == SEARCH_DOCUMENTS

    kit.wait("the index on every member, every document indexed", indexed, members)
    return "metrics_books"


@pytest.fixture(scope="module")
def healthy(exporters, members, search_docs):
    time.sleep(1)  # the replicas' first acknowledgements
    return scrape_all(exporters, members)


def roles_by_index(kit, members) -> dict[int, tuple[str, int | None]]:
    roles = kit.roles(members)
    index = {m.alias: i for i, m in enumerate(members)}
    return {index[alias]: (role, index.get(primary)) for alias, (role, primary) in roles.items()}


def test_every_member_is_scraped_healthy(kit, members, healthy):
    raw, _stored = healthy
    roles = roles_by_index(kit, members)
    assert sorted(role for role, _ in roles.values()) == ["master"] * 3 + ["slave"] * 3
    for i, samples in enumerate(raw):
        v = functools.partial(mk.value, samples)
        what = f"valkey-{i} ({roles[i][0]})"
        assert v("redis_up") == 1, what
        assert v("redis_exporter_last_scrape_error") == 0, what
        assert v("redis_cluster_enabled") == 1 and v("redis_cluster_state") == 1, what
        assert v("redis_cluster_slots_assigned") == SLOTS and v("redis_cluster_slots_ok") == SLOTS, what
        assert v("redis_cluster_slots_fail") == 0 and v("redis_cluster_known_nodes") == MEMBERS, what
        assert v("redis_cluster_size") == 3, what
        assert 0 < v("redis_memory_used_bytes") < 1 << 30 and v("redis_memory_max_bytes") == 0, what
        assert v("redis_commands_processed_total") > 0 and v("redis_uptime_in_seconds") >= 0, what
        assert v("redis_aof_enabled") == 1 and v("redis_aof_last_write_status") == 1, what
        assert v("redis_rdb_last_bgsave_status") == 1 and v("redis_aof_last_bgrewrite_status") == 1, what
        assert v("redis_instance_info", role=roles[i][0]) == 1, what
        if roles[i][0] == "master":
            assert v("redis_connected_slaves") == 1, what
            (lag,) = [s for s in samples if s.name == "redis_connected_slave_lag_seconds"]
            replica = next(j for j, (role, primary) in roles.items() if primary == i)
            assert lag.label_dict["slave_ip"] == members[replica].ip and lag.value <= 2, (what, lag)
        else:
            primary = members[roles[i][1]]
            assert v("redis_connected_slaves") == 0, what
            assert v("redis_master_link_up", master_host=primary.ip) == 1, what


def test_the_password_stays_out_of_argv_and_environment(kit, exporters):
    for exporter in exporters:
        pid = exporter.proc.pid
        for part in ("cmdline", "environ"):
            data = Path(f"/proc/{pid}/{part}").read_bytes()
            assert kit.password.encode() not in data, f"the password is in the exporter's {part}"
        assert "-redis.password-file" in exporter.argv
        assert exporter.password_file.stat().st_mode & 0o077 == 0


def test_without_search_the_script_adds_nothing_and_breaks_nothing(exporter_binary, kit, tmp_path):
    """A node of the same image with search left out (VALKEY_DISABLE_MODULES=search), scraped
    as a member is: the script returns nothing and the scrape succeeds."""
    node = kit.node("metrics-no-search", extra_env={"VALKEY_DISABLE_MODULES": "search"})
    node.run(kit.next_address())
    kit.wait("the node without search to answer PING", lambda: node.call("PING") == "PONG", [node], 60)
    modules = node.call("MODULE", "LIST")
    assert not [m for m in modules if "search" in m], modules
    assert node.call("EVAL", mk.SCRIPT.read_text(), "0") == []
    exporter = mk.Exporter(exporter_binary, tmp_path, f"{node.ip}:6379", kit.password)
    try:
        samples = exporter.scrape()
    finally:
        exporter.stop()
    assert not [s for s in samples if s.name == "redis_script_values"]
    assert mk.value(samples, "redis_up") == 1 and mk.value(samples, "redis_exporter_last_scrape_error") == 0


def test_the_script_reads_valkey_search_replies(exporter_binary, kit, members, tmp_path):
    """The script's parsing on the server's own Lua, with valkey-search 1.2.1's replies canned in
    place of its calls; through the exporter and the PodMonitor's relabeling."""
    script = mk.canned_script(CANNED, tmp_path)
    exporter = mk.Exporter(exporter_binary, tmp_path, f"{members[0].ip}:6379", kit.password, script=script)
    try:
        samples = exporter.scrape()
    finally:
        exporter.stop()
    assert mk.value(samples, "redis_up") == 1
    stored = mk.as_prometheus_stores(samples, target(0, members[0]), mk.metric_relabelings())
    got = {(s.name, s.label_dict.get("index")): s.value for s in stored if mk.is_search_metric(s.name)}
    assert got == {
        ("valkey_search_indexes", None): 3,
        ("valkey_search_index_documents", "books"): 42,
        ("valkey_search_index_records", "books"): 84,
        ("valkey_search_index_data_bytes", "books"): 4600,
        ("valkey_search_index_indexing_failures_total", "books"): 3,
        ("valkey_search_index_backfill_in_progress", "books"): 1,
        ("valkey_search_index_backfill_complete_ratio", "books"): 0.25,
        ("valkey_search_index_backfill_paused_by_oom", "books"): 1,
        ("valkey_search_index_mutation_queue_size", "books"): 7,
        ("valkey_search_index_mutation_queue_delay_seconds", "books"): 12,
        ("valkey_search_index_documents", "films:2026"): 0,
        ("valkey_search_index_records", "films:2026"): 0,
        ("valkey_search_index_data_bytes", "films:2026"): 0,
        ("valkey_search_index_indexing_failures_total", "films:2026"): 0,
        ("valkey_search_index_backfill_in_progress", "films:2026"): 0,
        ("valkey_search_index_backfill_complete_ratio", "films:2026"): 1,
        ("valkey_search_index_backfill_paused_by_oom", "films:2026"): 0,
        ("valkey_search_index_mutation_queue_size", "films:2026"): 0,
        ("valkey_search_index_mutation_queue_delay_seconds", "films:2026"): 0,
        ("valkey_search_used_memory_bytes", None): 123456,
        ("valkey_search_background_indexing", None): 1,
        ("valkey_search_coordinator_serving", None): 1,
        ("valkey_search_coordinator_search_failures_total", None): 2,
        ("valkey_search_coordinator_metadata_failures_total", None): 0,
        ("valkey_search_metrics_error", None): 0,
    }
    queried = {n for n in mk.queried_names() if mk.is_search_metric(n)}
    missing = queried - {name for name, _ in got}
    assert not missing, f"queried by the rules or the dashboard, not given by the script: {sorted(missing)}"


def test_search_metrics_of_a_real_search(members, healthy, search_real, search_docs, metrics_image):
    if not search_real:
        pytest.skip(f"not run: search is a stand-in in {metrics_image} (no FT.* commands)")
    _raw, stored = healthy
    indexes = [s for s in stored if s.name == "valkey_search_indexes"]
    assert len(indexes) == MEMBERS and all(s.value == 1 for s in indexes), indexes
    documents = [s for s in stored if s.name == "valkey_search_index_documents"]
    assert {s.label_dict["index"] for s in documents} == {search_docs}
    # Each member counts its own shard's documents: the primaries' add up to all of them.
    primaries = {
        f"valkey-bundle-{i}" for i, m in enumerate(members) if m.info("INFO", "replication")["role"] == "master"
    }
    assert sum(s.value for s in documents if s.label_dict["pod"] in primaries) == SEARCH_DOCUMENTS
    for name in ("valkey_search_metrics_error", "valkey_search_index_backfill_in_progress"):
        assert all(s.value == 0 for s in stored if s.name == name), name
    assert all(s.value == 1 for s in stored if s.name == "valkey_search_coordinator_serving")


def test_every_queried_metric_is_scraped(healthy):
    _raw, stored = healthy
    scraped = {s.name for s in stored}
    queried = mk.queried_names()
    missing = {n: sorted(w) for n, w in queried.items() if not mk.is_search_metric(n) and n not in scraped}
    assert not missing, f"queried, never returned by the exporter: {missing}"


def test_every_queried_search_metric_is_scraped(healthy, search_real, metrics_image):
    if not search_real:
        pytest.skip(f"not run: search is a stand-in in {metrics_image} (no FT.* commands)")
    _raw, stored = healthy
    scraped = {s.name for s in stored}
    missing = {n: sorted(w) for n, w in mk.queried_names().items() if mk.is_search_metric(n) and n not in scraped}
    assert not missing, f"queried, never returned by the exporter: {missing}"


def test_recorded_series_fire_the_alerts(kit, members, exporters, healthy, promtool, tmp_path):
    """Healthy, nothing fires. Then a replica stopped and a primary at 97% of a maxmemory set for
    it: their alerts fire, with the labels and annotations an operator gets, and no other."""
    roles = roles_by_index(kit, members)
    stopped = next(i for i, (role, _) in roles.items() if role == "slave")
    orphan = roles[stopped][1]
    full = next(i for i, (role, _) in roles.items() if role == "master" and i != orphan)
    used = int(members[full].info("INFO", "memory")["used_memory"])
    assert members[full].call("CONFIG", "SET", "maxmemory", str(int(used / 0.97))) == "OK"
    members[stopped].stop(timeout=10)

    def settled():
        scrape = [exporters[orphan].scrape(), exporters[stopped].scrape()]
        return mk.value(scrape[0], "redis_connected_slaves") == 0 and mk.value(scrape[1], "redis_up") == 0

    deadline = time.monotonic() + 60
    while not settled():
        assert time.monotonic() < deadline, "the exporters never saw the member stopped"
        time.sleep(0.5)
    _raw, after = scrape_all(exporters, members)
    pod = {"pod": f"valkey-bundle-{full}"}
    ratio = mk.value(after, "redis_memory_used_bytes", **pod) / mk.value(after, "redis_memory_max_bytes", **pod)
    assert ratio > 0.92, f"valkey-{full} uses {ratio:.1%} of its maxmemory: the recording is not the case"

    queried = {n for rule in mk.alert_rules().values() for n in mk.promql_metric_names(rule["expr"])}
    _raw, before = healthy
    phases = [([s for s in before if s.name in queried], 24), ([s for s in after if s.name in queried], 28)]
    quiet = {name: [] for name in mk.alert_rules()}
    firing = {
        **quiet,
        "ValkeyMemberDown": [mk.expected_alert("ValkeyMemberDown", target(stopped, members[stopped]))],
        "ValkeyMembersMissing": [mk.expected_alert("ValkeyMembersMissing", {"namespace": mk.NAMESPACE})],
        "ValkeyPrimaryWithoutReplica": [
            mk.expected_alert("ValkeyPrimaryWithoutReplica", target(orphan, members[orphan]))
        ],
        "ValkeyMemoryNearMax": [mk.expected_alert("ValkeyMemoryNearMax", target(full, members[full]))],
    }
    test = {
        "interval": "15s",
        "input_series": mk.input_series(phases),
        "alert_rule_test": [
            *({"eval_time": "345s", "alertname": n, "exp_alerts": a} for n, a in quiet.items()),
            *({"eval_time": "765s", "alertname": n, "exp_alerts": a} for n, a in firing.items()),
        ],
    }
    result = mk.run_promtool_tests([test], tmp_path)
    print(
        f"\nrecorded: {len(test['input_series'])} series; valkey-{stopped} (a replica) stopped, its primary "
        f"valkey-{orphan} left alone, valkey-{full} at {ratio:.0%} of maxmemory"
    )
    assert result.returncode == 0, f"promtool test rules ({tmp_path / 'rules_test.yaml'}):\n{result.stdout}"
