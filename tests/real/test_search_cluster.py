"""search across shards: three containers that the entrypoint alone forms into a cluster
(VALKEY_CLUSTER_NODES, cluster_kit.py; appendonly yes, as deploy/k8s), with the
coordinator switched on by the entrypoint (no --use-coordinator given here). An index is
created on one member and documents are written through that member, following its
MOVED redirects, so that every shard holds some; a search on any member must then
answer with the documents of all three shards, and FT.DROPINDEX on one member drops the
index everywhere. Then one member, and later every member, is killed and started again
on its volume: the indexes come back from the AOF (the search index guard rewrote it
after FT.CREATE), readiness waits for them, and every member answers the same. Without
the guard, the upstream bug it works around shows: the restarted member lacks the
index, its readiness says so, and a query through another member is an error, not a
silent partial answer.

The tests run in file order on the one cluster (module scope).
"""

from __future__ import annotations

import ipaddress
import time

import pytest

from valkey_bundle.resp import ReplyError

from . import real_kit
from .search_kit import (
    books,
    changed_here,
    check_knn,
    hash_index,
    index_listed,
    knn,
    later_books,
    pairs,
    query_vector,
    search_keys,
)

pytestmark = pytest.mark.real

SHARDS = 3
COUNT = 90
K = 7
COORDINATOR_PORT = 6379 + 20294
CLUSTER_PORTS = {6379, 6379 + 10000, COORDINATOR_PORT}  # clients, cluster bus, coordinator
BOOKS = books("doc:", COUNT, seed=21)
LATE = later_books("doc:late", 12, seed=22)  # written after a member's restart, then deleted
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
    assert changed_here(entry.call(*hash_index("docs", "doc:"), timeout=10))
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


def complete(member, index: str = "docs") -> bool:
    """Whether the member's answers hold every document of every shard (so far)."""
    try:
        with member.connect(timeout=SEARCH_TIMEOUT) as conn:
            return all(search_keys(conn, index, query)[1] == expected for query, expected in QUERIES.items())
    except AssertionError:  # an error reply while the cluster settles
        return False


def test_the_entrypoint_turned_the_coordinator_on(shards):
    for member in shards:
        args = real_kit.module_args(member, "search")
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


def readiness(member) -> tuple[int, str]:
    """(exit status, output) of ``bundle-healthcheck readiness`` in the member's container."""
    code, out = member.exec("bundle-healthcheck", "readiness")
    return code, out.strip()


def ready(member) -> bool:
    return readiness(member)[0] == 0


def test_partial_answers_are_off_beside_the_coordinator(shards):
    for member in shards:
        reply = member.call("CONFIG", "GET", "search.enable-partial-results")
        assert reply == ["search.enable-partial-results", "no"], f"{member.alias}: {reply}"


def test_an_index_dropped_on_one_member_is_gone_from_every_member(kit, shards, indexed):
    entry, other = shards[0], shards[2]
    assert changed_here(entry.call(*hash_index("scratch", "scratch:"), timeout=10))
    kit.wait("scratch on every member", lambda: all(index_listed(m, "scratch") for m in shards), shards, timeout=60)
    assert changed_here(other.call("FT.DROPINDEX", "scratch", timeout=10))
    kit.wait("scratch gone everywhere", lambda: not any(index_listed(m, "scratch") for m in shards), shards, 60)
    assert all(sorted(m.call("FT._LIST")) == ["docs"] for m in shards)


def test_a_member_killed_and_started_on_its_volume_comes_back_with_its_indexes(kit, shards, indexed):
    member = shards[1]
    # The guard rewrote the AOF after the index set last changed (FT.DROPINDEX above).
    persisted = "search index guard: the AOF now holds the indexes "

    def guarded() -> bool:  # scratch came and went; the guard may have seen it or not
        held = [line.split(persisted)[1] for line in member.logs().splitlines() if persisted in line]
        return held[-1:] == ["docs"]

    kit.wait(f"the index guard of {member.alias} to rewrite the AOF", guarded, [member], timeout=30)
    # And the AOF's base holds every document too (the guard may have rewritten before they
    # came), as after any rewrite in production: the index is loaded with them.
    rewrites = int(member.info("INFO", "persistence")["aof_rewrites"])

    def rewrite_asked() -> bool:  # refused while another rewrite runs: ask again
        return not isinstance(member.call("BGREWRITEAOF"), ReplyError)

    kit.wait(f"{member.alias} to take BGREWRITEAOF", rewrite_asked, [member], timeout=30)

    def rewritten() -> bool:
        info = member.info("INFO", "persistence")
        return int(info["aof_rewrites"]) > rewrites and info["aof_rewrite_in_progress"] == "0"

    kit.wait(f"{member.alias}'s AOF rewritten", rewritten, [member], timeout=30)
    before = every_answer(shards[0])
    killed = time.monotonic()
    real_kit.restart(kit, member, graceful=False)  # killed: what is on its volume is all there is
    kit.wait("the cluster to heal", lambda: kit.formed(shards), shards, timeout=120)
    kit.wait(f"{member.alias} to be ready", lambda: ready(member), shards, timeout=120)
    print(f"\n{member.alias}: killed, started again, ready with its index after {time.monotonic() - killed:.1f} s")
    assert "DB loaded from append only file" in member.logs()
    assert member.call("FT._LIST") == ["docs"]
    for other in shards:
        kit.wait(f"{other.alias} to find every document", lambda m=other: complete(m), shards, timeout=60)
        after = every_answer(other)
        # Each hit's score is its own document's distance (not another's): the restarted shard's
        # index maps its vectors to the right keys.
        check_knn(after["knn"], BOOKS, VECTOR, "COSINE", K, f"vec_flat on {other.alias} after {member.alias}'s restart")
        assert after == before, other.alias


def test_documents_written_after_the_restart_are_found_at_their_own_distance(kit, shards, indexed):
    """Keys the restarted member indexes after its load get ids of their own (the image's
    search.skip-rdb-load, README: Search indexes and restarts): a KNN over every document,
    through every member, finds each at its own distance. Deleted again afterwards."""
    entry, total = shards[0], COUNT + len(LATE)
    fields = {b.key: b.hash_fields() for b in LATE}
    for key, target, reply in kit.each_key(shards, list(fields), "HSET", fields.__getitem__, entry=entry):
        assert reply == 5, f"HSET {key} on {target}: {reply}"

    def every_document(member, vector) -> list:
        with member.connect(timeout=SEARCH_TIMEOUT) as conn:
            return knn(conn, "docs", "vec_flat", "FLAT", vector, total)

    for member in shards:
        deadline = time.monotonic() + 60
        while len(hits := every_document(member, VECTOR)) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        missing = sorted({b.key for b in BOOKS + LATE} - {key for key, _ in hits})
        assert not missing, f"{member.alias}: KNN over every document never finds {missing}"
        for vector in (VECTOR, LATE[0].embedding):
            check_knn(
                every_document(member, vector), BOOKS + LATE, vector, "COSINE", total, f"vec_flat on {member.alias}"
            )
    for key, target, reply in kit.each_key(shards, list(fields), "DEL", lambda _: [], entry=entry):
        assert reply == 1, f"DEL {key} on {target}: {reply}"
    kit.wait("the late documents gone", lambda: len(every_document(entry, VECTOR)) == COUNT, shards, 60)


def test_without_the_guard_the_restarted_member_lacks_the_index_and_says_so(kit, shards, indexed):
    """The upstream bug the guard works around (README: Search indexes and restarts): a
    member restarted from its AOF lacks the indexes created since its last AOF rewrite.
    What the image makes of it: readiness fails naming the index, and a query through a
    healthy member is an error, never a silent partial answer (SOMESHARDS asks for one)."""
    member, entry = shards[2], shards[0]
    member.extra_env["VALKEY_SEARCH_INDEX_GUARD"] = "no"
    try:
        real_kit.restart(kit, member)  # stopped cleanly, started without the guard
        kit.wait("the cluster to heal", lambda: kit.formed(shards), shards, timeout=120)
        kit.wait(f"{member.alias} ready", lambda: ready(member), shards, timeout=120)
        assert changed_here(entry.call(*hash_index("late", "doc:"), timeout=10))
        kit.wait("late on every member", lambda: all(index_listed(m, "late") for m in shards), shards, timeout=60)
        kit.wait("late to index every shard", lambda: complete(entry, "late"), shards, timeout=60)
        real_kit.restart(kit, member, graceful=False)
        kit.wait("the cluster to heal", lambda: kit.formed(shards), shards, timeout=120)
        assert sorted(member.call("FT._LIST")) == ["docs"], "the bug: late is gone from the restarted member"
        code, out = readiness(member)
        assert code == 1 and "lacks search indexes its peers have: late (on " in out, out
        query = ("FT.SEARCH", "late", "@genre:{poetry}", "NOCONTENT", "LIMIT", "0", "10000")
        with entry.connect(timeout=SEARCH_TIMEOUT) as conn:
            reply = conn.call(*query)
            assert isinstance(reply, ReplyError), f"a partial answer, not an error: {reply[0]} documents"
            partial = conn.call(*query, "SOMESHARDS")
        poetry = QUERIES["@genre:{poetry}"]
        own = set(member.call("KEYS", "doc:*"))
        assert isinstance(partial, list) and set(partial[1:]) == poetry - own, "SOMESHARDS: the other shards' only"
        # The repair: drop the index and create it again; every member builds it anew.
        assert changed_here(entry.call("FT.DROPINDEX", "late", timeout=10))
        kit.wait("late dropped everywhere", lambda: not any(index_listed(m, "late") for m in shards), shards, 60)
        assert changed_here(entry.call(*hash_index("late", "doc:"), timeout=10))
        kit.wait("late on every member again", lambda: all(index_listed(m, "late") for m in shards), shards, 60)
        kit.wait(f"{member.alias} ready again", lambda: ready(member), shards, timeout=120)
        kit.wait("late to answer in full", lambda: complete(entry, "late"), shards, timeout=60)
    finally:
        member.extra_env.pop("VALKEY_SEARCH_INDEX_GUARD", None)
    assert changed_here(entry.call("FT.DROPINDEX", "late", timeout=10))
    kit.wait("late dropped everywhere", lambda: not any(index_listed(m, "late") for m in shards), shards, 60)
    real_kit.restart(kit, member)  # with the guard again, as the other members
    kit.wait("the cluster to heal", lambda: kit.formed(shards), shards, timeout=120)
    kit.wait(f"{member.alias} ready", lambda: ready(member), shards, timeout=120)


def test_recreated_on_new_addresses_the_searches_answer_the_same(kit, shards, indexed):
    before = every_answer(shards[0])
    check_knn(before["knn"], BOOKS, VECTOR, "COSINE", K, "vec_flat before the restart")
    old = {m.ip for m in shards}
    kit.remove(shards)
    kit.start(shards, [kit.next_address() for _ in shards])  # same names, aliases and volumes
    assert not old & {m.ip for m in shards}
    kit.wait("the cluster to heal on the new addresses", lambda: kit.formed(shards), shards, timeout=120)
    for member in shards:
        kit.wait(f"{member.alias} to find every document again", lambda m=member: complete(m), shards, timeout=90)
        assert ready(member), readiness(member)
        after = every_answer(member)
        assert {q: after[q] for q in QUERIES} == {q: before[q] for q in QUERIES}, member.alias
        check_knn(after["knn"], BOOKS, VECTOR, "COSINE", K, f"vec_flat on {member.alias}")
        # The same hits; two at (nearly) the same distance may come in either order (check_knn).
        same = sorted(key for key, _ in after["knn"]) == sorted(key for key, _ in before["knn"])
        assert same, f"{member.alias}: {after['knn']} after, {before['knn']} before"
