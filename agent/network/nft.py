"""Running `nft` (and other tools) as argv lists, optionally inside a network
namespace (`ip netns exec NAME ...`), never through a shell."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .proxyrules import FAMILY, TABLE, render_delete

# argv, stdin bytes (or None) -> (exit code, stdout, stderr)
CommandRunner = Callable[[Sequence[str], bytes | None], Awaitable[tuple[int, str, str]]]

NFT_TIMEOUT = 60.0


class NftError(RuntimeError):
    """nft refused a ruleset (the previous rules stay) or could not be run."""


async def run_command(argv: Sequence[str], data: bytes | None = None) -> tuple[int, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: command not found"
    try:
        async with asyncio.timeout(NFT_TIMEOUT):
            out, err = await proc.communicate(data)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, "", f"{argv[0]}: timed out after {NFT_TIMEOUT:.0f}s"
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """argv, run inside the named network namespace when one is given."""
    if netns is None:
        return list(argv)
    if not netns or "/" in netns or netns.startswith("."):
        raise ValueError(f"netns: not a network namespace name: {netns!r}")
    return ["ip", "netns", "exec", netns, *argv]


class Nft:
    """`nft` in one network namespace (None: the agent's own)."""

    def __init__(self, netns: str | None = None, runner: CommandRunner = run_command) -> None:
        in_netns(netns, [])  # checks the name
        self.netns = netns
        self.runner = runner

    async def apply(self, ruleset: str) -> None:
        """Loads a ruleset in one transaction (`nft -f -`); NftError with nft's
        message if it is refused, in which case nothing changed."""
        argv = in_netns(self.netns, ["nft", "-f", "-"])
        code, out, err = await self.runner(argv, ruleset.encode())
        if code != 0:
            raise NftError(f"nft -f failed (exit {code}): {(err or out).strip()}")

    async def list_table(self) -> dict[str, Any] | None:
        """`nft -j list table ip pilothouse`, parsed; None when there is no table."""
        code, out, err = await self.runner(
            in_netns(self.netns, ["nft", "-j", "list", "table", FAMILY, TABLE]), None
        )
        if code != 0:
            if "No such file or directory" in err:
                return None
            raise NftError(f"nft list table failed (exit {code}): {err.strip()}")
        try:
            parsed = json.loads(out)
        except ValueError as e:
            raise NftError(f"nft -j printed no JSON: {e}") from None
        return parsed if isinstance(parsed, dict) else None

    async def delete_table(self) -> None:
        """Removes our table; no error if it is not there."""
        await self.apply(render_delete())
