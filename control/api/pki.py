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
import re
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

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
ROLES = ("admin", "readonly")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PkiError(ValueError):
    """The PKI directory or the token file is unusable."""


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used to reach the API server."""


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

_DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


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
            if not _DNS_NAME.match(h) or len(h) > 253:
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


def _new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"pilothouse-ca@{int(now.timestamp())}")]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(names)]
    sans += [x509.IPAddress(ip) for ip in sorted(ips, key=lambda i: (i.version, int(i)))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pilothouse-apiserver")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


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


def ensure_pki(pki_dir: Path, hosts: Iterable[str]) -> Pki:
    """Create, or reuse, the CA and the server certificate in `pki_dir`.

    The server certificate names `hosts` (names or IPs) plus localhost,
    127.0.0.1 and ::1. It is reissued by the same CA when a host is missing, it
    is not signed by the CA, or it expires within 30 days.
    """
    names, ips = _normalize_hosts(hosts)
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_cert_path, ca_key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    cert_path, key_path = pki_dir / "server.crt", pki_dir / "server.key"

    # The key is written before the certificate, so a certificate on disk
    # always has its key; a lone key from an interrupted start is replaced.
    if ca_cert_path.exists():
        ca, ca_key = _load_ca(ca_cert_path, ca_key_path)
    else:
        ca, ca_key = _new_ca()
        _write_atomic(ca_key_path, _key_pem(ca_key), 0o600)
        _write_atomic(ca_cert_path, ca.public_bytes(serialization.Encoding.PEM), 0o644)

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


def client_ssl_context(ca_pem: bytes | None, *, insecure: bool = False) -> ssl.SSLContext:
    """A client context trusting `ca_pem` (None: the system's CAs)."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode("ascii") if ca_pem else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
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


@dataclass(frozen=True)
class KubeconfigTarget:
    server: str
    ca_pem: bytes | None
    token: str | None
    insecure: bool = False

    def __repr__(self) -> str:
        token = "'***'" if self.token else "None"
        ca = "<pem>" if self.ca_pem else "None"
        return (
            f"KubeconfigTarget(server={self.server!r}, ca_pem={ca}, token={token}, "
            f"insecure={self.insecure})"
        )


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


def _named(doc: dict[str, Any], section: str, name: str, path: Path) -> dict[str, Any]:
    items = doc.get(section) or []
    if not isinstance(items, list):
        raise KubeconfigError(f"{path}: {section}: expected a list")
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(section[:-1])  # clusters[].cluster, users[].user, contexts[].context
            if not isinstance(body, dict):
                raise KubeconfigError(
                    f"{path}: {section[:-1]} {name!r} has no {section[:-1]!r} map"
                )
            return body
    raise KubeconfigError(f"{path}: {section[:-1]} {name!r} not found")


def _read_referenced(ref: Any, key: str, base: Path, path: Path) -> bytes:
    if not isinstance(ref, str) or not ref:
        raise KubeconfigError(f"{path}: {key}: expected a file path")
    file = Path(ref).expanduser()
    if not file.is_absolute():
        file = base / file  # relative to the kubeconfig, as kubectl resolves it
    try:
        return file.read_bytes()
    except OSError as e:
        raise KubeconfigError(f"{path}: {key}: cannot read {file}: {e.strerror or e}") from None


def read_kubeconfig(path: Path, *, context: str | None = None) -> KubeconfigTarget:
    """Where and how to reach the API server, from a kubeconfig's current (or given) context.

    Understands certificate-authority-data, certificate-authority (a file),
    insecure-skip-tls-verify, token and tokenFile. Raises KubeconfigError when
    the file cannot be used, e.g. when the user authenticates only with a
    client certificate or an exec plugin.
    """
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise KubeconfigError(f"{path}: no such kubeconfig file") from None
    except OSError as e:
        raise KubeconfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise KubeconfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{path}: not a kubeconfig (expected a YAML map)")
    base = path.parent

    name = context or doc.get("current-context")
    if not name:
        contexts = doc.get("contexts") or []
        if isinstance(contexts, list) and len(contexts) == 1 and isinstance(contexts[0], dict):
            name = contexts[0].get("name")
        if not name:
            raise KubeconfigError(f"{path}: current-context is not set")
    ctx = _named(doc, "contexts", str(name), path)

    cluster_name = ctx.get("cluster")
    if not cluster_name:
        raise KubeconfigError(f"{path}: context {name!r} names no cluster")
    cluster = _named(doc, "clusters", str(cluster_name), path)
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise KubeconfigError(
            f"{path}: cluster {cluster_name!r}: server must be an http(s) URL, got {server!r}"
        )
    insecure = bool(cluster.get("insecure-skip-tls-verify", False))

    ca_pem: bytes | None = None
    if cluster.get("certificate-authority-data"):
        try:
            ca_pem = base64.b64decode(str(cluster["certificate-authority-data"]), validate=True)
        except ValueError:
            raise KubeconfigError(
                f"{path}: cluster {cluster_name!r}: certificate-authority-data is not valid base64"
            ) from None
    elif cluster.get("certificate-authority"):
        ca_pem = _read_referenced(
            cluster["certificate-authority"],
            f"cluster {cluster_name!r}: certificate-authority",
            base,
            path,
        )
    if ca_pem is not None and b"-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise KubeconfigError(
            f"{path}: cluster {cluster_name!r}: the certificate authority is not a PEM certificate"
        )

    token: str | None = None
    user_name = ctx.get("user")
    if user_name:
        user = _named(doc, "users", str(user_name), path)
        if user.get("token"):
            token = str(user["token"])
        elif user.get("tokenFile"):
            raw = _read_referenced(user["tokenFile"], f"user {user_name!r}: tokenFile", base, path)
            token = raw.decode("utf-8", "replace").strip() or None
            if token is None:
                raise KubeconfigError(f"{path}: user {user_name!r}: tokenFile is empty")
        else:
            unsupported = [
                k
                for k in (
                    "client-certificate",
                    "client-certificate-data",
                    "exec",
                    "auth-provider",
                    "username",
                )
                if user.get(k)
            ]
            if unsupported:
                raise KubeconfigError(
                    f"{path}: user {user_name!r} authenticates with {unsupported[0]}, "
                    "which pilothouse does not support; use a bearer token (token or tokenFile)"
                )
    return KubeconfigTarget(server=server, ca_pem=ca_pem, token=token, insecure=insecure)
