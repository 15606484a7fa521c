"""The index guard: a helper process beside a server that loads search, started by the
entrypoint just before it execs the server, for the server's lifetime. Two duties, as the
plan says (plan.index_guard):

- beside a cluster member whose search runs the coordinator, rewrite the AOF after every
  change of the index set, so that a restart brings the indexes back (index_state.py says
  why valkey-search 1.2.1 needs this): BGREWRITEAOF when the set differs from the one the
  AOF's base holds (index_state.guard_step), then wait for that rewrite to finish before
  counting the set as persisted; idle while AOF is off;
- when the entrypoint chose the reindex setting (search.skip-rdb-load), keep it and the data
  directory's record of the indexes right (index_state.reindex_steps): yes while an index
  has a FLAT vector field, no otherwise, so that the next start chooses the same.

Each turn (every ``INTERVAL`` seconds) reads FT._LIST (and FT.INFO of each index when the
set changed or every ``REFRESH`` turns); the guard ends when the server is gone.
"""

import os
import sys
import time

from .errors import PROG
from .index_state import (
    describe_algorithms,
    guard_step,
    index_names,
    parse_info,
    record_text,
    reindex_steps,
    vector_algorithms,
)

INTERVAL = 0.5  # seconds between turns: the window in which a crash loses a new index
REFRESH = 20  # turns between two readings of every index's fields (an index dropped and made again)


def log(message):
    print(f"{PROG}: search index guard: {message}", file=sys.stderr, flush=True)


def write_durably(path, text):
    """Replace ``path`` with ``text``, on disk before this returns (a crash leaves the old
    file or the new one)."""
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Guard:
    def __init__(self, duties, password, server_pid, tls=None):
        self.port = duties["port"]
        self.rewrite_aof = duties["rewrite_aof"]
        self.reindex_config = duties["reindex_config"]  # None: not the guard's to keep
        self.setting = duties["reindex"]  # its value in the server, as last set
        self.record = duties["record"]  # path of the data directory's record
        self.recorded = None  # what the record holds, once written here
        self.algorithms = None  # {index: its vector algorithms}, as last read
        self.turns = 0
        self.failed = None  # the last failure logged, so that each is logged once
        self.password = password
        self.tls = tls  # tls_client.ClientTLS when the server speaks TLS
        self.refused = None  # the last TLS failure logged, so that each is logged once
        self.server_pid = server_pid
        self.conn = None
        self.persisted = None  # index names the AOF base holds, once known
        self.pending = None  # (names, rewrites count before) of a rewrite asked for

    def server_alive(self):
        from .detach import server_alive

        return server_alive(self.server_pid)

    def connection(self):
        from .resp import Connection, ReplyError, authenticate

        if self.conn is None:
            try:
                tls = self.tls
                conn = Connection("127.0.0.1", self.port, 5.0, tls=tls, server_name=tls and tls.server_name)
            except OSError as exc:
                self.report(exc)
                return None
            try:
                error = authenticate(conn, self.password)
            except OSError as exc:
                self.report(exc)
                conn.close()
                return None
            if isinstance(error, ReplyError):
                conn.close()
                return None
            self.conn = conn
        return self.conn

    def report(self, exc):
        """Log a TLS failure (a certificate refused) once; a server not up yet is no news."""
        from .tls_client import TLSFailure

        if isinstance(exc, TLSFailure) and str(exc) != self.refused:
            self.refused = str(exc)
            log(f"{exc}; trying again")

    def call(self, *args):
        conn = self.connection()
        if conn is None:
            return None
        try:
            return conn.call(*args)
        except OSError:
            conn.close()
            self.conn = None
            return None

    def turn(self):
        names = index_names(self.call("FT._LIST"))
        if names is None:
            return  # loading, or not reachable yet
        if self.reindex_config:
            self.keep_reindex_setting(names)
        if self.rewrite_aof:
            self.keep_aof(names)
        self.turns += 1

    def keep_aof(self, names):
        persistence = self.call("INFO", "persistence")
        if not isinstance(persistence, str):
            return
        fields = parse_info(persistence)
        if self.pending:
            wanted, before = self.pending
            if fields.get("aof_rewrite_in_progress") == "1" or fields.get("aof_rewrite_scheduled") == "1":
                return
            if int(fields.get("aof_rewrites", "0")) > before and fields.get("aof_last_bgrewrite_status") == "ok":
                self.persisted = wanted
                log(f"the AOF now holds the indexes {', '.join(sorted(wanted)) or '(none)'}")
            self.pending = None
            return
        if fields.get("aof_enabled") == "1" and self.persisted is None and not names:
            self.persisted = names  # nothing to keep
        if guard_step(self.persisted, names, fields) == "rewrite":
            reply = self.call("BGREWRITEAOF")
            if isinstance(reply, str):
                self.pending = (names, int(fields.get("aof_rewrites", "0")))
            elif reply is not None:
                log(f"BGREWRITEAOF: {reply}; trying again")

    def read_algorithms(self, names):
        """{index: its vector algorithms} now, or None when a reply was missing."""
        known = self.algorithms or {}
        if set(known) == names and self.turns % REFRESH:
            return known
        algorithms = {}
        for name in names:
            kinds = vector_algorithms(self.call("FT.INFO", name, "LOCAL"))
            if kinds is None:
                return None  # dropped meanwhile, or the server went away: next turn
            algorithms[name] = kinds
        return algorithms

    def keep_reindex_setting(self, names):
        algorithms = self.read_algorithms(names)
        if algorithms is None:
            return
        self.algorithms = algorithms
        for step, value in reindex_steps(self.setting, algorithms, self.recorded):
            if step == "set":
                reply = self.call("CONFIG", "SET", self.reindex_config, value)
                if reply != "OK":
                    self.fail(f"CONFIG SET {self.reindex_config} {value}: {reply}; trying again")
                    return
                self.setting = value
                log(f"{self.reindex_config} {value}: {describe_algorithms(algorithms)}")
            else:
                try:
                    write_durably(self.record, record_text(value))
                except OSError as exc:
                    # Without a record the next start takes yes: no harm, but say so.
                    self.fail(f"cannot write {self.record}: {exc}; loads index the keys again until it can")
                    return
                self.recorded = value

    def fail(self, message):
        if message != self.failed:
            self.failed = message
            log(message)

    def run(self):
        while self.server_alive():
            self.turn()
            time.sleep(INTERVAL)
        return 0


def start_guard(duties, password, tls=None):
    """Fork the guard (twice) and return in the entrypoint, which then execs the server."""
    from .detach import run_beside_server

    server_pid = os.getpid()
    run_beside_server(lambda: Guard(duties, password.value if password else None, server_pid, tls).run(), log)
