"""Discover module files and read the module facts shipped in modules/*/module.env."""

import os

from .errors import UsageError

DEFAULT_MODULES_DIR = "/usr/lib/valkey"
# Checkout: entrypoint/valkey_bundle -> modules/.  Image: the same layout under
# /usr/local/lib/valkey-bundle, so one relative path serves both.
FACTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "modules")


def module_key(name):
    """``libvalkey_bloom.so`` -> ``BLOOM``; also normalises names users type."""
    name = os.path.basename(name)
    if name.endswith(".so"):
        name = name[:-3]
    if name.startswith("lib"):
        name = name[3:]
    for prefix in ("valkey_", "valkey-"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in name.upper())


def discover_modules(directory):
    """Return ({key: path} sorted by file name, warnings).  Two files, one key: error."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return {}, [f"modules directory {directory} does not exist: starting without modules"]
    except NotADirectoryError:
        raise UsageError(f"VALKEY_MODULES_DIR: {directory} is not a directory") from None
    except OSError as exc:
        raise UsageError(f"VALKEY_MODULES_DIR: cannot list {directory}: {exc.strerror}") from None
    found = {}
    for name in names:
        path = os.path.join(directory, name)
        if not name.endswith(".so") or not os.path.isfile(path):
            continue
        key = module_key(name)
        if key in found:
            raise UsageError(
                f"VALKEY_MODULES_DIR: {found[key]} and {path} are the same module ({key}); remove one of them"
            )
        found[key] = path
    warnings = [] if found else [f"no *.so modules in {directory}: starting without modules"]
    return found, warnings


class ModuleFacts:
    """What the image knows about a module it ships (from modules/<name>/module.env)."""

    __slots__ = (
        "component",
        "coordinator_configs",
        "coordinator_flag",
        "coordinator_port_offset",
        "cpu_features",
        "file",
        "key",
        "name",
        "reindex_config",
        "valueless_flags",
        "version",
    )

    def __init__(self, component, values):
        self.component = component
        self.version = values.get("VERSION", "")
        self.file = values.get("MODULE_FILE", "")
        self.key = module_key(self.file)
        self.name = values.get("MODULE_NAME", "")
        self.valueless_flags = tuple(values.get("MODULE_VALUELESS_FLAGS", "").split())
        self.coordinator_flag = values.get("MODULE_COORDINATOR_FLAG", "")
        self.coordinator_port_offset = int(values.get("MODULE_COORDINATOR_PORT_OFFSET") or 0)
        # "name value" pairs, ";" between them: the server settings the image sets by default
        # when the module's coordinator is on (unless the config or the command sets them).
        self.coordinator_configs = _setting_pairs(values.get("MODULE_COORDINATOR_CONFIGS", ""))
        # The yes/no setting that makes a load index the keys again rather than restore the
        # indexes from the RDB, chosen per data directory (plan.py, index_state.py).
        self.reindex_config = values.get("MODULE_REINDEX_CONFIG", "")
        self.cpu_features = {
            arch: tuple(values.get("MODULE_CPU_FEATURES_" + arch.upper(), "").split()) for arch in ("x86_64", "aarch64")
        }


def _setting_pairs(text):
    """``name value; name value`` -> ((name, value), ...)."""
    return tuple(tuple(pair.split(None, 1)) for pair in text.split(";") if pair.strip())


def parse_env_file(text):
    """Parse the ``NAME=value`` / ``NAME="value"`` lines of a module.env file."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def read_module_facts(facts_dir=FACTS_DIR):
    """Return {key: ModuleFacts} for every module.env that describes a module file."""
    facts = {}
    try:
        components = sorted(os.listdir(facts_dir))
    except OSError:
        return facts
    for component in components:
        try:
            with open(os.path.join(facts_dir, component, "module.env"), encoding="utf-8") as f:
                values = parse_env_file(f.read())
        except OSError:
            continue
        if values.get("MODULE_FILE"):
            module = ModuleFacts(component, values)
            facts[module.key] = module
    return facts
