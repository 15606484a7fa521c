"""What search's indexes say about a member: decisions from replies fetched elsewhere
(health.py, index_guard.py). Pure: nothing here talks to a server.

valkey-search 1.2.1 with its coordinator writes no FT.CREATE into the AOF, only
FT.INTERNAL_UPDATE records, and AOF loading stores those without building the index:
a member restarted from its AOF comes back without every index created since its
AOF was last rewritten, and the coordinator sees nothing to reconcile. What is in the
AOF's RDB base comes back. So the index guard rewrites the AOF after each change of
the index set, and readiness fails while a member lacks an index a peer has, or is
still building one.

valkey-search 1.2.1 also restores a FLAT vector index from an RDB without its id counter
(keys indexed after the load overwrite loaded ones), so a load must index the keys again
(search.skip-rdb-load yes) while an index has a FLAT field. Indexing again opens a window
in which the shard answers with part of its keys, so it is chosen only then: the guard
keeps a record of the indexes in the data directory, read at the next start.
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


# The record of a data directory's search indexes, kept there by the index guard and read
# by the entrypoint at the next start to choose the module's reindex setting
# (MODULE_REINDEX_CONFIG: search.skip-rdb-load). One line per index: its vector
# algorithms (comma separated, "-" for none), a tab, its name.
RECORD_FILE = "bundle-search-indexes"
RECORD_HEADER = "# valkey-bundle search indexes v1"
RECORD_ABOUT = (
    "# Kept by the entrypoint's index guard, read at start: while an index has a FLAT vector\n"
    "# field, a load indexes the keys again. Safe to delete: a load then always does.\n"
)


def vector_algorithms(info):
    """The vector algorithms (FLAT, HNSW) of an FT.INFO reply's fields, or None when the
    reply is not one (an error: the index is gone)."""
    if not isinstance(info, list):
        return None
    found = set()

    def walk(items):
        for i, item in enumerate(items):
            if isinstance(item, list):
                walk(item)
            elif item == "algorithm" and i + 1 < len(items) and isinstance(items[i + 1], list):
                algorithm = items[i + 1]
                for j in range(0, len(algorithm) - 1, 2):
                    if algorithm[j] == "name":
                        found.add(str(algorithm[j + 1]).upper())

    walk(info)
    return frozenset(found)


def record_text(algorithms):
    """The record of ``algorithms`` ({index name: its vector algorithms})."""
    lines = [RECORD_HEADER + "\n", RECORD_ABOUT]
    for name in sorted(algorithms):
        shown = name.encode("unicode_escape").decode("ascii")  # one line per index, whatever its name
        lines.append(f"{','.join(sorted(algorithms[name])) or '-'}\t{shown}\n")
    return "".join(lines)


def read_record(text):
    """{index name: its vector algorithms} from a record, or None when ``text`` is none
    (no record) or not one this version wrote."""
    if text is None or not text.startswith(RECORD_HEADER + "\n"):
        return None
    algorithms = {}
    for line in text.splitlines()[1:]:
        if not line or line.startswith("#"):
            continue
        kinds, sep, name = line.partition("\t")
        if not sep:
            return None
        algorithms[name] = frozenset(k for k in kinds.split(",") if k != "-")
    return algorithms


def has_flat(algorithms):
    return any("FLAT" in kinds for kinds in algorithms.values())


def describe_algorithms(algorithms):
    """One line for the log: which indexes have FLAT fields, or that none has."""
    flat = sorted(name for name, kinds in algorithms.items() if "FLAT" in kinds)
    if flat:
        return f"FLAT vector fields in {', '.join(flat)}"
    return "no FLAT vector field in the indexes" if algorithms else "no search index"


def reindex_choice(record):
    """("yes" or "no", why) for the reindex setting at start, from the record's text (None:
    no record). Unknown is yes: indexing again costs a window, a FLAT index loaded from an
    RDB costs wrong answers."""
    algorithms = read_record(record)
    if algorithms is None:
        why = "no record of this directory's indexes" if record is None else f"{RECORD_FILE} unreadable"
        return "yes", why
    return ("yes" if has_flat(algorithms) else "no"), describe_algorithms(algorithms) + f" ({RECORD_FILE})"


def reindex_steps(setting, algorithms, recorded):
    """What the index guard does to keep the reindex setting and the record right, in order:
    ("set", "yes"/"no") and ("record", algorithms).

    ``setting``: the server's value now; ``algorithms``: its indexes now; ``recorded``:
    what the record holds (None: not known to be written). Turning yes on comes before the
    record, turning it off after: a crash between the two leaves yes in force either way."""
    wanted = "yes" if has_flat(algorithms) else "no"
    steps = []
    if wanted == "yes" and setting != "yes":
        steps.append(("set", "yes"))
    if recorded != algorithms:
        steps.append(("record", algorithms))
    if wanted == "no" and setting != "no":
        steps.append(("set", "no"))
    return steps
