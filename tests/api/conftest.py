"""API tests run the API server alone, so no controller writes behind their back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from control.controlplane import ControlPlane
from tests.conftest import Served, running_plane, serving


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with running_plane(tmp_path, components=False) as cp:
        yield cp


@pytest.fixture(scope="module")
def hollow_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`pilothouse serve --hollow-nodes 2`, one per test module."""
    with serving(tmp_path_factory.mktemp("hollow-served"), "--hollow-nodes", "2") as s:
        yield s
