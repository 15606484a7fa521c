"""Run a helper beside the server: forked twice just before the entrypoint execs
valkey-server, so that the server keeps the entrypoint's PID and is not the helper's
parent. The helper ends up a child of PID 1, which reaps it when it exits: init, or in
the image tini (valkey-server as PID 1 would leave it a zombie until its next fork)."""

import os
import sys


def run_beside_server(work, log):
    """Fork ``work()`` (twice) and return in the entrypoint; ``log`` says why it stopped
    if it raises. The helper keeps only stderr, for its log lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child:
        os.waitpid(child, 0)  # the middle process exits at once: nothing left for the server to reap
        return
    status = 1
    try:
        os.setsid()  # not in the server's process group: a terminal's ^C is for the server
        if os.fork():
            status = 0
        else:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.close(devnull)
            status = work()
    except BaseException as exc:
        try:
            log(f"stopped by an unexpected error: {exc!r}")
        except BaseException:
            pass
    finally:
        os._exit(status)  # never return into the entrypoint's code in a child


def server_alive(pid):
    """Whether the server a helper runs beside is still there (another uid's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
