"""Read the entrypoint's environment variables (syntax only; meaning is the plan's job)."""

from .errors import UsageError
from .module_files import DEFAULT_MODULES_DIR
from .tokens import QuoteError, split_config_args

ARGS_SUFFIX = "_MODULE_ARGS"
# The words a yes/no value may be written with (for switches and value-less flags alike).
TRUE_WORDS = ("1", "yes", "true", "on")
FALSE_WORDS = ("0", "no", "false", "off")
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
        "module_args",
        "modules",
        "modules_dir",
        "password",
    )

    def __init__(self):
        self.modules_dir = DEFAULT_MODULES_DIR
        self.modules = None  # None: all discovered; otherwise [(name, variable)]
        self.disabled = []  # [(name, variable)]
        self.module_args = {}  # variable prefix (the key as written) -> (variable, tokens)
        self.coordinator = "auto"
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


def check_text(name, value):
    """Reject control characters: a newline would let a value inject a config line."""
    for position, c in enumerate(value):
        if c < " " or c == "\x7f":
            raise UsageError(f"{name}: control character {ord(c):#04x} at position {position}; not allowed here")


def split_variable(name, value):
    value = value.strip(" \t\r\n")  # a trailing newline from a YAML block is harmless
    check_text(name, value)
    try:
        return split_config_args(value)
    except QuoteError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _name_list(name, value):
    value = value.strip(" \t\r\n")
    check_text(name, value)
    return [(item, name) for item in value.replace(",", " ").split()]


def _switch(name, value):
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if not lowered or lowered in FALSE_WORDS:
        return False
    raise UsageError(f"{name}={value!r}: expected 1 or 0 (yes/no, true/false, on/off)")


def read_bundle_env(environ):
    env = BundleEnv()
    if "VALKEY_MODULES_DIR" in environ:
        env.modules_dir = environ["VALKEY_MODULES_DIR"].strip() or DEFAULT_MODULES_DIR
        check_text("VALKEY_MODULES_DIR", env.modules_dir)
    if "VALKEY_MODULES" in environ:
        value = environ["VALKEY_MODULES"]
        env.modules = [] if value.strip().lower() == "none" else _name_list("VALKEY_MODULES", value)
    env.disabled = _name_list("VALKEY_DISABLE_MODULES", environ.get("VALKEY_DISABLE_MODULES", ""))
    for name, value in environ.items():
        if name.endswith(ARGS_SUFFIX) and len(name) > len(ARGS_SUFFIX):
            env.module_args[name[: -len(ARGS_SUFFIX)]] = (name, split_variable(name, value))
    coordinator = environ.get("VALKEY_SEARCH_COORDINATOR", "auto").strip().lower() or "auto"
    if coordinator not in ("auto", "yes", "no"):
        raise UsageError(f"VALKEY_SEARCH_COORDINATOR={coordinator!r}: expected auto, yes or no")
    env.coordinator = coordinator
    env.extra_flags = split_variable("VALKEY_EXTRA_FLAGS", environ.get("VALKEY_EXTRA_FLAGS", ""))
    for token in env.extra_flags:
        # Quoted escapes can still make a newline, and the server takes a
        # `--name ...` element raw: refuse it rather than inject a directive.
        check_text("VALKEY_EXTRA_FLAGS", token)
    if any(name.startswith("VALKEY_CLUSTER_") for name in environ):
        from .cluster_settings import read_cluster_env

        read_cluster_env(env, environ)
    elif environ.get("POD_IP"):
        env.announce_ip = (environ["POD_IP"].strip(), "POD_IP")  # checked when cluster mode uses it
    env.dry_run = _switch("VALKEY_BUNDLE_DRY_RUN", environ.get("VALKEY_BUNDLE_DRY_RUN", ""))
    env.debug = _switch("VALKEY_BUNDLE_DEBUG", environ.get("VALKEY_BUNDLE_DEBUG", "")) or (
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
