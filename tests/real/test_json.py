"""json (valkey-json) at work in the image: JSONPath reads and updates, a document of
several MB byte for byte, json.max-path-limit given through VALKEY_EXTRA_FLAGS, the data
after a restart and on a replica.

One node for the module (module scope), started through the entrypoint with the path
limit in VALKEY_EXTRA_FLAGS; the test side talks RESP to it from this machine.
"""

from __future__ import annotations

import copy
import json
import random

import pytest

from . import real_kit

pytestmark = pytest.mark.real

MAX_PATH_LIMIT = 16
BIG_TIMEOUT = 60.0  # seconds for one command carrying several MB on a loaded machine
PROFILE = {
    "name": "Ada",
    "languages": ["c", "python"],
    "visits": 7,
    "address": {"city": "London", "floor": 3},
    "verified": False,
    "note": None,
}


@pytest.fixture(scope="module", autouse=True)
def json_is_real(real_image):
    real_kit.require_real(real_image, "json")


@pytest.fixture(scope="module")
def node(kit):
    settings = {"VALKEY_EXTRA_FLAGS": f"--json.max-path-limit {MAX_PATH_LIMIT}"}
    return real_kit.start(kit, kit.node("json-0", extra_env=settings))


def big_document(megabytes: int, seed: int = 9) -> bytes:
    """A JSON document of about ``megabytes`` MB, written compactly as the module writes it
    back: objects, arrays, strings with escapes and UTF-8, integers, a float, true, null."""
    rng = random.Random(seed)
    words = ["valkey", "search", "bloom", "ldap", 'say "hi"', "back\\slash", "tab\there", "naïve", "日本"]
    items = []
    size = 0
    while size < megabytes << 20:
        item = {
            "id": len(items),
            "name": " ".join(rng.choice(words) for _ in range(6)),
            "scores": [rng.randint(-(10**9), 10**9) for _ in range(8)],
            "ratio": 0.5,
            "active": rng.random() < 0.5,
            "parent": None,
        }
        items.append(item)
        size += len(compact(item))
    return compact({"items": items, "count": len(items)})


def compact(value) -> bytes:
    """JSON as the module writes it: no spaces, UTF-8 as it is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def nested(depth: int) -> str:
    """An object nested ``depth`` levels below its top: {"a":{"a":...{}}}."""
    return '{"a":' * depth + "{}" + "}" * depth


def test_paths_read_and_update(node):
    expected = copy.deepcopy(PROFILE)
    with node.connect() as conn:
        assert conn.call("JSON.SET", "user:1", "$", json.dumps(PROFILE)) == "OK"
        assert json.loads(conn.call("JSON.GET", "user:1", "$.name")) == ["Ada"]
        assert json.loads(conn.call("JSON.GET", "user:1", "$.address.city")) == ["London"]

        assert conn.call("JSON.ARRAPPEND", "user:1", "$.languages", '"rust"', '"go"') == [4]
        expected["languages"] += ["rust", "go"]
        assert json.loads(conn.call("JSON.NUMINCRBY", "user:1", "$.visits", "5")) == [12]
        expected["visits"] = 12
        assert json.loads(conn.call("JSON.NUMINCRBY", "user:1", "$.address.floor", "-1")) == [2]
        expected["address"]["floor"] = 2
        assert conn.call("JSON.SET", "user:1", "$.address.zip", '"NW1"') == "OK"
        expected["address"]["zip"] = "NW1"
        assert conn.call("JSON.DEL", "user:1", "$.note") == 1
        del expected["note"]

        assert json.loads(conn.call("JSON.GET", "user:1")) == expected
        assert conn.call("JSON.TYPE", "user:1", "$.languages") == ["array"]
        assert conn.call("JSON.ARRLEN", "user:1", "$.languages") == [4]
        assert json.loads(conn.call("JSON.GET", "user:1", "$.languages[-1]")) == ["go"]
        assert json.loads(conn.call("JSON.GET", "user:1", "$.missing")) == []
        # A number operation on a string: no change, and the legacy path syntax says why.
        assert json.loads(conn.call("JSON.NUMINCRBY", "user:1", "$.name", "1")) == [None]
        assert str(conn.call("JSON.NUMINCRBY", "user:1", ".name", "1")).startswith("WRONGTYPE")
        assert json.loads(conn.call("JSON.GET", "user:1")) == expected


def test_document_of_several_mb_round_trips_byte_for_byte(node):
    document = big_document(6)
    assert len(document) > 6 << 20
    with node.connect(timeout=BIG_TIMEOUT, decode=False) as conn:
        assert conn.call("JSON.SET", "big", "$", document) == "OK"
        assert conn.call("JSON.GET", "big") == document
        parsed = json.loads(document)
        middle = parsed["items"][len(parsed["items"]) // 2]
        reply = conn.call("JSON.GET", "big", f"$.items[{middle['id']}].name")
        assert json.loads(reply) == [middle["name"]]
        assert conn.call("JSON.ARRLEN", "big", "$.items") == [parsed["count"]]


def test_max_path_limit_from_extra_flags_is_enforced(node):
    assert node.call("CONFIG", "GET", "json.max-path-limit") == ["json.max-path-limit", str(MAX_PATH_LIMIT)]
    with node.connect() as conn:
        assert conn.call("JSON.SET", "deep", "$", nested(MAX_PATH_LIMIT - 1)) == "OK"
        assert conn.call("JSON.DEBUG", "DEPTH", "deep") == MAX_PATH_LIMIT - 1
        refused = conn.call("JSON.SET", "deeper", "$", nested(MAX_PATH_LIMIT))
        assert str(refused).startswith("LIMIT"), refused
        assert conn.call("EXISTS", "deeper") == 0
        # Growing the document below its deepest point is refused the same way.
        path = "$" + ".a" * (MAX_PATH_LIMIT - 1)
        refused = conn.call("JSON.SET", "deep", path, '{"b":{}}')
        assert str(refused).startswith("LIMIT"), refused
        assert conn.call("JSON.DEBUG", "DEPTH", "deep") == MAX_PATH_LIMIT - 1


def test_a_replica_receives_the_documents(kit, node):
    with node.connect() as conn:
        assert conn.call("JSON.SET", "before:sync", "$", json.dumps(PROFILE)) == "OK"
    copy_node = real_kit.replica(kit, node, "json-replica")
    try:
        assert json.loads(copy_node.call("JSON.GET", "before:sync")) == PROFILE
        with node.connect() as conn:
            assert conn.call("JSON.SET", "after:sync", "$", '{"n":1}') == "OK"
            assert conn.call("JSON.NUMINCRBY", "after:sync", "$.n", "41") == "[42]"
        kit.wait(
            "the replica to apply the updates",
            lambda: copy_node.call("JSON.GET", "after:sync", "$.n") == "[42]",
            [node, copy_node],
            timeout=30,
        )
        assert str(copy_node.call("JSON.SET", "after:sync", "$.n", "0")).startswith("READONLY")
    finally:
        copy_node.remove()


def test_documents_come_back_after_a_restart(kit, node):
    document = big_document(3, seed=11)
    with node.connect(timeout=BIG_TIMEOUT, decode=False) as conn:
        assert conn.call("JSON.SET", "kept:big", "$", document) == "OK"
        assert conn.call("JSON.SET", "kept:user", "$", json.dumps(PROFILE).encode()) == "OK"
    real_kit.restart(kit, node)  # a new container, a new address, the same volume
    with node.connect(timeout=BIG_TIMEOUT, decode=False) as conn:
        assert conn.call("JSON.GET", "kept:big") == document
        assert json.loads(conn.call("JSON.GET", "kept:user")) == PROFILE
        assert conn.call("JSON.TYPE", "kept:user", "$.address") == ["object"]
    assert node.call("CONFIG", "GET", "json.max-path-limit") == ["json.max-path-limit", str(MAX_PATH_LIMIT)]
