"""The image as users run it: users, signals, volumes, a read-only root, module args,
a mounted config, the healthcheck. The modules are the fixture modules (same file and
module names as the real ones), so what is checked is the image and the entrypoint."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["bf", "json", "ldap", "search"]
MODULE_FILES = ["libjson.so", "libsearch.so", "libvalkey_bloom.so", "libvalkey_ldap.so"]


def test_image_metadata(bundle_image, docker_client):
    config = docker_client.images.get(bundle_image.name).attrs["Config"]
    assert config["Entrypoint"] == ["tini", "-s", "--", "bundle-docker-entrypoint"]
    assert config["Cmd"] == ["valkey-server"]
    assert config["WorkingDir"] == "/data"
    assert sorted(config["ExposedPorts"]) == ["16379/tcp", "26673/tcp", "6379/tcp"]
    assert not config.get("Volumes"), "no VOLUME: /data is the user's to mount"
    assert config.get("User", "") in ("", "root", "0"), "starts as root; the entrypoint drops to valkey"
    health = config["Healthcheck"]
    assert health["Test"] == ["CMD", "bundle-healthcheck", "liveness"]
    assert health["StartPeriod"] > 0 and health["Interval"] > 0 and health["Timeout"] > 0
    labels = config["Labels"]
    for name in ("source", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{name}" in labels
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert labels["org.opencontainers.image.revision"] in (head, f"{head}-dirty"), "scripts/image.sh's revision()"
    assert labels["org.opencontainers.image.version"] == f"{bundle_image.valkey_version}-local"
    assert labels["org.valkey-bundle.valkey.version"] == bundle_image.valkey_version
    for component in ("search", "json", "bloom", "ldap"):
        assert labels[f"org.valkey-bundle.{component}.version"]
        # The fixture module stands in for every module here, and the image says so.
        assert labels[f"org.valkey-bundle.{component}.build"] == "stand-in"


def test_image_contents(bundle_image, docker_client):
    """User/group 999, the install layout, no toolchain, byte code precompiled."""
    script = r"""
set -e
echo "user=$(id -u valkey):$(id -g valkey):$(getent group valkey | cut -d: -f3)"
echo "data=$(stat -c '%u:%g:%a' /data)"
echo "modules=$(cd /usr/lib/valkey && echo *.so)"
for c in valkey search json bloom ldap; do
    test -f /usr/local/lib/valkey-bundle/modules/$c/module.env || echo "missing module.env: $c"
done
for link in bundle-docker-entrypoint bundle-healthcheck; do
    echo "$link=$(readlink /usr/local/bin/$link)"
done
for tool in gcc cc g++ c++ make cmake ninja cargo rustc rustup clang git curl; do
    if command -v $tool >/dev/null 2>&1; then echo "toolchain: $tool"; fi
done
echo "pyc=$(find /usr/local/lib/valkey-bundle/entrypoint -name '*.pyc' | wc -l)"
echo "valkey=$(valkey-server --version)"
"""
    out = docker_client.containers.run(
        bundle_image.name, ["-c", script], entrypoint="bash", remove=True, stderr=True
    ).decode()
    assert "user=999:999:999" in out, out
    assert "data=999:999:777" in out, out
    assert f"modules={' '.join(MODULE_FILES)}" in out, out
    assert "missing" not in out, out
    entrypoint_dir = "/usr/local/lib/valkey-bundle/entrypoint"
    assert f"bundle-docker-entrypoint={entrypoint_dir}/bundle-docker-entrypoint" in out, out
    assert f"bundle-healthcheck={entrypoint_dir}/bundle-healthcheck" in out, out
    assert "toolchain:" not in out, out
    assert "pyc=0" not in out, out
    assert f"v={bundle_image.valkey_version}" in out, out


def test_root_start_runs_server_as_valkey_under_tini(run_bundle):
    bundle = run_bundle()
    assert bundle.pid1()["Name"] == "tini"
    server = bundle.server()  # the entrypoint exec'd it
    assert server["Uid"].split() == ["999"] * 4, f"server runs as valkey (999), not root: {server['Uid']}"
    assert server["Gid"].split() == ["999"] * 4, server["Gid"]
    # Search loads: the index guard runs beside it, as valkey too; no other Python is left.
    (guard,) = bundle.helpers()
    assert guard["Uid"].split() == ["999"] * 4 and guard["PPid"] == "1", guard
    assert f"process_id:{server['Pid']}" in bundle.cli("info", "server")
    assert bundle.module_names() == MODULES
    assert bundle.cli("set", "k", "v") == "OK"
    assert bundle.cli("save") == "OK"


def test_without_search_or_with_the_guard_off_nothing_runs_beside_the_server(run_bundle):
    for environment in ({"VALKEY_DISABLE_MODULES": "search"}, {"VALKEY_SEARCH_INDEX_GUARD": "no"}):
        bundle = run_bundle(env=environment)
        time.sleep(1)  # a helper forked before the exec has started by now
        children = [p["Name"] for p in bundle.processes() if p["PPid"] == "1"]
        assert children == ["valkey-server"], environment


def test_arbitrary_user(run_bundle):
    bundle = run_bundle(user="1000:1000")
    assert bundle.server()["Uid"].split() == ["1000"] * 4
    assert bundle.module_names() == MODULES
    assert bundle.cli("set", "k", "v") == "OK"
    assert bundle.cli("save") == "OK", "/data is writable by an arbitrary uid"


def test_read_only_root(run_bundle, data_volume):
    bundle = run_bundle(read_only=True, tmpfs=["/tmp"], volumes={data_volume: ("/data", "rw")})
    assert bundle.server()["Name"] == "valkey-server"
    assert bundle.module_names() == MODULES
    assert bundle.cli("set", "k", "v") == "OK"
    assert bundle.cli("save") == "OK"
    code, _out = bundle.exec("touch", "/usr/local/lib/valkey-bundle/probe")
    assert code != 0, "the root file system is read-only"


def test_module_args_from_env_in_cluster_mode(run_bundle):
    bundle = run_bundle(
        command=["valkey-server", "--cluster-enabled", "yes"],
        env={
            "SEARCH_MODULE_ARGS": "--use-coordinator --reader-threads 2",
            "JSON_MODULE_ARGS": "alpha 'two words'",
            "BLOOM_MODULE_ARGS": "bloom-capacity 1000",
        },
    )
    assert "cluster_enabled:1" in bundle.cli("info", "cluster")
    assert bundle.cli("search.coordinator") == "1"
    search_args = bundle.cli_json("search.args")
    assert "--use-coordinator" in search_args
    assert search_args[search_args.index("--reader-threads") + 1] == "2"
    assert bundle.cli_json("json.args") == ["alpha", "two words"]
    assert bundle.cli_json("bf.args") == ["bloom-capacity", "1000"]
    assert bundle.cli_json("ldap.args") == []


def test_coordinator_off_outside_cluster_mode(run_bundle):
    bundle = run_bundle()
    assert "cluster_enabled:0" in bundle.cli("info", "cluster")
    assert bundle.cli("search.coordinator") == "0"


def test_mounted_config_wins_over_env(run_bundle, tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text("loadmodule /usr/lib/valkey/libjson.so from-config 'a b'\nport 6379\n")
    conf.chmod(0o644)
    bundle = run_bundle(
        command=["valkey-server", "/etc/valkey/valkey.conf"],
        env={"JSON_MODULE_ARGS": "from-env", "BLOOM_MODULE_ARGS": "bloom-capacity 5"},
        volumes={str(conf): ("/etc/valkey/valkey.conf", "ro")},
    )
    assert bundle.module_names() == MODULES, "json once (from the config), the others from the entrypoint"
    assert bundle.cli_json("json.args") == ["from-config", "a b"]
    assert bundle.cli_json("bf.args") == ["bloom-capacity", "5"]


@pytest.mark.parametrize("private", ["nothing", "the directory", "the included file"])
def test_config_the_server_cannot_read_is_one_clear_error(run_bundle, tmp_path, private):
    """Read as root by the entrypoint, opened again by the server as valkey: checked before the drop."""
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "extra.conf").write_text("maxmemory 10mb\n")
    (conf_dir / "valkey.conf").write_text("port 6379\ninclude /etc/valkey/extra.conf\n")
    conf_dir.chmod(0o700 if private == "the directory" else 0o755)
    (conf_dir / "valkey.conf").chmod(0o644)
    (conf_dir / "extra.conf").chmod(0o600 if private == "the included file" else 0o644)
    bundle = run_bundle(
        command=["/etc/valkey/valkey.conf"], volumes={str(conf_dir): ("/etc/valkey", "ro")}, ready=private == "nothing"
    )
    if private == "nothing":
        assert bundle.cli("config", "get", "maxmemory").split() == ["maxmemory", str(10 * 1024 * 1024)]
        return
    assert bundle.wait_exit() == 2, bundle.logs()
    lines = bundle.logs().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bundle-docker-entrypoint: error: "), lines
    culprit = {
        "the directory": "config file /etc/valkey/valkey.conf",
        "the included file": "included file /etc/valkey/extra.conf",
    }
    assert f"{culprit[private]} is not readable by uid 999" in lines[0], lines[0]
    assert "chmod o+" in lines[0] and "--user" in lines[0], lines[0]


def test_docker_stop_is_clean_and_aof_survives(run_bundle, data_volume):
    keys = 250
    first = run_bundle(command=["valkey-server", "--appendonly", "yes"], volumes={data_volume: ("/data", "rw")})
    pairs = [item for i in range(keys) for item in (f"key:{i}", f"value:{i}")]
    assert first.cli("mset", *pairs) == "OK"
    assert first.cli("dbsize") == str(keys)
    first.container.stop(timeout=30)
    assert first.wait_exit() == 0, f"docker stop must shut the server down cleanly:\n{first.logs()}"
    assert "ready to exit" in first.logs().lower()

    second = run_bundle(command=["valkey-server", "--appendonly", "yes"], volumes={data_volume: ("/data", "rw")})
    assert second.cli("dbsize") == str(keys)
    assert second.cli("get", f"key:{keys - 1}") == f"value:{keys - 1}"
    code, out = second.exec("ls", "/data/appendonlydir")
    assert code == 0 and ".aof" in out, out


def test_orphans_are_reaped(run_bundle):
    """A child left behind by a docker exec goes to PID 1: tini reaps it (the server would not)."""
    bundle = run_bundle()
    for _ in range(5):
        code, out = bundle.exec("sh", "-c", "sleep 0.1 &")
        assert code == 0, out
    time.sleep(1.0)  # the sleeps end; their parent is PID 1 by then
    processes = bundle.processes()
    assert not [p for p in processes if p["State"].startswith("Z")], processes
    assert bundle.cli("ping") == "PONG"


def test_healthcheck_turns_healthy(run_bundle):
    bundle = run_bundle()
    deadline = time.monotonic() + 90
    while True:
        health = bundle.state().get("Health") or {}
        status = health.get("Status")
        if status == "healthy":
            break
        assert status in ("starting", "healthy"), f"health {status}: {health.get('Log')}"
        assert time.monotonic() < deadline, f"not healthy in time: {health.get('Log')}"
        time.sleep(1)  # the healthcheck runs every 10 s
    assert health["Log"][-1]["ExitCode"] == 0


def test_other_command_runs_unchanged(run_bundle):
    bundle = run_bundle(command=["valkey-cli", "--version"], ready=False)
    assert bundle.wait_exit() == 0, bundle.logs()
    out = bundle.logs().strip()
    assert out.startswith("valkey-cli "), out
    assert "loadmodule" not in out


def entrypoint_imports() -> set[str]:
    """Top-level names of every module the entrypoint imports, anywhere in its code
    (error paths included), less its own package."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "entrypoint"
    files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    names = set()
    for path in files:
        text = path.read_text(errors="replace")
        first_line = text.split("\n", 1)[0]
        if path.suffix != ".py" and not (first_line.startswith("#!") and "python" in first_line):
            continue
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - {"valkey_bundle", "__future__"}


def test_entrypoint_imports_only_what_the_image_ships(bundle_image, docker_client):
    """The runtime has python3-minimal, not the full standard library."""
    modules = sorted(entrypoint_imports())
    assert modules, "found no imports in entrypoint/"
    check = (
        "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    )
    out = docker_client.containers.run(
        bundle_image.name, ["-I", "-S", "-c", check, *modules], entrypoint="python3", remove=True
    ).decode()
    assert out.strip() == "", f"imported by the entrypoint but missing in the image: {out.strip()}"


def test_bad_input_is_one_clear_error(run_bundle):
    bundle = run_bundle(env={"VALKEY_MODULES": "serch"}, ready=False)
    assert bundle.wait_exit() == 2, bundle.logs()
    logs = bundle.logs().strip()
    assert "Traceback" not in logs, logs
    lines = logs.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bundle-docker-entrypoint: error: "), logs
    assert "VALKEY_MODULES" in lines[0] and "did you mean SEARCH?" in lines[0], logs


def test_reachable_through_the_network_as_in_the_official_image(run_bundle):
    """A client from another host (here: this one, through the bridge) gets PONG, not DENIED:
    protected mode is off unless the config says otherwise, and the start says there is no password."""
    from support import testbed

    bundle = run_bundle()
    bundle.container.reload()
    address = next(iter(bundle.container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    reply = testbed.valkey_command(6379, "PING", host=address)
    assert reply == "PONG", reply
    assert "warning: no password and protected-mode is off" in bundle.logs()
