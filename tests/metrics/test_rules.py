"""The alerts, the dashboard and the PodMonitor's relabeling, without a cluster.

promtool (Debian's prometheus package) checks the PrometheusRule's groups and runs them on
made-up series: each alert fires where it should, with the labels and annotations an operator
gets, and stays quiet on its near misses. tests/metrics/test_scrape.py runs them on series
recorded from a real cluster. Also here: every alert has its runbook line in README.md, the
dashboard is well formed, and the relabeling gives the search script's pairs the names the
rules and the dashboard query.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from . import metrics_kit as kit

pytestmark = pytest.mark.metrics

README = (kit.ROOT / "README.md").read_text()


def target(i: int, namespace: str = kit.NAMESPACE) -> dict[str, str]:
    """The labels Prometheus gives the samples of member ``i``'s exporter (PodMonitor target)."""
    return {
        "namespace": namespace,
        "pod": f"valkey-bundle-{i}",
        "instance": f"10.0.0.{10 + i}:9121",
        "job": kit.JOB if namespace == kit.NAMESPACE else f"{namespace}/valkey-bundle",
        "container": "exporter",
        "endpoint": "metrics",
    }


def series(name: str, labels: dict[str, str], values: str) -> dict:
    sample = kit.Sample(name, tuple(sorted(labels.items())), 0)
    return {"series": kit.series_selector(sample), "values": values}


def case(series_list: list[dict], eval_time: str, expected: dict[str, list[dict]], interval: str = "1m") -> dict:
    return {
        "interval": interval,
        "input_series": series_list,
        "alert_rule_test": [
            {"eval_time": eval_time, "alertname": name, "exp_alerts": alerts} for name, alerts in expected.items()
        ],
    }


def fires(alertname: str, *label_sets: dict[str, str]) -> list[dict]:
    return [kit.expected_alert(alertname, labels) for labels in label_sets]


def made_up_cases() -> list[dict]:
    flat = " ".join  # a value repeated: ("1",) * 12
    ok, bad = flat(["1"] * 12), flat(["0"] * 12)
    lag = {"slave_ip": "10.0.0.13", "slave_port": "6379", "slave_state": "online"}
    master = {"master_host": "10.0.0.10", "master_port": "6379"}
    other = "other-cluster"
    cases = [
        case(
            [series("redis_cluster_state", target(0), ok), series("redis_cluster_state", target(1), bad)],
            "5m",
            {"ValkeyClusterStateNotOk": fires("ValkeyClusterStateNotOk", target(1))},
        ),
        case(
            [
                series("redis_cluster_slots_assigned", target(0), flat(["16384"] * 12)),
                series("redis_cluster_slots_fail", target(0), flat(["0"] * 12)),
                series("redis_cluster_slots_assigned", target(1), flat(["16000"] * 12)),
                series("redis_cluster_slots_fail", target(1), flat(["0"] * 12)),
                series("redis_cluster_slots_assigned", target(2), flat(["16384"] * 12)),
                series("redis_cluster_slots_fail", target(2), flat(["100"] * 12)),
            ],
            "5m",
            {"ValkeySlotsNotCovered": fires("ValkeySlotsNotCovered", target(1), target(2))},
        ),
        case(
            [
                *(series(n, target(0), bad if n == "redis_aof_last_write_status" else ok) for n in PERSISTENCE),
                *(series(n, target(1), ok) for n in PERSISTENCE),
                *(series(n, target(2), bad if n == "redis_rdb_last_bgsave_status" else ok) for n in PERSISTENCE),
            ],
            "5m",
            {"ValkeyPersistenceWriteError": fires("ValkeyPersistenceWriteError", target(0), target(2))},
        ),
        case(
            [
                series("redis_master_link_up", {**target(3), **master}, bad),
                series("redis_master_link_up", {**target(4), **master}, ok),
            ],
            "5m",
            {"ValkeyReplicationLinkDown": fires("ValkeyReplicationLinkDown", {**target(3), **master})},
        ),
        case(
            [
                # Member 0: no acknowledgement for 30 s. Member 1: acknowledging, 200 MiB behind.
                # Member 2: acknowledging, a few bytes behind.
                series("redis_connected_slave_lag_seconds", {**target(0), **lag}, flat(["30"] * 12)),
                series("redis_master_repl_offset", target(0), flat(["1000"] * 12)),
                series("redis_connected_slave_offset_bytes", {**target(0), **lag}, flat(["1000"] * 12)),
                series("redis_connected_slave_lag_seconds", {**target(1), **lag}, flat(["1"] * 12)),
                series("redis_master_repl_offset", target(1), flat([str(200 << 20)] * 12)),
                series("redis_connected_slave_offset_bytes", {**target(1), **lag}, flat(["1000"] * 12)),
                series("redis_connected_slave_lag_seconds", {**target(2), **lag}, flat(["0"] * 12)),
                series("redis_master_repl_offset", target(2), flat(["5000"] * 12)),
                series("redis_connected_slave_offset_bytes", {**target(2), **lag}, flat(["4990"] * 12)),
            ],
            "5m",
            {"ValkeyReplicationLagging": fires("ValkeyReplicationLagging", {**target(0), **lag}, {**target(1), **lag})},
        ),
        case(
            [
                # 95% of maxmemory; 85%; no maxmemory at all.
                series("redis_memory_used_bytes", target(0), flat(["95"] * 12)),
                series("redis_memory_max_bytes", target(0), flat(["100"] * 12)),
                series("redis_memory_used_bytes", target(1), flat(["85"] * 12)),
                series("redis_memory_max_bytes", target(1), flat(["100"] * 12)),
                series("redis_memory_used_bytes", target(2), flat(["1e9"] * 12)),
                series("redis_memory_max_bytes", target(2), flat(["0"] * 12)),
            ],
            "8m",
            {"ValkeyMemoryNearMax": fires("ValkeyMemoryNearMax", target(0))},
        ),
        case(
            [
                # Six members with replicas: primary 0 lost its replica, primary 1 has one, 3 is a
                # replica. Another cluster of three primaries without replicas: nothing to lose.
                *primary(target(0), role="master", replicas=0, known=6, size=3),
                *primary(target(1), role="master", replicas=1, known=6, size=3),
                *primary(target(3), role="slave", replicas=0, known=6, size=3),
                *primary(target(0, other), role="master", replicas=0, known=3, size=3),
                *primary(target(1, other), role="master", replicas=0, known=3, size=3),
            ],
            "8m",
            {"ValkeyPrimaryWithoutReplica": fires("ValkeyPrimaryWithoutReplica", target(0))},
        ),
        case(
            [
                *(series("redis_up", target(i), bad if i == 5 else ok) for i in range(6)),
                *(series("redis_cluster_known_nodes", target(i), flat(["6"] * 12)) for i in range(5)),
                *(series("redis_up", target(i, other), ok) for i in range(3)),
                *(series("redis_cluster_known_nodes", target(i, other), flat(["3"] * 12)) for i in range(3)),
            ],
            "5m",
            {
                "ValkeyMemberDown": fires("ValkeyMemberDown", target(5)),
                "ValkeyMembersMissing": fires("ValkeyMembersMissing", {"namespace": kit.NAMESPACE}),
            },
        ),
        case(
            [series("valkey_search_indexes", target(i), flat([str(n)] * 12)) for i, n in enumerate((2, 2, 1))],
            "8m",
            {"ValkeySearchIndexMissing": fires("ValkeySearchIndexMissing", target(2))},
        ),
        case(
            [series("valkey_search_coordinator_serving", target(i), ok if i else bad) for i in range(3)],
            "8m",
            {"ValkeySearchCoordinatorDown": fires("ValkeySearchCoordinatorDown", target(0))},
        ),
        case(
            [
                # books on member 0: a backfill stuck at 50%; on member 1, one moving on.
                series("valkey_search_index_backfill_in_progress", {**target(0), "index": "books"}, flat(["1"] * 50)),
                series("valkey_search_index_backfill_complete_ratio", {**target(0), "index": "books"}, "0.5x49"),
                series("valkey_search_index_backfill_in_progress", {**target(1), "index": "books"}, flat(["1"] * 50)),
                series("valkey_search_index_backfill_complete_ratio", {**target(1), "index": "books"}, "0.01+0.01x49"),
                # films: paused for lack of memory on member 2; writes 400 s behind on member 0,
                # 10 s on member 1.
                series("valkey_search_index_backfill_paused_by_oom", {**target(2), "index": "films"}, "1x49"),
                series("valkey_search_index_mutation_queue_delay_seconds", {**target(0), "index": "films"}, "400x49"),
                series("valkey_search_index_mutation_queue_delay_seconds", {**target(1), "index": "films"}, "10x49"),
            ],
            "45m",
            {
                "ValkeySearchIndexingStuck": fires(
                    "ValkeySearchIndexingStuck",
                    {**target(0), "index": "books"},
                    {**target(2), "index": "films"},
                    {**target(0), "index": "films"},
                )
            },
        ),
    ]
    return cases


PERSISTENCE = ("redis_aof_last_write_status", "redis_aof_last_bgrewrite_status", "redis_rdb_last_bgsave_status")


def primary(labels: dict[str, str], role: str, replicas: int, known: int, size: int) -> list[dict]:
    n = 12
    return [
        series("redis_connected_slaves", labels, " ".join([str(replicas)] * n)),
        series("redis_instance_info", {**labels, "role": role}, " ".join(["1"] * n)),
        series("redis_cluster_known_nodes", labels, " ".join([str(known)] * n)),
        series("redis_cluster_size", labels, " ".join([str(size)] * n)),
    ]


def test_promtool_checks_the_rules(promtool, tmp_path):
    rules = tmp_path / "rules.yaml"
    import yaml

    rules.write_text(yaml.safe_dump(kit.rule_groups(), sort_keys=False))
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(kit.alert_rules())} rules found" in result.stdout, result.stdout


def test_every_alert_fires_on_made_up_series(promtool, tmp_path):
    cases = made_up_cases()
    tested = {t["alertname"] for c in cases for t in c["alert_rule_test"]}
    assert tested == set(kit.alert_rules()), f"alerts without a made-up case: {set(kit.alert_rules()) - tested}"
    result = kit.run_promtool_tests(cases, tmp_path, interval="1m")
    assert result.returncode == 0, f"promtool test rules:\n{result.stdout}{result.stderr}"


def test_every_alert_has_a_runbook_line_in_the_readme():
    section = README.split("\n## Metrics and alerts\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"`(Valkey\w+)`", cells[0]) if line.startswith("|") else None
        if found:
            rows[found[1]] = cells
    missing = sorted(set(kit.alert_rules()) - set(rows))
    assert not missing, f"alerts without a runbook line in README.md, Metrics and alerts: {missing}"
    assert set(rows) <= set(kit.alert_rules()), (
        f"runbook lines of no alert: {sorted(set(rows) - set(kit.alert_rules()))}"
    )
    for name, cells in rows.items():
        assert len(cells) == 3 and all(len(c) > 20 for c in cells[1:]), f"{name}: alert | what it means | what to do"


def test_every_alert_says_what_and_where():
    for name, rule in kit.alert_rules().items():
        assert rule.get("for"), f"{name}: no `for`: one bad scrape would page"
        assert rule["labels"].get("severity") in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        assert annotations["runbook_url"].endswith("README.md#metrics-and-alerts"), name
        for text in annotations.values():
            kit.render_template(text, {})  # only $labels


def test_the_dashboard_is_well_formed():
    dashboard = json.loads(kit.DASHBOARD.read_text())
    ids, titles = [], set()

    def walk(panels):
        for panel in panels:
            ids.append(panel["id"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
            if panel["type"] == "row":
                titles.add(panel["title"])
            else:
                assert panel["targets"], f"{panel['title']}: no query"
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
                for target in panel["targets"]:
                    assert target["expr"] and "namespace" in target["expr"], f"{panel['title']}: {target['expr']}"
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert {"Cluster", "Members", "Memory", "Commands", "Search"} <= titles, titles
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables


def test_the_name_reader_reads_promql():
    read = kit.promql_metric_names
    assert read('max by (namespace) (a_b{x="y"}) > count by (namespace) (c == 1)') == {"a_b", "c"}
    assert read('rate(x_total{n=~"$namespace"}[$__rate_interval]) / ignoring(cmd) y') == {"x_total", "y"}
    assert read("a - on (instance) group_right () b > 64 * 1024 or vector(0) and 1e3 < c") == {"a", "b", "c"}
    assert read("label_values(redis_up, namespace)") == {"redis_up"}
    assert read("topk(10, sum by (cmd) (rate(z[5m] offset 1h)))") == {"z"}


def test_the_relabeling_names_the_search_pairs():
    """The exporter's redis_script_values{key="<name>[:<index>]"} become valkey_<name>{index=...}."""
    configs = kit.metric_relabelings()
    target = {"namespace": kit.NAMESPACE, "pod": "valkey-bundle-0"}
    samples = [
        kit.Sample("redis_script_values", (("filename", "/x.lua"), ("key", "search_indexes")), 2),
        kit.Sample("redis_script_values", (("key", "search_index_documents:my:books"),), 42),
        kit.Sample("redis_script_values", (("key", "other_thing"),), 1),
        kit.Sample("redis_up", (), 1),
    ]
    stored = kit.as_prometheus_stores(samples, target, configs)
    assert stored == [
        kit.Sample("valkey_search_indexes", tuple(sorted(target.items())), 2),
        kit.Sample("valkey_search_index_documents", tuple(sorted({**target, "index": "my:books"}.items())), 42),
        kit.Sample("redis_script_values", tuple(sorted({**target, "key": "other_thing"}.items())), 1),
        kit.Sample("redis_up", tuple(sorted(target.items())), 1),
    ]


def test_the_search_metric_names_follow_prometheus_conventions():
    """Every name the script can return: valkey_search_ once relabeled, a unit suffix where it has
    a unit, _total for the counts that only grow; and every one the rules or dashboard query is one
    of them."""
    names = set(re.findall(r"'(search_[a-z_]+)'", kit.SCRIPT.read_text()))
    assert "search_index_documents" in names and "search_indexes" in names, names
    for name in names:
        assert re.fullmatch(r"search_[a-z]+(?:_[a-z]+)*", name), name
        if "memory" in name or name.endswith("data_bytes"):
            assert name.endswith("_bytes"), name
        if "delay" in name:
            assert name.endswith("_seconds"), name
        if "failures" in name:
            assert name.endswith("_total"), name
        if "complete" in name:
            assert name.endswith("_ratio"), name
    relabeled = {f"valkey_{n}" for n in names}
    queried = {n for n in kit.queried_names() if kit.is_search_metric(n)}
    assert queried and queried <= relabeled, f"queried, never returned by the script: {sorted(queried - relabeled)}"
