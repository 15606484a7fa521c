"""The index guard: beside a cluster member whose search runs the coordinator, rewrite the
AOF after every change of the index set, so that a restart brings the indexes back
(index_state.py says why valkey-search 1.2.1 needs this). A helper process, started by
the entrypoint just before it execs the server, for the server's lifetime.

Each turn (every ``INTERVAL`` seconds) it reads FT._LIST and INFO persistence and does
what index_state.guard_step decides: BGREWRITEAOF when the set differs from the one the
AOF's base holds, then waits for that rewrite to finish before it counts the set as
persisted. It idles while AOF is off, and ends when the server is gone.
"""

import os
import sys
import time

from .errors import PROG
from .index_state import guard_step, index_names, parse_info

INTERVAL = 0.5  # seconds between turns: the window in which a crash loses a new index


def log(message):
    print(f"{PROG}: search index guard: {message}", file=sys.stderr, flush=True)


class Guard:
    def __init__(self, port, password, server_pid, tls=None):
        self.port = port
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
        persistence = self.call("INFO", "persistence")
        if names is None or not isinstance(persistence, str):
            return  # loading, or not reachable yet
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

    def run(self):
        while self.server_alive():
            self.turn()
            time.sleep(INTERVAL)
        return 0


def start_guard(port, password, tls=None):
    """Fork the guard (twice) and return in the entrypoint, which then execs the server."""
    from .detach import run_beside_server

    server_pid = os.getpid()
    run_beside_server(lambda: Guard(port, password.value if password else None, server_pid, tls).run(), log)
