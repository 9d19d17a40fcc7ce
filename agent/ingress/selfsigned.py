"""Self-signed certificates as HAProxy crt files (certificate then key, PEM):
the default one a TLS frontend serves when no SNI matches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_COMMON_NAME = "pilothouse-ingress-default"


def self_signed_pem(
    common_name: str = DEFAULT_COMMON_NAME, dns_names: Sequence[str] = (), days: int = 3650
) -> str:
    """A new P-256 key and a certificate for it naming `common_name` and
    `dns_names` (as subject alternative names), signed by itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = x509.CertificateBuilder(
        issuer_name=name,
        subject_name=name,
        public_key=key.public_key(),
        serial_number=x509.random_serial_number(),
        not_valid_before=start,
        not_valid_after=start + dt.timedelta(days=days),
    )
    if dns_names:
        sans = x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])
        builder = builder.add_extension(sans, critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (cert.public_bytes(serialization.Encoding.PEM) + key_pem).decode()
