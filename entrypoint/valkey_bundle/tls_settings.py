"""Read VALKEY_TLS_* (syntax only; tls_plan decides what they mean).

Imported only when one of them is set, so a plain start does not pay for it.
"""

from .env_values import FALSE_WORDS, TRUE_WORDS, check_text
from .errors import UsageError

# variable -> the server setting it stands for (VALKEY_TLS_PLAINTEXT=no stands for `port 0`).
DIRECTIVES = {
    "VALKEY_TLS_CERT_FILE": "tls-cert-file",
    "VALKEY_TLS_KEY_FILE": "tls-key-file",
    "VALKEY_TLS_CA_CERT_FILE": "tls-ca-cert-file",
    "VALKEY_TLS_PORT": "tls-port",
    "VALKEY_TLS_PLAINTEXT": "port",
    "VALKEY_TLS_CLUSTER": "tls-cluster",
    "VALKEY_TLS_REPLICATION": "tls-replication",
    "VALKEY_TLS_AUTH_CLIENTS": "tls-auth-clients",
}
AUTH_CLIENTS = ("yes", "no", "optional")


class TlsEnv:
    """What VALKEY_TLS_* ask for; None wherever a variable is unset (or empty)."""

    __slots__ = ("auth_clients", "ca_file", "cert_file", "cluster", "key_file", "plaintext", "port", "replication")

    def __init__(self):
        self.cert_file = self.key_file = self.ca_file = None  # paths
        self.port = None  # int
        self.plaintext = self.cluster = self.replication = None  # True / False
        self.auth_clients = None  # "yes", "no" or "optional"

    def given(self):
        """The variables that are set, in DIRECTIVES order."""
        names = {
            "VALKEY_TLS_CERT_FILE": self.cert_file,
            "VALKEY_TLS_KEY_FILE": self.key_file,
            "VALKEY_TLS_CA_CERT_FILE": self.ca_file,
            "VALKEY_TLS_PORT": self.port,
            "VALKEY_TLS_PLAINTEXT": self.plaintext,
            "VALKEY_TLS_CLUSTER": self.cluster,
            "VALKEY_TLS_REPLICATION": self.replication,
            "VALKEY_TLS_AUTH_CLIENTS": self.auth_clients,
        }
        return [name for name, value in names.items() if value is not None]


def _value(environ, name):
    value = environ.get(name, "").strip(" \t\r\n")
    check_text(name, value)
    return value


def _yes_no(environ, name):
    value = _value(environ, name).lower()
    if not value:
        return None
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise UsageError(f"{name}={value!r}: expected yes or no")


def read_tls_env(environ):
    """A TlsEnv, or None when no VALKEY_TLS_* variable is set."""
    if not any(name.startswith("VALKEY_TLS_") for name in environ):
        return None
    tls = TlsEnv()
    tls.cert_file = _value(environ, "VALKEY_TLS_CERT_FILE") or None
    tls.key_file = _value(environ, "VALKEY_TLS_KEY_FILE") or None
    tls.ca_file = _value(environ, "VALKEY_TLS_CA_CERT_FILE") or None
    port = _value(environ, "VALKEY_TLS_PORT")
    if port:
        if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise UsageError(f"VALKEY_TLS_PORT={port!r}: expected a port number (1-65535)")
        tls.port = int(port)
    tls.plaintext = _yes_no(environ, "VALKEY_TLS_PLAINTEXT")
    tls.cluster = _yes_no(environ, "VALKEY_TLS_CLUSTER")
    tls.replication = _yes_no(environ, "VALKEY_TLS_REPLICATION")
    auth = _value(environ, "VALKEY_TLS_AUTH_CLIENTS").lower()
    if auth:
        if auth in TRUE_WORDS:
            auth = "yes"
        elif auth in FALSE_WORDS:
            auth = "no"
        if auth not in AUTH_CLIENTS:
            raise UsageError(f"VALKEY_TLS_AUTH_CLIENTS={auth!r}: expected yes, no or optional")
        tls.auth_clients = auth
    return tls
