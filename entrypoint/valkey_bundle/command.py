"""Normalise the container command: decide whether it starts valkey-server."""

SERVER = "valkey-server"
# Every name the image gives the server: /usr/local/bin/redis-server is a link to it.
SERVER_NAMES = (SERVER, "redis-server")


def is_server(name):
    """``valkey-server``, ``redis-server``, or a path to either."""
    return name.rpartition("/")[2] in SERVER_NAMES


def normalise_command(args):
    """Return (argv, server_mode) for the command the container was given."""
    if not args:
        return [SERVER], True
    first = args[0]
    if first.startswith("-") or first.endswith(".conf"):
        return [SERVER, *args], True
    if is_server(first):
        return list(args), True
    return list(args), False
