"""The server's working directory (``/data``): what sits in it, who owns it, who may use it.

``look`` gathers (stat and access calls only, nothing changes): the directory itself, what
sits directly in it (the AOF directory, the RDB file, ``nodes.conf``, a log file) and what
sits in the AOF directory, never deeper, so that a large volume costs a few calls on
every start.  The rest is pure and decides from that snapshot:

- started as root, which entries to hand to the server's user (``handover``), and which
  capabilities that and the switch to that user need (``missing_capabilities``);
- started as another uid, what that uid cannot use although the server needs it
  (``access_problems``): an error when the server is certain to exit, else a warning.
"""

import os
import stat

R, W, X = os.R_OK, os.W_OK, os.X_OK

# Linux capability numbers (linux/capability.h) of what the entrypoint does as root.
CAPABILITY_BITS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "SETGID": 6, "SETUID": 7}


class Entry:
    """One path as ``lstat`` saw it; ``access``: the os.access bits this process has (0 when unknown)."""

    __slots__ = ("access", "gid", "is_dir", "mode", "path", "uid")

    def __init__(self, path, uid, gid, mode, is_dir, access=0):
        self.path, self.uid, self.gid, self.mode, self.is_dir, self.access = path, uid, gid, mode, is_dir, access

    def can(self, bits):
        return self.access & bits == bits

    def describe(self):
        return f"owner {self.uid}:{self.gid}, mode {self.mode & 0o7777:04o}"


class DataDir:
    """A snapshot of the server's directory.

    top        Entry of the directory itself (None: it does not exist)
    entries    Entry of everything directly in it, then of everything in the AOF directory
    aof_dir    path of the AOF directory (``appenddirname``)
    rdb        path of the RDB file (``dbfilename``)
    nodes_conf path of the cluster's ``nodes.conf`` (``cluster-config-file``)

    What cannot be listed or looked at is left out: nothing is decided about it.
    """

    __slots__ = ("aof_dir", "entries", "nodes_conf", "path", "rdb", "top")

    def __init__(self, path, top, entries, aof_dir, rdb, nodes_conf):
        self.path, self.top, self.entries = path, top, entries
        self.aof_dir, self.rdb, self.nodes_conf = aof_dir, rdb, nodes_conf

    def get(self, path):
        return next((e for e in self.entries if e.path == path), None)

    def inside(self, directory):
        prefix = directory.rstrip("/") + "/"
        return [e for e in self.entries if e.path.startswith(prefix)]


def _entry(path, with_access):
    st = os.lstat(path)
    is_dir = stat.S_ISDIR(st.st_mode)
    access = 0
    if with_access and not stat.S_ISLNK(st.st_mode):
        for bit in (R, W, X):
            if os.access(path, bit):
                access |= bit
    return Entry(path, st.st_uid, st.st_gid, st.st_mode, is_dir, access)


def look(config, with_access):
    """The DataDir of ``config`` (server_config.ServerConfig); ``with_access``: ask os.access
    for each entry (meaningless for root, who may do anything)."""
    path = config.cwd
    aof_dir = os.path.join(path, config.value("appenddirname") or "appendonlydir")
    rdb = os.path.join(path, config.value("dbfilename") or "dump.rdb")
    nodes_conf = os.path.join(path, config.value("cluster-config-file") or "nodes.conf")
    try:
        top = _entry(path, with_access)
    except OSError:
        return DataDir(path, None, [], aof_dir, rdb, nodes_conf)
    if not stat.S_ISDIR(top.mode):
        return DataDir(path, top, [], aof_dir, rdb, nodes_conf)
    entries = []
    for directory in (path, aof_dir):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            try:
                entries.append(_entry(os.path.join(directory, name), with_access))
            except OSError:
                pass
    return DataDir(path, top, entries, aof_dir, rdb, nodes_conf)


# ------------------------------------------------------------------ started as root


def handover(data, uid):
    """(paths to lchown, directories to walk) that give the server's directory to ``uid``.

    Its top owned by another uid: walk all of it (a volume used before by someone else).
    Else only what sits in it that another uid owns: a file is handed over alone, a
    directory with all it holds (root-owned AOF files after a start as ``redis-server``).
    """
    if data is None or data.top is None:
        return [], []
    if data.top.uid != uid:
        return [], [data.path]
    chown, walks = [], []
    for entry in data.entries:  # what sits in the directory comes before what the AOF directory holds
        if entry.uid == uid or any(entry.path.startswith(w + "/") for w in walks):
            continue
        (walks if entry.is_dir else chown).append(entry.path)
    return chown, walks


def read_capabilities(status_text):
    """The names of CAPABILITY_BITS in the effective set of /proc/self/status text, or None."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            try:
                mask = int(line.split(":", 1)[1].strip(), 16)
            except ValueError:
                return None
            return frozenset(name for name, bit in CAPABILITY_BITS.items() if mask >> bit & 1)
    return None


def missing_capabilities(capabilities, handing_over):
    """What a root start lacks: SETUID and SETGID to become the server's user, and CHOWN and
    DAC_OVERRIDE when there is something to hand over.  ``capabilities`` None: unknown."""
    if capabilities is None:
        return [], []
    switch = [c for c in ("SETUID", "SETGID") if c not in capabilities]
    chown = [c for c in ("CHOWN", "DAC_OVERRIDE") if c not in capabilities] if handing_over else []
    return switch, chown


def capability_error(switch, chown, data_dir, uid, gid):
    """One line: what is missing, what for, and the two ways out."""
    parts = []
    if switch:
        parts.append(f"{' and '.join(switch)} (to switch to the valkey user, uid {uid})")
    if chown:
        parts.append(f"{' and '.join(chown)} (to hand {data_dir} to uid {uid})")
    missing = switch + chown
    adds = " ".join(f"--cap-add {c}" for c in missing)
    return (
        f"started as root without the capabilities {' and '.join(parts)}: add them ({adds}), "
        f"or start the container as the valkey user (--user {uid}:{gid}) on a volume that user owns"
    )


# ------------------------------------------------------------------ started as another uid


def access_problems(data, uid, appendonly, cluster):
    """(errors, warnings) about what ``uid`` cannot use in the server's directory.

    An error where the server is certain to exit at start: AOF or cluster mode without a
    writable directory, an AOF directory it cannot write or a file there it cannot read,
    an RDB file it cannot read (loaded when AOF is off), a nodes.conf it cannot open.
    """
    errors, warnings = [], []
    if data is None or data.top is None:
        return errors, warnings
    fix = (
        f"start the container as root (the entrypoint hands {data.path} to the valkey user) or as the "
        f"owner (--user UID:GID), or chown the volume to uid {uid}"
    )

    def refuse(entry, what, consequence):
        errors.append(f"uid {uid} cannot {what} {entry.path} ({entry.describe()}): {consequence}; {fix}")

    top = data.top
    if not top.can(W | X):
        if appendonly:
            refuse(top, "write", "with appendonly yes valkey-server would exit (it cannot write its AOF)")
        elif cluster:
            refuse(top, "write", "in cluster mode valkey-server would exit (it cannot write nodes.conf)")
        else:
            warnings.append(
                f"{data.path} is not writable by uid {uid}: persistence (RDB/AOF, nodes.conf) will fail; "
                "mount a volume this uid can write, or start the container as root"
            )
    aof_dir = data.get(data.aof_dir)
    if appendonly and aof_dir is not None:
        if aof_dir.is_dir and not aof_dir.can(R | W | X):
            refuse(
                aof_dir, "write", "with appendonly yes valkey-server would exit (Error moving temp append only file)"
            )
        for entry in data.inside(data.aof_dir):
            if not entry.is_dir and not entry.can(R):
                refuse(entry, "read", "with appendonly yes valkey-server would exit (it cannot load its AOF)")
                break
    rdb = data.get(data.rdb)
    if not appendonly and rdb is not None and not rdb.is_dir and not rdb.can(R):
        refuse(rdb, "read", "valkey-server would exit (Fatal error loading the DB)")
    nodes_conf = data.get(data.nodes_conf)
    if cluster and nodes_conf is not None and not nodes_conf.is_dir and not nodes_conf.can(R | W):
        refuse(nodes_conf, "open", "in cluster mode valkey-server would exit (it cannot lock nodes.conf)")
    return errors, warnings
