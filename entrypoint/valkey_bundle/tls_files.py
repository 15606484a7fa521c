"""Check the TLS files before valkey-server starts, so that a bad one is one line naming the
variable (or config line) and the file, not a server that exits or a cluster that never forms:

- every file (and the CA directory) exists and the server's uid can read it (the server opens
  them after the entrypoint dropped to that uid);
- each certificate is one, and is valid now (not expired, not yet to come);
- the key is a private key that belongs to the certificate (and is not encrypted without
  ``tls-key-file-pass``);
- with a CA: the server's certificate verifies against it (and carries the name the member
  announces), and the certificate presented to peers and to the server itself is accepted
  as a client certificate, as the members and the image's own clients will check them;
- a private key that users other than its owner (and the server's group) can read is a warning.

Only the standard library's ``ssl``: an in-memory handshake between two contexts checks what
the members will check.  bundle-healthcheck runs ``check_certificate`` and ``load_pair`` on the
client certificate it presents, so both print the same line.  Nothing here ever prints what a
file holds: messages name paths.
"""

import os
import time

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
X509_V_ERR_HOSTNAME_MISMATCH = 62


class CertificateProblem(ValueError):
    """One line on a TLS file that cannot be used."""


def decode_certificate(path):
    """The certificate's fields as ``ssl`` decodes them (subject, notBefore, notAfter,
    subjectAltName), or None when this Python cannot tell.  CertificateProblem when the file
    holds no PEM certificate."""
    import ssl

    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:  # a private helper of the ssl module: without it, only the handshake checks dates
        return None
    try:
        return decode(path)
    except ssl.SSLError:
        raise CertificateProblem("holds no PEM certificate") from None


def cert_time(text):
    """``Dec  3 05:24:06 2026 GMT`` (OpenSSL's notAfter) -> seconds since the epoch."""
    month, day, clock, year = text.split()[:4]
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return (
        _days_from_civil(int(year), MONTHS.index(month[:3].title()) + 1, int(day)) * 86400
        + hours * 3600
        + minutes * 60
        + seconds
    )


def _days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year - 719468


def show_time(seconds):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def check_certificate(setting, now=None):
    """CertificateProblem when the certificate of ``setting`` (a tls_plan.Setting) is none, has
    expired or is not valid yet; returns its decoded fields (or None)."""
    now = time.time() if now is None else now
    path = setting.value
    try:
        fields = decode_certificate(path)
    except CertificateProblem as exc:
        raise CertificateProblem(f"{setting.label()}: {path} {exc}") from None
    if not fields:
        return fields
    try:
        not_before, not_after = cert_time(fields["notBefore"]), cert_time(fields["notAfter"])
    except (KeyError, ValueError):
        return fields
    if not_after < now:
        raise CertificateProblem(
            f"{setting.label()}: the certificate {path} expired on {show_time(not_after)}: clients and peers refuse "
            "it; renew it"
        )
    if not_before > now:
        raise CertificateProblem(
            f"{setting.label()}: the certificate {path} is not valid before {show_time(not_before)}: clients and "
            "peers refuse it until then (is this machine's clock right?)"
        )
    return fields


def load_pair(context, cert, key, password=None):
    """``context.load_cert_chain`` of the Settings ``cert`` and ``key``; CertificateProblem with one
    line when they cannot be used together."""
    import ssl

    asked = []

    def no_password():
        asked.append(True)
        return b""

    try:
        context.load_cert_chain(cert.value, key.value, password=password if password else no_password)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise CertificateProblem(
                f"{key.label()}: the key {key.value} does not belong to the certificate {cert.value} "
                f"({cert.label()}): give the key the certificate was issued for"
            ) from None
        if asked:
            raise CertificateProblem(
                f"{key.label()}: the key {key.value} is encrypted: give its passphrase with tls-key-file-pass in "
                "the config file, or use an unencrypted key (as Kubernetes Secrets hold them)"
            ) from None
        if password:
            raise CertificateProblem(
                f"{key.label()}: the key {key.value} cannot be read with the passphrase given (tls-key-file-pass) "
                f"or is no PEM private key: {_short(exc)}"
            ) from None
        raise CertificateProblem(f"{key.label()}: {key.value} holds no PEM private key ({_short(exc)})") from None
    except OSError as exc:
        raise CertificateProblem(f"{cert.label()}: cannot read {cert.value} or {key.value}: {exc.strerror}") from None


def _short(exc):
    """An ssl error's text without OpenSSL's source location."""
    text = str(exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else exc)
    return text.split(" (_ssl.c:", 1)[0]


# -- the start's checks


def unreadable(setting, uid, gid, is_key=False, is_dir=False):
    """One line when the server's uid:gid cannot read ``setting``'s file (or search its directory);
    uid None: this process is the server's, and os.access decides."""
    from .file_access import blocker

    path = setting.value
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{setting.label()}: cannot read {path}: {exc.strerror}"
    if is_dir and not os.path.isdir(path):
        return f"{setting.label()}: {path} is not a directory"
    if not is_dir and os.path.isdir(path):
        return f"{setting.label()}: {path} is a directory, not a file"
    if uid is None:
        if os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
            return None
        return f"{setting.label()}: {path} is not readable by uid {os.geteuid()}, the server's user ({_mode(st)})"
    found = blocker(path, uid, gid)
    if found is None:
        return None
    where, st, who = found
    if where != path:
        return (
            f"{setting.label()}: {path} is not readable by uid {uid}, the server's user: it cannot enter {where} "
            f"({_mode(st)}); chmod {who}+x {where}, or start the container as a user that can read it"
        )
    if is_key:
        fix = (
            f"give it to the server's user (chown {uid}:{gid} {path}; chmod 0400) or its group (in Kubernetes: "
            f"fsGroup {gid} and the Secret's defaultMode 0440)"
        )
    else:
        fix = f"chmod a+r{'x' if is_dir else ''} {path}"
    return f"{setting.label()}: {path} is not readable by uid {uid}, the server's user ({_mode(st)}); {fix}"


def _mode(st):
    return f"mode {st.st_mode & 0o7777:04o}, owner {st.st_uid}:{st.st_gid}"


def key_exposure(setting, gid):
    """A warning when users other than the key's owner and the server's group can read it."""
    try:
        st = os.stat(setting.value)
    except OSError:
        return None
    readers = []
    if st.st_mode & 0o004:
        readers.append("every user")
    if st.st_mode & 0o040 and (gid is None or st.st_gid != gid):
        readers.append(f"group {st.st_gid}")
    if not readers:
        return None
    return (
        f"{setting.label()}: the private key {setting.value} is readable by {' and '.join(readers)} ({_mode(st)}): "
        "let only the server's user (or its group) read it: chmod 0400, or 0440 owned by the server's group"
    )


def handshake(server_context, client_context, server_name=None):
    """An in-memory TLS handshake; None when it completed, else (side, exception) of the side
    that failed first ("server": it refused the client's certificate, "client": the server's)."""
    import ssl

    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out, server_hostname=server_name)
    done = {"server": False, "client": False}
    for _ in range(20):
        for side, obj, out, peer_in in (
            ("client", client, client_out, server_in),
            ("server", server, server_out, client_in),
        ):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as exc:
                    return side, exc
            data = out.read()
            if data:
                peer_in.write(data)
        if all(done.values()):
            # TLS 1.3: the server judges the client's certificate after the client finished.
            try:
                server.read(1)
            except ssl.SSLWantReadError:
                return None
            except ssl.SSLError as exc:
                return "server", exc
            return None
    return "client", ssl.SSLError("the handshake did not finish")


def check_chain(tls):
    """CertificateProblem when the members or the image's clients would refuse a certificate of
    ``tls`` (a tls_plan.TlsPlan) checked against its CA; nothing to check without a CA."""
    import ssl

    files = tls.files
    ca_file, ca_dir = files.get("tls-ca-cert-file"), files.get("tls-ca-cert-dir")
    ca = ca_file or ca_dir
    if ca is None:
        return
    cert, key = files["tls-cert-file"], files["tls-key-file"]
    client_cert = files.get("tls-client-cert-file", cert)
    client_key = files.get("tls-client-key-file", key)
    client_password = tls.client_key_password if "tls-client-cert-file" in files else tls.key_password
    presents = tls.cluster.value or tls.replication.value or tls.auth_clients.value != "no"
    locations = {"cafile": ca_file.value if ca_file else None, "capath": ca_dir.value if ca_dir else None}
    ca_text = f"the CA of {ca.label()} ({ca.value})"

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_pair(server, cert, key, tls.key_password)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    name = tls.server_name
    client.check_hostname = bool(name)
    try:
        client.load_verify_locations(**locations)
        if presents:
            server.verify_mode = ssl.CERT_REQUIRED
            server.load_verify_locations(**locations)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateProblem(
            f"{ca.label()}: {ca.value} holds no CA certificate that can be read ({_short(exc)})"
        ) from None
    if presents:
        load_pair(client, client_cert, client_key, client_password)
    failed = handshake(server, client, name)
    if failed is None:
        return
    side, exc = failed
    message = getattr(exc, "verify_message", None) or _short(exc)
    if side == "client" and getattr(exc, "verify_code", 0) == X509_V_ERR_HOSTNAME_MISMATCH:
        fields = decode_certificate(cert.value) or {}
        names = ", ".join(value for _, value in fields.get("subjectAltName", ())) or "none"
        raise CertificateProblem(
            f"{cert.label()}: the certificate {cert.value} is not for {name}, the name this member announces "
            f"(cluster-announce-hostname), which peers and the image's health check verify; its names: {names}"
        )
    if side == "client":
        raise CertificateProblem(
            f"{cert.label()}: the certificate {cert.value} does not verify against {ca_text}: {message}; "
            "members and the image's own clients check it against that CA"
        )
    if "purpose" in message:
        message += " (its extended key usage lacks clientAuth)"
    raise CertificateProblem(
        f"{client_cert.label()}: the certificate {client_cert.value}, which this server presents to its peers "
        f"and itself as a client, is refused by {ca_text}: {message}"
    )


def check_server_files(tls, run_as):
    """Every check of the start on ``tls`` (a tls_plan.TlsPlan with TLS on): returns warnings,
    raises CertificateProblem.  ``run_as``: (uid, gid) the server will run as after a root start,
    None when it runs as this process does."""
    import ssl

    uid, gid = run_as if run_as else (None, os.getegid())
    for directive, setting in tls.files.items():
        is_key = directive in ("tls-key-file", "tls-client-key-file")
        problem = unreadable(setting, uid, gid, is_key=is_key, is_dir=directive == "tls-ca-cert-dir")
        if problem:
            raise CertificateProblem(problem)
    checked = set()
    for directive in ("tls-cert-file", "tls-client-cert-file"):
        setting = tls.files.get(directive)
        if setting and setting.value not in checked:
            check_certificate(setting)
            checked.add(setting.value)
    files = tls.files
    load_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), files["tls-cert-file"], files["tls-key-file"], tls.key_password)
    if "tls-client-cert-file" in files:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        load_pair(context, files["tls-client-cert-file"], files["tls-client-key-file"], tls.client_key_password)
    check_chain(tls)
    warnings = []
    for directive in ("tls-key-file", "tls-client-key-file"):
        if directive in files:
            warning = key_exposure(files[directive], gid)
            if warning:
                warnings.append(warning)
    return warnings
