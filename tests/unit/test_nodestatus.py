"""What a real agent reports of its machine: the ids the kubelet reads."""

from __future__ import annotations

from pathlib import Path

from agent.nodestatus import machine_identity


def test_machine_identity_reads_where_the_kubelet_reads(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    boot = tmp_path / "proc/sys/kernel/random"
    boot.mkdir(parents=True)
    (boot / "boot_id").write_text("b0b0b0b0-0000-4000-8000-000000000001\n")
    ids = machine_identity(tmp_path)
    assert ids.machine_id == "0123456789abcdef0123456789abcdef"
    assert ids.boot_id == "b0b0b0b0-0000-4000-8000-000000000001"
    assert ids.system_uuid == ""  # product_uuid unreadable (root only): left empty
    dmi = tmp_path / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text("4c4c4544-0000-1000-8000-000000000000\n")
    assert machine_identity(tmp_path).system_uuid == "4c4c4544-0000-1000-8000-000000000000"
