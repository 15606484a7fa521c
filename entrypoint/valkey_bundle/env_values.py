"""Check and split the text of environment variables (shared by settings and cluster.settings)."""

from .errors import UsageError
from .tokens import QuoteError, split_config_args

# The words a yes/no value may be written with (for switches and value-less flags alike).
TRUE_WORDS = ("1", "yes", "true", "on")
FALSE_WORDS = ("0", "no", "false", "off")


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


def name_list(name, value):
    value = value.strip(" \t\r\n")
    check_text(name, value)
    return [(item, name) for item in value.replace(",", " ").split()]


def switch(name, value):
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if not lowered or lowered in FALSE_WORDS:
        return False
    raise UsageError(f"{name}={value!r}: expected 1 or 0 (yes/no, true/false, on/off)")
