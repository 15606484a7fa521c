"""search across shards: three containers that the entrypoint alone forms into a cluster
(VALKEY_CLUSTER_NODES, cluster_kit.py), with the coordinator switched on by the entrypoint
(no --use-coordinator given here). An index is created on one member and documents are
written through that member, following its MOVED redirects, so that every shard holds
some; a search on any member must then answer with the documents of all three shards.
Then every member is recreated on a new address (same name and volume) and the same
searches must answer the same.

The tests run in file order on the one cluster (module scope).
"""

from __future__ import annotations

import ipaddress

import pytest

from . import real_kit
from .search_kit import books, check_knn, hash_index, index_listed, knn, pairs, query_vector, search_keys

pytestmark = pytest.mark.real

SHARDS = 3
COUNT = 90
K = 7
COORDINATOR_PORT = 6379 + 20294
CLUSTER_PORTS = {6379, 6379 + 10000, COORDINATOR_PORT}  # clients, cluster bus, coordinator
BOOKS = books("doc:", COUNT, seed=21)
QUERIES = {
    "@genre:{poetry}": {b.key for b in BOOKS if b.genre == "poetry"},
    "@year:[1930 1959]": {b.key for b in BOOKS if 1930 <= b.year <= 1959},
    "@genre:{fiction|history} @year:[1960 +inf]": {
        b.key for b in BOOKS if b.genre in ("fiction", "history") and b.year >= 1960
    },
}
VECTOR = query_vector(5)
SEARCH_TIMEOUT = 10.0  # seconds for a search that the coordinator fans out to every shard


@pytest.fixture(scope="module", autouse=True)
def search_is_real(real_image):
    real_kit.require_real(real_image, "search")


@pytest.fixture(scope="module")
def shards(kit):
    members = kit.group("shard", SHARDS, replicas=0)
    kit.start(members, [kit.next_address() for _ in members])
    kit.wait("three members to form a cluster", lambda: kit.formed(members), members, timeout=120)
    return members


@pytest.fixture(scope="module")
def indexed(kit, shards):
    """The index, created on the first member, then the documents written through it:
    {primary IP: documents written there}."""
    entry = shards[0]
    assert entry.call(*hash_index("docs", "doc:"), timeout=10) == "OK"
    kit.wait("the index on every member", lambda: all(index_listed(m, "docs") for m in shards), shards, timeout=60)
    fields = {b.key: b.hash_fields() for b in BOOKS}
    written: dict[str, int] = {}
    for key, target, reply in kit.each_key(shards, list(fields), "HSET", fields.__getitem__, entry=entry):
        assert reply == 5, f"HSET {key} on {target}: {reply}"
        written[target] = written.get(target, 0) + 1
    return written


def listening_ports(member) -> set[int]:
    """TCP ports something in the member's container listens on for other hosts, from
    /proc/net (loopback-only listeners, such as Docker's embedded DNS, left out)."""
    code, out = member.exec("cat", "/proc/net/tcp", "/proc/net/tcp6")
    assert code == 0, out
    ports = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":  # a header, or not LISTEN
            continue
        address, port = fields[1].split(":")
        # The address is written as 32-bit words in the kernel's (little-endian) byte order.
        raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8))
        if not ipaddress.ip_address(raw).is_loopback:
            ports.add(int(port, 16))
    return ports


def every_answer(member) -> dict:
    """What the member answers to each query: the keys of each filter, the KNN hits."""
    with member.connect(timeout=SEARCH_TIMEOUT) as conn:
        found: dict = {query: search_keys(conn, "docs", query) for query in QUERIES}
        found["knn"] = knn(conn, "docs", "vec_flat", "FLAT", VECTOR, K)
    return found


def complete(member) -> bool:
    """Whether the member's answers hold every document of every shard (so far)."""
    try:
        found = every_answer(member)
    except AssertionError:  # an error reply while the cluster settles
        return False
    return all(found[query][1] == expected for query, expected in QUERIES.items())


def test_the_entrypoint_turned_the_coordinator_on(shards):
    for member in shards:
        search = next(m for m in member.call("MODULE", "LIST") if m[1] == "search")
        args = dict(zip(search[::2], search[1::2], strict=True))["args"]
        assert "--use-coordinator" in args, f"{member.alias}: search loaded with {args}"
        # The coordinator's port is the one port opened beside the client and cluster-bus ports.
        assert listening_ports(member) == CLUSTER_PORTS, member.alias


def test_documents_landed_on_every_shard_through_redirects(shards, indexed):
    assert sum(indexed.values()) == COUNT
    assert set(indexed) == {m.ip for m in shards}, f"written to {indexed}"
    assert sum(n for ip, n in indexed.items() if ip != shards[0].ip) > 0, "no write was redirected"
    assert {m.ip: m.call("DBSIZE") for m in shards} == indexed


def test_every_member_answers_with_every_shards_documents(kit, shards, indexed):
    for member in shards:
        kit.wait(f"{member.alias} to find every document", lambda m=member: complete(m), shards, timeout=60)
        found = every_answer(member)
        for query, expected in QUERIES.items():
            assert found[query] == (len(expected), expected), f"{member.alias}: {query!r}"
        check_knn(found["knn"], BOOKS, VECTOR, "COSINE", K, f"vec_flat on {member.alias}")
        own = set(member.call("KEYS", "doc:*"))
        assert {key for key, _ in found["knn"]} - own, f"{member.alias}: no nearest document from another shard"
    with shards[1].connect(timeout=SEARCH_TIMEOUT) as conn:
        info = pairs(conn.call("FT.INFO", "docs", "PRIMARY"))
    assert int(info["num_docs"]) == COUNT, info


def test_recreated_on_new_addresses_the_searches_answer_the_same(kit, shards, indexed):
    before = every_answer(shards[0])
    old = {m.ip for m in shards}
    kit.remove(shards)
    kit.start(shards, [kit.next_address() for _ in shards])  # same names, aliases and volumes
    assert not old & {m.ip for m in shards}
    kit.wait("the cluster to heal on the new addresses", lambda: kit.formed(shards), shards, timeout=120)
    for member in shards:
        kit.wait(f"{member.alias} to find every document again", lambda m=member: complete(m), shards, timeout=90)
        after = every_answer(member)
        assert {q: after[q] for q in QUERIES} == {q: before[q] for q in QUERIES}, member.alias
        assert [key for key, _ in after["knn"]] == [key for key, _ in before["knn"]], member.alias
        check_knn(after["knn"], BOOKS, VECTOR, "COSINE", K, f"vec_flat on {member.alias}")
