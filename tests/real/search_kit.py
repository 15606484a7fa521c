"""Documents, indexes and answers for the search tests and benchmark (valkey-search 1.2).

The documents are books with a title (TEXT), a genre (TAG), a year (NUMERIC) and an
embedding (VECTOR, FLOAT32), kept as HASH fields or as a JSON document. What each query
must answer is computed here from the same books, distances included: FT.SEARCH is
checked against it, never against itself.

Distances as valkey-search reports them (docs/commands/ft.create.md of 1.2.1; the L2 space
is hnswlib's, which reports the squared distance): L2 -> sum((x - y)^2), COSINE -> 1 -
cos(x, y).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import struct

from valkey_bundle.resp import ReplyError

DIM = 8
GENRES = ("fiction", "poetry", "history")
# Title words: no stop words, and no two with a common stem.
ADJECTIVES = ("silent", "crimson", "distant", "hollow", "golden")
NOUNS = ("harbor", "lantern", "meadow", "glacier", "orchard")
HNSW_EF_RUNTIME = 200  # larger than the index: the HNSW answers are exact


def float32_blob(vector: list[float]) -> bytes:
    """A vector as valkey-search reads it from a hash field or a query parameter: FLOAT32, little-endian."""
    return struct.pack(f"<{len(vector)}f", *vector)


def float32(vector: list[float]) -> list[float]:
    """The values as the server stores them (rounded to FLOAT32)."""
    return list(struct.unpack(f"<{len(vector)}f", float32_blob(vector)))


@dataclasses.dataclass(frozen=True)
class Book:
    key: str
    title: str
    genre: str
    year: int
    embedding: list[float]  # FLOAT32 values, as the server stores them

    def hash_fields(self) -> list:
        """HSET arguments: the embedding twice, for an HNSW and a FLAT field."""
        blob = float32_blob(self.embedding)
        return ["title", self.title, "genre", self.genre, "year", str(self.year), "vec", blob, "vec_flat", blob]

    def json_document(self) -> str:
        return json.dumps(
            {
                "title": self.title,
                "genre": self.genre,
                "year": self.year,
                "vec": self.embedding,
                "vec_hnsw": self.embedding,
            }
        )


def books(prefix: str, count: int, seed: int = 7, dim: int = DIM) -> list[Book]:
    rng = random.Random(seed)
    return [
        Book(
            key=f"{prefix}{i}",
            title=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            genre=GENRES[i % len(GENRES)],
            year=1900 + i,
            embedding=float32([rng.uniform(-1, 1) for _ in range(dim)]),
        )
        for i in range(count)
    ]


def later_books(prefix: str, count: int, seed: int) -> list[Book]:
    """Books written after the others (after a restart): embeddings of their own, and a
    title, genre and year that no filter query here finds, so those answers stay the
    others'."""
    return [dataclasses.replace(b, title="late volume", genre="essay", year=1800) for b in books(prefix, count, seed)]


def query_vector(seed: int, dim: int = DIM) -> list[float]:
    rng = random.Random(seed)
    return float32([rng.uniform(-1, 1) for _ in range(dim)])


# ------------------------------------------------------------------ indexes


def vector_field(algorithm: str, metric: str, dim: int = DIM) -> list[str]:
    attributes = ["TYPE", "FLOAT32", "DIM", str(dim), "DISTANCE_METRIC", metric]
    if algorithm == "HNSW":
        attributes += ["M", "16", "EF_CONSTRUCTION", "200"]
    return ["VECTOR", algorithm, str(len(attributes)), *attributes]


def hash_index(name: str, prefix: str) -> list[str]:
    """FT.CREATE of a HASH index: every field type; vec is HNSW (L2), vec_flat FLAT (COSINE)."""
    return [
        *("FT.CREATE", name, "ON", "HASH", "PREFIX", "1", prefix, "SCHEMA"),
        *("title", "TEXT", "genre", "TAG", "year", "NUMERIC"),
        *("vec", *vector_field("HNSW", "L2")),
        *("vec_flat", *vector_field("FLAT", "COSINE")),
    ]


def json_index(name: str, prefix: str) -> list[str]:
    """FT.CREATE of a JSON index: every field type; vec is FLAT (L2), vec_hnsw HNSW (COSINE)."""
    return [
        *("FT.CREATE", name, "ON", "JSON", "PREFIX", "1", prefix, "SCHEMA"),
        *("$.title", "AS", "title", "TEXT", "$.genre", "AS", "genre", "TAG", "$.year", "AS", "year", "NUMERIC"),
        *("$.vec", "AS", "vec", *vector_field("FLAT", "L2")),
        *("$.vec_hnsw", "AS", "vec_hnsw", *vector_field("HNSW", "COSINE")),
    ]


# Each index's vector fields: field -> (algorithm, metric).
HASH_VECTORS = {"vec": ("HNSW", "L2"), "vec_flat": ("FLAT", "COSINE")}
JSON_VECTORS = {"vec": ("FLAT", "L2"), "vec_hnsw": ("HNSW", "COSINE")}


# ------------------------------------------------------------------ queries and answers


def distance(metric: str, x: list[float], y: list[float]) -> float:
    if metric == "L2":
        return sum((a - b) ** 2 for a, b in zip(x, y, strict=True))
    dot = sum(a * b for a, b in zip(x, y, strict=True))
    return 1 - dot / (math.sqrt(sum(a * a for a in x)) * math.sqrt(sum(b * b for b in y)))


def filter_queries(documents: list[Book]) -> dict[str, set[str]]:
    """Filter query -> the keys it must find: a tag, a numeric range, a text term, and both."""
    first_year = documents[0].year
    low, high = first_year + 20, first_year + 50
    return {
        "@genre:{poetry}": {b.key for b in documents if b.genre == "poetry"},
        f"@year:[{low} ({high}]": {b.key for b in documents if low <= b.year < high},
        "@title:harbor": {b.key for b in documents if "harbor" in b.title.split()},
        f"@genre:{{history}} @year:[{high} +inf]": {
            b.key for b in documents if b.genre == "history" and b.year >= high
        },
    }


def search_keys(node_or_conn, index: str, query: str) -> tuple[int, set[str]]:
    """(the count, the keys) FT.SEARCH ... NOCONTENT answers; an error reply raises."""
    reply = node_or_conn.call("FT.SEARCH", index, query, "NOCONTENT", "LIMIT", "0", "10000")
    if not isinstance(reply, list):
        raise AssertionError(f"FT.SEARCH {index} {query!r}: {reply}")
    return reply[0], set(reply[1:])


def knn_query(field: str, k: int, ef_runtime: int | None = None, where: str = "*") -> str:
    """A KNN query of the vector in parameter $q among the documents ``where`` matches
    (every one: a pure KNN query); EF_RUNTIME for an HNSW field."""
    runtime = f" EF_RUNTIME {ef_runtime}" if ef_runtime else ""
    return f"{where}=>[KNN {k} @{field} $q{runtime}]"


UNCONFIRMED = "Unable to contact all cluster members"


def changed_here(reply) -> bool:
    """Whether FT.CREATE or FT.DROPINDEX through the coordinator made its change on the
    member asked: "OK", or the error its consistency check answers when not every member
    confirmed the change within search.ft-info-timeout-ms (5 s; seen on a busy machine).
    Either way the change is made there and reaches the others: the caller waits until
    every member lists the index (or no longer does)."""
    return reply == "OK" or (isinstance(reply, ReplyError) and str(reply) == UNCONFIRMED)


def reindex_setting(node_or_conn) -> str:
    """search.skip-rdb-load on the server: "yes" (a load indexes the keys again) or "no" (it
    reads the indexes back); an unexpected reply as its text."""
    reply = node_or_conn.call("CONFIG", "GET", "search.skip-rdb-load")
    return reply[1] if isinstance(reply, list) and len(reply) == 2 else str(reply)


def index_listed(node_or_conn, index: str) -> bool:
    """Whether FT._LIST names ``index`` (false on an error reply)."""
    reply = node_or_conn.call("FT._LIST")
    return isinstance(reply, list) and index in reply


def knn(
    node_or_conn, index: str, field: str, algorithm: str, vector: list[float], k: int, where: str = "*"
) -> list[tuple[str, float]]:
    """[(key, score)] of a KNN query, in the order of the answer."""
    ef_runtime = HNSW_EF_RUNTIME if algorithm == "HNSW" else None
    reply = node_or_conn.call(
        *("FT.SEARCH", index, knn_query(field, k, ef_runtime, where)),
        *("PARAMS", "2", "q", float32_blob(vector), "RETURN", "1", f"__{field}_score"),
        *("LIMIT", "0", str(k), "DIALECT", "2"),  # FT.SEARCH answers 10 by default, whatever k
    )
    if not isinstance(reply, list):
        raise AssertionError(f"FT.SEARCH {index} KNN on {field}: {reply}")
    hits = []
    for key, fields in zip(reply[1::2], reply[2::2], strict=True):
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        hits.append((key, float(values[f"__{field}_score"])))
    return hits


def check_knn(
    hits: list[tuple[str, float]], documents: list[Book], vector: list[float], metric: str, k: int, field: str
) -> None:
    """The answer holds the ``k`` nearest documents, nearest first, each with its distance.

    Distances are computed here in double precision from the FLOAT32 values; the server
    computes them in FLOAT32, so two documents closer than ``tolerance`` may come in either
    order.
    """
    expected = {b.key: distance(metric, vector, b.embedding) for b in documents}
    tolerance = 1e-4
    keys = [key for key, _ in hits]
    assert len(keys) == k == len(set(keys)), f"{field}: {len(keys)} answers, {len(set(keys))} distinct, want {k}"
    for key, score in hits:
        close = math.isclose(score, expected[key], rel_tol=tolerance, abs_tol=tolerance)
        assert close, f"{field}: {key} scored {score}, its distance is {expected[key]}"
    ordered = [expected[key] for key in keys]
    assert all(a <= b + tolerance for a, b in itertools.pairwise(ordered)), f"{field}: not nearest first: {hits}"
    others = sorted(d for key, d in expected.items() if key not in keys)
    assert not others or ordered[-1] <= others[0] + tolerance, f"{field}: a nearer document was left out: {hits}"


def pairs(reply: list) -> dict:
    """A flat [name, value, name, value, ...] reply as a dict."""
    return dict(zip(reply[::2], reply[1::2], strict=True))


def index_info(node_or_conn, index: str) -> dict:
    """FT.INFO (LOCAL) as a dict, with index_definition as a dict and attributes by name."""
    reply = node_or_conn.call("FT.INFO", index)
    if not isinstance(reply, list):
        raise AssertionError(f"FT.INFO {index}: {reply}")
    info = pairs(reply)
    info["index_definition"] = pairs(info["index_definition"])
    info["attributes"] = {pairs(a)["attribute"]: pairs(a) for a in info["attributes"]}
    return info
