"""Start-up cost of the entrypoint against a bare interpreter, measured side by side.

The entrypoint runs on its real path: four module files discovered, the module
facts read, the config read, the plan made, and exec of a stand-in
valkey-server that exits at once.  Each sample pairs one bare
``python3 -I -S -c pass`` with one entrypoint run; the figure is the median of
the per-pair ratios.  Targets: <= 1.5x (cluster config with a loadmodule line)
and <= 2.0x (config with a glob include).

    python3 bench/startup.py [--runs N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "entrypoint" / "bundle-docker-entrypoint"
MODULE_FILES = ["libsearch.so", "libjson.so", "libvalkey_bloom.so", "libvalkey_ldap.so"]
TARGETS = {"cluster config + loadmodule": 1.5, "config with a glob include": 2.0}


def make_stand_in_server(bin_dir):
    """A valkey-server that exits at once (compiled C when a compiler exists, else `true`)."""
    target = bin_dir / "valkey-server"
    cc = shutil.which("cc")
    if cc:
        source = bin_dir / "stand_in.c"
        source.write_text("int main(void) { return 0; }\n")
        subprocess.run([cc, "-O2", "-o", str(target), str(source)], check=True)
    else:
        shutil.copy(shutil.which("true"), target)
    return target


def make_fixture(tmp):
    mods = tmp / "modules"
    mods.mkdir()
    for name in MODULE_FILES:
        (mods / name).write_bytes(b"\x7fELF")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    make_stand_in_server(bin_dir)
    seed = tmp / "cluster.conf"
    seed.write_text(
        "port 6379\ncluster-enabled yes\nappendonly yes\n"
        f"loadmodule {mods}/libsearch.so --use-coordinator --reader-threads 4\n"
    )
    conf_d = tmp / "conf.d"
    conf_d.mkdir()
    (conf_d / "10-cluster.conf").write_text("cluster-enabled yes\n")
    (conf_d / "20-memory.conf").write_text("maxmemory 1gb\nmaxmemory-policy allkeys-lru\n")
    globbed = tmp / "glob.conf"
    globbed.write_text(f"port 6379\ninclude {conf_d}/*.conf\n")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VALKEY_MODULES_DIR": str(mods),
        "SEARCH_MODULE_ARGS": "--reader-threads 4",
        "JSON_MODULE_ARGS": "",
    }
    return env, {"cluster config + loadmodule": seed, "config with a glob include": globbed}


def timed(argv, env):
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(python, conf, env, runs):
    bare_argv = [python, "-I", "-S", "-c", "pass"]
    entry_argv = [python, "-I", "-S", str(ENTRYPOINT), str(conf)]
    for _ in range(5):  # warm caches and bytecode
        timed(bare_argv, env), timed(entry_argv, env)
    bare, entry, ratios = [], [], []
    for _ in range(runs):
        b = timed(bare_argv, env)
        e = timed(entry_argv, env)
        bare.append(b)
        entry.append(e)
        ratios.append(e / b)
    return statistics.median(bare), statistics.median(entry), statistics.median(ratios)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--python", default=os.path.realpath(sys.executable), help="interpreter to measure")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env, configs = make_fixture(Path(tmp))
        print(f"python: {options.python}  runs: {options.runs}")
        print(f"{'case':32} {'bare ms':>8} {'entrypoint ms':>14} {'ratio':>6} {'target':>7}")
        failed = False
        for case, conf in configs.items():
            bare, entry, ratio = measure(options.python, conf, env, options.runs)
            target = TARGETS[case]
            verdict = "ok" if ratio <= target else "OVER"
            failed |= ratio > target
            print(f"{case:32} {bare * 1000:8.1f} {entry * 1000:14.1f} {ratio:6.2f} {target:6.1f}x {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
