"""FT.SEARCH KNN latency on a 10k-vector HNSW index: one node, and three members of a
cluster queried through the coordinator; a plain GET measured on the same connection in
the same run beside each, as the baseline. The real-module image
(tests/real/real_kit.py: $VALKEY_BUNDLE_REAL_IMAGE, else the image built from the cache).

    python3 bench/search_knn.py [--vectors N] [--dim D] [--queries Q] [--k K]

Every node runs through the entrypoint on a network of its own (the cluster is formed by
the entrypoint from VALKEY_CLUSTER_NODES, the coordinator switched on by it). The
vectors are written once (to the cluster by slot), then Q KNN queries with random query
vectors are sent one at a time from this machine, alternating with a GET; the figures
are the p50 and p99 of the round trips. Printed, not asserted. Where search is a
stand-in in the image, prints "not run: ...".
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "entrypoint")]

from container.cluster_kit import ClusterKit  # noqa: E402
from real import real_kit  # noqa: E402
from real.search_kit import float32_blob, index_listed, knn_query, vector_field  # noqa: E402

INDEX = "bench"
PREFIX = "vec:"


def random_vector(rng: random.Random, dim: int) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(dim)]


def create_index(node, dim: int) -> None:
    schema = ["v", *vector_field("HNSW", "L2", dim)]
    reply = node.call("FT.CREATE", INDEX, "ON", "HASH", "PREFIX", "1", PREFIX, "SCHEMA", *schema, timeout=10)
    if reply != "OK":
        raise RuntimeError(f"FT.CREATE: {reply}")


def indexed(node, count: int, scope: list[str]) -> bool:
    reply = node.call("FT.INFO", INDEX, *scope, timeout=10)
    if not isinstance(reply, list):
        return False
    info = dict(zip(reply[::2], reply[1::2], strict=True))
    return int(info["num_docs"]) >= count


def local_key(conn) -> str:
    """A key that this node serves itself (in a cluster: one of its slots), set to 100 bytes."""
    for i in range(1000):
        key = f"baseline:{i}"
        if conn.call("SET", key, "x" * 100) == "OK":  # else MOVED: another member's slot
            return key
    raise RuntimeError("no key of this node's slots among baseline:0..999")


def measure(node, dim: int, queries: int, k: int, seed: int) -> dict[str, list[float]]:
    """Round-trip seconds of KNN queries and of GETs, alternating on one connection."""
    rng = random.Random(seed)
    times: dict[str, list[float]] = {"KNN": [], "GET": []}
    with node.connect(timeout=30) as conn:
        baseline = local_key(conn)
        for _ in range(queries):
            blob = float32_blob(random_vector(rng, dim))
            started = time.perf_counter()
            reply = conn.call(
                *("FT.SEARCH", INDEX, knn_query("v", k), "PARAMS", "2", "q", blob, "NOCONTENT", "DIALECT", "2")
            )
            times["KNN"].append(time.perf_counter() - started)
            if not isinstance(reply, list) or len(reply) != k + 1:
                raise RuntimeError(f"KNN: {reply}")
            started = time.perf_counter()
            conn.call("GET", baseline)
            times["GET"].append(time.perf_counter() - started)
    return times


def single_node(kit: ClusterKit, vectors: list[list[float]], args) -> dict[str, list[float]]:
    node = real_kit.start(kit, kit.node("knn-single"))
    create_index(node, args.dim)
    with node.connect(timeout=30) as conn:
        for i, vector in enumerate(vectors):
            reply = conn.call("HSET", f"{PREFIX}{i}", "v", float32_blob(vector))
            if reply != 1:
                raise RuntimeError(f"HSET {PREFIX}{i}: {reply}")
    kit.wait("the single node's index", lambda: indexed(node, len(vectors), []), [node], timeout=600)
    return measure(node, args.dim, args.queries, args.k, seed=1)


def cluster(kit: ClusterKit, vectors: list[list[float]], args) -> dict[str, list[float]]:
    members = kit.group("knn", 3, replicas=0)
    kit.start(members, [kit.next_address() for _ in members])
    kit.wait("three members to form a cluster", lambda: kit.formed(members), members, timeout=120)
    create_index(members[0], args.dim)
    kit.wait("the index on every member", lambda: all(index_listed(m, INDEX) for m in members), members, timeout=60)
    blobs = {f"{PREFIX}{i}": float32_blob(v) for i, v in enumerate(vectors)}
    for key, target, reply in kit.each_key(members, list(blobs), "HSET", lambda key: ["v", blobs[key]]):
        if reply != 1:
            raise RuntimeError(f"HSET {key} on {target}: {reply}")
    kit.wait("the cluster's index", lambda: indexed(members[0], len(vectors), ["PRIMARY"]), members, timeout=600)
    return measure(members[0], args.dim, args.queries, args.k, seed=1)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=10_000, help="vectors in the index (default 10000)")
    parser.add_argument("--dim", type=int, default=64, help="dimensions (default 64)")
    parser.add_argument("--queries", type=int, default=1000, help="KNN queries per case (default 1000)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    args = parser.parse_args()

    image = real_kit.real_image()
    reason = image.not_real("search")
    if reason:
        print(reason)
        return 0
    rng = random.Random(0)
    vectors = [random_vector(rng, args.dim) for _ in range(args.vectors)]
    with tempfile.TemporaryDirectory() as workdir:
        kit = ClusterKit(image.name, Path(workdir))
        try:
            results = {"one node": single_node(kit, vectors, args), "3-member cluster": cluster(kit, vectors, args)}
        finally:
            kit.destroy()

    print(f"{image.name}: Valkey {image.valkey_version}; modules {image.builds}")
    print(
        f"HNSW (M 16, EF_CONSTRUCTION 200, L2), {args.vectors} vectors of {args.dim} FLOAT32; "
        f"KNN {args.k} (EF_RUNTIME default); {args.queries} queries, one at a time, each followed by a GET"
    )
    print(f"{'':<18}{'KNN p50 ms':>12}{'KNN p99 ms':>12}{'GET p50 ms':>12}{'GET p99 ms':>12}")
    for case, times in results.items():
        knn_p50, knn_p99 = percentiles(times["KNN"])
        get_p50, get_p99 = percentiles(times["GET"])
        print(f"{case:<18}{knn_p50:>12.3f}{knn_p99:>12.3f}{get_p50:>12.3f}{get_p99:>12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
