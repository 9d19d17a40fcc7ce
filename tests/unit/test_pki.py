from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from control.api.pki import (
    PkiError,
    ensure_pki,
    ensure_tokens,
    load_tokens,
    server_ssl_context,
    write_kubeconfig,
)
from control.kubeconfig import (
    KubeconfigError,
    KubeconfigTarget,
    client_ssl_context,
    read_kubeconfig,
)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def sans(p: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(p.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def test_generate(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki", ["api.example.com", "10.0.0.5", "[fd00::1]", "0.0.0.0"])
    for p in (pki.ca_cert, pki.ca_key, pki.server_cert, pki.server_key):
        assert p.is_file()
    assert mode(pki.ca_key) == 0o600 and mode(pki.server_key) == 0o600
    assert mode(pki.dir) == 0o700
    assert pki.ca_pem == pki.ca_cert.read_bytes()
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3649
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert 364 <= (server.not_valid_after_utc - server.not_valid_before_utc).days <= 366
    names, ips = sans(pki.server_cert)
    assert names == {"localhost", "api.example.com"}
    assert ips == {"127.0.0.1", "::1", "10.0.0.5", "fd00::1"}  # wildcard 0.0.0.0 left out


def test_reuse_and_reissue(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, ["a.example"])
    server_pem = first.server_cert.read_bytes()
    second = ensure_pki(tmp_path, ["a.example"])
    assert second.ca_pem == first.ca_pem
    assert second.server_cert.read_bytes() == server_pem  # nothing changed: reused
    third = ensure_pki(tmp_path, ["b.example", "192.168.1.1"])
    assert third.ca_pem == first.ca_pem  # same CA ...
    assert third.server_cert.read_bytes() != server_pem  # ... new server cert
    names, ips = sans(third.server_cert)
    assert "b.example" in names and "192.168.1.1" in ips
    ca = x509.load_pem_x509_certificate(third.ca_pem)
    x509.load_pem_x509_certificate(third.server_cert.read_bytes()).verify_directly_issued_by(ca)


def test_reissue_when_server_cert_is_not_from_this_ca(tmp_path: Path) -> None:
    other = ensure_pki(tmp_path / "other", [])
    pki = ensure_pki(tmp_path / "pki", [])
    (tmp_path / "pki" / "server.crt").write_bytes(other.server_cert.read_bytes())
    (tmp_path / "pki" / "server.key").write_bytes(other.server_key.read_bytes())
    again = ensure_pki(tmp_path / "pki", [])
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    x509.load_pem_x509_certificate(again.server_cert.read_bytes()).verify_directly_issued_by(ca)


def test_missing_ca_key_is_an_error_not_a_new_ca(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, [])
    pki.ca_key.unlink()
    with pytest.raises(PkiError, match="the CA key is missing"):
        ensure_pki(tmp_path, [])
    assert pki.ca_cert.read_bytes() == pki.ca_pem


def test_invalid_host(tmp_path: Path) -> None:
    with pytest.raises(
        PkiError, match="not a valid host name or IP address for the certificate: 'bad host'"
    ):
        ensure_pki(tmp_path, ["bad host"])


async def _handshake(port: int, ctx: ssl.SSLContext, hostname: str) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname=hostname
    )
    try:
        writer.write(b"ping\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ssl.SSLError, ConnectionError):
            pass


async def test_tls_handshake_verifies_against_ca(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, ["api.example.com"])

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            writer.write(b"pong " + line)
            await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(
        echo, "127.0.0.1", 0, ssl=server_ssl_context(pki.server_cert, pki.server_key)
    )
    port = server.sockets[0].getsockname()[1]
    try:
        ctx = client_ssl_context(pki.ca_pem)
        assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
        for name in ("127.0.0.1", "localhost", "api.example.com"):
            assert await _handshake(port, ctx, name) == b"pong ping\n"
        # A name outside the SANs fails hostname verification.
        with pytest.raises(ssl.SSLCertVerificationError):
            await _handshake(port, ctx, "evil.example.com")
        # Another CA's clients do not trust this server.
        other = ensure_pki(tmp_path / "other", [])
        with pytest.raises(ssl.SSLCertVerificationError):
            await _handshake(port, client_ssl_context(other.ca_pem), "127.0.0.1")
        assert (
            await _handshake(port, client_ssl_context(None, insecure=True), "x") == b"pong ping\n"
        )
    finally:
        server.close()
        await server.wait_closed()


def test_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    tokens = ensure_tokens(path)
    assert mode(path) == 0o600
    admin, readonly = tokens.token_for("admin"), tokens.token_for("readonly")
    assert admin and readonly and admin != readonly
    assert len(admin) >= 40
    assert tokens.role_of(admin) == "admin"
    assert tokens.role_of(readonly) == "readonly"
    assert tokens.role_of("nope") is None
    assert tokens.role_of("") is None
    assert tokens.role_of(admin[:-1]) is None
    assert tokens.role_of("ünïcode") is None
    lookup = tokens.lookup(readonly)
    assert lookup is not None and lookup.user == "viewer"
    assert admin not in repr(tokens)
    assert tokens.require_token("admin") == admin
    # A second start reuses the file.
    assert ensure_tokens(path).token_for("admin") == admin
    assert f"{admin},admin,admin" in path.read_text()


def test_hand_written_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("# comment\n\nabc,alice,admin\n def , bob , readonly \n")
    tokens = load_tokens(path)
    assert tokens.role_of("abc") == "admin"
    assert tokens.role_of("def") == "readonly"
    assert tokens.token_for("readonly") == "def"
    with pytest.raises(PkiError, match="no token with role 'admin'"):
        load_tokens(_write(tmp_path / "r.csv", "x,bob,readonly\n")).require_token("admin")


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc,alice\n", ":1: expected 'token,user,role'"),
        ("ok,a,admin\nabc,alice,root\n", ":2: unknown role 'root' (want admin or readonly)"),
        ("abc,a,admin\nabc,b,readonly\n", ":2: duplicate token"),
        ("a b,alice,admin\n", ":1: a token must be printable ASCII without spaces"),
    ],
)
def test_bad_tokens_file(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "tokens.csv", text)
    with pytest.raises(PkiError) as e:
        ensure_tokens(path)
    assert str(e.value) == f"{path}{message}"


def test_kubeconfig_round_trip(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki", [])
    path = tmp_path / "kube" / "config"
    write_kubeconfig(path, "https://127.0.0.1:6443", pki.ca_pem, "tok123")
    assert mode(path) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "pilothouse"
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert (
        base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) == pki.ca_pem
    )
    assert doc["users"] == [{"name": "admin", "user": {"token": "tok123"}}]
    assert doc["contexts"] == [
        {"name": "pilothouse", "context": {"cluster": "pilothouse", "user": "admin"}}
    ]
    assert read_kubeconfig(path) == KubeconfigTarget(
        "https://127.0.0.1:6443", pki.ca_pem, "tok123", False
    )
    # Overwriting keeps the mode and leaves no temp files.
    write_kubeconfig(path, "https://[::1]:6443", None, "t2", cluster_name="c", user="ro")
    assert read_kubeconfig(path) == KubeconfigTarget("https://[::1]:6443", None, "t2", False)
    assert [p.name for p in path.parent.iterdir()] == ["config"]
    assert "t2" not in repr(read_kubeconfig(path))


def test_kubeconfig_files_contexts_and_token_file(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki", [])
    (tmp_path / "tok").write_text("from-file\n")
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "prod",
        "clusters": [
            {
                "name": "p",
                "cluster": {"server": "https://prod:6443", "certificate-authority": "pki/ca.crt"},
            },
            {
                "name": "d",
                "cluster": {"server": "https://dev:6443", "insecure-skip-tls-verify": True},
            },
        ],
        "users": [{"name": "u1", "user": {"tokenFile": "tok"}}, {"name": "u2", "user": {}}],
        "contexts": [
            {"name": "prod", "context": {"cluster": "p", "user": "u1"}},
            {"name": "dev", "context": {"cluster": "d", "user": "u2"}},
        ],
    }
    path = _write(tmp_path / "kubeconfig", yaml.safe_dump(doc))
    assert read_kubeconfig(path) == KubeconfigTarget(
        "https://prod:6443", pki.ca_pem, "from-file", False
    )
    assert read_kubeconfig(path, context="dev") == KubeconfigTarget(
        "https://dev:6443", None, None, True
    )
    # Without current-context, a lone context is used.
    del doc["current-context"]
    doc["contexts"] = doc["contexts"][:1]
    assert read_kubeconfig(_write(path, yaml.safe_dump(doc))).server == "https://prod:6443"


def _kc(cluster: dict[str, object], user: dict[str, object] | None = None, ctx: str = "c") -> str:
    return yaml.safe_dump(
        {
            "current-context": ctx,
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "u", "user": user or {"token": "t"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        }
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such kubeconfig file"),
        ("a: [", "not valid YAML"),
        ("- 1\n", "not a kubeconfig (expected a YAML map)"),
        ("clusters: []\n", "current-context is not set"),
        (_kc({"server": "https://x"}, ctx="other"), "context 'other' not found"),
        (_kc({}), "cluster 'c': server must be an http(s) URL, got None"),
        (_kc({"server": "x:6443"}), "server must be an http(s) URL, got 'x:6443'"),
        (_kc({"server": "https://x", "certificate-authority-data": "!!!"}),
         "cluster 'c': certificate-authority-data is not valid base64"),
        (_kc({"server": "https://x", "certificate-authority-data": base64.b64encode(b"junk").decode()}),
         "cluster 'c': the certificate authority is not a PEM certificate"),
        (_kc({"server": "https://x", "certificate-authority": "missing.crt"}),
         "cluster 'c': certificate-authority: cannot read"),
        (_kc({"server": "https://x"}, {"tokenFile": "missing"}), "user 'u': tokenFile: cannot read"),
        (_kc({"server": "https://x"}, {"client-certificate-data": "x", "client-key-data": "y"}),
         "user 'u' authenticates with client-certificate-data, which pilothouse does not support"),
        (_kc({"server": "https://x"}, {"exec": {"command": "aws"}}),
         "user 'u' authenticates with exec, which pilothouse does not support"),
    ],
)  # fmt: skip
def test_kubeconfig_errors(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "kubeconfig"
    if text is not None:
        path.write_text(text)
    with pytest.raises(KubeconfigError) as e:
        read_kubeconfig(path)
    assert str(e.value).startswith(f"{path}: ")
    assert message in str(e.value)


def test_ipaddress_sans_are_ip_entries(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, ["10.1.2.3"])
    cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.1.2.3") in san.get_values_for_type(x509.IPAddress)
    assert "10.1.2.3" not in san.get_values_for_type(x509.DNSName)
