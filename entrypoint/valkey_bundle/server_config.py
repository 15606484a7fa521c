"""Read the server's configuration the way valkey-server will read it.

The server reads its config file, then appends the command-line options to that
text as extra lines, and applies every line in order: ``include`` reads another
file on the spot (a glob matching nothing is skipped), ``dir`` changes the
working directory at once (so later relative includes resolve from there), and
for every other directive the last one wins.
"""

import os

from .errors import UsageError
from .module_files import module_key
from .tokens import QuoteError, quote_config_arg, split_config_args

# Arguments that make valkey-server print something and exit: no config is read.
INFO_ARGS = frozenset(["-v", "--version", "-h", "--help", "--test-memory", "--check-system"])


class LoadedModule:
    """A ``loadmodule`` the server will execute, and where it was written."""

    __slots__ = ("args", "key", "origin", "path")

    def __init__(self, key, path, args, origin):
        self.key, self.path, self.args, self.origin = key, path, args, origin


class ServerConfig:
    __slots__ = ("config_file", "cwd", "files", "late", "modules", "settings")

    def __init__(self, config_file, cwd):
        self.config_file = config_file
        self.files = []  # every file read, in order
        self.modules = []  # LoadedModule, in load order
        self.settings = {}  # directive -> (args, origin); the last one wins
        self.cwd = cwd  # the working directory once every `dir` was applied
        # Directives last set by the command line (its options, or files it includes):
        # they come after anything the entrypoint generates, so they win over it.
        self.late = set()

    def value(self, name, default=None):
        args = self.settings.get(name)
        return args[0][0] if args and args[0] else default

    def is_yes(self, name):
        return (self.value(name) or "").lower() == "yes"


def split_server_args(args):
    """Return (config file or None, option args) as valkey-server's main() splits them."""
    if args and not args[0].startswith("-"):
        return args[0], args[1:]
    return None, args


def command_line_options(args, config_file_given):
    """Return the config text valkey-server builds from its command-line options.

    ``--name`` opens a directive (its text is taken raw, so one argv element can
    hold ``--loadmodule /x.so --flag``); every other element is appended quoted
    as one value.  A lone ``--save`` before another ``--option`` means ``save ""``.
    """
    out = []
    handled_last = True
    last = len(args) - 1
    for j, arg in enumerate(args):
        if arg == "-" and ((j == 0 and not config_file_given) or j == last):
            continue  # config from stdin: nothing we can read ahead of the server
        if handled_last and arg.startswith("--"):
            if out:
                out.append("\n")
            out.append(arg[2:] + " ")
            try:
                count = len(split_config_args(arg))
            except QuoteError:
                count = 0
            handled_last = count != 1
            if count == 1:
                followed_by_option = j < last and args[j + 1].startswith("--")
                if arg.lower() == "--save" and (followed_by_option or j == last):
                    out.append('""')
                    handled_last = True
                elif arg.lower() == "--sentinel" and followed_by_option:
                    handled_last = True
        else:
            out.append(quote_config_arg(arg, always=True) + " ")
            handled_last = True
    return "".join(out)


def read_server_config(args, cwd):
    """Read the config file, its includes and the command-line options in ``args``."""
    config_file, options = split_server_args(args)
    config = ServerConfig(config_file, cwd)
    reader = _Reader(config)
    if config_file is not None:
        reader.read_file(config_file, None, "config file")
    text = command_line_options(options, config_file is not None)
    reader.late = True
    reader.apply_text(text, "the command line", numbered=False)
    return config


class _Reader:
    def __init__(self, config):
        self.config = config
        self.stack = []  # files being read, to stop include cycles
        self.late = False  # reading the command line (after the generated args)

    def read_file(self, path, origin, what):
        full = os.path.normpath(os.path.join(self.config.cwd, path))
        where = f"{origin}: " if origin else ""
        if full in self.stack:
            chain = " -> ".join(self.stack + [full])
            raise UsageError(f"{where}include cycle: {chain}")
        try:
            with open(full, "rb") as f:
                data = f.read()
        except IsADirectoryError:
            raise UsageError(f"{where}cannot read {what} {path}: it is a directory") from None
        except OSError as exc:
            raise UsageError(f"{where}cannot read {what} {path}: {exc.strerror}") from None
        self.config.files.append(full)
        self.stack.append(full)
        self.apply_text(data.decode("utf-8", "surrogateescape"), full, numbered=True)
        self.stack.pop()

    def include(self, pattern, origin):
        if not has_wildcards(pattern):
            self.read_file(pattern, origin, "included file")
            return
        for path in expand_wildcards(os.path.join(self.config.cwd, pattern)):
            self.read_file(path, origin, "included file")

    def apply_text(self, text, source, numbered):
        config = self.config
        for number, line in enumerate(text.split("\n"), 1):
            line = line.strip(" \t\r\n")
            if not line or line.startswith("#"):
                continue
            origin = f"{source}:{number}" if numbered else source
            try:
                tokens = split_config_args(line)
            except QuoteError as exc:
                raise UsageError(f"{origin}: {exc}") from None
            if not tokens:
                continue
            name = tokens[0].lower()
            if name == "include" and len(tokens) == 2:
                self.include(tokens[1], origin)
            elif name == "loadmodule" and len(tokens) >= 2:
                config.modules.append(LoadedModule(module_key(tokens[1]), tokens[1], tokens[2:], origin))
            else:
                if name == "dir" and len(tokens) == 2:
                    config.cwd = os.path.normpath(os.path.join(config.cwd, tokens[1]))
                config.settings[name] = (tokens[1:], origin)
                if self.late:
                    config.late.add(name)


def has_wildcards(pattern):
    return any(c in pattern for c in "*?[")


def expand_wildcards(pattern):
    """The existing paths matching an absolute ``pattern``, sorted, as glob(3) finds them.

    Written out rather than taken from the glob module, whose imports (re,
    fnmatch) would cost more than the rest of the entrypoint's start-up.
    """
    paths = ["/"]
    for part in pattern.split("/"):
        if not part:
            continue
        found = []
        for base in paths:
            if not has_wildcards(part):
                candidate = os.path.join(base, part.replace("\\", ""))
                if os.path.lexists(candidate):
                    found.append(candidate)
                continue
            try:
                names = os.listdir(base)
            except OSError:
                continue
            hidden_ok = part.startswith(".")
            found.extend(os.path.join(base, n) for n in names if (hidden_ok or n[0] != ".") and wildcard_match(n, part))
        paths = found
    return sorted(paths)


def wildcard_match(name, pattern):
    """fnmatch(3) without flags: ``*``, ``?``, ``[a-z]``, ``[!x]``/``[^x]``, ``\\`` escapes."""
    if not pattern:
        return not name
    c = pattern[0]
    if c == "*":
        rest = pattern.lstrip("*")
        return any(wildcard_match(name[i:], rest) for i in range(len(name) + 1))
    if not name:
        return False
    if c == "?":
        return wildcard_match(name[1:], pattern[1:])
    if c == "[":
        end, matched = _match_class(name[0], pattern)
        if end:
            return matched and wildcard_match(name[1:], pattern[end:])
        # An unclosed bracket is an ordinary character.
    elif c == "\\" and len(pattern) > 1:
        return name[0] == pattern[1] and wildcard_match(name[1:], pattern[2:])
    return name[0] == c and wildcard_match(name[1:], pattern[1:])


def _match_class(char, pattern):
    """Return (index after the class, whether ``char`` is in it), or (0, False) if unclosed."""
    i = 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    matched = False
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and not first:
            return i + 1, matched != negate
        first = False
        if c == "\\" and i + 1 < len(pattern):
            i += 1
            c = pattern[i]
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            high = pattern[i + 2]
            matched |= c <= char <= high
            i += 3
        else:
            matched |= char == c
            i += 1
    return 0, False
