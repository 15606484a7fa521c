"""Six containers that speak TLS only (clients, the cluster bus, replication) form a cluster by
themselves, become ready over TLS, heal after every member came back on a new address, and
answer a `valkey-cli --tls -c` client through redirects.

Each member has a certificate for its own name (the headless Service's pod name; the
certificate deploy/k8s/overlays/tls has cert-manager issue carries every member's name),
mounted as a Secret volume (tls.crt, tls.key, ca.crt), and the VALKEY_TLS_* variables of that
overlay; the test side talks to the members
with a client certificate of the same CA.
"""

from __future__ import annotations

import os
import time

import pytest
from support import certs

from .cluster_kit import CREATE_LINE, DOMAIN, PORT, ClusterKit, docker, key_slot

pytestmark = pytest.mark.container

CERTS = "/run/secrets/valkey-tls"
KEYS = [f"tls:{i}" for i in range(60)]


@pytest.fixture(scope="module")
def kit(bundle_image, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the certificates are handed to the server's uid (999): needs root")
    from valkey_bundle.tls_client import ClientTLS
    from valkey_bundle.tls_plan import Setting

    workdir = tmp_path_factory.mktemp("tls-cluster")
    workdir.chmod(0o755)
    kit = ClusterKit(bundle_image.name, workdir)
    kit.ca = certs.CA()
    client = workdir / "client"
    client.mkdir()
    client.chmod(0o755)
    kit.client_dir = client
    certs.write_ca(client, "ca", kit.ca)
    cert, key = certs.write_pair(client, "client", kit.ca.issue("test client", usages=("client",)), key_mode=0o644)
    ca_file, cert_file, key_file = (
        Setting(str(client / "ca.crt"), "ca"),
        Setting(str(cert), "cert"),
        Setting(str(key), "key"),
    )
    kit.tls = ClientTLS(ca_file, None, cert_file, key_file, None, True, None)
    yield kit
    kit.destroy()


def secret_for(kit, alias: str):
    """The member's Secret volume: a certificate for its name, its key readable by uid 999 only."""
    directory = kit.client_dir.parent / alias
    directory.mkdir()
    directory.chmod(0o755)
    pair = kit.ca.issue(alias.split(".")[0], (alias, f"valkey-bundle.{DOMAIN}"))
    _, key = certs.write_pair(directory, "tls", pair, key_mode=0o400)
    os.chown(key, 999, 999)
    certs.write_ca(directory, "ca", kit.ca)
    return directory


@pytest.fixture(scope="module")
def six(kit):
    members = kit.group("valkey", 6, replicas=1)
    for member in members:
        member.mounts[str(secret_for(kit, member.alias))] = CERTS
        member.extra_env.update(
            {
                "VALKEY_TLS_CERT_FILE": f"{CERTS}/tls.crt",
                "VALKEY_TLS_KEY_FILE": f"{CERTS}/tls.key",
                "VALKEY_TLS_CA_CERT_FILE": f"{CERTS}/ca.crt",
            }
        )
    began = kit.start(members, [kit.address(11 + i) for i in range(6)])
    done = kit.wait("six TLS members to form a cluster", lambda: kit.formed(members), members, timeout=90)
    print(f"\n6 containers, TLS only: docker run -> formed (replicas in sync): {done - began:.1f} s")
    return members


def ready_everywhere(members) -> bool:
    return all(m.exec("bundle-healthcheck", "readiness")[0] == 0 for m in members)


def test_six_tls_members_form_a_cluster_and_are_ready_over_tls(kit, six):
    for member in six:
        assert member.call("CONFIG", "GET", "tls-cluster") == ["tls-cluster", "yes"], member.alias
        assert member.call("CONFIG", "GET", "tls-replication") == ["tls-replication", "yes"]
        assert member.call("CONFIG", "GET", "port") == ["port", "0"]
    roles = kit.roles(six)
    assert sorted(role for role, _ in roles.values()) == ["master"] * 3 + ["slave"] * 3
    logs = {m.alias: m.logs() for m in six}
    assert sum(text.count(CREATE_LINE) for text in logs.values()) == 1
    # Readiness over TLS, its certificate checked against the name the member announces.
    began = time.monotonic()
    kit.wait("every member ready", lambda: ready_everywhere(six), six, timeout=30, interval=0.5)
    print(f"formed -> bundle-healthcheck readiness ok on all six: {time.monotonic() - began:.1f} s")
    for member in six:
        code, out = member.exec("bundle-healthcheck", "readiness")
        assert code == 0 and out.startswith("readiness: ok: PONG, cluster_state:ok"), (member.alias, out)
        assert "search index guard: TLS" not in logs[member.alias], logs[member.alias]
    # Nothing in clear: plain RESP to a member gets no answer.
    from valkey_bundle.resp import Connection

    with pytest.raises(OSError), Connection(six[0].ip, PORT, timeout=2) as plain:
        plain.call("PING")


def test_the_tls_cluster_heals_on_new_addresses(kit, six):
    written = kit.write_keys(six, KEYS)
    assert sum(written.values()) == len(KEYS)
    kit.remove(six)
    began = kit.start(six, [kit.address(111 + i) for i in range(6)])
    done = kit.wait("the TLS cluster to heal on the new addresses", lambda: kit.formed(six), six, timeout=90)
    print(f"\n6 TLS containers recreated on new addresses: docker run -> healed: {done - began:.1f} s")
    kit.wait("every member ready again", lambda: ready_everywhere(six), six, timeout=30, interval=0.5)
    assert kit.read_keys(six, KEYS) == {k: f"value-of-{k}" for k in KEYS}
    assert not any(CREATE_LINE in m.logs() for m in six)


def test_a_tls_client_follows_the_redirects(kit, six, bundle_image):
    """valkey-cli --tls -c from a container on the members' network, through one member only."""
    keys = [f"redirected:{i}" for i in range(12)]
    slots = {key_slot(k) for k in keys}
    assert len({s * 3 // 16384 for s in slots}) == 3, "the keys fall in every primary's range"
    script = "".join(f"SET {k} v-{k}\n" for k in keys) + "".join(f"GET {k}\n" for k in keys)
    out = docker(
        "run",
        "--rm",
        "--network",
        kit.network,
        "-v",
        f"{kit.client_dir}:/client:ro",
        "-e",
        f"VALKEYCLI_AUTH={kit.password}",
        "--entrypoint",
        "sh",
        kit.image,
        "-c",
        f"printf '{script.encode('unicode_escape').decode()}' | valkey-cli -c --tls --cacert /client/ca.crt "
        f"--cert /client/client.crt --key /client/client.key -h valkey-0.{DOMAIN} -p {PORT}",
    )
    redirects = [line for line in out.splitlines() if line.startswith("-> Redirected to slot")]
    replies = [line for line in out.splitlines() if not line.startswith("-> Redirected to slot")]
    assert redirects, f"no redirect followed: {out}"
    assert replies == ["OK"] * len(keys) + [f"v-{k}" for k in keys], out
