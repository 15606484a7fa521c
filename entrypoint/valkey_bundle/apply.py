"""Carry out a plan: fix ownership, refresh nodes.conf, drop privileges, write the password
include, start the cluster bootstrap helper and the search index guard, exec.  The only step
with side effects."""

import os

from .errors import warn


def hand_over_directory(path, uid, gid):
    """Give ``path`` (and what is in it) to uid:gid, walking it only when its top is wrong.

    A volume already owned by valkey is left alone, so a large data set does not
    cost a recursive chown on every start.
    """
    try:
        top = os.stat(path)
    except FileNotFoundError:
        return
    if top.st_uid == uid:
        return
    failures = 0
    for root, dirs, files in os.walk(path):
        for name in [None, *dirs, *files]:
            entry = root if name is None else os.path.join(root, name)
            try:
                if os.lstat(entry).st_uid != uid:
                    os.lchown(entry, uid, gid)
            except OSError as exc:
                failures += 1
                if failures == 1:
                    warn(f"cannot hand {entry} to uid {uid}: {exc.strerror}")
    if failures > 1:
        warn(f"{failures} entries under {path} could not be handed to uid {uid}")


def hand_over(targets, uid, gid):
    """Carry out data_dir.handover's (paths to lchown, directories to walk)."""
    chown, walks = targets
    for path in walks:
        hand_over_directory(path, uid, gid)
    for path in chown:
        try:
            os.lchown(path, uid, gid)
        except OSError as exc:
            warn(f"cannot hand {path} to uid {uid}: {exc.strerror}")


def drop_privileges(uid, gid):
    """Become uid:gid; a one-line error (None otherwise) when this process may not.

    The plan refuses a start without SETUID/SETGID when it can read the capabilities;
    this is for when it could not (no /proc)."""
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        return (
            f"cannot switch to uid {uid} ({exc.strerror}): the container lacks SETUID or SETGID; add them "
            f"(--cap-add SETUID --cap-add SETGID), or start it as the valkey user (--user {uid}:{gid})"
        )
    return None


def server_environment():
    """The server's environment: without VALKEY_PASSWORD (it has it from the include)."""
    if "VALKEY_PASSWORD" not in os.environ:
        return os.environ
    return {k: v for k, v in os.environ.items() if k != "VALKEY_PASSWORD"}


def run(plan):
    """Exec the planned command; returns an exit status only when exec fails."""
    program = find_program(plan.argv[0])
    cluster = plan.cluster
    if plan.server:
        if plan.run_as and plan.data_dir:
            hand_over(plan.handover, *plan.run_as)
        if plan.run_as:
            problem = drop_privileges(*plan.run_as)
            if problem:
                from .errors import print_error

                print_error(problem)
                return 2
        if cluster and cluster.refresh_peers:
            from .cluster import refresh_file

            refresh_file(cluster.nodes_conf)  # as the server's user, who owns the file and /data
        if plan.lone_cluster:
            from .cluster import peerless

            if peerless(plan.lone_cluster):
                from .errors import info
                from .plan import lone_cluster_line

                info(lone_cluster_line(plan.lone_cluster))
        old = os.umask(0o077)
        if old != 0o022:
            os.umask(old)  # keep a umask someone chose on purpose
        if plan.data_dir:
            from .aof_holes import repair

            repair(plan.data_dir, find_program("valkey-check-aof"))  # as the server's user, who owns the AOF
        if plan.password:
            from .errors import print_error
            from .secret import include_text, write_private_file

            try:
                write_private_file(plan.password.include, include_text(plan.password.password))
            except OSError as exc:
                print_error(f"{plan.password.password.variable}: cannot write {plan.password.include}: {exc}")
                return 1
        tls = plan.tls.client() if plan.tls is not None else None
        if cluster and program is not None:
            from .cluster import needs_helper, start_helper

            if needs_helper(cluster):
                start_helper(cluster, plan.password.password if plan.password else None, tls)
        if plan.index_guard and program is not None:
            from .index_guard import start_guard

            start_guard(plan.index_guard, plan.password.password if plan.password else None, tls)
    try:
        if program is None:
            raise FileNotFoundError
        os.execve(program, plan.argv, server_environment() if plan.server else os.environ)
    except FileNotFoundError:
        from .errors import print_error

        print_error(f"command not found: {plan.argv[0]}")
        return 127
    except PermissionError:
        from .errors import print_error

        print_error(f"command not executable: {plan.argv[0]}")
        return 126


def find_program(name):
    """Look ``name`` up on PATH as execvp does (os.execvp imports the warnings module)."""
    if "/" in name:
        return name
    fallback = None
    for directory in os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            fallback = fallback or candidate  # exists but is not executable: 126
    return fallback
