"""Point the peers in nodes.conf at the current IPs of their host names, before the server starts.

The cluster bus dials peers by the IP stored in nodes.conf.  When every member
restarts at once (a StatefulSet rollout, a node pool replaced), every IP changes
and no member can reach any other: gossip never heals that.  Each line also
keeps the host name the peer announced, so resolving it again gives the way back:

    <id> <ip>:<port>@<cport>[,<hostname>[,aux=value...]] <flags> <primary> ...

Only peer lines change (never ``myself``); a peer whose name does not resolve
keeps its old IP, and the server is left to sort it out.
"""

import os

from ..errors import info, warn

RESOLVE_BUDGET = 10.0  # seconds for all names together, retries included


def peer_hostnames(text):
    """The host names of the peers (not ``myself``) in nodes.conf text, in file order."""
    names = []
    for line in text.split("\n"):
        entry = _parse(line)
        if entry and entry[3] and entry[3] not in names:
            names.append(entry[3])
    return names


def _parse(line):
    """(fields, address parts, ip, hostname) of a peer line, or None for anything else."""
    fields = line.split(" ")
    if len(fields) < 8 or fields[0] == "vars" or "myself" in fields[2].split(","):
        return None
    parts = fields[1].split(",")
    ip, sep, _ = parts[0].rpartition(":")
    if not sep:
        return None
    hostname = parts[1] if len(parts) > 1 and "=" not in parts[1] else ""
    return fields, parts, ip, hostname


def refresh_text(text, resolve):
    """Return (new text, [(node id, hostname, old ip, new ip)]).

    ``resolve(hostname)`` returns the host's addresses (an empty list when it
    does not resolve).  A peer keeps its IP when that is still among them.
    """
    out, changes = [], []
    for line in text.split("\n"):
        entry = _parse(line)
        if entry and entry[3]:
            fields, parts, ip, hostname = entry
            addresses = resolve(hostname)
            if addresses and ip not in addresses:
                same_family = [a for a in addresses if (":" in a) == (":" in ip)]
                new_ip = (same_family or addresses)[0]
                parts[0] = new_ip + parts[0][len(ip) :]
                fields[1] = ",".join(parts)
                line = " ".join(fields)
                changes.append((fields[0], hostname, ip, new_ip))
        out.append(line)
    return "\n".join(out), changes


def resolve_all(names, budget=RESOLVE_BUDGET):
    """{name: [addresses]} for the names that resolved within ``budget`` seconds.

    One thread per name, each retrying with backoff (a peer that starts at the
    same moment may not be in DNS yet); getaddrinfo has no timeout of its own,
    so whatever is still pending at the deadline is given up on.
    """
    import socket
    import threading
    import time

    deadline = time.monotonic() + budget
    results = {}

    def lookup(name):
        delay = 0.1
        while True:
            try:
                infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                if time.monotonic() + delay >= deadline:
                    return
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            addresses = []
            for info_entry in infos:
                address = info_entry[4][0].split("%", 1)[0]
                if address not in addresses:
                    addresses.append(address)
            results[name] = addresses
            return

    threads = [threading.Thread(target=lookup, args=(name,), daemon=True) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return dict(results)


def refresh_file(path, resolve=resolve_all):
    """Rewrite ``path`` in place (atomically, same owner and mode) when a peer's IP changed."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            text = f.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return  # a new node: the server writes it
    except OSError as exc:
        warn(f"cannot read {path} to refresh peer addresses: {exc.strerror}")
        return
    names = peer_hostnames(text)
    if not names:
        return
    resolved = resolve(names)
    for name in names:
        if name not in resolved:
            warn(f"{path}: peer {name} does not resolve: it keeps its old IP")
    new_text, changes = refresh_text(text, lambda name: resolved.get(name, []))
    if not changes:
        return
    try:
        _replace(path, new_text.encode("utf-8", "surrogateescape"), st)
    except OSError as exc:
        warn(f"cannot rewrite {path} with the peers' new IPs: {exc.strerror}; starting with the old ones")
        return
    for node_id, hostname, old, new in changes:
        info(f"{path}: peer {node_id[:8]} ({hostname}) {old} -> {new}")


def _replace(path, data, st):
    """Write ``data`` to a temporary file next to ``path`` and rename it over ``path``."""
    directory = os.path.dirname(path) or "."
    temporary = os.path.join(directory, f".{os.path.basename(path)}.bundle-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, st.st_mode & 0o7777)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def needs_helper(cluster):
    """Whether the bootstrap helper runs beside the server: on the creator (or when it may be
    the creator), and on a member that may join and starts without cluster state."""
    return cluster.creator is not False or (cluster.join and alone(cluster))


def alone(cluster):
    """Whether this node starts without cluster state: its nodes.conf is missing or lists no other
    node (a first start, a lost volume).  A node with peers there needs no helper."""
    return peerless(cluster.nodes_conf)


def peerless(nodes_conf):
    """Whether ``nodes_conf`` is missing or lists no node but this one."""
    try:
        with open(nodes_conf, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return True
    except OSError:
        return False  # the server says what is wrong with it
    for line in text.split(b"\n"):
        fields = line.split(b" ", 3)
        if len(fields) == 4 and fields[0] != b"vars" and b"myself" not in fields[2].split(b","):
            return False
    return True
