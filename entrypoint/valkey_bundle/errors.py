"""How the entrypoint reports problems: one line on stderr, a fixed exit status."""

import sys

PROG = "bundle-docker-entrypoint"


class UsageError(Exception):
    """Bad input (environment, config, command): exit 2 before anything starts."""

    exit_status = 2


def warn(message):
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def print_error(message):
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def info(message):
    """Progress the operator may want in the container log (not a problem)."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)
