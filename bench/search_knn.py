"""valkey-search at work, one node beside three members queried through the coordinator,
with the same data in one run: KNN and hybrid (tag filter + KNN) latency and queries per
second, ingest rate, memory per 100k vectors, and how long the index takes to be back
after the node (one member) is killed and started again on its volume: loaded from the
RDB base, as the image does for an index without FLAT fields such as this one (its index
guard records that and turns search.skip-rdb-load off), then indexed again
(search.skip-rdb-load yes, what the image chooses while an index has a FLAT field). A
plain GET on the same connection in the same run is the baseline. The real-module image
(tests/real/real_kit.py: $VALKEY_BUNDLE_REAL_IMAGE, else the image built from the cache).

    python3 bench/search_knn.py [--vectors N] [--dim D] [--queries Q] [--k K] [--clients C]

Every node runs through the entrypoint on a network of its own (the cluster is formed by
the entrypoint from VALKEY_CLUSTER_NODES, the coordinator switched on by it; appendonly
yes everywhere, as deploy/k8s). The index (HNSW, M 16, EF_CONSTRUCTION 200, L2, and a TAG
field of 10 values) exists before the documents are written, in pipelined batches (to
the cluster by slot); ingest counts until the index holds them all. Latency: Q queries
one at a time from this machine, each followed by a GET (p50, p99 of the round trips).
Throughput: C clients at once, Q queries each. Memory: the search module's own
(INFO search, search_used_memory_bytes) and the server's used_memory, before and after
the load, summed over the members. Printed, not asserted. Where search is a stand-in
in the image, prints "not run: ...".
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "entrypoint")]

from container.cluster_kit import ClusterKit, key_slot  # noqa: E402
from real import real_kit  # noqa: E402
from real.search_kit import float32_blob, index_listed, knn_query, reindex_setting, vector_field  # noqa: E402

from valkey_bundle.index_state import index_names, readiness_problem  # noqa: E402

INDEX = "bench"
PREFIX = "vec:"
TAGS = 10
BATCH = 200  # commands per pipelined batch


def random_vector(rng: random.Random, dim: int) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(dim)]


def create_index(node, dim: int) -> None:
    schema = ["g", "TAG", "v", *vector_field("HNSW", "L2", dim)]
    reply = node.call("FT.CREATE", INDEX, "ON", "HASH", "PREFIX", "1", PREFIX, "SCHEMA", *schema, timeout=10)
    if reply != "OK":
        raise RuntimeError(f"FT.CREATE: {reply}")


def num_docs(node, scope: list[str]) -> int:
    reply = node.call("FT.INFO", INDEX, *scope, timeout=30)
    if not isinstance(reply, list):
        return -1
    return int(dict(zip(reply[::2], reply[1::2], strict=True))["num_docs"])


def search_info(node) -> dict[str, str]:
    return node.info("INFO", "search") | node.info("INFO", "memory")


def pipeline(conn, commands: list[tuple]) -> list:
    """Send every command, then read every reply (one round trip per batch)."""
    parts = []
    for args in commands:
        parts.append(b"*%d\r\n" % len(args))
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    conn.sock.sendall(b"".join(parts))
    return [conn._read() for _ in commands]


def documents(vectors: list[list[float]]) -> dict[str, tuple]:
    return {
        f"{PREFIX}{i}": ("HSET", f"{PREFIX}{i}", "g", f"g{i % TAGS}", "v", float32_blob(v))
        for i, v in enumerate(vectors)
    }


def load(targets: dict[str, list[tuple]], kit, members) -> None:
    """Write each member's commands to it, in pipelined batches (members in parallel)."""

    def write(ip: str) -> None:
        member = next(m for m in members if m.ip == ip)
        with member.connect(timeout=60) as conn:
            commands = targets[ip]
            for start in range(0, len(commands), BATCH):
                for reply in pipeline(conn, commands[start : start + BATCH]):
                    if reply != 2:
                        raise RuntimeError(f"HSET on {member.alias}: {reply}")

    threads = [threading.Thread(target=write, args=(ip,)) for ip in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def local_key(conn) -> str:
    """A key that this node serves itself (in a cluster: one of its slots), set to 100 bytes."""
    for i in range(1000):
        key = f"baseline:{i}"
        if conn.call("SET", key, "x" * 100) == "OK":  # else MOVED: another member's slot
            return key
    raise RuntimeError("no key of this node's slots among baseline:0..999")


def query(blob: bytes, k: int, hybrid: bool) -> tuple:
    where = f"@g:{{g{random.randrange(TAGS)}}}" if hybrid else "*"
    return ("FT.SEARCH", INDEX, knn_query("v", k, where=where), "PARAMS", "2", "q", blob, "NOCONTENT", "DIALECT", "2")


def latency(node, dim: int, queries: int, k: int, seed: int) -> dict[str, list[float]]:
    """Round-trip seconds of KNN and hybrid queries and of GETs, alternating on one connection."""
    rng = random.Random(seed)
    times: dict[str, list[float]] = {"KNN": [], "hybrid": [], "GET": []}
    with node.connect(timeout=30) as conn:
        baseline = local_key(conn)
        for i in range(queries):
            kind = "hybrid" if i % 2 else "KNN"
            started = time.perf_counter()
            reply = conn.call(*query(float32_blob(random_vector(rng, dim)), k, kind == "hybrid"))
            times[kind].append(time.perf_counter() - started)
            if not isinstance(reply, list) or len(reply) != k + 1:
                raise RuntimeError(f"{kind}: {reply}")
            started = time.perf_counter()
            conn.call("GET", baseline)
            times["GET"].append(time.perf_counter() - started)
    return times


def throughput(node, dim: int, clients: int, queries: int, k: int) -> float:
    """KNN queries per second with ``clients`` connections sending ``queries`` each."""
    errors: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with node.connect(timeout=60) as conn:
            for _ in range(queries):
                reply = conn.call(*query(float32_blob(random_vector(rng, dim)), k, False))
                if not isinstance(reply, list):
                    errors.append(str(reply))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} queries failed, e.g. {errors[0]}")
    return clients * queries / elapsed


def memory(nodes) -> tuple[int, int]:
    """(search_used_memory_bytes, used_memory) summed over ``nodes``."""
    infos = [search_info(n) for n in nodes]
    return sum(int(i.get("search_used_memory_bytes", 0)) for i in infos), sum(int(i["used_memory"]) for i in infos)


def passes_readiness(node, members) -> bool:
    """Whether ``node`` passes readiness's search check (index_state.readiness_problem): it
    has every index its peers have and builds none. num_docs alone is reached while a
    rebuild's keys are still queued."""
    try:
        local = index_names(node.call("FT._LIST"))
        peers = {m.alias: index_names(m.call("FT._LIST")) for m in members if m is not node}
        if local is None or None in peers.values():
            return False
        return readiness_problem(local, peers, node.info("INFO", "search")) is None
    except OSError:
        return False


def back_after_kill(kit, node, members, expected: int, scope: list[str]) -> float:
    """Seconds from the kill of ``node`` until ``members[0]`` counts every document again
    and every member passes readiness's search check."""
    killed = time.monotonic()
    real_kit.restart(kit, node, graceful=False)
    if len(members) > 1:
        kit.wait("the cluster to heal", lambda: kit.formed(members), members, timeout=300)

    def back() -> bool:
        return num_docs(members[0], scope) == expected and all(passes_readiness(m, members) for m in members)

    kit.wait("the index back", back, members, timeout=600)
    return time.monotonic() - killed


def reindexed_from_now_on(node) -> None:
    """Start ``node`` from now on with search.skip-rdb-load yes: its keys indexed again
    rather than its indexes loaded from the RDB base."""
    flags = node.env().get("VALKEY_EXTRA_FLAGS", "")
    node.extra_env["VALKEY_EXTRA_FLAGS"] = f"{flags} --search.skip-rdb-load yes".strip()


def case(kit, members, vectors, args, scope) -> dict:
    entry = members[0]
    create_index(entry, args.dim)
    kit.wait("the index on every member", lambda: all(index_listed(m, INDEX) for m in members), members, timeout=60)
    before = memory(members)
    owners = {}
    if len(members) > 1:
        slots = kit.slot_owners(entry)
        owners = {slot: ip for first, last, ip in slots for slot in range(first, last + 1)}
    targets: dict[str, list[tuple]] = {}
    for key, command in documents(vectors).items():
        targets.setdefault(owners.get(key_slot(key), entry.ip), []).append(command)
    started = time.monotonic()
    load(targets, kit, members)
    kit.wait("the index to hold every vector", lambda: num_docs(entry, scope) == len(vectors), members, timeout=1800)
    ingest = len(vectors) / (time.monotonic() - started)
    after = memory(members)
    times = latency(entry, args.dim, args.queries, args.k, seed=1)
    qps = throughput(entry, args.dim, args.clients, args.queries // args.clients or 1, args.k)
    restarted = members[-1]
    kit.wait("the index guard to choose loading", lambda: reindex_setting(restarted) == "no", members, timeout=60)
    back_loaded = back_after_kill(kit, restarted, members, len(vectors), scope)
    reindexed_from_now_on(restarted)
    back = back_after_kill(kit, restarted, members, len(vectors), scope)
    return {
        "times": times,
        "qps": qps,
        "ingest": ingest,
        "memory": (after[0] - before[0], after[1] - before[1]),
        "back": back,
        "back loaded": back_loaded,
    }


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000, help="vectors in the index (default 100000)")
    parser.add_argument("--dim", type=int, default=128, help="dimensions (default 128)")
    parser.add_argument("--queries", type=int, default=1000, help="queries for latency and throughput (default 1000)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="connections at once for throughput (default 8)")
    args = parser.parse_args()

    image = real_kit.real_image()
    reason = image.not_real("search")
    if reason:
        print(reason)
        return 0
    rng = random.Random(0)
    vectors = [random_vector(rng, args.dim) for _ in range(args.vectors)]
    flags = {"VALKEY_EXTRA_FLAGS": "--appendonly yes"}
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        kit = ClusterKit(image.name, Path(workdir))
        try:
            node = real_kit.start(kit, kit.node("knn-single", extra_env=flags))
            results["one node"] = case(kit, [node], vectors, args, [])
            kit.remove([node])
            members = kit.group("knn", 3, replicas=0)
            kit.start(members, [kit.next_address() for _ in members])
            kit.wait("three members to form a cluster", lambda: kit.formed(members), members, timeout=120)
            results["3 members"] = case(kit, members, vectors, args, ["PRIMARY"])
        finally:
            kit.destroy()

    print(f"{image.name}: Valkey {image.valkey_version}; modules {image.builds}")
    print(
        f"{args.vectors} vectors of {args.dim} FLOAT32, HNSW (M 16, EF_CONSTRUCTION 200, L2) and a TAG of {TAGS} "
        f"values; KNN {args.k}; hybrid: one tag AND KNN {args.k}; latency: {args.queries} queries one at a time, "
        f"each followed by a GET; throughput: {args.clients} clients"
    )
    head = [
        "KNN p50",
        "KNN p99",
        "hybrid p50",
        "hybrid p99",
        "GET p50",
        "KNN q/s",
        "ingest/s",
        "MiB/100k",
        "loaded s",
        "reindex s",
    ]
    print(f"{'':<11}" + "".join(f"{h:>12}" for h in head))
    for name, result in results.items():
        times = result["times"]
        knn = percentiles(times["KNN"])
        hybrid = percentiles(times["hybrid"])
        get = percentiles(times["GET"])
        search_mib = result["memory"][0] / 2**20 * 100_000 / args.vectors
        row = [
            *knn,
            *hybrid,
            get[0],
            result["qps"],
            result["ingest"],
            search_mib,
            result["back loaded"],
            result["back"],
        ]
        fmt = ["{:.2f}"] * 5 + ["{:.0f}", "{:.0f}", "{:.1f}", "{:.1f}", "{:.1f}"]
        print(f"{name:<11}" + "".join(f"{f.format(v):>12}" for f, v in zip(fmt, row, strict=True)))
        used = result["memory"][1] / 2**20 * 100_000 / args.vectors
        print(f"{'':<11}(server used_memory per 100k vectors, keys included: {used:.1f} MiB; latency in ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
