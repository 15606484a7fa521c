"""TLS: the variables, what the plan makes of them beside the config, the certificate checks
of the start (with certificates made here), and how the image's clients learn what the
entrypoint decided.  No server: tests/native/test_tls_server.py and tests/container/ run them."""

import json
import os

import pytest
from conftest import base_env, run_entrypoint
from support import certs

from valkey_bundle.command import normalise_command
from valkey_bundle.errors import UsageError
from valkey_bundle.local_server import entrypoint_command, local_server
from valkey_bundle.module_files import ModuleFacts, parse_env_file
from valkey_bundle.plan import final_server_args, make_plan
from valkey_bundle.server_config import read_server_config
from valkey_bundle.settings import read_bundle_env
from valkey_bundle.tls_files import CertificateProblem, cert_time, check_server_files
from valkey_bundle.tls_plan import Setting

DISCOVERED = {"SEARCH": "/usr/lib/valkey/libsearch.so"}
FACTS = {
    "SEARCH": ModuleFacts(
        "search",
        parse_env_file(
            "MODULE_FILE=libsearch.so\nMODULE_NAME=search\nMODULE_VALUELESS_FLAGS=--use-coordinator\n"
            "MODULE_COORDINATOR_FLAG=--use-coordinator\nMODULE_COORDINATOR_PORT_OFFSET=20294\nVERSION=1.2.1\n"
        ),
    )
}
TLS_ENV = {
    "VALKEY_TLS_CERT_FILE": "/certs/tls.crt",
    "VALKEY_TLS_KEY_FILE": "/certs/tls.key",
    "VALKEY_TLS_CA_CERT_FILE": "/certs/ca.crt",
}
CLUSTER = ["--cluster-enabled", "yes"]


def plan_for(command, environ=None, cwd="/"):
    env = read_bundle_env(environ or {})
    args, server_mode = normalise_command(["valkey-server", *command])
    config = read_server_config(final_server_args(args, env), cwd)
    return make_plan(args, server_mode, env, DISCOVERED, FACTS, config)


def pairs(argv, flag):
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def generated(plan):
    """The TLS settings in the server's arguments: {flag: [values]}."""
    flags = ("--port", "--tls-port", "--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file", "--tls-cluster")
    flags += ("--tls-replication", "--tls-auth-clients")
    return {flag: pairs(plan.argv, flag) for flag in flags if pairs(plan.argv, flag)}


# ------------------------------------------------------------------ the variables


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"VALKEY_TLS_PORT": "tls"}, r"^VALKEY_TLS_PORT='tls': expected a port number"),
        ({"VALKEY_TLS_PORT": "70000"}, r"^VALKEY_TLS_PORT='70000'"),
        ({"VALKEY_TLS_PLAINTEXT": "sometimes"}, r"^VALKEY_TLS_PLAINTEXT='sometimes': expected yes or no"),
        ({"VALKEY_TLS_CLUSTER": "maybe"}, r"^VALKEY_TLS_CLUSTER='maybe'"),
        ({"VALKEY_TLS_AUTH_CLIENTS": "required"}, r"^VALKEY_TLS_AUTH_CLIENTS='required': expected yes, no or optional"),
        ({"VALKEY_TLS_CERT_FILE": "/a\n/b"}, r"^VALKEY_TLS_CERT_FILE: control character 0x0a"),
    ],
)
def test_bad_values_are_one_line_naming_the_variable(variables, message):
    with pytest.raises(UsageError, match=message):
        read_bundle_env(variables)


def test_no_variable_no_tls():
    plan = plan_for([])
    assert plan.tls.on is False and plan.as_dict()["tls"] is None
    assert generated(plan) == {}


# ------------------------------------------------------------------ the plan


def test_the_variables_turn_tls_on_with_nothing_in_clear():
    plan = plan_for([], TLS_ENV)
    assert generated(plan) == {
        "--tls-port": ["6379"],
        "--port": ["0"],
        "--tls-cert-file": ["/certs/tls.crt"],
        "--tls-key-file": ["/certs/tls.key"],
        "--tls-ca-cert-file": ["/certs/ca.crt"],
    }
    shown = plan.as_dict()["tls"]
    assert (shown["port"], shown["tls_port"], shown["auth_clients"], shown["cluster"]) == (0, 6379, "yes", False)
    assert shown["files"]["tls-key-file"] == {"path": "/certs/tls.key", "from": "VALKEY_TLS_KEY_FILE"}
    assert plan.tls.client_port() == 6379
    client = plan.tls.client()
    assert client.as_dict() == {
        "ca_file": "/certs/ca.crt",
        "ca_dir": None,
        "cert": "/certs/tls.crt",  # presented: tls-auth-clients yes is the server's default
        "key": "/certs/tls.key",
        "server_name": None,  # no announced name: the chain is checked, not the name
    }


def test_cluster_mode_turns_on_tls_for_the_bus_and_replication():
    plan = plan_for(CLUSTER, {**TLS_ENV, "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db-0.db.svc"})
    assert generated(plan)["--tls-cluster"] == ["yes"] and generated(plan)["--tls-replication"] == ["yes"]
    assert plan.tls.server_name == "db-0.db.svc"  # the health check verifies the name the member announces
    off = plan_for(CLUSTER, {**TLS_ENV, "VALKEY_TLS_REPLICATION": "no", "VALKEY_TLS_PLAINTEXT": "yes", **PORT_6380})
    assert generated(off)["--tls-replication"] == ["no"]
    assert "--port" not in generated(off)  # plaintext kept: 6379 in clear, TLS on 6380


PORT_6380 = {"VALKEY_TLS_PORT": "6380"}


def test_a_replica_outside_cluster_mode_replicates_over_tls():
    plan = plan_for(["--replicaof", "primary", "6379"], TLS_ENV)
    assert generated(plan)["--tls-replication"] == ["yes"] and "--tls-cluster" not in generated(plan)


def test_plaintext_kept_needs_another_tls_port():
    with pytest.raises(UsageError, match=r"the TLS port 6379 \(.*\) is also the plaintext port \(port 6379, the s"):
        plan_for([], {**TLS_ENV, "VALKEY_TLS_PLAINTEXT": "yes"})
    plan = plan_for([], {**TLS_ENV, "VALKEY_TLS_PLAINTEXT": "yes", **PORT_6380})
    assert (plan.tls.port, plan.tls.tls_port.value, plan.tls.client_port()) == (6379, 6380, 6380)


def test_the_config_files_port_becomes_the_tls_port(tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text("port 7000\n")
    plan = plan_for([str(conf)], TLS_ENV)
    assert generated(plan)["--tls-port"] == ["7000"] and generated(plan)["--port"] == ["0"]
    assert not [w for w in plan.warnings if "TLS" in w]
    conf.write_text("port 7000\ntls-port 7001\n")
    plan = plan_for([str(conf)], TLS_ENV)
    (warning,) = [w for w in plan.warnings if "VALKEY_TLS_PLAINTEXT" in w]
    assert warning.startswith(f"VALKEY_TLS_PLAINTEXT=no closes port 7000 set by {conf}:1: nothing listens in clear")


def test_the_command_lines_port_wins_and_then_cannot_be_the_tls_port():
    message = r"^VALKEY_TLS_PORT: the TLS port 6379 \(the client port \(port 6379 from the command line\)\) is also"
    with pytest.raises(UsageError, match=message):
        plan_for(["--port", "6379"], TLS_ENV)


def test_settings_in_the_config_win_over_the_variables(tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text(
        "tls-port 7443\ntls-cert-file /etc/tls/a.crt\ntls-auth-clients optional\ntls-ca-cert-file /etc/tls/ca.crt\n"
    )
    environ = {**TLS_ENV, "VALKEY_TLS_PORT": "6380", "VALKEY_TLS_AUTH_CLIENTS": "no"}
    plan = plan_for([str(conf), "--tls-cluster", "no"], environ)
    assert plan.tls.tls_port.value == 7443 and plan.tls.files["tls-cert-file"].value == "/etc/tls/a.crt"
    assert plan.tls.files["tls-key-file"].origin == "VALKEY_TLS_KEY_FILE"  # the file does not set it
    assert plan.tls.auth_clients.value == "optional"
    warned = sorted(w.split(" ignored")[0] for w in plan.warnings if " ignored: " in w)
    assert warned == ["VALKEY_TLS_AUTH_CLIENTS", "VALKEY_TLS_CA_CERT_FILE", "VALKEY_TLS_CERT_FILE", "VALKEY_TLS_PORT"]
    assert f"VALKEY_TLS_PORT ignored: tls-port 7443 is set by {conf}:1, which wins" in plan.warnings
    # Generated: the key (the config has none) and port 0; --tls-cluster no is the command's own.
    assert generated(plan) == {"--port": ["0"], "--tls-key-file": ["/certs/tls.key"], "--tls-cluster": ["no"]}


@pytest.mark.parametrize(
    "command, environ, message",
    [
        ([], {"VALKEY_TLS_CERT_FILE": "/c.crt"}, r"^VALKEY_TLS_CERT_FILE is set without VALKEY_TLS_KEY_FILE"),
        ([], {"VALKEY_TLS_KEY_FILE": "/c.key"}, r"^VALKEY_TLS_KEY_FILE is set without VALKEY_TLS_CERT_FILE"),
        ([], {"VALKEY_TLS_PORT": "6380"}, r"^VALKEY_TLS_PORT: TLS is on \(port 6380\) without a certificate"),
        (["--tls-port", "6380"], {}, r"^the command line: tls-port: TLS is on \(port 6380\) without a certificate"),
        (
            [],
            {"VALKEY_TLS_CERT_FILE": "/c.crt", "VALKEY_TLS_KEY_FILE": "/c.key"},
            r"^VALKEY_TLS_CA_CERT_FILE is not set: tls-auth-clients yes \(the server's default\) verify certificates "
            r"against a CA.*\(or VALKEY_TLS_AUTH_CLIENTS=no if clients present none\)$",
        ),
        (
            CLUSTER,
            {"VALKEY_TLS_CERT_FILE": "/c.crt", "VALKEY_TLS_KEY_FILE": "/c.key", "VALKEY_TLS_AUTH_CLIENTS": "no"},
            r"^VALKEY_TLS_CA_CERT_FILE is not set: tls-cluster yes \(the image's default with TLS and cluster mode\)",
        ),
        (CLUSTER, {**TLS_ENV, "VALKEY_TLS_CLUSTER": "no"}, r"^VALKEY_TLS_CLUSTER: tls-cluster no while nothing"),
        (
            ["--replicaof", "p", "6379", "--tls-replication", "no"],
            TLS_ENV,
            r"^the command line: tls-replication: tls-replication no while nothing listens in clear",
        ),
    ],
)
def test_what_the_server_would_refuse_or_never_form_is_one_line(command, environ, message):
    with pytest.raises(UsageError, match=message):
        plan_for(command, environ)


def test_without_client_certificates_no_ca_is_needed():
    environ = {"VALKEY_TLS_CERT_FILE": "/c.crt", "VALKEY_TLS_KEY_FILE": "/c.key", "VALKEY_TLS_AUTH_CLIENTS": "no"}
    plan = plan_for([], environ)
    assert generated(plan)["--tls-auth-clients"] == ["no"]
    client = plan.tls.client()
    assert client.as_dict()["cert"] is None  # the server asks for none: the image's clients present none
    assert client.ca_text() == "the system's trusted CAs (no CA is set)"


def test_client_certificates_stand_in_for_a_password_only_with_nothing_in_clear():
    def open_warning(environ):
        return [w for w in plan_for([], environ).warnings if w.startswith("no password")]

    assert open_warning(TLS_ENV) == []  # TLS only, certificates demanded: only their holders get in
    assert open_warning({**TLS_ENV, "VALKEY_TLS_AUTH_CLIENTS": "optional"})
    assert open_warning({**TLS_ENV, "VALKEY_TLS_PLAINTEXT": "yes", "VALKEY_TLS_PORT": "6380"})
    assert open_warning({})


def test_variables_without_tls_are_ignored_with_a_warning():
    plan = plan_for([], {"VALKEY_TLS_CA_CERT_FILE": "/ca.crt", "VALKEY_TLS_CLUSTER": "yes"})
    assert plan.tls.on is False and generated(plan) == {}
    assert "VALKEY_TLS_CA_CERT_FILE, VALKEY_TLS_CLUSTER ignored: TLS is off" in plan.warnings[0]


def test_the_docker_library_command_line_is_tls_without_any_variable():
    plan = plan_for(
        ["--tls-port", "6379", "--port", "0", "--tls-cert-file", "/certs/cert.crt"]
        + ["--tls-key-file", "/certs/private.key", "--tls-ca-cert-file", "/certs/ca.crt"]
    )
    assert plan.tls.on and plan.tls.client_port() == 6379 and plan.tls.port == 0
    assert generated(plan) == {
        "--tls-port": ["6379"],
        "--port": ["0"],
        "--tls-cert-file": ["/certs/cert.crt"],
        "--tls-key-file": ["/certs/private.key"],
        "--tls-ca-cert-file": ["/certs/ca.crt"],
    }  # the command's own, nothing added
    assert plan.tls.files["tls-cert-file"].label() == "the command line: tls-cert-file"


def test_the_index_guard_and_the_bootstrap_use_the_tls_port():
    environ = {**TLS_ENV, "VALKEY_TLS_PORT": "7000", "VALKEY_CLUSTER_NODES": "a:7000,b:7000,c:7000"}
    plan = plan_for([*CLUSTER, "--appendonly", "yes"], environ)
    assert plan.index_guard["port"] == 7000 and plan.cluster.port == 7000 and plan.cluster.identity.port == 7000


# ------------------------------------------------------------------ certificates


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a second CA, and certificates: good, expired, not yet valid, from the other CA,
    server-only (no clientAuth), for a name other than the member's."""
    directory = tmp_path_factory.mktemp("pki")
    ca, other = certs.CA(), certs.CA("another CA")
    now = certs._now()
    made = {"ca": certs.write_ca(directory, "ca", ca), "other-ca": certs.write_ca(directory, "other-ca", other)}
    for name, pair in {
        "good": ca.issue("db-0", ("db-0.db.svc",)),
        "expired": ca.issue("db-0", ("db-0.db.svc",), **certs.expired_dates()),
        "future": ca.issue("db-0", ("db-0.db.svc",), not_before=now + 10 * certs.DAY),
        "foreign": other.issue("db-0", ("db-0.db.svc",)),
        "server-only": ca.issue("db-0", ("db-0.db.svc",), usages=("server",)),
    }.items():
        made[name], made[f"{name}.key"] = certs.write_pair(directory, name, pair)
    made["wrong.key"] = directory / "wrong.key"
    made["wrong.key"].write_bytes(certs.other_key())
    made["wrong.key"].chmod(0o600)
    return made


def tls_for(pki, cert="good", key=None, ca="ca", command=(), **variables):
    environ = {
        "VALKEY_TLS_CERT_FILE": str(pki[cert]),
        "VALKEY_TLS_KEY_FILE": str(pki[key or f"{cert}.key"]),
        "VALKEY_TLS_CA_CERT_FILE": str(pki[ca]),
        **variables,
    }
    return plan_for(list(command), environ).tls


def problem(tls, run_as=None):
    with pytest.raises(CertificateProblem) as caught:
        check_server_files(tls, run_as)
    return str(caught.value)


def test_good_certificates_pass(pki):
    assert check_server_files(tls_for(pki), None) == []


def test_an_expired_certificate_names_the_variable_and_the_date(pki):
    message = problem(tls_for(pki, "expired"))
    assert message.startswith(f"VALKEY_TLS_CERT_FILE: the certificate {pki['expired']} expired on 20"), message
    assert message.endswith("UTC: clients and peers refuse it; renew it")


def test_a_certificate_not_valid_yet(pki):
    assert "is not valid before" in problem(tls_for(pki, "future"))


def test_a_certificate_from_another_ca(pki):
    message = problem(tls_for(pki, "foreign"))
    assert message == (
        f"VALKEY_TLS_CERT_FILE: the certificate {pki['foreign']} does not verify against the CA of "
        f"VALKEY_TLS_CA_CERT_FILE ({pki['ca']}): unable to get local issuer certificate; members and the image's "
        "own clients check it against that CA"
    )


def test_a_key_that_is_not_the_certificates(pki):
    assert problem(tls_for(pki, key="wrong.key")) == (
        f"VALKEY_TLS_KEY_FILE: the key {pki['wrong.key']} does not belong to the certificate {pki['good']} "
        "(VALKEY_TLS_CERT_FILE): give the key the certificate was issued for"
    )


def test_a_certificate_that_cannot_be_a_client_certificate(pki):
    message = problem(tls_for(pki, "server-only"))
    assert "which this server presents to its peers and itself as a client, is refused by the CA" in message
    assert message.endswith("unsuitable certificate purpose (its extended key usage lacks clientAuth)")
    # Nobody is asked for a client certificate: then it is fine.
    assert check_server_files(tls_for(pki, "server-only", VALKEY_TLS_AUTH_CLIENTS="no"), None) == []


def test_a_certificate_without_the_announced_name(pki):
    tls = tls_for(pki, command=CLUSTER, VALKEY_CLUSTER_ANNOUNCE_HOSTNAME="db-1.db.svc")
    message = problem(tls)
    assert message.startswith(f"VALKEY_TLS_CERT_FILE: the certificate {pki['good']} is not for db-1.db.svc")
    assert message.endswith("its names: db-0.db.svc")
    assert check_server_files(tls_for(pki, command=CLUSTER, VALKEY_CLUSTER_ANNOUNCE_HOSTNAME="db-0.db.svc"), None) == []


def test_a_missing_file(pki, tmp_path):
    tls = tls_for(pki)
    tls.files["tls-ca-cert-file"] = Setting(str(tmp_path / "nope.crt"), "VALKEY_TLS_CA_CERT_FILE", "tls-ca-cert-file")
    assert problem(tls) == f"VALKEY_TLS_CA_CERT_FILE: cannot read {tmp_path / 'nope.crt'}: No such file or directory"


@pytest.mark.skipif(os.geteuid() != 0, reason="checks what another uid can read: needs root")
def test_a_key_the_servers_uid_cannot_read(pki):
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="valkey-bundle-tls-")  # /tmp: any uid may enter it
    try:
        os.chmod(directory, 0o755)
        copies = {name: shutil.copy(pki[name], directory) for name in ("good", "good.key", "ca")}
        message = problem(tls_for(copies), run_as=(999, 999))  # the key is root's, mode 0600
        assert message.startswith(f"VALKEY_TLS_KEY_FILE: {copies['good.key']} is not readable by uid 999, the server")
        assert "(mode 0600, owner 0:0); give it to the server's user (chown 999:999" in message
        os.chmod(directory, 0o700)
        message = problem(tls_for(copies), run_as=(999, 999))
        assert f"it cannot enter {directory} (mode 0700, owner 0:0); chmod o+x {directory}" in message
    finally:
        shutil.rmtree(directory)


def test_a_key_others_can_read_is_a_warning(pki, tmp_path):
    key = tmp_path / "open.key"
    key.write_bytes(pki["good.key"].read_bytes())
    key.chmod(0o644)
    (warning,) = check_server_files(tls_for({**pki, "open.key": key}, key="open.key"), None)
    assert warning.startswith(f"VALKEY_TLS_KEY_FILE: the private key {key} is readable by every user")
    key.chmod(0o400)
    assert check_server_files(tls_for({**pki, "open.key": key}, key="open.key"), None) == []


def test_not_a_certificate(pki, tmp_path):
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate\n")
    assert problem(tls_for({**pki, "junk": junk, "junk.key": pki["good.key"]}, "junk")) == (
        f"VALKEY_TLS_CERT_FILE: {junk} holds no PEM certificate"
    )


def test_certificate_times():
    assert cert_time("Jan  1 00:00:00 1970 GMT") == 0
    assert cert_time("Dec  3 05:24:06 2026 GMT") == 1796275446
    assert cert_time("Feb 29 12:00:00 2024 GMT") == 1709208000


# ------------------------------------------------------------------ the start, as a process


def start(pki, tmp_path, **variables):
    env = base_env(VALKEY_BUNDLE_DRY_RUN="1", VALKEY_MODULES_DIR=str(tmp_path), **variables)
    return run_entrypoint([], env=env, cwd=tmp_path)


def test_a_bad_certificate_stops_the_start_with_one_line(pki, tmp_path):
    result = start(
        pki,
        tmp_path,
        VALKEY_TLS_CERT_FILE=str(pki["expired"]),
        VALKEY_TLS_KEY_FILE=str(pki["expired.key"]),
        VALKEY_TLS_CA_CERT_FILE=str(pki["ca"]),
    )
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len([line for line in lines if "error" in line]) == 1 and "Traceback" not in result.stderr
    assert lines[-1].startswith("bundle-docker-entrypoint: error: VALKEY_TLS_CERT_FILE: the certificate ")


def test_the_key_never_shows_in_the_plan_or_the_debug_output(pki, tmp_path):
    result = start(
        pki,
        tmp_path,
        VALKEY_TLS_CERT_FILE=str(pki["good"]),
        VALKEY_TLS_KEY_FILE=str(pki["good.key"]),
        VALKEY_TLS_CA_CERT_FILE=str(pki["ca"]),
        VALKEY_BUNDLE_DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["tls"]["files"]["tls-key-file"]["path"] == str(pki["good.key"])
    key = pki["good.key"].read_text()
    body = "".join(key.splitlines()[1:-1])
    for text in (result.stdout, result.stderr):
        assert "PRIVATE KEY" not in text and body[:40] not in text
    assert "debug: TLS on port 6379 (the client port (port 6379))" in result.stderr


# ------------------------------------------------------------------ what the probes derive


def test_the_probes_find_the_command_in_pid_1(tmp_path):
    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "1" / "cmdline").write_bytes(
        b"tini\0-s\0--\0bundle-docker-entrypoint\0/etc/valkey/valkey.conf\0--port\0 7\0"
    )
    os.symlink("/data", proc / "1" / "cwd")
    assert entrypoint_command(str(proc)) == (["/etc/valkey/valkey.conf", "--port", " 7"], "/data")
    (proc / "1" / "cmdline").write_bytes(b"/sbin/init\0splash\0")
    assert entrypoint_command(str(proc)) is None


def test_the_probes_derive_what_the_start_planned(pki, tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text("port 7000\ncluster-enabled yes\n")
    environ = {
        "VALKEY_TLS_CERT_FILE": str(pki["good"]),
        "VALKEY_TLS_KEY_FILE": str(pki["good.key"]),
        "VALKEY_TLS_CA_CERT_FILE": str(pki["ca"]),
        "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME": "db-0.db.svc",
    }
    port, tls = local_server(environ, ([str(conf)], str(tmp_path)))
    assert port == 7000 and tls.server_name == "db-0.db.svc" and tls.present_cert
    assert local_server({}, ([str(conf)], str(tmp_path))) == (7000, None)
    # The docker-library way: everything on the command line, no variable.
    args = ["--tls-port", "6390", "--port", "0", "--tls-cert-file", str(pki["good"])]
    args += ["--tls-key-file", str(pki["good.key"]), "--tls-ca-cert-file", str(pki["ca"]), "--tls-auth-clients", "no"]
    port, tls = local_server({}, (args, str(tmp_path)))
    assert port == 6390 and tls.as_dict()["cert"] is None and tls.as_dict()["ca_file"] == str(pki["ca"])
    # A config the probe cannot read: the environment alone decides.
    assert local_server({}, ([str(tmp_path / "gone.conf")], str(tmp_path))) == (6379, None)


def test_a_server_that_drops_the_connection_is_one_line_that_says_so():
    import ssl

    from valkey_bundle.tls_client import ClientTLS, TLSFailure

    cert = Setting("/certs/c.crt", "VALKEY_TLS_CERT_FILE", "tls-cert-file", "VALKEY_TLS_CERT_FILE")
    key = Setting("/certs/c.key", "VALKEY_TLS_KEY_FILE", "tls-key-file", "VALKEY_TLS_KEY_FILE")
    client = ClientTLS(None, None, cert, key, None, True, None)
    # OpenSSL 3 reports a reset on read through its error queue: "[SYS] unknown error".
    queued = ssl.SSLError(5, "[SYS] unknown error")
    queued.library, queued.reason = "SYS", None
    where = "TLS to 10.0.0.1:6379: the server closed the connection"
    for exc in (queued, ConnectionResetError(104, "Connection reset by peer"), ssl.SSLEOFError(8, "EOF")):
        after = client.failure(exc, "10.0.0.1", 6379, after_handshake=True)
        assert isinstance(after, TLSFailure) and str(after).startswith(
            f"{where} after the handshake: it refused this client's certificate /certs/c.crt"
        ), str(after)
    for exc in (queued, ConnectionResetError(104, "Connection reset by peer")):
        during = client.failure(exc, "10.0.0.1", 6379)
        assert str(during).startswith(f"{where} during the TLS handshake ("), str(during)
    # Not TLS's doing: the error itself.
    refused = ConnectionRefusedError(111, "Connection refused")
    assert client.failure(refused, "10.0.0.1", 6379) is refused
