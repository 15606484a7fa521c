"""Tier 2: the index guard beside a real valkey-server keeps search.skip-rdb-load and the data
directory's record of the indexes right, and the next start chooses from that record.

The fixture module stands in for search here, loaded with --fixture-indexes (its FT.CREATE
keeps indexes in memory only and FT.INFO answers with the algorithm as valkey-search
does); tests/real runs the same against the real module.
"""

import time

import pytest

from valkey_bundle.index_state import RECORD_FILE, read_record

pytestmark = pytest.mark.native


def wait_for(what, check, server, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}\n{server.log()}")
        time.sleep(0.1)


def setting(server):
    return server.cli("CONFIG", "GET", "search.skip-rdb-load").split()[-1]


def recorded(data):
    try:
        return read_record((data / RECORD_FILE).read_text())
    except FileNotFoundError:
        return None


def start(start_server, modules_dir, data, port=None):
    return start_server(
        ["--port", "{port}", "--save", ""],
        cwd=data,
        port=port,
        VALKEY_MODULES_DIR=str(modules_dir),
        VALKEY_MODULES="search",
        SEARCH_MODULE_ARGS="--fixture-indexes",
        VALKEY_BUNDLE_DEBUG="1",
    ).wait_ready()


def test_the_setting_follows_flat_indexes_and_the_next_start_reads_the_record(start_server, modules_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    server = start(start_server, modules_dir, data)
    assert "search.skip-rdb-load: yes (chosen for this data directory: no record of this directory's indexes)" in (
        server.log()
    )
    # A new directory: nothing to index again, so the guard turns it off and says why.
    wait_for("an empty record, then the setting off", lambda: recorded(data) == {} and setting(server) == "no", server)

    server.cli("FT.CREATE", "films", "SCHEMA", "v", "VECTOR", "HNSW", "6", "DIM", "2")
    wait_for("films recorded", lambda: recorded(data) == {"films": {"HNSW"}}, server)
    assert setting(server) == "no", "HNSW loads from an RDB as it was"

    server.cli("FT.CREATE", "books", "SCHEMA", "v", "VECTOR", "FLAT", "6", "DIM", "2")
    wait_for("the setting on for a FLAT field", lambda: setting(server) == "yes", server)
    wait_for("books recorded", lambda: recorded(data) == {"films": {"HNSW"}, "books": {"FLAT"}}, server)
    assert "search.skip-rdb-load yes: FLAT vector fields in books" in server.log()

    # Restarted with the FLAT index recorded: the entrypoint starts with yes.
    port = server.port
    assert server.stop() == 0
    again = start(start_server, modules_dir, data, port=port)
    chosen = "search.skip-rdb-load: yes (chosen for this data directory: FLAT vector fields in books"
    assert f"{chosen} (bundle-search-indexes))" in again.log()
    # The fixture's indexes are gone with the server: the guard records that and turns it off.
    wait_for("no index recorded, the setting off", lambda: recorded(data) == {} and setting(again) == "no", again)
    port = again.port
    assert again.stop() == 0
    third = start(start_server, modules_dir, data, port=port)
    assert "search.skip-rdb-load: no (chosen for this data directory: no search index (bundle-search-indexes))" in (
        third.log()
    )
    assert setting(third) == "no"


def test_a_record_that_cannot_be_written_leaves_yes_in_force(start_server, modules_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / (RECORD_FILE + ".tmp")).mkdir()  # the guard's temporary file cannot be made
    server = start(start_server, modules_dir, data)
    wait_for("the failure logged", lambda: f"cannot write {data / RECORD_FILE}" in server.log(), server)
    time.sleep(1.5)  # three more turns
    assert setting(server) == "yes" and recorded(data) is None
    assert server.log().count(f"cannot write {data / RECORD_FILE}") == 1, "each failure is logged once"
