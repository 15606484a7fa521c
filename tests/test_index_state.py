"""Search index decisions (index_state.py) and the plan of the index guard."""

import pytest
from test_plan import plan_for

from valkey_bundle.errors import UsageError
from valkey_bundle.index_state import (
    RECORD_FILE,
    guard_step,
    index_names,
    missing_indexes,
    parse_info,
    read_record,
    readiness_problem,
    record_text,
    reindex_choice,
    reindex_steps,
    vector_algorithms,
)
from valkey_bundle.resp import ReplyError

AOF_ON = {"aof_enabled": "1", "aof_rewrite_in_progress": "0", "aof_rewrite_scheduled": "0"}


def test_index_names_from_ft_list():
    assert index_names(["a", "b"]) == {"a", "b"}
    assert index_names([]) == frozenset()
    assert index_names(ReplyError("ERR unknown command 'FT._LIST'")) is None
    assert index_names(None) is None


def test_missing_indexes_name_the_peers_that_have_them():
    peers = {"10.0.0.2:6379": frozenset({"a", "b"}), "10.0.0.3:6379": frozenset({"b", "c"})}
    assert missing_indexes(frozenset({"b"}), peers) == {"a": ["10.0.0.2:6379"], "c": ["10.0.0.3:6379"]}
    assert missing_indexes(frozenset({"a", "b", "c", "d"}), peers) == {}, "an index only here is the peers' problem"


def test_readiness_fails_while_an_index_is_missing_or_building():
    peers = {"10.0.0.2:6379": frozenset({"docs"})}
    info = parse_info("# search\r\nsearch_background_indexing_status:NO_ACTIVITY\r\n")
    assert readiness_problem(frozenset({"docs"}), peers, info) is None
    assert readiness_problem(frozenset(), peers, info) == "lacks search indexes its peers have: docs (on 10.0.0.2:6379)"
    building = parse_info("search_background_indexing_status:IN_PROGRESS\n")
    assert "still building an index" in readiness_problem(frozenset({"docs"}), peers, building)
    assert readiness_problem(frozenset(), {}, info) is None, "no peer answered: nothing to compare"


@pytest.mark.parametrize(
    "persisted, current, persistence, step",
    [
        (None, frozenset(), AOF_ON, None),  # nothing to keep
        (None, frozenset({"a"}), AOF_ON, "rewrite"),  # at start: maybe made by a peer's reconcile
        (frozenset({"a"}), frozenset({"a"}), AOF_ON, None),
        (frozenset({"a"}), frozenset({"a", "b"}), AOF_ON, "rewrite"),  # created
        (frozenset({"a", "b"}), frozenset({"a"}), AOF_ON, "rewrite"),  # dropped
        (frozenset(), frozenset({"a"}), {**AOF_ON, "aof_rewrite_in_progress": "1"}, None),  # wait for it
        (frozenset(), frozenset({"a"}), {**AOF_ON, "aof_rewrite_scheduled": "1"}, None),
        (frozenset(), frozenset({"a"}), {**AOF_ON, "aof_enabled": "0"}, None),  # AOF off: nothing to guard
    ],
)
def test_guard_step(persisted, current, persistence, step):
    assert guard_step(persisted, current, persistence) == step


def test_the_guard_rewrites_the_aof_of_cluster_members_with_the_coordinator():
    plan = plan_for(["--cluster-enabled", "yes", "--port", "7000"], {"VALKEY_MODULES": "search"})
    assert plan.index_guard["port"] == 7000 and plan.index_guard["rewrite_aof"]
    assert plan.as_dict()["index_guard"] == plan.index_guard
    assert "rewrites the AOF after index changes" in next(n for n in plan.notes if n.startswith("search index guard"))
    single = plan_for([], {"VALKEY_MODULES": "search"}).index_guard
    assert single["rewrite_aof"] is False, "no cluster: no coordinator"
    coordinator_off = {"VALKEY_MODULES": "search", "VALKEY_SEARCH_COORDINATOR": "no"}
    assert plan_for(["--cluster-enabled", "yes"], coordinator_off).index_guard["rewrite_aof"] is False
    assert plan_for(["--cluster-enabled", "yes"], {"VALKEY_MODULES": "json"}).index_guard is None


def test_the_guard_keeps_the_reindex_setting_wherever_search_loads():
    plan = plan_for(["--port", "7001"], {"VALKEY_MODULES": "search"}, cwd="/data")
    assert plan.index_guard == {
        "port": 7001,
        "rewrite_aof": False,
        "reindex_config": "search.skip-rdb-load",
        "reindex": "yes",
        "record": "/data/bundle-search-indexes",
    }
    assert (
        "search index guard: on, port 7001 (keeps search.skip-rdb-load and /data/bundle-search-indexes up to date)"
        in plan.notes
    )


def test_the_guard_turned_off_with_aof_on_is_a_warning():
    environ = {"VALKEY_MODULES": "search", "VALKEY_SEARCH_INDEX_GUARD": "no"}
    plan = plan_for(["--cluster-enabled", "yes", "--appendonly", "yes"], environ)
    assert plan.index_guard is None
    assert any(w.startswith("VALKEY_SEARCH_INDEX_GUARD=no with appendonly yes") for w in plan.warnings)
    assert not any("INDEX_GUARD" in w for w in plan_for(["--cluster-enabled", "yes"], environ).warnings)
    with pytest.raises(UsageError, match="VALKEY_SEARCH_INDEX_GUARD='maybe': expected auto or no"):
        plan_for([], {"VALKEY_SEARCH_INDEX_GUARD": "maybe"})


def vector_field(name, algorithm):
    """An attribute of FT.INFO as valkey-search 1.2.1 answers it (src/indexes/vector_*.cc)."""
    extra = ["block_size", 1024] if algorithm == "FLAT" else ["m", 16, "ef_construction", 200, "ef_runtime", 10]
    return [
        "identifier", name, "attribute", name, "type", "VECTOR",
        "index", ["capacity", 10240, "dimensions", 2, "distance_metric", "L2", "size", "0",
                  "data_type", "FLOAT32", "algorithm", ["name", algorithm, *extra]],
    ]  # fmt: skip


def info_reply(*attributes):
    return ["index_name", "idx", "index_definition", ["key_type", "HASH"], "attributes", list(attributes),
            "num_docs", 0]  # fmt: skip


def test_vector_algorithms_of_an_ft_info_reply():
    tag = ["identifier", "genre", "attribute", "genre", "type", "TAG", "SEPARATOR", ","]
    assert vector_algorithms(info_reply(tag)) == frozenset()
    assert vector_algorithms(info_reply(tag, vector_field("v", "FLAT"))) == {"FLAT"}
    assert vector_algorithms(info_reply(vector_field("a", "HNSW"), vector_field("b", "FLAT"))) == {"FLAT", "HNSW"}
    assert vector_algorithms(ReplyError("Index with name 'idx' not found")) is None
    assert vector_algorithms(None) is None


def test_the_record_reads_back_what_was_written_whatever_the_names():
    algorithms = {"books": frozenset({"FLAT"}), "a b\tc\nd": frozenset(), "films": frozenset({"HNSW", "FLAT"})}
    text = record_text(algorithms)
    assert text.count("\n") == 3 + len(algorithms), "a header, two lines of comment, one line per index"
    back = read_record(text)
    assert {name: kinds for name, kinds in back.items() if name != "a b\\tc\\nd"} == {
        "books": {"FLAT"},
        "films": {"FLAT", "HNSW"},
    }
    assert back["a b\\tc\\nd"] == frozenset(), "an odd name is escaped, its kinds kept"
    assert read_record(record_text({})) == {}
    assert read_record(None) is None
    assert read_record("books FLAT\n") is None, "not a record this version wrote"
    assert read_record(text.replace("\t", " ")) is None


def test_reindex_choice_is_yes_unless_the_record_shows_no_flat_field():
    assert reindex_choice(None)[0] == "yes"
    assert reindex_choice("garbage")[0] == "yes"
    assert reindex_choice(record_text({"films": frozenset({"HNSW"})})) == (
        "no",
        f"no FLAT vector field in the indexes ({RECORD_FILE})",
    )
    assert reindex_choice(record_text({"a": frozenset({"FLAT"}), "b": frozenset({"FLAT"})})) == (
        "yes",
        f"FLAT vector fields in a, b ({RECORD_FILE})",
    )


FLAT = {"books": frozenset({"FLAT"})}
HNSW = {"films": frozenset({"HNSW"})}


@pytest.mark.parametrize(
    "setting, algorithms, recorded, steps",
    [
        ("yes", {}, None, [("record", {}), ("set", "no")]),  # a new volume
        ("no", HNSW, HNSW, []),
        ("no", {**HNSW, **FLAT}, HNSW, [("set", "yes"), ("record", {**HNSW, **FLAT})]),  # yes before the record
        ("yes", HNSW, {**HNSW, **FLAT}, [("record", HNSW), ("set", "no")]),  # no after it
        ("yes", FLAT, None, [("record", FLAT)]),
        ("yes", FLAT, FLAT, []),
        ("no", HNSW, None, [("record", HNSW)]),  # the record was not written yet
    ],
)
def test_reindex_steps_leave_yes_in_force_at_every_point_of_a_crash(setting, algorithms, recorded, steps):
    assert reindex_steps(setting, algorithms, recorded) == steps
