"""API tests run the API server alone, so no controller writes behind their back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.controlplane import ControlPlane
from tests.conftest import running_plane


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with running_plane(tmp_path, components=False) as cp:
        yield cp
