"""TLS in the image: one node TLS-only from the environment (nothing in clear, client
certificates demanded), the docker-library TLS case (everything on the command line), and
bad certificates, each one line from the start and from bundle-healthcheck.  The checks run
in the image's python3-minimal, whose ssl module is what the entrypoint has there.

The certificates are made by the tests (tests/support/certs.py) and mounted as a Kubernetes
Secret or cert-manager mounts them: tls.crt, tls.key (readable by the server's uid only) and
ca.crt.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from support import certs

pytestmark = pytest.mark.container

CERTS = "/run/secrets/tls"
TLS_ENV = {
    "VALKEY_TLS_CERT_FILE": f"{CERTS}/tls.crt",
    "VALKEY_TLS_KEY_FILE": f"{CERTS}/tls.key",
    "VALKEY_TLS_CA_CERT_FILE": f"{CERTS}/ca.crt",
}
VALKEY_UID = 999


def secret_dir(directory: Path, pair: tuple[bytes, bytes], ca: certs.CA, key_mode: int = 0o400) -> Path:
    """tls.crt, tls.key and ca.crt as a Secret volume holds them; the key the server's uid's."""
    directory.mkdir(parents=True)
    (directory / "tls.crt").write_bytes(pair[0])
    (directory / "tls.key").write_bytes(pair[1])
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    for name in ("tls.crt", "ca.crt"):
        (directory / name).chmod(0o644)
    os.chown(directory / "tls.key", VALKEY_UID, VALKEY_UID)
    (directory / "tls.key").chmod(key_mode)
    directory.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Secret directories: a server's (with a client certificate beside it), an expired one, one
    from another CA, and the docker-library layout."""
    if os.geteuid() != 0:
        pytest.skip("the certificates are handed to the server's uid (999): needs root")
    base = tmp_path_factory.mktemp("tls")
    base.chmod(0o755)
    ca, other = certs.CA(), certs.CA("another CA")
    server = secret_dir(base / "server", ca.issue("valkey", ("valkey", "localhost")), ca)
    for name, pair in {"client": ca.issue("a client", usages=("client",)), "foreign": other.issue("x")}.items():
        (server / f"{name}.crt").write_bytes(pair[0])
        (server / f"{name}.key").write_bytes(pair[1])
        (server / f"{name}.key").chmod(0o644)  # the test's client reads them as any uid
    (server / "other-ca.crt").write_bytes(other.cert_pem)
    (server / "expired.crt").write_bytes(ca.issue("valkey", ("valkey",), **certs.expired_dates())[0])
    expired_pair = ca.issue("valkey", ("valkey",), **certs.expired_dates())
    return {
        "server": server,
        "expired": secret_dir(base / "expired", expired_pair, ca),
        "foreign": secret_dir(base / "foreign", other.issue("valkey", ("valkey",)), ca),
        "mismatch": secret_dir(base / "mismatch", (ca.issue("valkey", ("valkey",))[0], certs.other_key()), ca),
        "open-key": secret_dir(base / "open-key", ca.issue("valkey", ("valkey",)), ca, key_mode=0o644),
        "docker-library": secret_dir(base / "docker-library", ca.issue("redis", san=False), ca),
    }


def mount(directory: Path) -> dict:
    return {str(directory): (CERTS, "ro")}


def wait_healthy(bundle, mode: str = "startup", timeout: float = 30.0) -> str:
    """bundle-healthcheck MODE until it passes (it speaks TLS: this is its test as much as a wait)."""
    deadline = time.monotonic() + timeout
    while True:
        state = bundle.state()
        if state["Status"] in ("exited", "dead"):
            raise AssertionError(f"container exited ({state['ExitCode']}):\n{bundle.logs()}")
        code, out = bundle.exec("bundle-healthcheck", mode)
        if code == 0:
            return out.strip()
        if time.monotonic() > deadline:
            raise AssertionError(f"bundle-healthcheck {mode}: {out}\n{bundle.logs()}")
        time.sleep(0.2)  # poll interval


def tls_cli(bundle, *args: str, cert: str | None = "client") -> tuple[int, str]:
    """valkey-cli --tls inside the container, with the test's client certificate (or none, or another)."""
    command = ["valkey-cli", "--tls", "--cacert", f"{CERTS}/ca.crt"]
    if cert:
        command += ["--cert", f"{CERTS}/{cert}.crt", "--key", f"{CERTS}/{cert}.key"]
    return bundle.exec(*command, *args)


def address(bundle) -> str:
    bundle.container.reload()
    return next(iter(bundle.container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]


def test_one_node_tls_only_with_client_certificates(run_bundle, pki):
    from support import testbed

    began = time.monotonic()
    bundle = run_bundle(env=TLS_ENV, volumes=mount(pki["server"]), ready=False)
    assert wait_healthy(bundle) == "startup: ok: PONG"
    print(f"\none node, TLS only: docker run -> startup ok over TLS {time.monotonic() - began:.1f} s")
    assert "warning" not in bundle.logs().split("Server initialized")[0], bundle.logs()

    assert tls_cli(bundle, "ping") == (0, "PONG\n")
    assert tls_cli(bundle, "config", "get", "port")[1].split() == ["port", "0"]
    code, out = tls_cli(bundle, "ping", cert=None)  # no client certificate: refused
    assert "PONG" not in out, out
    code, out = tls_cli(bundle, "ping", cert="foreign")  # one from another CA: refused
    assert "PONG" not in out, out
    with pytest.raises(Exception):  # noqa: B017  plain RESP to the TLS port: no answer
        testbed.valkey_command(6379, "PING", host=address(bundle), timeout=3)

    for mode in ("liveness", "readiness"):
        assert bundle.exec("bundle-healthcheck", mode) == (0, f"{mode}: ok: PONG\n")
    code, out = bundle.exec("bundle-info")
    assert code == 0 and "server  valkey" in out and "on 127.0.0.1:6379" in out, out

    # The documented lines: a wrong CA, an expired certificate.
    code, out = exec_env(bundle, "bundle-healthcheck", "readiness", VALKEY_TLS_CA_CERT_FILE=f"{CERTS}/other-ca.crt")
    assert code == 1 and len(out.splitlines()) == 1, out
    assert out.startswith(
        "readiness: failing: TLS to 127.0.0.1:6379: the server's certificate does not verify against the CA of "
        f"VALKEY_TLS_CA_CERT_FILE ({CERTS}/other-ca.crt): "
    ), out
    code, out = exec_env(bundle, "bundle-healthcheck", "liveness", VALKEY_TLS_CERT_FILE=f"{CERTS}/expired.crt")
    assert code == 1 and len(out.splitlines()) == 1, out
    assert out.startswith(f"liveness: failing: VALKEY_TLS_CERT_FILE: the certificate {CERTS}/expired.crt expired on ")


def test_the_docker_library_tls_case(run_bundle, pki, docker_client, bundle_image):
    """As the official images' test suite runs it: the TLS arguments on the command line, a
    certificate for CN=redis without subjectAltName, a client in another container that knows
    the server as redis."""
    d = CERTS
    command = ["--tls-port", "6379", "--port", "0", "--tls-cert-file", f"{d}/tls.crt"]
    command += ["--tls-key-file", f"{d}/tls.key", "--tls-ca-cert-file", f"{d}/ca.crt"]
    bundle = run_bundle(command=command, volumes=mount(pki["docker-library"]), ready=False)
    assert wait_healthy(bundle, "liveness") == "liveness: ok: PONG"  # the image's HEALTHCHECK, over TLS
    assert bundle.exec("bundle-healthcheck", "readiness") == (0, "readiness: ok: PONG\n")

    def cli(*args):
        return docker_client.containers.run(
            bundle_image.name,
            ["-h", "redis", "--tls", "--cert", f"{d}/tls.crt", "--key", f"{d}/tls.key", "--cacert", f"{d}/ca.crt"]
            + list(args),
            entrypoint="valkey-cli",
            extra_hosts={"redis": address(bundle)},
            volumes={str(pki["docker-library"]): {"bind": d, "mode": "ro"}},
            remove=True,
        ).decode()

    assert cli("ping").strip() == "PONG"
    assert cli("set", "mykey", "somevalue").strip() == "OK"
    assert cli("get", "mykey").strip() == "somevalue"


def exec_env(bundle, *cmd: str, **env: str) -> tuple[int, str]:
    """docker exec -e NAME=VALUE ... CMD: the container's environment with these changed."""
    code, out = bundle.container.exec_run(list(cmd), environment=env)
    return code, out.decode(errors="replace").strip()


def one_line_start(run_bundle, directory, env=TLS_ENV, **variables) -> str:
    """The container's whole output, which must be one error line and exit 2."""
    bundle = run_bundle(env={**env, **variables}, volumes=mount(directory), ready=False)
    assert bundle.wait_exit() == 2, bundle.logs()
    logs = bundle.logs().strip()
    assert len(logs.splitlines()) == 1 and "Traceback" not in logs, logs
    assert logs.startswith("bundle-docker-entrypoint: error: "), logs
    return logs.removeprefix("bundle-docker-entrypoint: error: ")


def test_bad_certificates_stop_the_start_with_one_line(run_bundle, pki):
    line = one_line_start(run_bundle, pki["expired"])
    assert line.startswith(f"VALKEY_TLS_CERT_FILE: the certificate {CERTS}/tls.crt expired on ")
    assert line.endswith("UTC: clients and peers refuse it; renew it")
    line = one_line_start(run_bundle, pki["foreign"])
    assert line.startswith(
        f"VALKEY_TLS_CERT_FILE: the certificate {CERTS}/tls.crt does not verify against the CA of "
        f"VALKEY_TLS_CA_CERT_FILE ({CERTS}/ca.crt): unable to get local issuer certificate"
    ), line
    # The rest in a dry run: the same checks, nothing started.
    dry = {"VALKEY_BUNDLE_DRY_RUN": "1"}
    line = one_line_start(run_bundle, pki["mismatch"], **dry)
    assert line.startswith(f"VALKEY_TLS_KEY_FILE: the key {CERTS}/tls.key does not belong to the certificate"), line
    line = one_line_start(run_bundle, pki["server"], **dry, VALKEY_TLS_CA_CERT_FILE=f"{CERTS}/missing.crt")
    assert line == f"VALKEY_TLS_CA_CERT_FILE: cannot read {CERTS}/missing.crt: No such file or directory"
    bundle = run_bundle(env={**TLS_ENV, **dry}, volumes=mount(pki["open-key"]), ready=False)
    assert bundle.wait_exit() == 0
    assert (
        f"bundle-docker-entrypoint: warning: VALKEY_TLS_KEY_FILE: the private key {CERTS}/tls.key is readable by "
        "every user (mode 0644, owner 999:999)"
    ) in bundle.logs()


def test_the_key_the_servers_user_cannot_read_is_one_line(run_bundle, pki, tmp_path):
    private = tmp_path / "private"
    subprocess.run(["cp", "-a", str(pki["server"]), str(private)], check=True)
    os.chown(private / "tls.key", 0, 0)  # root's, mode 0400: the server (uid 999) cannot open it
    line = one_line_start(run_bundle, private, VALKEY_BUNDLE_DRY_RUN="1")
    assert line.startswith(
        f"VALKEY_TLS_KEY_FILE: {CERTS}/tls.key is not readable by uid 999, the server's user (mode 0400, owner 0:0)"
    ), line
