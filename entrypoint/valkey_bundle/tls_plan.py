"""Plan TLS: the server settings VALKEY_TLS_* ask for, and what the image's own clients (the
health check, the cluster bootstrap helper, the search index guard, bundle-info) need to reach
the server as it will listen.  Pure.

``resolve`` is the one place that decides, from the environment and the server's config, what
the server's TLS settings are: the entrypoint plans the start with it, and bundle-healthcheck
and bundle-info, run later as processes of their own, derive the same answer with it.

Precedence: a TLS setting made by the config file, its includes or the command line wins
over the variable that stands for it (ignored, with a warning when they differ), as a module
the config loads does.  ``port`` is the exception: it is the number clients use, so with TLS
on it becomes the TLS port (when nothing sets tls-port) and, unless VALKEY_TLS_PLAINTEXT=yes,
the generated ``--port 0`` closes it in clear; the command line's own ``--port`` still wins.
"""

from .errors import UsageError

# Settings whose value is a file or directory the server opens at start.
FILE_SETTINGS = (
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-dh-params-file",
)
ENV_FILES = (
    ("VALKEY_TLS_CERT_FILE", "tls-cert-file", "cert_file"),
    ("VALKEY_TLS_KEY_FILE", "tls-key-file", "key_file"),
    ("VALKEY_TLS_CA_CERT_FILE", "tls-ca-cert-file", "ca_file"),
)
DEFAULT_PORT = 6379


class Setting:
    """A value and where it comes from: ``origin`` is a variable, ``FILE:LINE``, ``the command line``
    or a default; ``variable``: the variable that sets it (when the config does not)."""

    __slots__ = ("directive", "from_config", "origin", "value", "variable")

    def __init__(self, value, origin, directive=None, variable=None, from_config=False):
        self.value, self.origin, self.directive = value, origin, directive
        self.variable, self.from_config = variable, from_config

    def label(self):
        """How an error names it: ``VALKEY_TLS_CERT_FILE`` or ``/etc/valkey/valkey.conf:4: tls-cert-file``."""
        if self.from_config:
            return f"{self.origin}: {self.directive}"
        return self.variable or self.origin


class TlsPlan:
    """The server's TLS settings as they will be, each with its origin.

    on          a TLS port listens (tls-port is not 0)
    port        the plaintext port (0: nothing listens in clear)
    tls_port    the TLS port (0 when TLS is off)
    files       {directive: Setting} of the files and directories in FILE_SETTINGS that are set
    auth_clients, cluster, replication   Settings of tls-auth-clients ("yes", "no", "optional"),
                tls-cluster and tls-replication (True / False)
    server_name the name this server announces (cluster-announce-hostname), which its
                certificate must carry; None: the image's clients check the chain only
    """

    __slots__ = (
        "auth_clients",
        "client_key_password",
        "cluster",
        "files",
        "key_password",
        "on",
        "port",
        "replication",
        "server_name",
        "tls_port",
    )

    def __init__(self):
        self.on = False
        self.port = DEFAULT_PORT
        self.tls_port = Setting(0, "default", "tls-port")
        self.files = {}
        self.auth_clients = Setting("yes", "the server's default", "tls-auth-clients")
        self.cluster = Setting(False, "the server's default", "tls-cluster")
        self.replication = Setting(False, "the server's default", "tls-replication")
        self.key_password = None  # tls-key-file-pass: a secret, never shown
        self.client_key_password = None
        self.server_name = None

    def client_port(self):
        """Where the image's own clients connect: the TLS port when TLS is on."""
        return self.tls_port.value if self.on else self.port

    def client(self):
        """A tls_client.ClientTLS for the image's clients of this server, or None without TLS."""
        if not self.on:
            return None
        from .tls_client import ClientTLS

        files = self.files
        if "tls-client-cert-file" in files:
            cert, key = files.get("tls-client-cert-file"), files.get("tls-client-key-file")
            password = self.client_key_password
        else:
            cert, key = files.get("tls-cert-file"), files.get("tls-key-file")
            password = self.key_password
        return ClientTLS(
            ca_file=files.get("tls-ca-cert-file"),
            ca_dir=files.get("tls-ca-cert-dir"),
            cert=cert,
            key=key,
            key_password=password,
            present_cert=self.auth_clients.value != "no",
            server_name=self.server_name,
        )

    def as_dict(self):
        return {
            "port": self.port,
            "tls_port": self.tls_port.value,
            "files": {name: {"path": s.value, "from": s.origin} for name, s in self.files.items()},
            "auth_clients": self.auth_clients.value,
            "cluster": self.cluster.value,
            "replication": self.replication.value,
            "server_name": self.server_name,
        }


def _number(text, default):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default  # the server refuses it and says why


def announced_hostname(env, config):
    """The cluster-announce-hostname that wins (the command line's, else VALKEY_CLUSTER_ANNOUNCE_HOSTNAME,
    else the config file's), in cluster mode; None otherwise."""
    if not config.is_yes("cluster-enabled"):
        return None
    directive = "cluster-announce-hostname"
    if directive in config.late or not env.announce_hostname:
        return config.value(directive) or None
    return env.announce_hostname


def resolve(env, config):
    """(TlsPlan, generated server args, warnings, notes) from ``env`` (settings.BundleEnv, whose
    ``tls`` is a tls_settings.TlsEnv or None) and ``config`` (server_config.ServerConfig).

    UsageError for what the server would refuse, or what would leave it unreachable."""
    from .tls_settings import TlsEnv

    tls_env = env.tls or TlsEnv()
    settings = config.settings
    t = TlsPlan()
    generated, warnings, notes = [], [], []

    def from_config(directive, value):
        return Setting(value, settings[directive][1], directive, from_config=True)

    def ignored(variable, directive, shown):
        warnings.append(f"{variable} ignored: {directive} {shown} is set by {settings[directive][1]}, which wins")

    port_setting = settings.get("port")
    client_port = _number(config.value("port"), DEFAULT_PORT) or DEFAULT_PORT
    env_on = bool(tls_env.cert_file or tls_env.key_file or tls_env.port)

    if "tls-port" in settings:
        t.tls_port = from_config("tls-port", _number(config.value("tls-port"), 0))
        if tls_env.port is not None and tls_env.port != t.tls_port.value:
            ignored("VALKEY_TLS_PORT", "tls-port", t.tls_port.value)
    elif env_on:
        if tls_env.port:
            t.tls_port = Setting(tls_env.port, "VALKEY_TLS_PORT", "tls-port", "VALKEY_TLS_PORT")
        else:
            where = f"port {client_port} from {port_setting[1]}" if port_setting else f"port {DEFAULT_PORT}"
            t.tls_port = Setting(client_port, f"the client port ({where})", "tls-port", "VALKEY_TLS_PORT")
        generated += ["--tls-port", str(t.tls_port.value)]
    t.on = t.tls_port.value != 0
    t.port = _number(config.value("port"), DEFAULT_PORT)
    if not t.on:
        given = tls_env.given()
        if given:
            warnings.append(
                f"{', '.join(given)} ignored: TLS is off (VALKEY_TLS_CERT_FILE is not set and nothing sets tls-port)"
            )
        return t, [], warnings, notes

    for variable, directive, field in ENV_FILES:
        value = getattr(tls_env, field)
        if directive in settings:
            if config.value(directive):
                t.files[directive] = from_config(directive, config.value(directive))
            if value and value != config.value(directive):
                ignored(variable, directive, config.value(directive) or '""')
        elif value:
            t.files[directive] = Setting(value, variable, directive, variable)
            generated += [f"--{directive}", value]
    for directive in FILE_SETTINGS:
        if directive not in t.files and config.value(directive):
            t.files[directive] = from_config(directive, config.value(directive))
    t.key_password = config.value("tls-key-file-pass") or None
    t.client_key_password = config.value("tls-client-key-file-pass") or None

    # The plaintext port.
    if tls_env.plaintext:
        notes.append(f"port {t.port}: open in clear as well (VALKEY_TLS_PLAINTEXT=yes)")
    elif "port" in config.late:
        if tls_env.plaintext is False and t.port:
            ignored("VALKEY_TLS_PLAINTEXT=no", "port", t.port)
    elif env_on or tls_env.plaintext is False:
        if port_setting and t.port and t.port != t.tls_port.value:
            warnings.append(
                f"VALKEY_TLS_PLAINTEXT=no closes port {t.port} set by {port_setting[1]}: nothing listens in clear "
                f"(TLS on {t.tls_port.value}); VALKEY_TLS_PLAINTEXT=yes keeps it open"
            )
        t.port = 0
        generated += ["--port", "0"]
        notes.append("port 0: nothing listens in clear (VALKEY_TLS_PLAINTEXT is not yes)")
    if t.port and t.port == t.tls_port.value:
        where = f"{port_setting[1]}" if port_setting else "the server's default"
        raise UsageError(
            f"{t.tls_port.label()}: the TLS port {t.port} ({t.tls_port.origin}) is also the plaintext port "
            f"(port {t.port}, {where}); "
            "set VALKEY_TLS_PORT to another port, or leave VALKEY_TLS_PLAINTEXT unset (nothing in clear)"
        )

    cluster_mode = config.is_yes("cluster-enabled")
    replicating = cluster_mode or "replicaof" in settings or "slaveof" in settings
    for field, variable, default in (
        ("auth_clients", "VALKEY_TLS_AUTH_CLIENTS", None),
        ("cluster", "VALKEY_TLS_CLUSTER", "cluster mode" if cluster_mode else None),
        ("replication", "VALKEY_TLS_REPLICATION", "replication" if replicating else None),
    ):
        generated += _setting(t, field, variable, getattr(tls_env, field), default, config, ignored)

    t.server_name = announced_hostname(env, config)
    _check_complete(t, cluster_mode, replicating)
    notes.append(
        f"TLS on port {t.tls_port.value} ({t.tls_port.origin}); tls-auth-clients {t.auth_clients.value}, "
        f"tls-cluster {'yes' if t.cluster.value else 'no'}, tls-replication {'yes' if t.replication.value else 'no'}"
    )
    return t, generated, warnings, notes


def _setting(t, field, variable, env_value, default_reason, config, ignored):
    """Set ``t.<field>`` from the config (it wins), the variable, or the image's default; returns
    the generated args."""
    directive = getattr(t, field).directive
    if directive in config.settings:
        raw = (config.value(directive) or "").lower()
        value = raw if field == "auth_clients" else raw == "yes"
        setattr(t, field, Setting(value, config.settings[directive][1], directive, from_config=True))
        if env_value is not None and env_value != value:
            ignored(variable, directive, raw)
        return []
    if env_value is not None:
        setattr(t, field, Setting(env_value, variable, directive, variable))
        return [f"--{directive}", env_value if isinstance(env_value, str) else ("yes" if env_value else "no")]
    if default_reason:
        setattr(t, field, Setting(True, f"the image's default with TLS and {default_reason}", directive, variable))
        return [f"--{directive}", "yes"]
    return []


def _check_complete(t, cluster_mode, replicating):
    """What valkey-server refuses at start, or what would leave the cluster unable to form."""
    where = t.tls_port.label()
    cert, key = t.files.get("tls-cert-file"), t.files.get("tls-key-file")
    if cert is None and key is None:
        raise UsageError(
            f"{where}: TLS is on (port {t.tls_port.value}) without a certificate: set VALKEY_TLS_CERT_FILE and "
            "VALKEY_TLS_KEY_FILE (the certificate and its private key, PEM)"
        )
    if cert is None or key is None:
        given, missing = (
            (cert, "VALKEY_TLS_KEY_FILE (its private key)") if key is None else (key, "VALKEY_TLS_CERT_FILE")
        )
        raise UsageError(f"{given.label()} is set without {missing}: the server needs both")
    if "tls-client-cert-file" in t.files and "tls-client-key-file" not in t.files:
        raise UsageError(f"{t.files['tls-client-cert-file'].label()} is set without tls-client-key-file")
    needs_ca = [
        s
        for s in (t.auth_clients, t.cluster, t.replication)
        if (s.value if not isinstance(s.value, str) else s.value != "no")
    ]
    if needs_ca and "tls-ca-cert-file" not in t.files and "tls-ca-cert-dir" not in t.files:
        why = ", ".join(
            f"{s.directive} {s.value if isinstance(s.value, str) else 'yes'} ({s.origin})" for s in needs_ca
        )
        raise UsageError(
            f"VALKEY_TLS_CA_CERT_FILE is not set: {why} verify certificates against a CA, and valkey-server "
            "refuses to start without one; set it to the CA that signed the members' and clients' certificates"
            + (" (or VALKEY_TLS_AUTH_CLIENTS=no if clients present none)" if needs_ca == [t.auth_clients] else "")
        )
    if t.port == 0 and cluster_mode and not t.cluster.value:
        raise UsageError(
            f"{t.cluster.label()}: tls-cluster no while nothing listens in clear (port 0): the cluster bus would "
            f"listen on port 10000 and members could not meet; set tls-cluster yes (VALKEY_TLS_CLUSTER=yes)"
        )
    if t.port == 0 and replicating and not t.replication.value:
        raise UsageError(
            f"{t.replication.label()}: tls-replication no while nothing listens in clear (port 0): a replica could "
            "not reach its primary; set tls-replication yes (VALKEY_TLS_REPLICATION=yes)"
        )
