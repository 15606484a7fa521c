"""Search index decisions (index_state.py) and the plan of the index guard."""

import pytest
from test_plan import plan_for

from valkey_bundle.errors import UsageError
from valkey_bundle.index_state import guard_step, index_names, missing_indexes, parse_info, readiness_problem
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


def test_the_guard_watches_cluster_members_with_the_coordinator():
    plan = plan_for(["--cluster-enabled", "yes", "--port", "7000"], {"VALKEY_MODULES": "search"})
    assert plan.index_guard == 7000 and plan.as_dict()["index_guard"] == 7000
    assert plan_for([], {"VALKEY_MODULES": "search"}).index_guard is None, "no cluster: no coordinator"
    coordinator_off = {"VALKEY_MODULES": "search", "VALKEY_SEARCH_COORDINATOR": "no"}
    assert plan_for(["--cluster-enabled", "yes"], coordinator_off).index_guard is None
    assert plan_for(["--cluster-enabled", "yes"], {"VALKEY_MODULES": "json"}).index_guard is None


def test_the_guard_turned_off_with_aof_on_is_a_warning():
    environ = {"VALKEY_MODULES": "search", "VALKEY_SEARCH_INDEX_GUARD": "no"}
    plan = plan_for(["--cluster-enabled", "yes", "--appendonly", "yes"], environ)
    assert plan.index_guard is None
    assert any(w.startswith("VALKEY_SEARCH_INDEX_GUARD=no with appendonly yes") for w in plan.warnings)
    assert not any("INDEX_GUARD" in w for w in plan_for(["--cluster-enabled", "yes"], environ).warnings)
    with pytest.raises(UsageError, match="VALKEY_SEARCH_INDEX_GUARD='maybe': expected auto or no"):
        plan_for([], {"VALKEY_SEARCH_INDEX_GUARD": "maybe"})
