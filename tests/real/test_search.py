"""search (valkey-search) at work on one node: indexes on HASH and on JSON documents with
TEXT, TAG, NUMERIC and VECTOR (HNSW and FLAT) fields; FT.SEARCH by tag, numeric range,
text and KNN, each answer checked against one computed here from the same documents
(search_kit.py); FT.AGGREGATE; FT.INFO; indexes and documents back after a restart from the RDB file
and from the AOF; documents written after such a restart found at their own distance (and,
without the image's search.skip-rdb-load, the upstream bug that breaks them).

Two nodes for the module (module scope), started through the entrypoint: one keeps its
data in RDB files only (written by SAVE), the other in an AOF (fsync always); both are
killed, not stopped, before they come back, so that only what was on disk counts. The
last three cases start a node each: an index with a FLAT field, one without, and the
upstream bug the image's choice of search.skip-rdb-load avoids. The JSON cases need the
real json module beside search.
"""

from __future__ import annotations

import pytest

from valkey_bundle.index_state import RECORD_FILE, read_record

from . import real_kit
from .search_kit import (
    HASH_VECTORS,
    JSON_VECTORS,
    books,
    check_knn,
    filter_queries,
    hash_index,
    index_info,
    json_index,
    knn,
    later_books,
    query_vector,
    reindex_setting,
    search_keys,
    vector_field,
)

pytestmark = pytest.mark.real

COUNT = 150
K = 10
QUERY_SEEDS = (101, 102, 103)
SEARCH_TIMEOUT = 10.0  # seconds for one FT.* command on a loaded machine
HASH_BOOKS = books("book:", COUNT, seed=7)
LATE_BOOKS = later_books("book:late", 20, seed=9)  # written after a restart
JSON_BOOKS = books("jbook:", COUNT, seed=8)
# index -> (its documents, its vector fields)
INDEXES = {"books": (HASH_BOOKS, HASH_VECTORS), "jbooks": (JSON_BOOKS, JSON_VECTORS)}


@pytest.fixture(scope="module", autouse=True)
def search_is_real(real_image):
    real_kit.require_real(real_image, "search")


@pytest.fixture(scope="module")
def with_json(real_image) -> bool:
    return real_image.not_real("json") is None


def indexes(with_json: bool) -> list[str]:
    return ["books", "jbooks"] if with_json else ["books"]


def load(kit, node, with_json: bool) -> None:
    """Create the indexes, then write the documents (indexed as they are written)."""
    with node.connect(timeout=10) as conn:
        assert conn.call(*hash_index("books", "book:")) == "OK"
        for book in HASH_BOOKS:
            assert conn.call("HSET", book.key, *book.hash_fields()) == 5
        if with_json:
            assert conn.call(*json_index("jbooks", "jbook:")) == "OK"
            for book in JSON_BOOKS:
                assert conn.call("JSON.SET", book.key, "$", book.json_document()) == "OK"
    wait_indexed(kit, node, indexes(with_json))


def wait_indexed(kit, node, names: list[str], timeout: float = 60.0, count: int = COUNT) -> None:
    """Until every index holds all its ``count`` documents and has nothing queued."""

    def complete(name: str) -> bool:
        reply = node.call("FT.INFO", name, timeout=SEARCH_TIMEOUT)
        if not isinstance(reply, list):  # not there yet (loading)
            return False
        info = dict(zip(reply[::2], reply[1::2], strict=True))
        return int(info["num_docs"]) == count and str(info.get("mutation_queue_size", "0")) == "0"

    kit.wait(f"{', '.join(names)} to index {count} documents", lambda: all(map(complete, names)), [node], timeout)


def answers(node, names: list[str]) -> dict:
    """Every query's answer: the filter queries' keys and the KNN queries' keys in order."""
    found = {}
    with node.connect(timeout=SEARCH_TIMEOUT) as conn:
        for name in names:
            documents, vectors = INDEXES[name]
            for query in filter_queries(documents):
                found[name, query] = search_keys(conn, name, query)
            for field, (algorithm, _metric) in vectors.items():
                vector = query_vector(QUERY_SEEDS[0])
                found[name, field] = [key for key, _ in knn(conn, name, field, algorithm, vector, K)]
    return found


@pytest.fixture(scope="module")
def rdb_node(kit, with_json):
    node = real_kit.start(kit, kit.node("search-rdb", extra_env={"VALKEY_EXTRA_FLAGS": '--save ""'}))
    load(kit, node, with_json)
    return node


@pytest.fixture(scope="module")
def aof_node(kit, with_json):
    flags = '--appendonly yes --appendfsync always --save ""'
    node = real_kit.start(kit, kit.node("search-aof", extra_env={"VALKEY_EXTRA_FLAGS": flags}))
    load(kit, node, with_json)
    return node


def require_index(real_image, index: str) -> None:
    if index == "jbooks":  # JSON documents need the json module too
        real_kit.require_real(real_image, "json")


@pytest.mark.parametrize("index", ["books", "jbooks"])
def test_tag_numeric_and_text_filters(real_image, rdb_node, index):
    require_index(real_image, index)
    documents, _ = INDEXES[index]
    with rdb_node.connect(timeout=SEARCH_TIMEOUT) as conn:
        for query, expected in filter_queries(documents).items():
            assert expected, f"the test data gives {query!r} nothing to find"
            count, found = search_keys(conn, index, query)
            assert (count, found) == (len(expected), expected), f"{index}: {query!r}"


@pytest.mark.parametrize("index", ["books", "jbooks"])
def test_knn_order_matches_the_distances(real_image, rdb_node, index):
    require_index(real_image, index)
    documents, vectors = INDEXES[index]
    with rdb_node.connect(timeout=SEARCH_TIMEOUT) as conn:
        for field, (algorithm, metric) in vectors.items():
            for seed in QUERY_SEEDS:
                vector = query_vector(seed)
                check_knn(knn(conn, index, field, algorithm, vector, K), documents, vector, metric, K, field)
        # A filter and KNN together: the nearest among the poetry books only (on the FLAT
        # field: exact whichever way the module combines the two).
        poetry = [b for b in documents if b.genre == "poetry"]
        field, metric = next((f, metric) for f, (algorithm, metric) in vectors.items() if algorithm == "FLAT")
        vector = query_vector(QUERY_SEEDS[0])
        hits = knn(conn, index, field, "FLAT", vector, K, where="@genre:{poetry}")
    check_knn(hits, poetry, vector, metric, K, f"{field} among poetry")


def test_ft_aggregate_groups_and_reduces(rdb_node):
    """FT.AGGREGATE: the books of a range of years grouped by genre, counted and their years summed."""
    low, high = HASH_BOOKS[10].year, HASH_BOOKS[99].year
    chosen = [b for b in HASH_BOOKS if low <= b.year <= high]
    expected = {}
    for book in chosen:
        count, total = expected.get(book.genre, (0, 0))
        expected[book.genre] = (count + 1, total + book.year)
    with rdb_node.connect(timeout=SEARCH_TIMEOUT) as conn:
        reply = conn.call(
            *("FT.AGGREGATE", "books", f"@year:[{low} {high}]", "LOAD", "2", "@genre", "@year"),
            *("GROUPBY", "1", "@genre", "REDUCE", "COUNT", "0", "AS", "n"),
            *("REDUCE", "SUM", "1", "@year", "AS", "total"),
        )
    assert isinstance(reply, list), reply
    rows = [dict(zip(row[::2], row[1::2], strict=True)) for row in reply[1:]]
    found = {row["genre"]: (int(row["n"]), float(row["total"])) for row in rows}
    assert found == expected, reply


def test_ft_info_describes_the_indexes(rdb_node, with_json):
    assert sorted(rdb_node.call("FT._LIST")) == sorted(indexes(with_json))
    expected_types = {"title": "TEXT", "genre": "TAG", "year": "NUMERIC"}
    for name in indexes(with_json):
        documents, vectors = INDEXES[name]
        info = index_info(rdb_node, name)
        assert info["index_name"] == name
        assert int(info["num_docs"]) == len(documents)
        definition = info["index_definition"]
        assert definition["key_type"] == ("HASH" if name == "books" else "JSON")
        assert definition["prefixes"] == [documents[0].key.split(":")[0] + ":"]
        attributes = info["attributes"]
        assert set(attributes) == set(expected_types) | set(vectors), attributes
        for attribute, kind in expected_types.items():
            assert attributes[attribute]["type"] == kind, attributes[attribute]
        for field, (algorithm, metric) in vectors.items():
            assert attributes[field]["type"] == "VECTOR"
            vector_index = dict(zip(attributes[field]["index"][::2], attributes[field]["index"][1::2], strict=True))
            assert int(vector_index["dimensions"]) == len(documents[0].embedding)
            assert vector_index["distance_metric"].upper() == metric
            algorithm_info = vector_index["algorithm"]
            assert dict(zip(algorithm_info[::2], algorithm_info[1::2], strict=True))["name"] == algorithm


def test_back_after_a_restart_from_rdb(kit, rdb_node, with_json):
    names = indexes(with_json)
    before = answers(rdb_node, names)
    assert rdb_node.call("SAVE", timeout=SEARCH_TIMEOUT) == "OK"
    real_kit.restart(kit, rdb_node, graceful=False)  # killed: the RDB file is all there is
    assert rdb_node.info("INFO", "persistence")["aof_enabled"] == "0"
    wait_indexed(kit, rdb_node, names)
    assert sorted(rdb_node.call("FT._LIST")) == sorted(names)
    assert answers(rdb_node, names) == before
    assert "DB loaded from disk" in rdb_node.logs()


def test_back_after_a_restart_from_aof(kit, aof_node, with_json):
    names = indexes(with_json)
    before = answers(aof_node, names)
    assert aof_node.info("INFO", "persistence")["aof_enabled"] == "1"
    real_kit.restart(kit, aof_node, graceful=False)  # killed, no RDB file: the AOF is all there is
    wait_indexed(kit, aof_node, names)
    assert sorted(aof_node.call("FT._LIST")) == sorted(names)
    assert answers(aof_node, names) == before
    assert "DB loaded from append only file" in aof_node.logs()


def reload_then_write_later(kit, node) -> None:
    """SAVE, kill, start on the volume (the indexes loaded from the RDB file), then write
    LATE_BOOKS: keys the index takes after a load."""
    assert node.call("SAVE", timeout=SEARCH_TIMEOUT) == "OK"
    real_kit.restart(kit, node, graceful=False)
    wait_indexed(kit, node, ["books"])
    with node.connect(timeout=10) as conn:
        for book in LATE_BOOKS:
            assert conn.call("HSET", book.key, *book.hash_fields()) == 5
    wait_indexed(kit, node, ["books"], count=COUNT + len(LATE_BOOKS))


def recorded(node) -> dict | None:
    """The data directory's record of its indexes ({index: its vector algorithms}), or None."""
    code, text = node.exec("cat", f"/data/{RECORD_FILE}")
    return read_record(text) if code == 0 else None


def chosen_at_start(node) -> str:
    """What the entrypoint chose for search.skip-rdb-load and why, by its debug output."""
    prefix = "debug: search.skip-rdb-load: "
    lines = [line.split(prefix, 1)[1] for line in node.logs().splitlines() if prefix in line]
    return lines[-1] if lines else f"(not said)\n{node.logs()[-3000:]}"


def skipped_on_load(node) -> int:
    """How many index sections valkey-search left out of its last load (search.skip-rdb-load
    yes: the keys are indexed again instead), by its log."""
    return node.logs().count("Skipping supplemental content section (due to configuration)")


def test_documents_written_after_a_restart_are_found_at_their_own_distance(kit):
    """An index with a FLAT field: the index guard turns search.skip-rdb-load on and records
    it in the data directory, so that the next start indexes the keys again rather than load
    them, and keys written afterwards get ids of their own (README: Search indexes and
    restarts)."""
    env = {"VALKEY_EXTRA_FLAGS": '--save ""', "VALKEY_BUNDLE_DEBUG": "1"}
    node = real_kit.start(kit, kit.node("search-later", extra_env=env))
    load(kit, node, with_json=False)
    kit.wait("the guard to record the FLAT field", lambda: recorded(node) == {"books": {"FLAT", "HNSW"}}, [node])
    assert reindex_setting(node) == "yes"
    reload_then_write_later(kit, node)
    choice = chosen_at_start(node)
    assert choice.startswith("yes (chosen for this data directory: FLAT vector fields in books"), choice
    assert skipped_on_load(node) > 0, "the load kept the index's definition only"
    assert reindex_setting(node) == "yes"
    documents = HASH_BOOKS + LATE_BOOKS
    vectors = [b.embedding for b in LATE_BOOKS[:3]] + [query_vector(seed) for seed in QUERY_SEEDS]
    with node.connect(timeout=SEARCH_TIMEOUT) as conn:
        for field, (algorithm, metric) in HASH_VECTORS.items():
            for vector in vectors:
                check_knn(knn(conn, "books", field, algorithm, vector, K), documents, vector, metric, K, field)
        for query, expected in filter_queries(HASH_BOOKS).items():  # the late books match none
            assert search_keys(conn, "books", query) == (len(expected), expected), query


def test_an_index_without_flat_fields_is_loaded_not_indexed_again(kit):
    """No FLAT field: the guard turns search.skip-rdb-load off and records that, and the next
    start loads the index from the RDB as it was (no window in which it answers with part
    of its keys); keys written afterwards are found at their own distance (HNSW keeps its
    ids across a load)."""
    env = {"VALKEY_EXTRA_FLAGS": '--save ""', "VALKEY_BUNDLE_DEBUG": "1"}
    node = real_kit.start(kit, kit.node("search-loaded", extra_env=env))
    schema = ("FT.CREATE", "books", "ON", "HASH", "PREFIX", "1", "book:", "SCHEMA", "genre", "TAG")
    with node.connect(timeout=10) as conn:
        assert conn.call(*schema, "vec", *vector_field("HNSW", "L2")) == "OK"
        for book in HASH_BOOKS:
            assert conn.call("HSET", book.key, *book.hash_fields()) == 5
    wait_indexed(kit, node, ["books"])
    kit.wait("the guard to turn search.skip-rdb-load off", lambda: reindex_setting(node) == "no", [node])
    assert recorded(node) == {"books": {"HNSW"}}, "the record is written before the setting goes off"
    reload_then_write_later(kit, node)
    choice = chosen_at_start(node)
    assert choice.startswith("no (chosen for this data directory: no FLAT vector field in the indexes"), choice
    assert skipped_on_load(node) == 0, "the index came back from the RDB"
    documents = HASH_BOOKS + LATE_BOOKS
    with node.connect(timeout=SEARCH_TIMEOUT) as conn:
        for vector in [b.embedding for b in LATE_BOOKS[:3]] + [query_vector(QUERY_SEEDS[0])]:
            check_knn(knn(conn, "books", "vec", "HNSW", vector, K), documents, vector, "L2", K, "vec")
        genre = HASH_BOOKS[0].genre
        expected = {b.key for b in HASH_BOOKS if b.genre == genre}
        assert search_keys(conn, "books", f"@genre:{{{genre}}}") == (len(expected), expected)


def test_without_it_a_flat_index_loaded_from_rdb_gives_later_keys_the_ids_of_loaded_ones(kit):
    """The upstream bug search.skip-rdb-load yes works around, on valkey-search 1.2.1: a FLAT
    index restored from an RDB restarts its id counter, so the first key indexed after the
    load takes a loaded key's id and overwrites its vector (HNSW restores its counter). The
    day this fails, upstream restores FLAT ids and the image's default can go."""
    flags = '--save "" --search.skip-rdb-load no'
    node = real_kit.start(kit, kit.node("search-later-bug", extra_env={"VALKEY_EXTRA_FLAGS": flags}))
    load(kit, node, with_json=False)
    reload_then_write_later(kit, node)
    late = LATE_BOOKS[0]
    with node.connect(timeout=SEARCH_TIMEOUT) as conn:
        ((key, score),) = knn(conn, "books", "vec_flat", "FLAT", late.embedding, 1)
        hnsw = knn(conn, "books", "vec", "HNSW", late.embedding, K)
    check_knn(hnsw, HASH_BOOKS + LATE_BOOKS, late.embedding, "L2", K, "vec (HNSW)")
    loaded = {b.key for b in HASH_BOOKS}
    assert key in loaded and abs(score) < 1e-4, (
        f"vec_flat: the nearest to {late.key}'s vector is {key} at {score}: FLAT ids survive a load now"
    )
