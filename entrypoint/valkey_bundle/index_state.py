"""What search's indexes say about a member: decisions from replies fetched elsewhere
(health.py, index_guard.py). Pure: nothing here talks to a server.

valkey-search 1.2.1 with its coordinator writes no FT.CREATE into the AOF, only
FT.INTERNAL_UPDATE records, and AOF loading stores those without building the index:
a member restarted from its AOF comes back without every index created since its
AOF was last rewritten, and the coordinator sees nothing to reconcile. What is in the
AOF's RDB base comes back. So the index guard rewrites the AOF after each change of
the index set, and readiness fails while a member lacks an index a peer has, or is
still building one.
"""


def index_names(reply):
    """The names FT._LIST answered, or None when it did not (an error: search is not loaded,
    or the server is loading)."""
    if not isinstance(reply, list):
        return None
    return frozenset(str(name) for name in reply)


def parse_info(text):
    """``name:value`` lines of an INFO reply as a dict."""
    fields = {}
    for line in (text or "").splitlines():
        name, sep, value = line.partition(":")
        if sep and not line.startswith("#"):
            fields[name.strip()] = value.strip()
    return fields


def missing_indexes(local, peers):
    """{index: [peers that have it]} for every index some peer has and this member lacks.

    ``peers``: {peer address: its index names}, for the peers that answered."""
    missing = {}
    for address in sorted(peers):
        for name in sorted(peers[address] - local):
            missing.setdefault(name, []).append(address)
    return missing


def readiness_problem(local, peers, search_info):
    """Why this member should not take queries yet (one line), or None.

    ``local``: its index names; ``peers``: as for missing_indexes; ``search_info``: its
    INFO search fields."""
    missing = missing_indexes(local, peers)
    if missing:
        shown = ", ".join(f"{name} (on {', '.join(where)})" for name, where in missing.items())
        return f"lacks search indexes its peers have: {shown}"
    if search_info.get("search_background_indexing_status") == "IN_PROGRESS":
        return "search is still building an index (search_background_indexing_status:IN_PROGRESS)"
    return None


def guard_step(persisted, current, persistence):
    """What the index guard does next: "rewrite" (BGREWRITEAOF now), or None (nothing yet).

    ``persisted``: the index names the AOF's base is known to hold (None: not known, as
    at start); ``current``: FT._LIST now; ``persistence``: INFO persistence fields. A
    rewrite under way is waited for: its base may predate the change."""
    if persistence.get("aof_enabled") != "1":
        return None
    busy = persistence.get("aof_rewrite_in_progress") == "1" or persistence.get("aof_rewrite_scheduled") == "1"
    if busy:
        return None
    if persisted is None:
        # Indexes a peer's reconcile made here are in no local base yet.
        return "rewrite" if current else None
    return "rewrite" if current != persisted else None
