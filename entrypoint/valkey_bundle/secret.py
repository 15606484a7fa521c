"""The server password: read from VALKEY_PASSWORD or VALKEY_PASSWORD_FILE, written to the
generated config include, never shown.

The entrypoint, the cluster bootstrap helper and bundle-healthcheck all read it
here, so they agree on what the password is (a trailing newline, as editors and
``echo`` leave in a file, is not part of it).
"""

import os


class Password:
    """A password that prints as ``***``: it can sit in a plan without leaking into logs."""

    __slots__ = ("value", "variable")

    def __init__(self, value, variable):
        self.value = value
        self.variable = variable

    def __repr__(self):
        return f"<password from {self.variable}: ***>"

    __str__ = __repr__


def read_password(environ):
    """Return a Password or None; ValueError (one line, no secret in it) for bad input."""
    value = environ.get("VALKEY_PASSWORD", "")
    path = environ.get("VALKEY_PASSWORD_FILE", "")
    if value and path:
        raise ValueError("VALKEY_PASSWORD and VALKEY_PASSWORD_FILE are both set: set only one of them")
    if path:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ValueError(f"VALKEY_PASSWORD_FILE: cannot read {path}: {exc.strerror}") from None
        value = data.decode("utf-8", "surrogateescape").rstrip("\r\n")
        variable = "VALKEY_PASSWORD_FILE"
        if not value:
            raise ValueError(f"VALKEY_PASSWORD_FILE: {path} is empty")
    elif value:
        value = value.rstrip("\r\n")
        variable = "VALKEY_PASSWORD"
    else:
        return None
    for position, c in enumerate(value):
        # A control character cannot be typed by clients and would break the
        # config include; the message names the place, never the text.
        if c < " " or c == "\x7f":
            raise ValueError(f"{variable}: control character {ord(c):#04x} at position {position} of the password")
    return Password(value, variable)


def include_text(password):
    """The generated config include: requirepass for clients, masterauth for replication."""
    from .tokens import quote_config_arg

    quoted = quote_config_arg(password.value, always=True)
    return (
        f"# Written by bundle-docker-entrypoint from {password.variable}; regenerated on every start.\n"
        f"requirepass {quoted}\nmasterauth {quoted}\n"
    )


def write_private_file(path, text):
    """Write ``path`` (mode 0600) in its own directory (mode 0700), both owned by this uid.

    The directory sits in a shared /tmp: one that exists must already be ours,
    or someone else could read or swap the file.  Files left by servers that
    are gone (``generated-<pid>.conf``) are removed on the way.
    """
    import stat

    from .detach import server_alive

    directory = os.path.dirname(path)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise PermissionError(f"{directory} exists and is not a directory of uid {os.geteuid()}")
    if st.st_mode & 0o077:
        os.chmod(directory, 0o700)
    for name in os.listdir(directory):
        pid = name[len("generated-") : -len(".conf")] if name.startswith("generated-") else ""
        if pid.isdigit() and os.path.join(directory, name) != path and not server_alive(int(pid)):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
    temporary = path + ".tmp"
    try:
        os.unlink(temporary)
    except FileNotFoundError:
        pass
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)
    os.rename(temporary, path)
