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


async def test_rounds_alternate_the_sides_and_the_median_round_decides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hand_rps = iter([1000.0, 1000.0, 400.0, 1000.0, 1000.0])  # round 3: the hand side disturbed
    ingress_rps = iter([950.0, 1000.0, 1000.0, 900.0, 980.0])
    order: list[str] = []

    async def netprobe(netns: Path, mode: str, url: str, *args: str) -> dict[str, object]:
        side = "hand" if f":{ingress.HAND_HTTP_PORT}/" in url else "ingress"
        order.append(side)
        rps = next(hand_rps if side == "hand" else ingress_rps)
        return {"rps": rps, "errors": {}, "p99_ms": 5.0, "cpu_seconds": 0.5, "seconds": 1.0}

    monkeypatch.setattr(ingress, "_netprobe", netprobe)
    urls = ("http://10.0.0.1/", f"http://10.0.0.1:{ingress.HAND_HTTP_PORT}/")
    counts = ingress.Counts(rounds=5)
    rounds = await ingress.measure(tmp_path, urls, "h", tmp_path / "ca", 10, counts)
    assert order == ["ingress", "hand", "hand", "ingress"] * 2 + ["ingress", "hand"]
    assert rounds.ratios() == [0.95, 1.0, 2.5, 0.9, 0.98]
    assert rounds.ratio() == 0.98  # not the disturbed round's 2.5, nor the mean
    assert rounds.median().ingress["rps"] == 980.0
    assert rounds.cpu_share() == 0.5
