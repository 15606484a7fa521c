"""A minimal RESP2 client: enough for health checks and cluster bootstrap (stdlib only), in clear
or over TLS (tls_client.ClientTLS)."""

import socket


class ReplyError(Exception):
    """An error reply (``-ERR ...``) from the server."""


class Connection:
    def __init__(self, host, port, timeout=3.0, decode=True, tls=None, server_name=None):
        """``tls``: a tls_client.ClientTLS to speak TLS with; ``server_name``: the name the server's
        certificate must carry (checked when it is a name, not an address)."""
        if tls is None:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        else:
            from .tls_client import connect

            self.sock = connect(host, port, timeout, tls, server_name)
        self.tls, self.peer = tls, (host, port, server_name)
        self.file = self.sock.makefile("rb")
        self.decode = decode  # bulk strings as str, or as the exact bytes

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, *args):
        """Send one command; return its reply (an error reply is returned, not raised)."""
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        try:
            self.sock.sendall(b"".join(parts))
            return self._read()
        except OSError as exc:
            if self.tls is None:
                raise
            # TLS 1.3: a server that refuses the client's certificate says so after the handshake.
            raise self.tls.failure(exc, *self.peer, after_handshake=True) from None

    def _read(self):
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed by the server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)[:-2]
            return data.decode(errors="replace") if self.decode else data
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._read() for _ in range(size)]
        raise ConnectionError(f"unexpected reply from the server: {line[:40]!r}")


def authenticate(conn, password):
    """AUTH when a password is set; returns None or the error reply."""
    if not password:
        return None
    reply = conn.call("AUTH", password)
    return reply if isinstance(reply, ReplyError) else None
