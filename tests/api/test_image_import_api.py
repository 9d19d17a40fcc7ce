"""The image import endpoint's access rules and request checks, over TLS
with bearer tokens; the import itself is tested on hollow nodes
(tests/nodes/test_image_import.py) and on containerd (tests/agent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.client import Client
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.kubeconfig import read_kubeconfig
from tests.unit.test_image_import import write_oci


async def test_the_readonly_role_may_not_import(plane: ControlPlane, tmp_path: Path) -> None:
    ro = read_kubeconfig(plane.config.data_dir / "kubeconfig-readonly")
    archive = write_oci(tmp_path / "img.tar", size=3 * 1024 * 1024)
    async with Client(ro.server, ca_pem=ro.ca_pem, token=ro.token) as reader:
        with pytest.raises(ApiError) as e:
            [ev async for ev in reader.import_image(archive)]
    assert e.value.code == 403
    assert 'User "viewer" cannot post path' in e.value.message


async def test_an_admin_needs_nodes_to_import_into(plane: ControlPlane, tmp_path: Path) -> None:
    admin = read_kubeconfig(plane.kubeconfig_path)
    archive = write_oci(tmp_path / "img.tar")
    async with Client(admin.server, ca_pem=admin.ca_pem, token=admin.token) as client:
        with pytest.raises(ApiError) as e:
            [ev async for ev in client.import_image(archive)]
    # This plane runs no node links (components=False).
    assert e.value.code == 503 and "no node links" in e.value.message
