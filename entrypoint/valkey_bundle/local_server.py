"""How a process run beside the server (bundle-healthcheck, bundle-info: the probes run them as
processes of their own) finds out where and how the server takes clients: the port, and TLS.

It reads what the entrypoint read: the environment (its own is the container's) and the
server's config, from the command the entrypoint was given.  That command is still in the
argument list of the process that started the entrypoint (tini, PID 1 in the image), while
valkey-server overwrites its own with its process title.  Only PID 1 is asked: in a container
it is the image's own, where on a machine any process could be anyone's.  Then tls_plan.resolve decides, as
it did for the start.  Where no such process can be found (a server started another way),
the environment alone decides, with the server's defaults.
"""

import os

ENTRYPOINT = "bundle-docker-entrypoint"


def entrypoint_command(proc="/proc", pid=1):
    """(the entrypoint's arguments, the directory it started in), from the command line of the
    container's PID 1 (tini, which started the entrypoint), or None when PID 1 is something else
    (a server started another way, a pod that shares its process namespace)."""
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")[:-1]
    except OSError:
        return None
    # tini -s -- bundle-docker-entrypoint ARGS (after docker-init's own words with `docker run --init`)
    for i, word in enumerate(words[:8]):
        if os.path.basename(word) == ENTRYPOINT.encode():
            try:
                cwd = os.readlink(f"{proc}/{pid}/cwd")
            except OSError:
                cwd = os.getcwd()  # probes start in the image's WORKDIR, as the entrypoint did
            return [w.decode("utf-8", "surrogateescape") for w in words[i + 1 :]], cwd
    return None


def local_server(environ, command=None):
    """(port, tls_client.ClientTLS or None) of the server this container runs.  ``command``:
    (the entrypoint's arguments, its directory), found by entrypoint_command when None."""
    from .command import normalise_command
    from .errors import UsageError
    from .server_config import read_server_config
    from .settings import read_bundle_env
    from .tls_plan import resolve

    try:
        env = read_bundle_env(environ)
    except UsageError:
        return 6379, None
    found = entrypoint_command() if command is None else command
    attempts = [found] if found else []
    attempts.append(([], os.getcwd()))  # the environment alone
    for args, cwd in attempts:
        argv, server_mode = normalise_command(args)
        if not server_mode:
            argv = ["valkey-server"]  # the container runs something else: the server's defaults
        try:
            config = read_server_config([*argv[1:], *env.extra_flags], cwd)
            tls = resolve(env, config)[0]
        except UsageError:
            continue  # the server would not have started with it: try with less
        return tls.client_port() or 6379, tls.client()
    return 6379, None
