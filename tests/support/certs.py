"""Certificates for the TLS tests, made here with `cryptography` (the test extra): a CA,
certificates it signs for servers (their DNS names and IPs) and clients, one that has
expired, and a second CA that signs nothing the servers trust.

ECDSA P-256 keys: made in a millisecond, and Valkey, valkey-cli and Python's ssl all take them.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class CA:
    """A certificate authority: ``cert_pem``, and ``issue()`` for certificates it signs."""

    def __init__(self, name: str = "valkey-bundle test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY)
            .not_valid_after(now + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        dns_names: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        usages: tuple[str, ...] = ("server", "client"),
        san: bool = True,
    ) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for ``common_name``; ``usages``: "server" and/or "client"
        (the extended key usage; empty: no such extension); ``san``: with a subjectAltName
        (``dns_names`` and ``ips``)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - DAY)
            .not_valid_after(not_after or now + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        names = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        if san and names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        oids = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage([oids[u] for u in usages]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def expired_dates() -> dict[str, datetime.datetime]:
    """not_before/not_after of a certificate that expired yesterday."""
    now = _now()
    return {"not_before": now - 30 * DAY, "not_after": now - DAY}


def write_pair(directory: Path, name: str, pair: tuple[bytes, bytes], key_mode: int = 0o600) -> tuple[Path, Path]:
    """Write ``name.crt`` and ``name.key``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(pair[0])
    cert.chmod(0o644)
    key.write_bytes(pair[1])
    key.chmod(key_mode)
    return cert, key


def write_ca(directory: Path, name: str, ca: CA) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.crt"
    path.write_bytes(ca.cert_pem)
    path.chmod(0o644)
    return path


def other_key() -> bytes:
    """A private key that belongs to no certificate here (for a key/cert mismatch)."""
    return _pem_key(ec.generate_private_key(ec.SECP256R1()))
