"""Normalise the container command: decide whether it starts valkey-server."""

SERVER = "valkey-server"


def normalise_command(args):
    """Return (argv, server_mode) for the command the container was given."""
    if not args:
        return [SERVER], True
    first = args[0]
    if first.startswith("-") or first.endswith(".conf"):
        return [SERVER, *args], True
    if first == SERVER or first.endswith("/" + SERVER):
        return list(args), True
    return list(args), False
