"""The control plane's garbage collector settings hold while it runs, and only then."""

from __future__ import annotations

import gc
from pathlib import Path

from control.controlplane import GC_THRESHOLDS
from tests.conftest import running_plane


async def test_gc_thresholds_while_running(tmp_path: Path) -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    async with running_plane(tmp_path):
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before
