"""JSON.GET throughput with valkey-benchmark, beside a plain GET of the same bytes measured
in the same run, on one node of the real-module image (tests/real/real_kit.py:
$VALKEY_BUNDLE_REAL_IMAGE, else the image built from the cache).

    python3 bench/json_get.py [--requests N] [--clients C] [--pipelines 1,16] [--rounds R]

The node runs through the entrypoint on a network of its own; valkey-benchmark (the
image's own, /usr/local/bin) runs in a second container of the same image on that
network. Three cases, at each pipeline depth (1: one request per round trip, where the
round trips dominate; 16: where the server's own work does), alternating, R rounds
each, figures the median round:

  GET        a string holding the document's text (the baseline)
  JSON.GET   the whole document (about 1 KiB), serialised back by the module
  JSON.GET $.path   one nested value of it, found by a JSONPath

Printed, not asserted. Where json is a stand-in in the image, prints "not run: ...".
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "entrypoint")]

from container.cluster_kit import LABEL, PORT, ClusterKit, docker  # noqa: E402
from real import real_kit  # noqa: E402

DOCUMENT = {
    "id": 4242,
    "name": "Ada Lovelace",
    "email": "ada@example.org",
    "roles": ["admin", "author", "reviewer"],
    "address": {"street": "12 St James's Square", "city": "London", "zip": "SW1Y 4JH", "country": "GB"},
    "preferences": {"theme": "dark", "language": "en-GB", "notifications": {"email": True, "sms": False}},
    "history": [{"at": 1700000000 + 3600 * i, "action": "login", "ip": f"10.0.0.{i}"} for i in range(8)],
    "bio": "Mathematician and writer, chiefly known for her work on the Analytical Engine. " * 3,
}
PATH = "$.preferences.notifications.email"
CASES = {
    "GET": ["GET", "plain"],
    "JSON.GET": ["JSON.GET", "doc"],
    "JSON.GET $.path": ["JSON.GET", "doc", PATH],
}


def benchmark(kit: ClusterKit, target: str, command: list[str], args, pipeline: int) -> dict[str, float]:
    """One valkey-benchmark run of ``command`` from a container on the kit's network."""
    run = ["run", "--rm", "--label", f"{LABEL}={kit.run_id}", "--network", kit.network, kit.image]
    tool = ["valkey-benchmark", "-h", target, "-p", str(PORT), "-a", kit.password]
    tool += ["-n", str(args.requests), "-c", str(args.clients), "-P", str(pipeline), "--csv", *command]
    out = docker(*run, *tool, timeout=600)
    rows = list(csv.DictReader(io.StringIO(out)))
    if len(rows) != 1:
        raise RuntimeError(f"valkey-benchmark {' '.join(command)}: unexpected output:\n{out}")
    return {name: float(value) for name, value in rows[0].items() if name != "test"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests per run (default 100000)")
    parser.add_argument("--clients", type=int, default=50, help="parallel connections (default 50)")
    parser.add_argument("--pipelines", default="1,16", help="pipeline depths, comma separated (default 1,16)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case (default 3)")
    args = parser.parse_args()
    pipelines = [int(p) for p in args.pipelines.split(",")]

    image = real_kit.real_image()
    reason = image.not_real("json")
    if reason:
        print(reason)
        return 0
    text = json.dumps(DOCUMENT, separators=(",", ":"))
    with tempfile.TemporaryDirectory() as workdir:
        kit = ClusterKit(image.name, Path(workdir))
        try:
            node = real_kit.start(kit, kit.node("bench-json"))
            with node.connect() as conn:
                assert conn.call("JSON.SET", "doc", "$", text) == "OK"
                assert conn.call("SET", "plain", conn.call("JSON.GET", "doc")) == "OK"
                assert conn.call("JSON.GET", "doc") == text, "the module gives the document back as it was set"
            results: dict[tuple[int, str], list[dict[str, float]]] = {(p, c): [] for p in pipelines for c in CASES}
            for _ in range(args.rounds):
                for pipeline, case in results:
                    results[pipeline, case].append(benchmark(kit, node.ip, CASES[case], args, pipeline))
        finally:
            kit.destroy()

    print(f"{image.name}: Valkey {image.valkey_version}; modules {image.builds}")
    print(
        f"one node, valkey-benchmark -n {args.requests} -c {args.clients} from a second container; "
        f"document {len(text)} bytes; median of {args.rounds} rounds"
    )
    print(f"{'pipeline':>8}  {'command':<18}{'requests/s':>12}{'vs GET':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for (pipeline, case), runs in results.items():
        baseline = statistics.median(r["rps"] for r in results[pipeline, "GET"])
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50_latency_ms"] for r in runs)
        p99 = statistics.median(r["p99_latency_ms"] for r in runs)
        print(f"{pipeline:>8}  {case:<18}{rps:>12,.0f}{rps / baseline:>8.2f}{p50:>9.3f}{p99:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
