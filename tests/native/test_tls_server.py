"""Tier 2: a real valkey-server (built with BUILD_TLS=yes) started through the entrypoint with
TLS from the environment alone: nothing in clear, client certificates demanded, and
bundle-healthcheck, bundle-info and valkey-cli speaking TLS to it; a wrong CA, an expired
certificate, a client without a certificate, each one clear line."""

import subprocess
import time

import pytest
from conftest import ENTRYPOINT, base_env, run_entrypoint
from support import certs

from valkey_bundle.resp import Connection
from valkey_bundle.tls_plan import Setting

pytestmark = pytest.mark.native
HEALTHCHECK = ENTRYPOINT.parent / "bundle-healthcheck"
INFO = ENTRYPOINT.parent / "bundle-info"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca, other = certs.CA(), certs.CA("another CA")
    made = {"ca": certs.write_ca(directory, "ca", ca), "other-ca": certs.write_ca(directory, "other-ca", other)}
    for name, pair in {
        "server": ca.issue("valkey", ("localhost",), ("127.0.0.1",)),
        "client": ca.issue("a client", usages=("client",)),
        "expired": ca.issue("a client", usages=("client",), **certs.expired_dates()),
        "foreign": other.issue("a client", usages=("client",)),
    }.items():
        made[name], made[f"{name}.key"] = certs.write_pair(directory, name, pair)
    return made


def tls_env(pki, **extra):
    return {
        "VALKEY_TLS_CERT_FILE": str(pki["server"]),
        "VALKEY_TLS_KEY_FILE": str(pki["server.key"]),
        "VALKEY_TLS_CA_CERT_FILE": str(pki["ca"]),
        "VALKEY_TLS_PORT": "{port}",
        "VALKEY_MODULES": "none",
        **extra,
    }


def client_tls(pki, cert="client"):
    from valkey_bundle.tls_client import ClientTLS

    def setting(name, variable):
        return Setting(str(pki[name]), variable, variable=variable)

    return ClientTLS(
        setting("ca", "ca"), None, setting(cert, "cert"), setting(f"{cert}.key", "key"), None, True, "localhost"
    )


def wait_tls(server, tls, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise AssertionError(f"exited {server.proc.returncode}:\n{server.log()}")
        try:
            with Connection("127.0.0.1", server.port, tls=tls, server_name="localhost") as conn:
                if conn.call("PING") == "PONG":
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def probe(server, *args, **env):
    """bundle-healthcheck (or another tool) as the probes run it: its own process, the server's environment."""
    tool = env.pop("tool", HEALTHCHECK)
    environ = base_env(**{k: v.replace("{port}", str(server.port)) for k, v in env.items()})
    result = subprocess.run([str(tool), *args], env=environ, capture_output=True, text=True, timeout=30)
    return result.returncode, (result.stdout + result.stderr).strip()


def cli(server, *args):
    command = [str(server.prefix / "bin" / "valkey-cli"), "-p", str(server.port), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    return (result.stdout + result.stderr).strip()


def test_tls_only_with_client_certificates(start_server, pki):
    started = time.monotonic()
    server = start_server([], **tls_env(pki))
    wait_tls(server, client_tls(pki))
    print(f"\nTLS-only server: start -> PONG over TLS {time.monotonic() - started:.2f} s")
    with Connection("127.0.0.1", server.port, tls=client_tls(pki), server_name="localhost") as conn:
        assert conn.call("CONFIG", "GET", "port") == ["port", "0"]  # nothing in clear
        assert conn.call("CONFIG", "GET", "tls-auth-clients") == ["tls-auth-clients", "yes"]
    # Plain RESP to the TLS port gets no answer.
    with pytest.raises(OSError), Connection("127.0.0.1", server.port, timeout=2) as plain:
        plain.call("PING")

    ca, cert, key = str(pki["ca"]), str(pki["client"]), str(pki["client.key"])
    assert cli(server, "--tls", "--cacert", ca, "--cert", cert, "--key", key, "ping") == "PONG"
    assert cli(server, "--tls", "--cacert", ca, "ping") != "PONG"  # no client certificate
    foreign = ["--cert", str(pki["foreign"]), "--key", str(pki["foreign.key"])]
    assert cli(server, "--tls", "--cacert", ca, *foreign, "ping") != "PONG"

    env = tls_env(pki)
    for mode in ("startup", "liveness", "readiness"):
        assert probe(server, mode, **env) == (0, f"{mode}: ok: PONG")
    code, out = probe(server, tool=INFO, **env)
    assert code == 0 and "server  valkey 9" in out and f"on 127.0.0.1:{server.port}" in out, out

    # A wrong CA: the server's certificate does not verify.
    code, out = probe(server, "readiness", **{**env, "VALKEY_TLS_CA_CERT_FILE": str(pki["other-ca"])})
    assert code == 1 and out.startswith(
        f"readiness: failing: TLS to 127.0.0.1:{server.port}: the server's certificate does not verify against "
        f"the CA of VALKEY_TLS_CA_CERT_FILE ({pki['other-ca']}): "
    ), out
    # (the server sends its CA along: "self-signed certificate in certificate chain")
    assert out.endswith(("unable to get local issuer certificate", "self-signed certificate in certificate chain"))
    assert len(out.splitlines()) == 1
    # The certificate the probe presents has expired: the same line the start gives.
    expired = {"VALKEY_TLS_CERT_FILE": str(pki["expired"]), "VALKEY_TLS_KEY_FILE": str(pki["expired.key"])}
    code, out = probe(server, "liveness", **{**env, **expired})
    start = run_entrypoint(env=base_env(**{**env, **expired, "VALKEY_TLS_PORT": "7000", "VALKEY_BUNDLE_DRY_RUN": "1"}))
    assert start.returncode == 2
    line = start.stderr.strip().splitlines()[-1]
    assert line.startswith("bundle-docker-entrypoint: error: VALKEY_TLS_CERT_FILE: the certificate ")
    assert (code, out) == (1, "liveness: failing: " + line.split("error: ", 1)[1])
    # A certificate the server does not trust.
    foreign_env = {"VALKEY_TLS_CERT_FILE": str(pki["foreign"]), "VALKEY_TLS_KEY_FILE": str(pki["foreign.key"])}
    code, out = probe(server, "readiness", **{**env, **foreign_env})
    # The server refuses it with an alert ("unknown ca"), or closes the connection after the handshake.
    assert code == 1 and out.startswith(f"readiness: failing: TLS to 127.0.0.1:{server.port}: the server "), out
    assert f"refused this client's certificate {pki['foreign']} (VALKEY_TLS_CERT_FILE)" in out, out
    assert len(out.splitlines()) == 1
    # Without TLS the probe finds nothing in clear on that port.
    code, out = probe(server, "liveness", "--port", str(server.port))
    assert code == 1 and out.startswith(f"liveness: failing: cannot reach 127.0.0.1:{server.port}: "), out


def test_client_certificates_optional(start_server, pki):
    server = start_server([], **tls_env(pki, VALKEY_TLS_AUTH_CLIENTS="optional"))
    wait_tls(server, client_tls(pki))
    assert cli(server, "--tls", "--cacert", str(pki["ca"]), "ping") == "PONG"
    env = tls_env(pki, VALKEY_TLS_AUTH_CLIENTS="optional")
    assert probe(server, "readiness", **env) == (0, "readiness: ok: PONG")
