"""Certificates, bearer tokens and kubeconfig files for the API server's TLS listener.

As k3s does: on first start the control plane makes its own CA and a server
certificate signed by it, plus a token file, and writes a kubeconfig that
trusts that CA. Later starts reuse them; the server certificate alone is
reissued when it lacks a requested host name or is close to expiry. Keys and
tokens are written 0600, atomically.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import ipaddress
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.protocol.primitives import is_dns1123_subdomain

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
ROLES = ("admin", "readonly")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PkiError(ValueError):
    """The PKI directory or the token file is unusable."""


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    ca_pem: bytes


# --- files -------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` via a temp file and rename, with `mode` from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# --- certificates ------------------------------------------------------------


def _normalize_hosts(hosts: Iterable[str]) -> tuple[set[str], set[IPAddress]]:
    names: set[str] = set()
    ips: set[IPAddress] = set()
    for h in (*DEFAULT_HOSTS, *hosts):
        h = h.strip().lower()
        if h.startswith("[") and h.endswith("]"):
            h = h[1:-1]
        if not h:
            continue
        try:
            ip = ipaddress.ip_address(h)
        except ValueError:
            # A DNS-1123 subdomain, or one under a "*." wildcard.
            if len(h) > 253 or not is_dns1123_subdomain(h.removeprefix("*.")):
                raise PkiError(
                    f"not a valid host name or IP address for the certificate: {h!r}"
                ) from None
            names.add(h)
            continue
        if not ip.is_unspecified:  # 0.0.0.0 and :: are listen wildcards, not addresses
            ips.add(ip)
    return names, ips


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
    days: int,
    *,
    ca: bool,
) -> x509.CertificateBuilder:
    """A certificate of `key` for `subject`, valid from an hour before `now` for
    `days`: a CA's (it signs certificates) or a server's."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def _new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"pilothouse-ca@{int(now.timestamp())}")]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        _certificate(name, name, key, now, CA_DAYS, ca=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_server_cert(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: set[str],
    ips: set[IPAddress],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(names)]
    sans += [x509.IPAddress(ip) for ip in sorted(ips, key=lambda i: (i.version, int(i)))]
    return _new_leaf_cert(ca, ca_key, "pilothouse-apiserver", ExtendedKeyUsageOID.SERVER_AUTH, sans)


def _new_leaf_cert(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new key and its certificate, signed by the CA, for `usage` (server
    or client authentication)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = _certificate(subject, ca.subject, key, _now(), SERVER_DAYS, ca=False)
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
    ).sign(ca_key, hashes.SHA256())
    return cert, key


def issue_client_cert(pki_dir: Path, common_name: str) -> tuple[Path, Path]:
    """A client certificate and key signed by the cluster CA in `pki_dir`
    (`NAME.crt`, `NAME.key`): a control plane's identity to an etcd that asks
    for client certificates."""
    ca, ca_key = _ensure_ca(pki_dir)
    cert, key = _new_leaf_cert(ca, ca_key, common_name, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    cert_path, key_path = pki_dir / f"{common_name}.crt", pki_dir / f"{common_name}.key"
    _write_atomic(key_path, _key_pem(key), 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def _load_ca(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as e:
        raise PkiError(f"{cert_path}: cannot load the CA certificate: {e}") from None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise PkiError(
            f"{key_path}: the CA key is missing while {cert_path.name} exists; "
            f"restore it, or remove {cert_path.parent} to start a new CA"
        ) from None
    except (OSError, ValueError, TypeError) as e:
        raise PkiError(f"{key_path}: cannot load the CA key: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise PkiError(f"{key_path}: does not match the CA certificate {cert_path}")
    return cert, key


def _server_cert_usable(
    cert_path: Path,
    key_path: Path,
    ca: x509.Certificate,
    names: set[str],
    ips: set[IPAddress],
) -> bool:
    """Whether the existing server certificate is signed by `ca`, current, and covers the hosts."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return False
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_names = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    return names <= have_names and ips <= have_ips


def _ensure_ca(pki_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the cluster CA from `pki_dir`, or make it there."""
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_cert_path, ca_key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    # The key is written before the certificate, so a certificate on disk
    # always has its key; a lone key from an interrupted start is replaced.
    if ca_cert_path.exists():
        return _load_ca(ca_cert_path, ca_key_path)
    ca, ca_key = _new_ca()
    _write_atomic(ca_key_path, _key_pem(ca_key), 0o600)
    _write_atomic(ca_cert_path, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    return ca, ca_key


def ensure_ca(pki_dir: Path) -> bytes:
    """The cluster CA's certificate (PEM), made in `pki_dir` on first use:
    what pods find in the kube-root-ca.crt ConfigMap, with or without a TLS
    listener."""
    return _ensure_ca(pki_dir)[0].public_bytes(serialization.Encoding.PEM)


def ensure_pki(pki_dir: Path, hosts: Iterable[str]) -> Pki:
    """Create, or reuse, the CA and the server certificate in `pki_dir`.

    The server certificate names `hosts` (names or IPs) plus localhost,
    127.0.0.1 and ::1. It is reissued by the same CA when a host is missing, it
    is not signed by the CA, or it expires within 30 days.
    """
    names, ips = _normalize_hosts(hosts)
    ca_cert_path, ca_key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    cert_path, key_path = pki_dir / "server.crt", pki_dir / "server.key"
    ca, ca_key = _ensure_ca(pki_dir)

    if not _server_cert_usable(cert_path, key_path, ca, names, ips):
        cert, key = _new_server_cert(ca, ca_key, names, ips)
        _write_atomic(key_path, _key_pem(key), 0o600)
        _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    return Pki(
        dir=pki_dir,
        ca_cert=ca_cert_path,
        ca_key=ca_key_path,
        server_cert=cert_path,
        server_key=key_path,
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
    )


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving `cert` (a PEM chain) with `key`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# --- tokens ------------------------------------------------------------------


@dataclass(frozen=True)
class TokenEntry:
    token: str
    user: str
    role: str

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return f"TokenEntry(token='***', user={self.user!r}, role={self.role!r})"


@dataclass(frozen=True)
class Tokens:
    path: Path
    entries: tuple[TokenEntry, ...]

    def lookup(self, token: str) -> TokenEntry | None:
        """The entry of a presented bearer token, compared in constant time."""
        presented = token.encode("utf-8", "surrogateescape")
        found: TokenEntry | None = None
        for e in self.entries:
            # No early exit, so timing does not tell which entry matched.
            if hmac.compare_digest(presented, e.token.encode()) and found is None:
                found = e
        return found

    def role_of(self, token: str) -> str | None:
        """`admin`, `readonly`, or None for an unknown token."""
        entry = self.lookup(token)
        return entry.role if entry else None

    def user_of(self, token: str) -> str | None:
        """The user a token names, or None for an unknown token."""
        entry = self.lookup(token)
        return entry.user if entry else None

    def token_for(self, role: str) -> str | None:
        """The first token with `role`, e.g. to write the admin kubeconfig."""
        return next((e.token for e in self.entries if e.role == role), None)

    def require_token(self, role: str) -> str:
        """Like `token_for`, but a missing role is a PkiError naming the file."""
        token = self.token_for(role)
        if token is None:
            raise PkiError(f"{self.path}: no token with role {role!r}")
        return token


_TOKEN_HEADER = "# pilothouse API tokens, one per line: token,user,role (role: admin or readonly)\n"


def load_tokens(path: Path) -> Tokens:
    try:
        text = path.read_text()
    except OSError as e:
        raise PkiError(f"{path}: cannot read the token file: {e.strerror or e}") from None
    entries: list[TokenEntry] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not all(parts):
            raise PkiError(f"{path}:{n}: expected 'token,user,role'")
        token, user, role = parts
        if role not in ROLES:
            raise PkiError(f"{path}:{n}: unknown role {role!r} (want admin or readonly)")
        if any(c.isspace() for c in token) or not token.isascii():
            raise PkiError(f"{path}:{n}: a token must be printable ASCII without spaces")
        if token in seen:
            raise PkiError(f"{path}:{n}: duplicate token")
        seen.add(token)
        entries.append(TokenEntry(token, user, role))
    return Tokens(path, tuple(entries))


def ensure_tokens(path: Path) -> Tokens:
    """Load the token file, creating it (0600) with an admin and a readonly token first."""
    if not path.exists():
        text = (
            _TOKEN_HEADER
            + f"{secrets.token_urlsafe(32)},admin,admin\n"
            + f"{secrets.token_urlsafe(32)},viewer,readonly\n"
        )
        _write_atomic(path, text.encode(), 0o600)
    return load_tokens(path)


# --- kubeconfig --------------------------------------------------------------


def write_kubeconfig(
    path: Path,
    server_url: str,
    ca_pem: bytes | None,
    token: str,
    *,
    cluster_name: str = "pilothouse",
    user: str = "admin",
) -> None:
    """Write a one-cluster kubeconfig (0600, atomically), usable by kubectl."""
    cluster: dict[str, Any] = {"server": server_url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": cluster_name,
        "preferences": {},
    }
    _write_atomic(path, yaml.safe_dump(doc, sort_keys=False).encode(), 0o600)
