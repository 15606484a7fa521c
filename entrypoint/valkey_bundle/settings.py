"""Read the entrypoint's environment variables (syntax only; meaning is the plan's job)."""

from .env_values import TRUE_WORDS, check_text, name_list, split_variable, switch
from .errors import UsageError
from .module_files import DEFAULT_MODULES_DIR

ARGS_SUFFIX = "_MODULE_ARGS"
SECRET_WORDS = ("pass", "secret", "token", "auth", "credential")


class BundleEnv:
    __slots__ = (
        "announce_hostname",
        "announce_ip",
        "bootstrap",
        "bootstrap_timeout",
        "cluster_nodes",
        "cluster_replicas",
        "coordinator",
        "debug",
        "disabled",
        "dry_run",
        "extra_flags",
        "index_guard",
        "module_args",
        "modules",
        "modules_dir",
        "password",
        "tls",
    )

    def __init__(self):
        self.modules_dir = DEFAULT_MODULES_DIR
        self.modules = None  # None: all discovered; otherwise [(name, variable)]
        self.disabled = []  # [(name, variable)]
        self.module_args = {}  # variable prefix (the key as written) -> (variable, tokens)
        self.coordinator = "auto"
        self.index_guard = True  # VALKEY_SEARCH_INDEX_GUARD: auto (True) or no
        self.extra_flags = []
        self.dry_run = False
        self.debug = False
        self.cluster_nodes = None  # None: unset; otherwise [(host, port)] in the order given
        self.cluster_replicas = None  # None: unset (0)
        self.bootstrap = None  # None: unset (auto); otherwise "auto", "yes" or "no"
        self.bootstrap_timeout = 600.0
        self.announce_ip = None  # (ip, variable it came from) or None
        self.announce_hostname = None
        self.password = None  # secret.Password or None; read in server mode only
        self.tls = None  # tls_settings.TlsEnv when a VALKEY_TLS_* variable is set


def read_bundle_env(environ):
    env = BundleEnv()
    if "VALKEY_MODULES_DIR" in environ:
        env.modules_dir = environ["VALKEY_MODULES_DIR"].strip() or DEFAULT_MODULES_DIR
        check_text("VALKEY_MODULES_DIR", env.modules_dir)
    if "VALKEY_MODULES" in environ:
        value = environ["VALKEY_MODULES"]
        env.modules = [] if value.strip().lower() == "none" else name_list("VALKEY_MODULES", value)
    env.disabled = name_list("VALKEY_DISABLE_MODULES", environ.get("VALKEY_DISABLE_MODULES", ""))
    for name, value in environ.items():
        if name.endswith(ARGS_SUFFIX) and len(name) > len(ARGS_SUFFIX):
            env.module_args[name[: -len(ARGS_SUFFIX)]] = (name, split_variable(name, value))
    coordinator = environ.get("VALKEY_SEARCH_COORDINATOR", "auto").strip().lower() or "auto"
    if coordinator not in ("auto", "yes", "no"):
        raise UsageError(f"VALKEY_SEARCH_COORDINATOR={coordinator!r}: expected auto, yes or no")
    env.coordinator = coordinator
    guard = environ.get("VALKEY_SEARCH_INDEX_GUARD", "auto").strip().lower() or "auto"
    if guard not in ("auto", "no"):
        raise UsageError(f"VALKEY_SEARCH_INDEX_GUARD={guard!r}: expected auto or no")
    env.index_guard = guard == "auto"
    env.extra_flags = split_variable("VALKEY_EXTRA_FLAGS", environ.get("VALKEY_EXTRA_FLAGS", ""))
    for token in env.extra_flags:
        # Quoted escapes can still make a newline, and the server takes a
        # `--name ...` element raw: refuse it rather than inject a directive.
        check_text("VALKEY_EXTRA_FLAGS", token)
    if any(name.startswith("VALKEY_CLUSTER_") for name in environ):
        from .cluster import read_cluster_env

        read_cluster_env(env, environ)
    elif environ.get("POD_IP"):
        env.announce_ip = (environ["POD_IP"].strip(), "POD_IP")  # checked when cluster mode uses it
    if any(name.startswith("VALKEY_TLS_") for name in environ):
        from .tls_settings import read_tls_env

        env.tls = read_tls_env(environ)
    env.dry_run = switch("VALKEY_BUNDLE_DRY_RUN", environ.get("VALKEY_BUNDLE_DRY_RUN", ""))
    env.debug = switch("VALKEY_BUNDLE_DEBUG", environ.get("VALKEY_BUNDLE_DEBUG", "")) or (
        environ.get("DEBUG", "").strip().lower() in TRUE_WORDS
    )
    return env


def redact_args(tokens):
    """Hide the value after any flag whose name suggests a secret (for logs only)."""
    out = []
    hide_next = False
    for token in tokens:
        name, eq, _ = token.partition("=")
        if hide_next:
            out.append("***")
            hide_next = False
        elif eq and any(w in name.lower() for w in SECRET_WORDS):
            out.append(name + "=***")
        else:
            out.append(token)
            hide_next = any(w in token.lower() for w in SECRET_WORDS)
    return out
