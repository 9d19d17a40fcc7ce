"""Fixtures for node tests: an in-process cluster of hollow nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster import HollowCluster
from tests.cluster import hollow_cluster as start_hollow_cluster


@pytest.fixture
async def hollow_cluster(tmp_path: Path) -> AsyncIterator[HollowCluster]:
    """Three hollow nodes, Ready, with a 2 s node grace period and 1 s eviction timeout."""
    async with start_hollow_cluster(tmp_path, nodes=3) as cluster:
        await cluster.wait_nodes_ready()
        yield cluster
