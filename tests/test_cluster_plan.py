"""The plan for cluster mode and passwords: variables, generated args, precedence, who bootstraps."""

import json

import pytest
from conftest import base_env, run_entrypoint

from valkey_bundle.addresses import hosts_address
from valkey_bundle.cluster.plan import Identity, decide_creator, match_self
from valkey_bundle.command import normalise_command
from valkey_bundle.errors import UsageError
from valkey_bundle.module_files import ModuleFacts, parse_env_file
from valkey_bundle.password_plan import Runtime
from valkey_bundle.plan import final_server_args, lone_cluster_line, make_plan
from valkey_bundle.secret import read_password
from valkey_bundle.server_config import read_server_config
from valkey_bundle.settings import read_bundle_env

DISCOVERED = {"SEARCH": "/usr/lib/valkey/libsearch.so", "JSON": "/usr/lib/valkey/libjson.so"}
FACTS = {
    "SEARCH": ModuleFacts(
        "search",
        parse_env_file(
            "MODULE_FILE=libsearch.so\nMODULE_NAME=search\nMODULE_VALUELESS_FLAGS=--use-coordinator\n"
            "MODULE_COORDINATOR_FLAG=--use-coordinator\n"
        ),
    ),
    "JSON": ModuleFacts("json", parse_env_file("MODULE_FILE=libjson.so\nMODULE_NAME=json\n")),
}
THREE = "db-0.svc.local:6379,db-1.svc.local:6379,db-2.svc.local:6379"
CLUSTER = ["--cluster-enabled", "yes"]
RUNTIME = Runtime(4242, 999, [("/tmp", True), ("/dev/shm", True)])


def plan_for(command, environ=None, cwd="/", runtime=RUNTIME, identity=(999, None), own_address=None):
    environ = environ or {}
    env = read_bundle_env(environ)
    env.password = read_password(environ)
    args, server_mode = normalise_command(command)
    config = read_server_config(final_server_args(args, env), cwd)
    return make_plan(
        args, server_mode, env, DISCOVERED, FACTS, config, identity=identity, runtime=runtime, own_address=own_address
    )


def pairs(argv, flag):
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


# ------------------------------------------------------------- variables


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"VALKEY_CLUSTER_NODES": "a:1 b:x c"}, r"^VALKEY_CLUSTER_NODES: 'b:x': the port must be"),
        ({"VALKEY_CLUSTER_NODES": "a:70000,b,c"}, r"VALKEY_CLUSTER_NODES: 'a:70000'"),
        ({"VALKEY_CLUSTER_NODES": "a b a:6379"}, r"VALKEY_CLUSTER_NODES: a:6379 is listed twice"),
        ({"VALKEY_CLUSTER_NODES": "a_b:1 c d"}, r"VALKEY_CLUSTER_NODES: 'a_b:1': 'a_b' is neither"),
        ({"VALKEY_CLUSTER_NODES": "[::1:7000 b c"}, r"VALKEY_CLUSTER_NODES: '\[::1:7000'"),
        ({"VALKEY_CLUSTER_NODES": "fd00::1:x:7000 b c"}, r"write an IPv6 address as \[addr\]:port"),
        ({"VALKEY_CLUSTER_REPLICAS": "-1"}, r"^VALKEY_CLUSTER_REPLICAS='-1'"),
        ({"VALKEY_CLUSTER_REPLICAS": "one"}, r"^VALKEY_CLUSTER_REPLICAS='one'"),
        ({"VALKEY_CLUSTER_BOOTSTRAP": "maybe"}, r"^VALKEY_CLUSTER_BOOTSTRAP='maybe': expected auto, yes or no"),
        ({"VALKEY_CLUSTER_BOOTSTRAP_TIMEOUT": "0"}, r"^VALKEY_CLUSTER_BOOTSTRAP_TIMEOUT='0'"),
        ({"VALKEY_CLUSTER_ANNOUNCE_IP": "db-0.svc"}, r"^VALKEY_CLUSTER_ANNOUNCE_IP='db-0.svc': not an IPv4 or IPv6"),
        ({"VALKEY_CLUSTER_ANNOUNCE_IP": "10.0.0.256"}, r"^VALKEY_CLUSTER_ANNOUNCE_IP="),
        ({"VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db 0"}, r"^VALKEY_CLUSTER_ANNOUNCE_HOSTNAME='db 0'"),
        ({"VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db_0.svc"}, r"^VALKEY_CLUSTER_ANNOUNCE_HOSTNAME="),
        ({"VALKEY_CLUSTER_NODES": "a\x01b c d"}, r"^VALKEY_CLUSTER_NODES: control character 0x01"),
    ],
)
def test_bad_cluster_variables(variables, message):
    with pytest.raises(UsageError, match=message):
        plan_for(CLUSTER, variables)


def test_node_list_forms():
    plan = plan_for(
        CLUSTER,
        {
            "VALKEY_CLUSTER_NODES": " DB-0.svc.local.:7000, 10.0.0.2 [fd00::3]:7001\n[fd00::4] fd00::5 db-5",
            "POD_IP": "",
        },
    )
    assert plan.cluster.nodes == [
        ("db-0.svc.local", 7000),
        ("10.0.0.2", 6379),
        ("fd00::3", 7001),
        ("fd00::4", 6379),
        ("fd00::5", 6379),
        ("db-5", 6379),
    ]
    assert plan.cluster.as_dict()["nodes"][2] == "[fd00::3]:7001"


@pytest.mark.parametrize(
    "count, replicas, ok",
    [
        (3, None, True),
        (2, None, False),
        (4, "0", True),
        (6, "1", True),
        (4, "1", False),
        (7, "1", False),
        (9, "2", True),
    ],
)
def test_member_count_must_fit_the_replicas(count, replicas, ok):
    environ = {"VALKEY_CLUSTER_NODES": " ".join(f"db-{i}" for i in range(count))}
    if replicas is not None:
        environ["VALKEY_CLUSTER_REPLICAS"] = replicas
    if ok:
        assert plan_for(CLUSTER, environ).cluster.replicas == int(replicas or 0)
    else:
        with pytest.raises(UsageError, match=rf"^VALKEY_CLUSTER_NODES lists {count} members; with VALKEY_CLUSTER_REP"):
            plan_for(CLUSTER, environ)


def test_count_is_not_checked_when_bootstrap_is_off():
    plan = plan_for(CLUSTER, {"VALKEY_CLUSTER_NODES": "db-0 db-1", "VALKEY_CLUSTER_BOOTSTRAP": "no"})
    assert plan.cluster.creator is False and plan.cluster.refresh_peers


# ------------------------------------------------------------- cluster mode off


def test_node_list_without_cluster_mode_is_an_error():
    with pytest.raises(UsageError, match=r"^VALKEY_CLUSTER_NODES is set but cluster mode is off"):
        plan_for([], {"VALKEY_CLUSTER_NODES": THREE})


def test_other_cluster_variables_without_cluster_mode_warn_and_do_nothing():
    plan = plan_for(
        ["--cluster-enabled", "no"],
        {
            "VALKEY_CLUSTER_ANNOUNCE_IP": "10.0.0.5",
            "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db-0.svc.local",
            "VALKEY_CLUSTER_REPLICAS": "1",
            "VALKEY_CLUSTER_BOOTSTRAP": "yes",
        },
    )
    assert plan.cluster is None
    assert not any(a.startswith("--cluster-announce") for a in plan.argv)
    ignored = sorted(w.split(" ")[0] for w in plan.warnings if "cluster mode is off" in w)
    assert ignored == [
        "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME",
        "VALKEY_CLUSTER_ANNOUNCE_IP",
        "VALKEY_CLUSTER_BOOTSTRAP",
        "VALKEY_CLUSTER_REPLICAS",
    ]


def test_pod_ip_alone_outside_cluster_mode_is_silent():
    plan = plan_for([], {"POD_IP": "10.0.0.5"})
    others = [w for w in plan.warnings if "without a password" not in w and "no password" not in w]
    assert plan.cluster is None and others == [] and "--cluster-announce-ip" not in plan.argv


# ------------------------------------------------------------- generated args and precedence


def test_announce_args_sit_with_the_generated_args(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("cluster-enabled yes\n")
    plan = plan_for(
        [str(conf), "--port", "7000"],
        {
            "VALKEY_MODULES": "search",
            "VALKEY_CLUSTER_ANNOUNCE_IP": "10.0.0.5",
            "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db-0.db-headless.ns.svc.cluster.local",
            "VALKEY_EXTRA_FLAGS": "--maxmemory 1gb",
        },
    )
    assert plan.argv == [
        "valkey-server",
        str(conf),
        "--loadmodule /usr/lib/valkey/libsearch.so --use-coordinator",
        "--cluster-announce-ip",
        "10.0.0.5",
        "--cluster-announce-hostname",
        "db-0.db-headless.ns.svc.cluster.local",
        "--cluster-announce-human-nodename",
        "db-0",
        "--protected-mode no",
        "--port",
        "7000",
        "--maxmemory",
        "1gb",
    ]
    assert len(plan.warnings) == 1 and plan.warnings[0].startswith("no password")  # nothing else to say


def test_pod_ip_is_the_fallback_announce_ip():
    plan = plan_for(CLUSTER, {"POD_IP": "10.1.2.3"})
    assert pairs(plan.argv, "--cluster-announce-ip") == ["10.1.2.3"]
    plan = plan_for(CLUSTER, {"POD_IP": "10.1.2.3", "VALKEY_CLUSTER_ANNOUNCE_IP": "10.9.9.9"})
    assert pairs(plan.argv, "--cluster-announce-ip") == ["10.9.9.9"]
    with pytest.raises(UsageError, match=r"^POD_IP='pending': not an IPv4 or IPv6 address"):
        plan_for(CLUSTER, {"POD_IP": "pending"})


HOSTS = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
127.0.1.1\tbox.example box
172.18.0.5\t323ac1b1b606  # the container
fd00::5\tv6only
"""


def test_this_containers_address_comes_from_etc_hosts():
    assert hosts_address(HOSTS, "323ac1b1b606") == "172.18.0.5"
    assert hosts_address(HOSTS, "323AC1B1B606.") == "172.18.0.5"
    assert hosts_address(HOSTS, "v6only") == "fd00::5"
    assert hosts_address(HOSTS, "box") is None  # loopback: peers cannot reach that
    assert hosts_address(HOSTS, "localhost") is None and hosts_address(HOSTS, "other") is None


README_MEMBER = {
    "VALKEY_CLUSTER_NODES": "valkey-0.valkey:6379,valkey-1.valkey:6379,valkey-2.valkey:6379",
    "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "valkey-1.valkey",
}


def test_without_an_announce_ip_this_containers_address_is_announced():
    """The README's Docker cluster sets no announce IP (and Docker no POD_IP): the server would
    learn its address only from a peer's MEET, and after a restart on a new IP keep telling
    clients and peers its old one."""
    plan = plan_for([*CLUSTER, "--appendonly", "yes"], README_MEMBER, own_address="172.18.0.5")
    assert pairs(plan.argv, "--cluster-announce-ip") == ["172.18.0.5"]
    assert plan.cluster.identity.announce_ip == "172.18.0.5"
    assert not [w for w in plan.warnings if "announce" in w]
    # A lone cluster node too.
    assert pairs(plan_for(CLUSTER, own_address="172.18.0.5").argv, "--cluster-announce-ip") == ["172.18.0.5"]


@pytest.mark.parametrize(
    "command, environ, announced",
    [
        (CLUSTER, {"VALKEY_CLUSTER_ANNOUNCE_IP": "10.0.0.9"}, ["10.0.0.9"]),  # given: it wins
        (CLUSTER, {"POD_IP": "10.0.0.8"}, ["10.0.0.8"]),
        ([*CLUSTER, "--cluster-announce-ip", "10.0.0.7"], {}, ["10.0.0.7"]),  # the user's own
        ([*CLUSTER, "--bind", "10.0.0.6"], {}, []),  # not listening where that address leads
        ([], {}, []),  # not in cluster mode
    ],
)
def test_a_given_announce_ip_or_a_specific_bind_is_left_alone(command, environ, announced):
    plan = plan_for(command, environ, own_address="172.18.0.5")
    assert pairs(plan.argv, "--cluster-announce-ip") == announced


def test_an_announce_ip_in_the_config_file_that_is_not_this_containers_is_warned_about(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("cluster-enabled yes\ncluster-announce-ip 172.18.0.2\n")
    plan = plan_for([str(conf)], own_address="172.18.0.5")
    assert pairs(plan.argv, "--cluster-announce-ip") == []  # the config wins
    assert f"{conf}:2: cluster-announce-ip 172.18.0.2 is not this container's address (172.18.0.5): " in " ".join(
        plan.warnings
    )
    conf.write_text("cluster-enabled yes\ncluster-announce-ip 172.18.0.5\n")
    assert not [w for w in plan_for([str(conf)], own_address="172.18.0.5").warnings if "announce" in w]


def test_a_lone_cluster_node_says_how_a_cluster_is_formed(tmp_path):
    plan = plan_for(CLUSTER, cwd=str(tmp_path))
    assert plan.lone_cluster == f"{tmp_path}/nodes.conf"
    assert lone_cluster_line(plan.lone_cluster).startswith(
        f"cluster mode without VALKEY_CLUSTER_NODES, and {tmp_path}/nodes.conf lists no other node: this node stays "
        "cluster_state:fail until it is made part of a cluster"
    )
    assert plan_for(CLUSTER, {"VALKEY_CLUSTER_NODES": THREE}).lone_cluster is None
    assert plan_for([]).lone_cluster is None
    assert plan_for([*CLUSTER, "--cluster-config-file", "c/n.conf"], cwd="/d").lone_cluster == "/d/c/n.conf"


def test_env_overrides_the_config_file_with_a_warning(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("cluster-enabled yes\ncluster-announce-ip 10.0.0.1\ncluster-announce-hostname db-0.svc\n")
    plan = plan_for(
        [str(conf)], {"VALKEY_CLUSTER_ANNOUNCE_IP": "10.0.0.5", "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db-0.svc"}
    )
    assert pairs(plan.argv, "--cluster-announce-ip") == ["10.0.0.5"]
    assert f"VALKEY_CLUSTER_ANNOUNCE_IP overrides `cluster-announce-ip 10.0.0.1` from {conf}:2" in plan.warnings
    # The same value in the file is no conflict.
    assert not any("cluster-announce-hostname" in w for w in plan.warnings)
    assert plan.cluster.identity.announce_ip == "10.0.0.5"


def test_the_command_line_overrides_env_with_a_warning():
    plan = plan_for(
        [*CLUSTER, "--cluster-announce-ip", "10.0.0.7"],
        {"VALKEY_CLUSTER_ANNOUNCE_IP": "10.0.0.5", "VALKEY_EXTRA_FLAGS": "--cluster-announce-human-nodename mine"},
    )
    assert pairs(plan.argv, "--cluster-announce-ip") == ["10.0.0.7"]  # only the user's
    assert any(w.startswith("VALKEY_CLUSTER_ANNOUNCE_IP ignored: cluster-announce-ip is set by") for w in plan.warnings)
    assert plan.cluster.identity.announce_ip == "10.0.0.7"


def test_coordinator_and_cluster_args_together():
    plan = plan_for(CLUSTER, {"VALKEY_CLUSTER_NODES": THREE, "VALKEY_MODULES": "search"})
    assert plan.coordinator and "--use-coordinator" in plan.argv[1]


# ------------------------------------------------------------- who creates the cluster


def me(port=6379, ip=None, hostname=None, binds=None):
    return Identity(port, ip, hostname, binds)


@pytest.mark.parametrize(
    "node, identity, verdict",
    [
        (("db-0.svc.local", 6379), me(hostname="db-0.svc.local"), True),
        (("db-0.svc.local", 6379), me(hostname="DB-0.svc.local."), True),
        (("db-0", 6379), me(hostname="db-0.svc.local"), True),  # short name, DNS search list
        (("db-0.svc", 6379), me(hostname="db-0.svc.local"), True),
        (("db-0.svc.local", 7000), me(hostname="db-0.svc.local"), False),  # another port
        (("db-1.svc.local", 6379), me(hostname="db-0.svc.local"), False),
        (("db-1", 6379), me(hostname="db-10.svc.local"), False),
        (("10.0.0.5", 6379), me(ip="10.0.0.5"), True),
        (("10.0.0.6", 6379), me(ip="10.0.0.5"), False),
        (("10.0.0.6", 6379), me(hostname="db-0.svc", ip="10.0.0.5"), False),
        (("fd00::5", 6379), me(ip="fd00:0::5"), None),  # spelled differently: checked at start
        (("10.0.0.5", 6379), me(binds=["10.0.0.5"]), True),
        (("10.0.0.6", 6379), me(binds=["10.0.0.5"]), False),
        (("10.0.0.5", 6379), me(), None),  # bound to a wildcard: is it one of ours?
        (("db-0", 6379), me(ip="10.0.0.5"), None),  # a name: resolve it at start
    ],
)
def test_match_self(node, identity, verdict):
    assert match_self(node, identity) is verdict


def test_decide_creator():
    nodes = [("db-0", 6379), ("db-1", 6379), ("db-2", 6379)]
    assert decide_creator("auto", nodes, me(hostname="db-0.svc.local"))[0] is True
    assert decide_creator("auto", nodes, me(hostname="db-1.svc.local")) == (
        False,
        "it is db-1:6379; the first member, db-0:6379, creates it",
    )
    assert decide_creator("auto", nodes, me(hostname="other.svc.local"))[0] is False
    assert decide_creator("auto", nodes, me(ip="10.0.0.5"))[0] is None
    assert decide_creator("yes", nodes, me(hostname="db-2.svc.local"))[0] is True


def test_bootstrap_decision_in_the_plan():
    env = {"VALKEY_CLUSTER_NODES": THREE, "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db-0.svc.local"}
    assert plan_for(CLUSTER, env).cluster.creator is True
    env["VALKEY_CLUSTER_ANNOUNCE_HOSTNAME"] = "db-2.svc.local"
    assert plan_for(CLUSTER, env).cluster.creator is False
    assert plan_for(CLUSTER, dict(env, VALKEY_CLUSTER_BOOTSTRAP="yes")).cluster.creator is True
    env["VALKEY_CLUSTER_ANNOUNCE_HOSTNAME"] = "db-0.svc.local"
    assert plan_for(CLUSTER, dict(env, VALKEY_CLUSTER_BOOTSTRAP="no")).cluster.creator is False
    ips = {"VALKEY_CLUSTER_NODES": "10.0.0.5 10.0.0.6 10.0.0.7"}
    assert plan_for([*CLUSTER, "--bind", "10.0.0.6"], ips).cluster.creator is False
    assert plan_for([*CLUSTER, "--bind", "10.0.0.5", "-::1"], ips).cluster.creator is True
    assert plan_for(CLUSTER, ips).cluster.creator is None  # bind *: the helper looks at the interfaces
    assert plan_for([*CLUSTER, "--port", "7000"], ips).cluster.creator is False  # every member is on 6379


def test_bootstrap_needs_the_node_list():
    with pytest.raises(UsageError, match=r"^VALKEY_CLUSTER_BOOTSTRAP=yes needs VALKEY_CLUSTER_NODES"):
        plan_for(CLUSTER, {"VALKEY_CLUSTER_BOOTSTRAP": "yes"})
    plan = plan_for(CLUSTER, {"VALKEY_CLUSTER_REPLICAS": "1", "VALKEY_CLUSTER_ANNOUNCE_IP": "10.0.0.5"})
    assert plan.cluster.creator is False and not plan.cluster.refresh_peers
    assert any(w.startswith("VALKEY_CLUSTER_REPLICAS ignored") for w in plan.warnings)


def test_bootstrap_needs_a_client_port():
    with pytest.raises(UsageError, match=r"^VALKEY_CLUSTER_BOOTSTRAP: creating the cluster needs a client port"):
        plan_for([*CLUSTER, "--port", "0"], {"VALKEY_CLUSTER_NODES": THREE})


def test_bootstrap_over_tls_talks_to_the_tls_port():
    tls = ["--tls-cert-file", "/c.crt", "--tls-key-file", "/c.key", "--tls-ca-cert-file", "/ca.crt"]
    plan = plan_for([*CLUSTER, "--port", "0", "--tls-port", "6380", *tls], {"VALKEY_CLUSTER_NODES": THREE})
    assert plan.cluster.port == 6380 and plan.cluster.identity.port == 6380
    assert plan.tls.cluster.value is True and plan.tls.replication.value is True  # the image's default in a cluster
    assert pairs(plan.argv, "--tls-cluster") == ["yes"] and pairs(plan.argv, "--tls-replication") == ["yes"]
    announced = plan_for(
        [*CLUSTER, "--port", "0", "--tls-port", "6380", "--cluster-announce-tls-port", "7380", *tls],
        {"VALKEY_CLUSTER_NODES": THREE},
    )
    assert announced.cluster.identity.port == 7380


def test_where_the_helper_finds_this_server_and_nodes_conf(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text(f"cluster-enabled yes\ndir {tmp_path}/data\ncluster-config-file state/nodes-7000.conf\n")
    plan = plan_for([str(conf), "--port", "7000", "--bind", "-127.0.0.3", "::1"], {"VALKEY_CLUSTER_NODES": THREE})
    assert (plan.cluster.local_host, plan.cluster.port) == ("127.0.0.3", 7000)
    assert plan.cluster.nodes_conf == f"{tmp_path}/data/state/nodes-7000.conf"
    wildcard = plan_for([*CLUSTER, "--bind", "*", "-::*"], {"VALKEY_CLUSTER_NODES": THREE})
    assert wildcard.cluster.local_host == "127.0.0.1"


# ------------------------------------------------------------- passwords


def test_password_goes_through_an_include_never_argv(tmp_path):
    plan = plan_for(CLUSTER, {"VALKEY_PASSWORD": "s3cret word", "VALKEY_CLUSTER_NODES": THREE})
    assert pairs(plan.argv, "--include") == ["/tmp/valkey-bundle-999/generated-4242.conf"]
    shown = json.dumps(plan.as_dict())
    assert "s3cret" not in shown and "s3cret" not in repr(plan.password.password)
    assert plan.as_dict()["password"] == {
        "from": "VALKEY_PASSWORD",
        "include": "/tmp/valkey-bundle-999/generated-4242.conf",
    }
    assert not any("without a password" in w for w in plan.warnings)


def test_password_include_is_for_the_uid_the_server_runs_as():
    plan = plan_for([], {"VALKEY_PASSWORD": "x"}, identity=(0, (999, 1000)))
    assert plan.password.include == "/tmp/valkey-bundle-999/generated-4242.conf"
    plan = plan_for([], {"VALKEY_PASSWORD": "x"}, identity=(0, None))
    assert plan.password.include == "/tmp/valkey-bundle-0/generated-4242.conf"


def test_password_runtime_directory_falls_back_clearly():
    runtime = Runtime(7, 999, [("/run/x", False), ("/tmp", False), ("/dev/shm", True)])
    plan = plan_for([], {"VALKEY_PASSWORD": "x"}, runtime=runtime)
    assert plan.password.include == "/dev/shm/valkey-bundle-999/generated-7.conf"
    assert "/run/x and /tmp not writable: the password include goes to /dev/shm" in plan.warnings
    with pytest.raises(UsageError, match=r"^VALKEY_PASSWORD: no writable directory .*tried /tmp, /dev/shm"):
        plan_for([], {"VALKEY_PASSWORD": "x"}, runtime=Runtime(7, 999, [("/tmp", False), ("/dev/shm", False)]))


def test_password_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_bytes(b"from file\n")
    assert read_password({"VALKEY_PASSWORD_FILE": str(secret)}).value == "from file"
    assert read_password({"VALKEY_PASSWORD": "x\n"}).value == "x"
    assert read_password({"VALKEY_PASSWORD": ""}) is None
    assert read_password({}) is None


@pytest.mark.parametrize(
    "environ, content, message",
    [
        ({"VALKEY_PASSWORD": "a", "VALKEY_PASSWORD_FILE": "{file}"}, b"b", "are both set"),
        ({"VALKEY_PASSWORD_FILE": "{file}"}, b"\n", "is empty"),
        ({"VALKEY_PASSWORD_FILE": "{file}.missing"}, b"", "cannot read"),
        ({"VALKEY_PASSWORD_FILE": "{file}"}, b"top\nsecret\n", "control character 0x0a at position 3"),
        ({"VALKEY_PASSWORD": "top\tsecret"}, b"", "VALKEY_PASSWORD: control character 0x09 at position 3"),
    ],
)
def test_bad_passwords_are_one_line_without_the_secret(tmp_path, environ, content, message):
    secret = tmp_path / "password"
    secret.write_bytes(content)
    env = base_env(VALKEY_BUNDLE_DRY_RUN="1", VALKEY_MODULES_DIR=str(tmp_path / "none"))
    env.update({k: v.replace("{file}", str(secret)) for k, v in environ.items()})
    result = run_entrypoint([], env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "secret" not in result.stderr.replace("VALKEY_PASSWORD", "")


def test_password_is_not_needed_for_other_commands(tmp_path):
    env = base_env(VALKEY_PASSWORD_FILE=str(tmp_path / "missing"))
    assert run_entrypoint(["sh", "-c", "echo ran"], env=env, cwd=tmp_path).stdout == "ran\n"


def test_password_vs_requirepass_in_config_and_command_line(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("requirepass old\nmasterauth pw\n")
    plan = plan_for([str(conf), "--primaryauth", "mine"], {"VALKEY_PASSWORD": "pw"})
    assert f"VALKEY_PASSWORD overrides requirepass from {conf}:1" in plan.warnings
    assert not any("masterauth" in w for w in plan.warnings)  # same value: no conflict
    assert "VALKEY_PASSWORD: primaryauth set by the command line (the command line) wins over it" in plan.warnings
    assert not any("pw" in w.replace("VALKEY_PASSWORD", "") for w in plan.warnings)


def test_dry_run_and_debug_never_show_the_password(tmp_path):
    env = base_env(
        VALKEY_BUNDLE_DRY_RUN="1",
        VALKEY_BUNDLE_DEBUG="1",
        VALKEY_MODULES_DIR=str(tmp_path / "none"),
        VALKEY_PASSWORD="Tr0ub4dor&3",
        VALKEY_CLUSTER_NODES="127.0.0.2:7000,127.0.0.3:7000,127.0.0.4:7000",
        VALKEY_CLUSTER_ANNOUNCE_IP="127.0.0.2",
    )
    result = run_entrypoint(["--cluster-enabled", "yes", "--port", "7000"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Tr0ub4dor" not in result.stdout + result.stderr
    plan = json.loads(result.stdout)
    assert plan["cluster"]["creator"] is True and plan["password"]["from"] == "VALKEY_PASSWORD"
    assert "--include" in plan["argv"]
    assert not list((tmp_path).glob("**/generated-*.conf"))  # dry run writes nothing


@pytest.mark.parametrize(
    "command, warned",
    [
        (["--protected-mode", "no"], "protected-mode is off"),
        ([], "protected-mode is off"),  # off by default, as in the official image
        (CLUSTER, "protected-mode is off"),
        ([*CLUSTER, "--protected-mode", "yes"], "cluster mode without a password"),
        ([*CLUSTER, "--bind", "127.0.0.1", "-::1"], None),
        (["--protected-mode", "no", "--requirepass", "x"], None),
        (["--protected-mode", "yes"], None),
    ],
)
def test_warning_when_reachable_without_a_password(command, warned):
    found = [w for w in plan_for(command).warnings if "password" in w]
    assert (found[0] if found else None) is None if warned is None else warned in found[0]


def test_bootstrap_warns_when_it_cannot_know_the_password(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("cluster-enabled yes\nrequirepass fromfile\n")
    env = {"VALKEY_CLUSTER_NODES": THREE, "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db-0.svc.local"}
    assert any("the bootstrap cannot authenticate" in w for w in plan_for([str(conf)], env).warnings)
    with_password = plan_for([str(conf)], dict(env, VALKEY_PASSWORD="fromfile"))
    assert not any("cannot authenticate" in w for w in with_password.warnings)
    not_creator = plan_for([str(conf)], dict(env, VALKEY_CLUSTER_ANNOUNCE_HOSTNAME="db-1.svc.local"))
    assert not any("cannot authenticate" in w for w in not_creator.warnings)
