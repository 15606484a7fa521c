"""Split and quote text exactly as valkey-server does for config lines.

The server splits every config line (and every ``--name value`` command-line
element, which it appends to its config text) with ``sdssplitargs``.  We mirror
the Valkey 9 rules so that what we generate is read back as the same tokens:
quoted and bare text mix within one token (``"a"b'c'`` is ``abc``; older
servers refused text glued to a closing quote, and the quoting we write never
does that), and a raw 0xff byte is dropped (the server stores each byte in a
signed char and takes -1 for "no character"), so we always write it escaped.

Bytes that are not valid UTF-8 travel as surrogate escapes (as ``os.environ``
and ``os.fsdecode`` carry them), so ``"\\xff"`` splits to ``"\\udcff"``.
"""

# Leading blanks are skipped with C isspace(); a bare token ends on these only.
_SKIP = " \t\n\v\f\r"
_TOKEN_END = " \n\r\t"
_HEX = "0123456789abcdefABCDEF"
_DROPPED = "\udcff"  # a raw 0xff byte: the server loses it
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}
_QUOTE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b"}
# A token made only of these needs no quotes (anything else is quoted).
_BARE_UNSAFE = set(_SKIP) | {'"', "'", "\\"}


class QuoteError(ValueError):
    """The text has unbalanced quotes."""


def split_config_args(text):
    """Return the list of tokens the server reads from one config line."""
    tokens = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SKIP:
            i += 1
        if i >= n:
            return tokens
        current = []
        in_double = in_single = False
        while True:
            c = text[i] if i < n else ""
            if in_double:
                if c == "\\" and i + 3 < n and text[i + 1] == "x" and text[i + 2] in _HEX and text[i + 3] in _HEX:
                    current.append(_byte_char(int(text[i + 2 : i + 4], 16)))
                    i += 3
                elif c == "\\" and i + 1 < n:
                    i += 1
                    if text[i] != _DROPPED:
                        current.append(_ESCAPES.get(text[i], text[i]))
                elif c == '"':
                    in_double = False
                elif not c:
                    raise QuoteError("unbalanced quotes")
                elif c != _DROPPED:
                    current.append(c)
            elif in_single:
                if c == "\\" and i + 1 < n and text[i + 1] == "'":
                    i += 1
                    current.append("'")
                elif c == "'":
                    in_single = False
                elif not c:
                    raise QuoteError("unbalanced quotes")
                elif c != _DROPPED:
                    current.append(c)
            elif not c or c in _TOKEN_END:
                break
            elif c == '"':
                in_double = True
            elif c == "'":
                in_single = True
            elif c != _DROPPED:
                current.append(c)
            i += 1
        token = "".join(current)
        if not token.isascii():
            # \xHH escapes of a multi-byte character decode back to that character.
            token = token.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
        tokens.append(token)


def _byte_char(value):
    # A \xHH escape is one byte: ASCII stays a character, the rest a surrogate escape.
    return chr(value) if value < 0x80 else chr(0xDC00 + value)


def quote_config_arg(token, always=False):
    """Return ``token`` written so that split_config_args reads it back unchanged."""
    if not always and token and not any(_needs_quotes(c) for c in token):
        return token
    out = ['"']
    for c in token:
        escaped = _QUOTE_ESCAPES.get(c)
        if escaped:
            out.append(escaped)
        elif c < " " or c == "\x7f":
            out.append("\\x%02x" % ord(c))
        elif "\udc80" <= c <= "\udcff":
            out.append("\\x%02x" % (ord(c) - 0xDC00))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _needs_quotes(c):
    return c in _BARE_UNSAFE or c < " " or c == "\x7f" or "\udc80" <= c <= "\udcff"


def join_config_args(tokens):
    return " ".join(quote_config_arg(t) for t in tokens)
