"""Fixtures of the controller tests: hollow nodes joined to the in-process control plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from control.controlplane import ControlPlane
from tests.controllers.hollow_nodes import HollowNodes


@pytest.fixture
async def kubelet(plane: ControlPlane) -> AsyncIterator[HollowNodes]:
    async with HollowNodes(plane) as k:
        yield k
