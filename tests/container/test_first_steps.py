"""What a newcomer runs in the first hour: a hardened docker run, --cap-drop ALL, redis-server as
the command, --user on a volume a root start used, a lone cluster node, bundle-info."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.container

PREFIX = "bundle-docker-entrypoint: "


def error_lines(bundle):
    return [line for line in bundle.logs().splitlines() if line.startswith(PREFIX + "error: ")]


def test_cap_drop_all_as_root_is_one_line_naming_what_is_missing(run_bundle):
    bundle = run_bundle(cap_drop=["ALL"], ready=False)
    assert bundle.wait_exit() == 2
    logs = bundle.logs()
    assert "Traceback" not in logs, logs
    assert error_lines(bundle) == [
        PREFIX + "error: started as root without the capabilities SETUID and SETGID (to switch to the valkey user, "
        "uid 999): add them (--cap-add SETUID --cap-add SETGID), or start the container as the valkey user "
        "(--user 999:999) on a volume that user owns"
    ], logs


def test_the_hardened_docker_run_of_the_readme_starts(run_bundle, data_volume):
    bundle = run_bundle(
        cap_drop=["ALL"],
        cap_add=["SETUID", "SETGID"],
        security_opt=["no-new-privileges"],
        read_only=True,
        tmpfs=["/tmp"],
        volumes={data_volume: ("/data", "rw")},
    )
    assert bundle.server()["Uid"].split() == ["999"] * 4
    assert bundle.cli("set", "k", "v") == "OK" and bundle.cli("save") == "OK"
    # And with no capability at all, as valkey on the volume valkey owns.
    bundle.container.stop(timeout=10)
    as_valkey = run_bundle(cap_drop=["ALL"], user="999:999", volumes={data_volume: ("/data", "rw")})
    assert as_valkey.cli("get", "k") == "v"


def test_redis_server_as_the_command_is_the_server_and_leaves_nothing_the_next_start_trips_on(run_bundle, data_volume):
    volumes = {data_volume: ("/data", "rw")}
    bundle = run_bundle(command=["redis-server", "--appendonly", "yes"], volumes=volumes)
    server = bundle.server("redis-server")
    assert server["Uid"].split() == ["999"] * 4, "not root"
    assert bundle.module_names() == ["bf", "json", "ldap", "search"]
    assert bundle.cli("config", "get", "protected-mode").split() == ["protected-mode", "no"]
    assert bundle.cli("set", "k", "v") == "OK"
    bundle.container.stop(timeout=10)
    assert run_bundle(command=["--appendonly", "yes"], volumes=volumes).cli("get", "k") == "v"


def test_root_owned_files_in_a_valkey_volume_are_handed_over(run_bundle, data_volume, docker_client):
    """What a server run as root (another entrypoint, by hand) leaves: the volume's top is still
    valkey's, the AOF directory and its files are root's. Before, the next start stopped with
    `Can't open the append-only file ... Permission denied`."""
    volumes = {data_volume: ("/data", "rw")}
    first = run_bundle(command=["--appendonly", "yes"], volumes=volumes)
    assert first.cli("set", "k", "v") == "OK"
    first.container.stop(timeout=10)
    docker_client.containers.run(
        first.container.image.id,
        ["-c", "chown -R 0:0 /data/appendonlydir && chmod -R go-rwx /data/appendonlydir && chown 999:999 /data"],
        entrypoint="sh",
        volumes={data_volume: {"bind": "/data", "mode": "rw"}},
        remove=True,
    )
    again = run_bundle(command=["--appendonly", "yes"], volumes=volumes)
    assert again.cli("get", "k") == "v"
    code, owners = again.exec("sh", "-c", "stat -c '%u' /data /data/appendonlydir /data/appendonlydir/* | sort -u")
    assert code == 0 and owners.split() == ["999"], owners


def test_another_uid_on_a_volume_a_root_start_used_is_one_line(run_bundle, data_volume):
    volumes = {data_volume: ("/data", "rw")}
    first = run_bundle(command=["--appendonly", "yes"], volumes=volumes)
    assert first.cli("set", "k", "v") == "OK"
    first.container.stop(timeout=10)
    other = run_bundle(command=["--appendonly", "yes"], volumes=volumes, user="1000:1000", ready=False)
    assert other.wait_exit() == 2
    (line,) = error_lines(other)
    assert line.startswith(PREFIX + "error: uid 1000 cannot write /data/appendonlydir (owner 999:999, mode 0700): ")
    assert "--user UID:GID" in line and "Traceback" not in other.logs()


def test_a_lone_cluster_node_says_how_a_cluster_is_formed(run_bundle):
    bundle = run_bundle(command=["--cluster-enabled", "yes"])
    assert (
        PREFIX + "cluster mode without VALKEY_CLUSTER_NODES, and /data/nodes.conf lists no other node: this node "
        "stays cluster_state:fail until it is made part of a cluster"
    ) in bundle.logs()
    # It announces the address Docker gave it (no POD_IP here).
    bundle.container.reload()
    address = bundle.container.attrs["NetworkSettings"]["IPAddress"]
    assert bundle.cli("config", "get", "cluster-announce-ip").split()[1] == address


def test_bundle_info_shows_which_modules_are_real_and_loaded(run_bundle, bundle_image):
    bundle = run_bundle(env={"VALKEY_MODULES": "search,json,bloom"})
    code, out = bundle.exec("bundle-info")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"image   valkey-bundle {bundle_image.valkey_version}-local (revision ")
    assert lines[1] == f"server  valkey {bundle_image.valkey_version} on 127.0.0.1:6379"
    assert lines[2:] == [
        "search  1.2.1 stand-in  loaded: search ver 1 /usr/lib/valkey/libsearch.so",
        "json    1.0.2 stand-in  loaded: json ver 1 /usr/lib/valkey/libjson.so",
        "bloom   1.0.1 stand-in  loaded: bf ver 1 /usr/lib/valkey/libvalkey_bloom.so",
        "ldap    1.0.0 stand-in  not loaded",
    ]
