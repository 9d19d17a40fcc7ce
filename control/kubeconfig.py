"""Reading a kubeconfig, as kubectl does, and the client's TLS context.

The API server writes kubeconfigs with its PKI (control.api.pki); clients
read them here, without importing anything of the server.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from control.objects.manifest import yaml_problem


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used to reach the API server."""


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


def client_ssl_context(ca_pem: bytes | None, *, insecure: bool = False) -> ssl.SSLContext:
    """A client context trusting `ca_pem` (None: the system's CAs)."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode("ascii") if ca_pem else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


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
        raise KubeconfigError(f"{path}: not valid YAML: {yaml_problem(e)}") from None
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
