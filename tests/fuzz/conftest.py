"""The fuzz suite's fixtures, and the count of examples it ran."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fuzz.fuzzing import BUDGETS, EXPLORE, RUN
from tests.fuzz.served import Api, fuzz_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The API server with a seed object of every kind; one per test, shared by its examples."""
    async with fuzz_api(tmp_path) as a:
        yield a


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RUN:
        profile = "explore" if EXPLORE else "ci"
        terminalreporter.write_line(
            f"fuzz ({profile} profile): {sum(RUN.values())} examples run by {len(RUN)} tests "
            f"(CI budgets total {sum(BUDGETS.values())})"
        )
