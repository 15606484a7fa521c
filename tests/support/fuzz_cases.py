"""Random but reproducible entrypoint inputs: environment values, config files, commands."""

import random

MODULE_FILES = {
    "SEARCH": "libsearch.so",
    "JSON": "libjson.so",
    "BLOOM": "libvalkey_bloom.so",
    "LDAP": "libvalkey_ldap.so",
}
PIECES = [
    "a",
    "Z",
    "9",
    "-",
    "--",
    "=",
    ",",
    " ",
    "  ",
    "\t",
    '"',
    "'",
    "\\",
    '\\"',
    "\\'",
    "\\x41",
    "\\xff",
    "\\n",
    "é",
    "😀",
    "#",
    "*",
    "search",
    "json",
    "bf",
    "bloom",
    "ldap",
    "none",
    "yes",
    "no",
    "--use-coordinator",
]
CONTROL = ["\n", "\r", "\x00", "\x1b", "\x7f"]


# Pieces of a single token: whitespace, both quotes, backslashes, escapes, control
# characters, non-ASCII, and a byte that is not UTF-8.
TOKEN_PIECES = ["a", "Z", "0", "x", "-", "--", "=", "#", " ", "  ", "\t", "\n", '"', "'", "\\", "\\x41"]
TOKEN_PIECES += ["é", "😀", "\x01", "\x7f", "\udcff"]


def random_tokens(rng):
    """A list of 0-5 tokens of 0-7 pieces each (empty tokens included)."""
    return ["".join(rng.choice(TOKEN_PIECES) for _ in range(rng.randrange(0, 8))) for _ in range(rng.randrange(0, 6))]


def random_text(rng, pieces=PIECES, length=6, control=0.05):
    parts = [rng.choice(pieces) for _ in range(rng.randrange(0, length))]
    if rng.random() < control:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(CONTROL))
    return "".join(parts)


def quoted(rng, token):
    """``token`` written in one of the ways a person writes a config value."""
    style = rng.randrange(3)
    if style == 0 and token and not any(c in token for c in " \t\"'\\"):
        return token
    if style == 1 and "'" not in token and "\\" not in token:
        return f"'{token}'"
    return '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'


def random_module_args(rng, server_safe):
    """Args a fixture module accepts (server_safe) or anything at all."""
    if not server_safe and rng.random() < 0.3:
        return random_text(rng, length=8)  # often unbalanced quotes or control characters
    pieces = PIECES if not server_safe else [p for p in PIECES if p != "--use-coordinator"]
    tokens = [random_text(rng, pieces, 4, 0) for _ in range(3)]
    return " ".join(quoted(rng, t) for t in tokens[: rng.randrange(0, 4)])


def random_case(rng, modules_dir, conf_dir, server_safe=False):
    """Return (argv, environ, config text or None)."""
    environ = {"VALKEY_MODULES_DIR": str(modules_dir)}
    keys = list(MODULE_FILES)
    if rng.random() < 0.3:
        chosen = rng.sample(keys + ([] if server_safe else ["serch", "xx"]), rng.randrange(0, 3))
        names = [k.lower() if rng.random() < 0.5 else k for k in chosen]
        environ["VALKEY_MODULES"] = rng.choice([",", " ", ", "]).join(names)
    if rng.random() < 0.2:
        environ["VALKEY_DISABLE_MODULES"] = rng.choice(keys + ([] if server_safe else ["nope"]))
    for key in keys:
        if rng.random() < 0.5:
            environ[f"{key}_MODULE_ARGS"] = random_module_args(rng, server_safe)
    if rng.random() < 0.3:
        environ["VALKEY_SEARCH_COORDINATOR"] = rng.choice(["auto", "yes", "no"] + ([] if server_safe else ["maybe"]))
    if not server_safe and rng.random() < 0.2:
        environ["VALKEY_EXTRA_FLAGS"] = random_text(rng)
    config = None
    argv = []
    if rng.random() < 0.6:
        lines = []
        if rng.random() < 0.5:
            lines.append(f"cluster-enabled {rng.choice(['yes', 'no'])}")
        for key in rng.sample(keys, rng.randrange(0, 3)):
            args = random_module_args(rng, server_safe)
            lines.append(f"loadmodule {quoted(rng, str(modules_dir / MODULE_FILES[key]))} {args}")
        if rng.random() < 0.3:
            lines.append(f"include {quoted(rng, str(conf_dir / rng.choice(['*.inc', 'none-*.inc', 'x?.inc'])))}")
        if not server_safe and rng.random() < 0.15:
            lines.append(random_text(rng, length=10))
        rng.shuffle(lines)
        config = "\n".join(lines) + "\n"
        argv.append(str(conf_dir / "fuzz.conf"))
    if rng.random() < 0.3:
        argv += ["--appendonly", rng.choice(["yes", "no"])]
    return argv, environ, config


def seeded(seed):
    return random.Random(seed)
