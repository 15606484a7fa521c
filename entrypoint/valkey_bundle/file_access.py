"""Can the server's uid read the config files the entrypoint read as root?

Started as root, the entrypoint reads the config (and its includes) before it
drops to valkey; the server then opens them again as valkey.  A file in a
directory only root may enter (a private temporary directory, a 0700 mount)
would pass here and kill the server at start.  So the permission bits are
checked the way the kernel checks them for a process without capabilities and
without supplementary groups (the entrypoint drops those): the file must be
readable and every directory above it searchable.
"""

import os

READ, SEARCH = 4, 1


def _allowed(st, uid, gid, bit):
    """Only one class of bits applies: the owner's, else the group's, else the others'."""
    if st.st_uid == uid:
        return bool(st.st_mode >> 6 & bit), "u"
    if st.st_gid == gid:
        return bool(st.st_mode >> 3 & bit), "g"
    return bool(st.st_mode & bit), "o"


def _has_acl(path):
    """An access ACL may grant what the bits deny: then leave the verdict to the server."""
    try:
        os.getxattr(path, "system.posix_acl_access")
    except (OSError, AttributeError):
        return False
    return True


def _directories(path):
    """Every directory a lookup of ``path`` goes through, outermost first (symlinks followed too)."""
    seen = []
    for full in (os.path.normpath(path), os.path.realpath(path)):
        parent = os.path.dirname(full)
        chain = []
        while True:
            chain.append(parent)
            if parent == "/":
                break
            parent = os.path.dirname(parent)
        seen.extend(d for d in reversed(chain) if d not in seen)
    return seen


def blocker(path, uid, gid):
    """None when uid:gid can read ``path``; else (the path in the way, its stat, the class that applies).

    The path in the way is a directory that uid:gid cannot search, or the file itself.
    """
    for directory in _directories(path):
        try:
            st = os.stat(directory)
        except OSError:
            return None  # vanished or odd: the server says what is wrong
        ok, who = _allowed(st, uid, gid, SEARCH)
        if not ok and not _has_acl(directory):
            return directory, st, who
    try:
        st = os.stat(path)
    except OSError:
        return None
    ok, who = _allowed(st, uid, gid, READ)
    if not ok and not _has_acl(path):
        return path, st, who
    return None


def unreadable_config(config, uid, gid):
    """One line on the first config file (or included file) uid:gid cannot read, or None."""
    for index, path in enumerate(config.files):
        found = blocker(path, uid, gid)
        if found is None:
            continue
        what = "config file" if index == 0 and config.config_file is not None else "included file"
        where, st, who = found
        mode = f"mode {st.st_mode & 0o7777:04o}, owner {st.st_uid}:{st.st_gid}"
        if where == path:
            problem, fix = f"({mode})", f"chmod {who}+r {path}"
        else:
            problem, fix = f"(it cannot enter {where}: {mode})", f"chmod {who}+x {where}"
        return (
            f"{what} {path} is not readable by uid {uid}, the server's user {problem}; "
            f"{fix}, or start the container as a user that can read it (--user UID:GID)"
        )
    return None
