"""`bench ingress`'s pure parts (no root): the hand-configured HAProxy's
configuration and the certificate of its TLS host."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from console.bench import ingress


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_the_hand_config_is_valid_and_names_every_pod(tmp_path: Path) -> None:
    cert, key = ingress.certificate_pem(ingress.TLS_HOST)
    (tmp_path / "hand.pem").write_text(cert + key)
    pods = ["10.244.1.2", "10.244.2.3"]
    config = ingress.hand_config("127.0.0.1", pods, tmp_path / "hand.pem")
    assert [line.split()[2] for line in config.splitlines() if line.startswith("    server ")] == [
        "10.244.1.2:80",
        "10.244.2.3:80",
    ]
    (tmp_path / "hand.cfg").write_text(config)
    check = subprocess.run(
        ["haproxy", "-c", "-f", str(tmp_path / "hand.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stderr


def test_the_certificate_names_the_tls_host() -> None:
    cert, key = ingress.certificate_pem("secure.bench.test")
    parsed = x509.load_pem_x509_certificate(cert.encode())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["secure.bench.test"]
    assert "PRIVATE KEY" in key
