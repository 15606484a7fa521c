"""bloom (valkey-bloom, module name bf) at work in the image: filters reserved and filled,
their defaults from BLOOM_MODULE_ARGS or from the bf.* configs, the false positive rate
measured against the configured one, the filters after a restart and on a replica.

One node for the module (module scope), started through the entrypoint with
BLOOM_MODULE_ARGS; the test side talks RESP to it from this machine.
"""

from __future__ import annotations

import pytest

from . import real_kit

pytestmark = pytest.mark.real

# Defaults for filters that BF.ADD creates, as module arguments (valkey-bloom reads its
# load arguments as its configs: "bloom-capacity 2000", no leading dashes).
ARGS_CAPACITY, ARGS_FP_RATE = 2000, 0.01
BATCH = 500  # items per BF.MADD / BF.MEXISTS


@pytest.fixture(scope="module", autouse=True)
def bloom_is_real(real_image):
    real_kit.require_real(real_image, "bloom")


@pytest.fixture(scope="module")
def node(kit):
    args = f"bloom-capacity {ARGS_CAPACITY} bloom-fp-rate {ARGS_FP_RATE}"
    return real_kit.start(kit, kit.node("bloom-0", extra_env={"BLOOM_MODULE_ARGS": args}))


def info(node, key: str) -> dict[str, object]:
    """BF.INFO as {field: value}."""
    reply = node.call("BF.INFO", key)
    assert isinstance(reply, list), reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def in_batches(conn, command: str, key: str, items: list[str]) -> list[int]:
    replies: list[int] = []
    for first in range(0, len(items), BATCH):
        reply = conn.call(command, key, *items[first : first + BATCH])
        assert isinstance(reply, list), reply
        replies += reply
    return replies


def test_defaults_from_module_args(node):
    assert node.call("CONFIG", "GET", "bf.bloom-capacity") == ["bf.bloom-capacity", str(ARGS_CAPACITY)]
    assert node.call("CONFIG", "GET", "bf.bloom-fp-rate") == ["bf.bloom-fp-rate", str(ARGS_FP_RATE)]
    assert node.call("BF.ADD", "auto", "first") == 1
    assert node.call("BF.INFO", "auto", "CAPACITY") == ARGS_CAPACITY
    assert float(node.call("BF.INFO", "auto", "ERROR")) == pytest.approx(ARGS_FP_RATE)


def test_defaults_from_bf_configs(kit):
    flags = "--bf.bloom-capacity 750 --bf.bloom-fp-rate 0.002 --bf.bloom-expansion 4"
    other = real_kit.start(kit, kit.node("bloom-config", extra_env={"VALKEY_EXTRA_FLAGS": flags}))
    try:
        assert other.call("BF.ADD", "auto", "first") == 1
        assert other.call("BF.INFO", "auto", "CAPACITY") == 750
        assert float(other.call("BF.INFO", "auto", "ERROR")) == pytest.approx(0.002)
        assert other.call("BF.INFO", "auto", "EXPANSION") == 4
    finally:
        other.remove()


def test_reserve_add_exists_info(node):
    assert node.call("BF.RESERVE", "visitors", "0.001", "5000") == "OK"
    assert str(node.call("BF.RESERVE", "visitors", "0.001", "5000")).startswith("ERR"), "reserved twice"
    assert node.call("BF.ADD", "visitors", "ada") == 1
    assert node.call("BF.ADD", "visitors", "ada") == 0, "already there"
    assert node.call("BF.MADD", "visitors", "grace", "linus") == [1, 1]
    assert node.call("BF.EXISTS", "visitors", "grace") == 1
    assert node.call("BF.EXISTS", "visitors", "nobody-ever") == 0
    assert node.call("BF.MEXISTS", "visitors", "ada", "linus", "nobody-ever") == [1, 1, 0]
    assert node.call("BF.CARD", "visitors") == 3
    fields = info(node, "visitors")
    assert fields["Capacity"] == 5000
    assert fields["Number of items inserted"] == 3
    assert fields["Number of filters"] == 1
    assert float(fields["Error rate"]) == pytest.approx(0.001)


def test_false_positives_stay_within_the_configured_rate(node):
    """A filter filled to its capacity answers for items it never saw no more often than
    its error rate says, and never forgets an item it holds. Room for chance: at the
    configured rate the count of false positives in 30000 probes is 300 give or take 17,
    so 25 % above it is four standard deviations away."""
    rate, capacity, probes = 0.01, 3000, 30000
    members = [f"member:{i}" for i in range(capacity)]
    strangers = [f"stranger:{i}" for i in range(probes)]
    assert node.call("BF.RESERVE", "fp", str(rate), str(capacity), "NONSCALING") == "OK"
    with node.connect(timeout=30) as conn:
        added = in_batches(conn, "BF.MADD", "fp", members)
        assert all(reply in (0, 1) for reply in added), [r for r in added if r not in (0, 1)][:3]
        assert in_batches(conn, "BF.MEXISTS", "fp", members) == [1] * capacity, "a false negative"
        false_positives = sum(in_batches(conn, "BF.MEXISTS", "fp", strangers))
    fields = info(node, "fp")
    assert fields["Number of filters"] == 1 and fields["Number of items inserted"] == sum(added)
    observed = false_positives / probes
    print(f"\nbloom: {false_positives} false positives in {probes} probes ({observed:.4f}; configured {rate})")
    assert observed <= rate * 1.25, f"false positive rate {observed:.4f} > configured {rate}"


def test_a_replica_receives_the_filters(kit, node):
    assert node.call("BF.MADD", "shared", "a", "b", "c") == [1, 1, 1]
    copy_node = real_kit.replica(kit, node, "bloom-replica")
    try:
        assert copy_node.call("BF.MEXISTS", "shared", "a", "b", "c") == [1, 1, 1]
        assert info(copy_node, "shared") == info(node, "shared")
        assert node.call("BF.ADD", "shared", "after-sync") == 1
        kit.wait(
            "the replica to apply BF.ADD",
            lambda: copy_node.call("BF.EXISTS", "shared", "after-sync") == 1,
            [node, copy_node],
            timeout=30,
        )
        assert str(copy_node.call("BF.ADD", "shared", "x")).startswith("READONLY")
    finally:
        copy_node.remove()


def test_filters_come_back_after_a_restart(kit, node):
    items = [f"kept:{i}" for i in range(1000)]
    assert node.call("BF.RESERVE", "kept", "0.001", "2000") == "OK"
    with node.connect(timeout=30) as conn:
        in_batches(conn, "BF.MADD", "kept", items)
    before = info(node, "kept")
    real_kit.restart(kit, node)  # a new container, a new address, the same volume
    assert info(node, "kept") == before
    with node.connect(timeout=30) as conn:
        assert in_batches(conn, "BF.MEXISTS", "kept", items) == [1] * len(items)
