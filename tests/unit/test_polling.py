"""tests.polling: the one wait the tests use."""

from __future__ import annotations

import pytest

from tests.polling import eventually, eventually_blocking


async def test_returns_the_first_truthy_result_of_a_plain_or_async_check() -> None:
    calls: list[int] = []

    def plain() -> list[int]:
        calls.append(1)
        return calls if len(calls) >= 3 else []

    async def async_check() -> str | None:
        return "done"

    assert await eventually(plain, every=0) == [1, 1, 1]
    assert await eventually(async_check) == "done"


async def test_times_out_naming_what_and_the_last_result() -> None:
    with pytest.raises(
        AssertionError, match=r"after 0.05s waiting for the thing; last: 0\n.*screen"
    ):
        await eventually(lambda: 0, "the thing", within=0.05, describe=lambda: "screen")


async def test_an_assertion_fails_at_once_unless_retried() -> None:
    def check() -> bool:
        raise AssertionError("not yet")

    with pytest.raises(AssertionError, match=r"^not yet$"):
        await eventually(check, within=5)
    with pytest.raises(AssertionError, match=r"last: AssertionError\('not yet'\)"):
        await eventually(check, within=0.05, retry_asserts=True)


def test_blocking_runs_without_a_loop() -> None:
    assert eventually_blocking(lambda: 7) == 7
