"""Tier 2: the entrypoint starts a real valkey-server (built by our recipe) with real modules."""

import json
import os
import signal

import pytest

pytestmark = pytest.mark.native
FOUR = ["bf", "json", "ldap", "search"]


def module_list(server):
    """{name: args} from MODULE LIST (Valkey 9 also lists its built-in lua engine)."""
    entries = json.loads(server.cli("--json", "module", "list"))
    return {m["name"]: m.get("args", []) for m in entries if m["name"] != "lua"}


def args_of(server, name):
    return json.loads(server.cli("--json", f"{name}.args"))


def test_all_four_modules_load_with_their_args(start_server, modules_dir):
    server = start_server(
        ["--port", "{port}", "--save", ""],
        VALKEY_MODULES_DIR=str(modules_dir),
        SEARCH_MODULE_ARGS='--reader-threads 4 --name "two words" \'it"s\'',
        BLOOM_MODULE_ARGS="bloom-capacity 1000",
    ).wait_ready()
    assert sorted(module_list(server)) == FOUR
    assert args_of(server, "search") == ["--reader-threads", "4", "--name", "two words", 'it"s']
    assert args_of(server, "bf") == ["bloom-capacity", "1000"]
    assert args_of(server, "json") == []


def test_server_keeps_the_entrypoint_pid_and_stops_cleanly_on_sigterm(start_server, modules_dir):
    server = start_server(["--port", "{port}", "--save", ""], VALKEY_MODULES_DIR=str(modules_dir)).wait_ready()
    info = server.cli("info", "server")
    assert f"process_id:{server.proc.pid}\r" in info or f"process_id:{server.proc.pid}\n" in info
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(15) == 0


def test_use_coordinator_through_env_starts(start_server, modules_dir):
    """The case that crashed the original setup: SEARCH_MODULE_ARGS=--use-coordinator (asked
    for outside cluster mode with VALKEY_SEARCH_COORDINATOR=yes, where it is dropped otherwise)."""
    server = start_server(
        ["--port", "{port}", "--save", ""],
        VALKEY_MODULES_DIR=str(modules_dir),
        VALKEY_MODULES="search",
        VALKEY_SEARCH_COORDINATOR="yes",
        SEARCH_MODULE_ARGS="--use-coordinator yes --reader-threads 2",
    ).wait_ready()
    assert server.cli("search.coordinator").strip() == "1"
    assert args_of(server, "search") == ["--use-coordinator", "--reader-threads", "2"]
    assert "takes no value" in server.log()


def test_coordinator_turns_on_in_cluster_mode(start_server, modules_dir, tmp_path):
    conf = tmp_path / "cluster.conf"
    conf.write_text(f'cluster-enabled yes\ncluster-config-file {tmp_path}/nodes.conf\nsave ""\n')
    server = start_server(
        [str(conf), "--port", "{port}"], VALKEY_MODULES_DIR=str(modules_dir), VALKEY_MODULES="search,json"
    ).wait_ready()
    assert server.cli("search.coordinator").strip() == "1"
    assert "cluster_enabled:1" in server.cli("info", "cluster")


def test_config_file_wins_and_no_module_loads_twice(start_server, modules_dir, tmp_path):
    conf = tmp_path / "my valkey.conf"
    # Written differently from how the entrypoint would write it: quoted, with a relative path.
    os.symlink(modules_dir, tmp_path / "mods")
    conf.write_text('loadmodule "mods/libjson.so" from-config\n')
    server = start_server(
        [str(conf), "--port", "{port}", "--save", ""],
        cwd=tmp_path,
        VALKEY_MODULES_DIR=str(modules_dir),
        JSON_MODULE_ARGS="from-env",
    ).wait_ready()
    assert sorted(module_list(server)) == FOUR
    assert args_of(server, "json") == ["from-config"]
    assert "JSON_MODULE_ARGS ignored" in server.log()


def test_restart_after_config_rewrite(start_server, modules_dir, tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text('save ""\n')
    env = dict(VALKEY_MODULES_DIR=str(modules_dir), SEARCH_MODULE_ARGS="--reader-threads 3")
    first = start_server([str(conf), "--port", "{port}"], **env).wait_ready()
    assert first.cli("config", "rewrite").strip() == "OK"
    assert "loadmodule" in conf.read_text()
    assert first.stop() == 0
    second = start_server([str(conf), "--port", str(first.port)], port=first.port, **env).wait_ready()
    assert sorted(module_list(second)) == FOUR
    assert args_of(second, "search") == ["--reader-threads", "3"]


def test_module_config_from_extra_flags(start_server, modules_dir):
    server = start_server(
        ["--port", "{port}"],
        VALKEY_MODULES_DIR=str(modules_dir),
        VALKEY_MODULES="json",
        VALKEY_EXTRA_FLAGS='--save "" --json.fixture-config "hello world"',
    ).wait_ready()
    assert server.cli("config", "get", "json.fixture-config").splitlines() == ["json.fixture-config", "hello world"]
    assert server.cli("config", "get", "save").splitlines() == ["save", ""]


def test_modules_dir_with_spaces(start_server, modules_dir, tmp_path):
    spaced = tmp_path / "my modules"
    spaced.mkdir()
    os.symlink(modules_dir / "libjson.so", spaced / "libjson.so")
    server = start_server(
        ["--port", "{port}", "--save", ""], VALKEY_MODULES_DIR=str(spaced), JSON_MODULE_ARGS="a"
    ).wait_ready()
    assert module_list(server) == {"json": ["a"]}


def test_no_modules(start_server, modules_dir):
    server = start_server(
        ["--port", "{port}", "--save", ""], VALKEY_MODULES_DIR=str(modules_dir), VALKEY_MODULES="none"
    )
    assert module_list(server.wait_ready()) == {}
