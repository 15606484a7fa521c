"""How the image's own clients of the server (bundle-healthcheck, the cluster bootstrap helper,
the search index guard, bundle-info) speak TLS, with the standard library's ``ssl``.

A ClientTLS is what tls_plan.TlsPlan.client() derives from the server's settings: the CA to
verify the server against (the system's trust store when none is set), the certificate and key
to present when the server asks for one (tls-auth-clients yes or optional: the server's own,
or tls-client-cert-file), and the name this server announces, which its certificate must
carry.  Peers are verified against their announced names where they have one, and by the chain
alone where only an address is known.  resp.Connection wraps its socket with it; a failure
becomes one line (TLSFailure) that says which side refused what.
"""

import socket

X509_V_ERR_HOSTNAME_MISMATCH = 62
# OpenSSL's reasons for a handshake with a peer that does not speak TLS.
NOT_TLS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
    "UNEXPECTED_EOF_WHILE_READING",
)


class TLSFailure(ConnectionError):
    """A TLS connection that could not be made or was refused: its text is the one line to show."""


class ClientTLS:
    __slots__ = ("_contexts", "ca_dir", "ca_file", "cert", "key", "key_password", "present_cert", "server_name")

    def __init__(self, ca_file, ca_dir, cert, key, key_password, present_cert, server_name):
        # ca_file, ca_dir, cert, key: tls_plan.Setting or None; key_password: a secret, never shown.
        self.ca_file, self.ca_dir, self.cert, self.key = ca_file, ca_dir, cert, key
        self.key_password = key_password
        self.present_cert = bool(present_cert and cert and key)
        self.server_name = server_name
        self._contexts = {}

    def __repr__(self):
        return f"<ClientTLS {self.as_dict()}>"

    def as_dict(self):
        return {
            "ca_file": self.ca_file.value if self.ca_file else None,
            "ca_dir": self.ca_dir.value if self.ca_dir else None,
            "cert": self.cert.value if self.present_cert else None,
            "key": self.key.value if self.present_cert else None,
            "server_name": self.server_name,
        }

    def ca_text(self):
        ca = self.ca_file or self.ca_dir
        return f"the CA of {ca.label()} ({ca.value})" if ca else "the system's trusted CAs (no CA is set)"

    def context(self, check_hostname):
        """The ssl.SSLContext (cached); TLSFailure when a file of this client cannot be used."""
        context = self._contexts.get(check_hostname)
        if context is not None:
            return context
        import ssl

        from .tls_files import CertificateProblem, check_certificate, load_pair

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = check_hostname
        ca = self.ca_file or self.ca_dir
        try:
            if ca:
                context.load_verify_locations(
                    cafile=self.ca_file.value if self.ca_file else None,
                    capath=self.ca_dir.value if self.ca_dir else None,
                )
            else:
                context.load_default_certs()
        except OSError as exc:
            what = exc.strerror or str(exc).split(" (_ssl.c:", 1)[0]
            raise TLSFailure(f"{ca.label()}: cannot use {ca.value} as the CA: {what}") from None
        if self.present_cert:
            try:
                check_certificate(self.cert)
                load_pair(context, self.cert, self.key, self.key_password)
            except CertificateProblem as exc:
                raise TLSFailure(str(exc)) from None
        self._contexts[check_hostname] = context
        return context

    def wrap(self, sock, server_name=None):
        """``sock`` after a TLS handshake; the server's name is checked when it is a name, not an address."""
        from .addresses import is_ip

        name = server_name if server_name and not is_ip(server_name) else None
        return self.context(bool(name)).wrap_socket(sock, server_hostname=name)

    def failure(self, exc, host, port, server_name=None, after_handshake=False):
        """The exception to raise for ``exc`` on a TLS connection to host:port: a TLSFailure with one
        line when TLS is why, else ``exc`` itself (a timeout, a refused connection).
        ``after_handshake``: on the first exchange after the handshake (TLS 1.3: the server
        judges the client's certificate then)."""
        import ssl

        if isinstance(exc, TLSFailure):
            return exc
        where = f"TLS to {host}:{port}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            if exc.verify_code == X509_V_ERR_HOSTNAME_MISMATCH:
                return TLSFailure(f"{where}: the server's certificate is not for {server_name} (hostname mismatch)")
            return TLSFailure(
                f"{where}: the server's certificate does not verify against {self.ca_text()}: {exc.verify_message}"
            )
        # A reset can come as the OS error itself or through OpenSSL's queue ("[SYS] unknown error").
        reset = isinstance(exc, (ConnectionResetError, BrokenPipeError)) or getattr(exc, "library", None) == "SYS"
        if after_handshake and (reset or isinstance(exc, ssl.SSLEOFError)):
            # valkey-server judges the certificate once the handshake is done, and closes without an alert.
            if self.present_cert:
                who = f"refused this client's certificate {self.cert.value} ({self.cert.label()})"
            else:
                who = "wants a client certificate, and this client presents none (tls-auth-clients no)"
            return TLSFailure(
                f"{where}: the server closed the connection after the handshake: it {who}; its log says why"
            )
        if reset:
            return TLSFailure(f"{where}: the server closed the connection during the TLS handshake ({exc})")
        if not isinstance(exc, ssl.SSLError):
            return exc
        reason = exc.reason or ""
        text = str(exc.args[1] if len(exc.args) > 1 else exc).split(" (_ssl.c:", 1)[0]
        if "ALERT_" in reason:
            alert = reason.split("ALERT_", 1)[1].lower().replace("_", " ")
            if self.present_cert:
                who = f"this client's certificate {self.cert.value} ({self.cert.label()})"
            else:
                who = "this client, which presents no certificate (tls-auth-clients no)"
            return TLSFailure(f"{where}: the server refused {who}: {alert}")
        if reason in NOT_TLS or isinstance(exc, ssl.SSLEOFError):
            return TLSFailure(f"{where}: no TLS there (a plaintext port?): {text}")
        return TLSFailure(f"{where}: {text}")


def connect(host, port, timeout, tls=None, server_name=None):
    """A socket to host:port, after a TLS handshake with ``tls`` (a ClientTLS) when it is given."""
    sock = socket.create_connection((host, port), timeout=timeout)
    if tls is None:
        return sock
    try:
        return tls.wrap(sock, server_name)
    except OSError as exc:
        sock.close()
        raise tls.failure(exc, host, port, server_name) from None
