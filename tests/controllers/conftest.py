"""Fixtures of the controller tests: a fake kubelet beside the in-process control plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from control.controlplane import ControlPlane
from tests.controllers.fake_kubelet import FakeKubelet


@pytest.fixture
async def kubelet(plane: ControlPlane) -> AsyncIterator[FakeKubelet]:
    async with FakeKubelet(plane.registry) as k:
        yield k
