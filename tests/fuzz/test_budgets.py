"""The fuzz suite's size: CI runs at least MIN_CI_EXAMPLES examples in all."""

from __future__ import annotations

import importlib
from pathlib import Path

from tests.fuzz.fuzzing import BUDGETS, MIN_CI_EXAMPLES


def test_the_budgets_add_up() -> None:
    for module in sorted(Path(__file__).parent.glob("test_*.py")):
        importlib.import_module(f"tests.fuzz.{module.stem}")
    fuzzers = {name for name in BUDGETS if ".test_" in name}
    assert len(fuzzers) >= 12, sorted(BUDGETS)
    assert sum(BUDGETS.values()) >= MIN_CI_EXAMPLES, BUDGETS
