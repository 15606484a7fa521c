"""Time for three nodes started through the entrypoint to form a cluster by themselves.

Three valkey-servers (built from source by the test bed, with the fixture
modules) on 127.0.0.2-4, started at the same moment with VALKEY_CLUSTER_NODES
and VALKEY_CLUSTER_ANNOUNCE_IP, as a StatefulSet would start them.  The figure
is the time from that moment until every node reports cluster_state:ok and
knows both peers.  Printed, not asserted; target <= 5 s.

    python3 bench/cluster_form.py [--runs N]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "entrypoint" / "bundle-docker-entrypoint"
IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
TARGET = 5.0
sys.path.insert(0, str(ROOT / "tests"))


def cluster_info(ip, port):
    """CLUSTER INFO as a dict, or {} while the node does not answer."""
    try:
        with socket.create_connection((ip, port), timeout=1.0) as s:
            s.sendall(b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n")
            data = b""
            while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return {}
    if not data.startswith(b"$"):
        return {}
    pairs = (line.split(":", 1) for line in data.decode().split("\r\n")[1:] if ":" in line)
    return dict(pairs)


def formed(info):
    return info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(len(IPS))


def one_run(prefix, modules, port, workdir, timeout=60.0):
    procs, logs = [], []
    members = ",".join(f"{ip}:{port}" for ip in IPS)
    for i, ip in enumerate(IPS):
        node = workdir / f"node-{i}"
        node.mkdir()
        conf = node / "valkey.conf"
        conf.write_text(f'cluster-enabled yes\ndir {node}\nappendonly no\nsave ""\n')
        env = {
            "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "VALKEY_MODULES_DIR": str(modules),
            "VALKEY_CLUSTER_NODES": members,
            "VALKEY_CLUSTER_ANNOUNCE_IP": ip,
        }
        logs.append(open(node / "log", "w"))  # noqa: SIM115 - closed below
        procs.append((ip, conf, env))
    start = time.monotonic()
    running = [
        subprocess.Popen(
            [str(ENTRYPOINT), str(conf), "--port", str(port), "--bind", ip],
            env=env,
            cwd=conf.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for (ip, conf, env), log in zip(procs, logs, strict=True)
    ]
    done = {}
    try:
        while len(done) < len(IPS) and time.monotonic() - start < timeout:
            for ip in IPS:
                if ip not in done and formed(cluster_info(ip, port)):
                    done[ip] = time.monotonic() - start
            time.sleep(0.01)
    finally:
        for proc in running:
            proc.terminate()
        for proc in running:
            proc.wait(20)
        for log in logs:
            log.close()
    if len(done) < len(IPS):
        raise RuntimeError(f"no cluster after {timeout} s; logs in {workdir}")
    return done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    from support import testbed

    prefix = testbed.valkey_build()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        modules = Path(tmp) / "modules"
        testbed.fixture_modules(modules)
        for run in range(options.runs):
            port = testbed.free_port()
            workdir = Path(tmp) / f"run-{run}"
            workdir.mkdir()
            done = one_run(prefix, modules, port, workdir)
            slowest = max(done.values())
            results.append(slowest)
            per_node = "  ".join(f"{ip} {t:.2f} s" for ip, t in sorted(done.items()))
            print(f"run {run + 1}: cluster_state:ok on every node after {slowest:.2f} s ({per_node})")
    median = statistics.median(results)
    print(f"median: {median:.2f} s to cluster_state:ok on all {len(IPS)} nodes (target <= {TARGET:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
