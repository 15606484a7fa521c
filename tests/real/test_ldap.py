"""ldap (valkey-ldap) at work in the image: AUTH checked against a real OpenLDAP server.

The directory (ldap/directory.ldif) is served by Debian's slapd in a container of its own
on the test network, built from the tests' debootstrapped base image (ldap/Dockerfile).
Two users live there: alice, whose DN is cn=alice,ou=people,dc=example,dc=org (bind mode
derives it from her name), and bob, whose DN (cn=Bob Builder,ou=engineering,...) only a
search for uid=bob finds (search+bind mode). Valkey gets its ACL users and the module's
settings from a mounted config file, as users configure it; alice and bob have no Valkey
password (resetpass): only the directory lets them in. carol is a local user with an ACL
password.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from pathlib import Path

import pytest
from container import container_image
from container.cluster_kit import LABEL, docker

from . import real_kit

pytestmark = pytest.mark.real

LDAP_DIR = Path(__file__).resolve().parent / "ldap"
LDAP_PORT = 389
ADMIN_DN = "cn=admin,dc=example,dc=org"
ADMIN_PASSWORD = "directory-admin-secret"
PASSWORDS = {"alice": "alice-in-ldap", "bob": "bob-in-ldap"}
CAROL_PASSWORD = "carol-local-secret"
CONFIG_PATH = "/etc/valkey/valkey.conf"
# Short LDAP timeouts: an unreachable directory then costs a login seconds, not the default 10 s.
LDAP_TIMEOUT = 2
BIND_MODE = [
    "ldap.auth_mode bind",
    'ldap.bind_dn_prefix "cn="',
    'ldap.bind_dn_suffix ",ou=people,dc=example,dc=org"',
]
SEARCH_BIND_MODE = [
    "ldap.auth_mode search+bind",
    'ldap.search_base "dc=example,dc=org"',
    "ldap.search_attribute uid",
    f'ldap.search_bind_dn "{ADMIN_DN}"',
    f'ldap.search_bind_passwd "{ADMIN_PASSWORD}"',
]


@pytest.fixture(scope="module", autouse=True)
def ldap_is_real(real_image):
    real_kit.require_real(real_image, "ldap")


@pytest.fixture(scope="module")
def slapd_image() -> str:
    """The OpenLDAP image, built once for a given ldap/ directory and base image."""
    base = container_image.base_image()
    digest = hashlib.sha256(f"{base}\n{ADMIN_PASSWORD}\n".encode())
    for path in sorted(LDAP_DIR.iterdir()):
        digest.update(path.name.encode() + b"\n" + path.read_bytes())
    name = f"valkey-bundle-test/slapd:{digest.hexdigest()[:12]}"
    exists = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    if exists.returncode != 0:
        build = ["build", "--tag", name, "--build-arg", f"BASE_IMAGE={base}"]
        docker(*build, "--build-arg", f"ADMIN_PASSWORD={ADMIN_PASSWORD}", str(LDAP_DIR), timeout=900)
    return name


class Slapd:
    """slapd in a container on the kit's network, answering on its address (removed with the kit)."""

    def __init__(self, kit, image: str, name: str, timeout: float = 30.0):
        self.name, self.ip = f"vbc-{kit.run_id}-{name}", kit.next_address()
        run = ["run", "-d", "--name", self.name, "--label", f"{LABEL}={kit.run_id}"]
        docker(*run, "--network", kit.network, "--ip", self.ip, image)
        self.url = f"ldap://{self.ip}:{LDAP_PORT}"
        deadline = time.monotonic() + timeout
        while not self.listening():
            if time.monotonic() > deadline:
                raise AssertionError(f"slapd does not listen on {self.url} after {timeout} s:\n{self.logs()}")
            time.sleep(0.1)

    def listening(self) -> bool:
        try:
            with socket.create_connection((self.ip, LDAP_PORT), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        docker("stop", "-t", "5", self.name)

    def logs(self) -> str:
        result = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True, check=False)
        return result.stdout + result.stderr


def config_file(directory: Path, slapd: Slapd, mode: list[str]) -> Path:
    """The server's config file: the module's settings for ``mode`` and the ACL users."""
    lines = [
        f'ldap.servers "{slapd.url}"',
        *mode,
        f"ldap.timeout_connection {LDAP_TIMEOUT}",
        f"ldap.timeout_ldap_operation {LDAP_TIMEOUT}",
        "ldap.failure_detector_interval 1",
        # Users known to Valkey with their rights; the directory says whether their password is right.
        "user alice on resetpass ~* &* +@all",
        "user bob on resetpass ~* &* +@all",
        f"user carol on >{CAROL_PASSWORD} ~* &* +@all",
    ]
    path = directory / "valkey.conf"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)  # read by the server's uid in the container
    return path


def start_node(kit, name: str, config: Path):
    node = kit.node(name, mounts={str(config): CONFIG_PATH}, args=[CONFIG_PATH])
    return real_kit.start(kit, node)


def login(node, user: str, password: str) -> str:
    """ACL WHOAMI after ``AUTH user password`` on a fresh connection, or the refusal."""
    with node.connect(auth=False, timeout=3 * LDAP_TIMEOUT + 5) as conn:
        reply = conn.call("AUTH", user, password)
        return conn.call("ACL", "WHOAMI") if reply == "OK" else str(reply)


@pytest.fixture(scope="module")
def slapd(kit, slapd_image):
    return Slapd(kit, slapd_image, "slapd")


@pytest.fixture(scope="module")
def bind_node(kit, slapd, tmp_path_factory):
    return start_node(kit, "ldap-bind", config_file(tmp_path_factory.mktemp("bind"), slapd, BIND_MODE))


@pytest.fixture(scope="module")
def search_bind_node(kit, slapd, tmp_path_factory):
    config = config_file(tmp_path_factory.mktemp("search-bind"), slapd, SEARCH_BIND_MODE)
    return start_node(kit, "ldap-search", config)


def test_settings_come_from_the_mounted_config_file(bind_node, search_bind_node, slapd):
    assert bind_node.call("CONFIG", "GET", "ldap.servers") == ["ldap.servers", slapd.url]
    assert bind_node.call("CONFIG", "GET", "ldap.auth_mode") == ["ldap.auth_mode", "bind"]
    suffix = bind_node.call("CONFIG", "GET", "ldap.bind_dn_suffix")
    assert suffix == ["ldap.bind_dn_suffix", ",ou=people,dc=example,dc=org"]
    assert search_bind_node.call("CONFIG", "GET", "ldap.auth_mode") == ["ldap.auth_mode", "search+bind"]
    assert search_bind_node.call("CONFIG", "GET", "ldap.search_bind_dn") == ["ldap.search_bind_dn", ADMIN_DN]
    # The search account's password is not given back.
    secret = search_bind_node.call("CONFIG", "GET", "ldap.search_bind_passwd")
    assert secret[0] == "ldap.search_bind_passwd" and ADMIN_PASSWORD not in secret[1], secret
    # The module reports the directory healthy.
    assert "status=healthy" in bind_node.call("INFO", "ldap"), bind_node.call("INFO", "ldap")


def test_bind_mode(bind_node, slapd):
    assert login(bind_node, "alice", PASSWORDS["alice"]) == "alice"
    assert login(bind_node, "alice", "not-her-password").startswith("WRONGPASS")
    assert login(bind_node, "alice", "").startswith("WRONGPASS")
    # bob's DN is not cn=bob,ou=people,...: bind mode cannot find him.
    assert login(bind_node, "bob", PASSWORDS["bob"]).startswith("WRONGPASS")
    # The module asked the directory (and did not decide alone).
    assert 'BIND dn="cn=alice,ou=people,dc=example,dc=org" method=128' in slapd.logs()


def test_search_bind_mode(search_bind_node, slapd):
    assert login(search_bind_node, "bob", PASSWORDS["bob"]) == "bob"
    assert login(search_bind_node, "bob", PASSWORDS["alice"]).startswith("WRONGPASS")
    assert login(search_bind_node, "alice", PASSWORDS["alice"]) == "alice"
    # A Valkey user the directory does not know is refused (no local password either).
    assert login(search_bind_node, "nobody", "whatever").startswith("WRONGPASS")
    logs = slapd.logs()
    assert f'BIND dn="{ADMIN_DN}" method=128' in logs  # the search account
    assert 'BIND dn="cn=Bob Builder,ou=engineering,dc=example,dc=org" method=128' in logs


def test_local_password_still_works_while_the_directory_is_down(kit, slapd_image, tmp_path):
    own_slapd = Slapd(kit, slapd_image, "slapd-down")
    node = start_node(kit, "ldap-down", config_file(tmp_path, own_slapd, BIND_MODE))
    assert login(node, "alice", PASSWORDS["alice"]) == "alice"
    assert login(node, "carol", CAROL_PASSWORD) == "carol"

    own_slapd.stop()
    kit.wait(
        "the module to notice the directory is down",
        lambda: "status=unhealthy" in node.call("INFO", "ldap"),
        [node],
        timeout=30,
    )
    started = time.monotonic()
    assert login(node, "carol", CAROL_PASSWORD) == "carol"
    assert time.monotonic() - started < 3 * LDAP_TIMEOUT, "a local login waits out the directory"
    assert login(node, "carol", "wrong").startswith("WRONGPASS")
    assert login(node, "alice", PASSWORDS["alice"]).startswith("WRONGPASS"), "no directory, no LDAP login"
    # The server stayed up all along: the same container answers, nothing crashed.
    assert node.call("PING") == "PONG"
    assert node.running()
    logs = node.logs()
    assert "panicked" not in logs and "crashed" not in logs.lower(), logs[-3000:]
