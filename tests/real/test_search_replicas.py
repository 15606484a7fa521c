"""search in a cluster with replicas, and the settings users get wrong.

- Six members (3 primaries, 1 replica each) formed by the entrypoint alone, with
  SEARCH_MODULE_ARGS='--use-coordinator yes': the seed's failure (the bare server exits on
  that argument) stays fixed, the entrypoint normalises it. A primary is killed: its
  replica takes over, and every member that is up answers with every document, the
  killed member too once it is back as a replica, ready with its index.
- Three members with VALKEY_SEARCH_COORDINATOR=no: each answers with its own shard's
  documents only, what users see without the coordinator.
"""

from __future__ import annotations

import time

import pytest

from . import real_kit
from .search_kit import books, changed_here, hash_index, index_listed, search_keys

pytestmark = pytest.mark.real

COUNT = 120
BOOKS = books("rdoc:", COUNT, seed=31)
POETRY = {b.key for b in BOOKS if b.genre == "poetry"}
SEARCH_TIMEOUT = 10.0


@pytest.fixture(scope="module", autouse=True)
def search_is_real(real_image):
    real_kit.require_real(real_image, "search")


def load(kit, members, index: str, prefix: str) -> None:
    """The index on the first member, then the documents through it (MOVED followed)."""
    entry = members[0]
    assert changed_here(entry.call(*hash_index(index, prefix), timeout=10))
    kit.wait(f"{index} on every member", lambda: all(index_listed(m, index) for m in members), members, 60)
    fields = {b.key: b.hash_fields() for b in BOOKS}
    for key, target, reply in kit.each_key(members, list(fields), "HSET", fields.__getitem__, entry=entry):
        assert reply == 5, f"HSET {key} on {target}: {reply}"


def poetry_found(member, index: str):
    """(count, keys) of the poetry query on ``member``, or None on an error reply."""
    try:
        with member.connect(timeout=SEARCH_TIMEOUT) as conn:
            return search_keys(conn, index, "@genre:{poetry}")
    except (AssertionError, OSError):
        return None


def ready(member) -> bool:
    return member.exec("bundle-healthcheck", "readiness")[0] == 0


@pytest.fixture(scope="module")
def replicated(kit):
    members = kit.group("rs", 6, replicas=1)
    for member in members:
        member.extra_env["SEARCH_MODULE_ARGS"] = "--use-coordinator yes"
    kit.start(members, [kit.next_address() for _ in members])
    kit.wait("six members to form a cluster", lambda: kit.formed(members), members, timeout=180)
    load(kit, members, "rdocs", "rdoc:")
    return members


def test_use_coordinator_yes_is_normalised_and_coordinates(replicated):
    for member in replicated:
        args = real_kit.module_args(member, "search")
        assert args == ["--use-coordinator"], f"{member.alias}: search loaded with {args}"
        assert "SEARCH_MODULE_ARGS: --use-coordinator takes no value; dropped 'yes'" in member.logs()


def test_the_bare_server_refuses_use_coordinator_yes(kit):
    """What the entrypoint saves users from: valkey-server itself, given the value."""
    node = kit.node("bare")
    out = kit_docker_run(kit, node, "valkey-server", "--loadmodule /usr/lib/valkey/libsearch.so --use-coordinator yes")
    assert out[0] == 1, out[1]
    assert "Command line argument `yes` is missing a value" in out[1], out[1]
    assert "Can't load module from /usr/lib/valkey/libsearch.so: server aborting" in out[1], out[1]


def kit_docker_run(kit, node, *command: str) -> tuple[int, str]:
    """``docker run --rm`` of the image with ``command`` in place of the entrypoint's, on the kit's network."""
    import subprocess

    result = subprocess.run(
        ["docker", "run", "--rm", "--network", kit.network, "--entrypoint", command[0], kit.image, *command[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_a_killed_primary_fails_over_and_queries_stay_complete(kit, replicated):
    for member in replicated:
        kit.wait(
            f"{member.alias} to answer in full",
            lambda m=member: poetry_found(m, "rdocs") == (len(POETRY), POETRY),
            replicated,
            60,
        )
    roles = kit.roles(replicated)
    victim = next(m for m in replicated if roles[m.alias][0] == "master")
    replica = next(m for m in replicated if roles[m.alias] == ("slave", victim.alias))
    survivors = [m for m in replicated if m is not victim]
    killed = time.monotonic()
    victim.kill()
    kit.wait(
        f"{replica.alias} to take over",
        lambda: replica.info("INFO", "replication").get("role") == "master",
        survivors,
        timeout=60,
    )
    for member in survivors:
        kit.wait(
            f"{member.alias} to answer in full after the failover",
            lambda m=member: poetry_found(m, "rdocs") == (len(POETRY), POETRY),
            survivors,
            60,
        )
    print(f"\nqueries complete on every survivor {time.monotonic() - killed:.1f} s after the kill")
    victim.start_again()
    kit.wait("the killed member back as a replica", lambda: kit.formed(replicated), replicated, timeout=180)
    assert kit.roles(replicated)[victim.alias] == ("slave", replica.alias)
    kit.wait(f"{victim.alias} ready", lambda: ready(victim), replicated, timeout=120)
    assert victim.call("FT._LIST") == ["rdocs"]
    assert poetry_found(victim, "rdocs") == (len(POETRY), POETRY)


@pytest.fixture(scope="module")
def uncoordinated(kit):
    members = kit.group("nc", 3, replicas=0)
    for member in members:
        member.extra_env["VALKEY_SEARCH_COORDINATOR"] = "no"
    kit.start(members, [kit.next_address() for _ in members])
    kit.wait("three members to form a cluster", lambda: kit.formed(members), members, timeout=120)
    # Without the coordinator an index is created on each member by hand.
    for member in members:
        assert member.call(*hash_index("ncdocs", "rdoc:"), timeout=10) == "OK"
    fields = {b.key: b.hash_fields() for b in BOOKS}
    for key, target, reply in kit.each_key(members, list(fields), "HSET", fields.__getitem__):
        assert reply == 5, f"HSET {key} on {target}: {reply}"
    return members


def test_without_the_coordinator_each_member_answers_for_its_own_shard(kit, uncoordinated):
    total = 0
    for member in uncoordinated:
        assert "--use-coordinator" not in real_kit.module_args(member, "search")
        own = POETRY & set(member.call("KEYS", "rdoc:*"))
        assert poetry_found(member, "ncdocs") == (len(own), own), member.alias
        assert len(own) < len(POETRY), f"{member.alias} holds every poetry document: the test shows nothing"
        total += len(own)
    assert total == len(POETRY)
