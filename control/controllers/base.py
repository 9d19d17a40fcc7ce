"""The shape of a controller: informers feed keys into a queue, workers reconcile them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from control.errors import ApiError
from control.machinery.queue import WorkQueue

log = logging.getLogger(__name__)

# Reconcile one key; return seconds until it should be looked at again, or None.
Reconcile = Callable[[str], Awaitable[float | None]]


async def run_workers(name: str, queue: WorkQueue, reconcile: Reconcile, workers: int = 1) -> None:
    """Process keys until the queue shuts down. Failures are retried with backoff."""

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            try:
                again = await reconcile(key)
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                # Conflicts are routine: someone wrote first; look again soon.
                level = logging.DEBUG if e.code == 409 else logging.WARNING
                log.log(level, "%s: reconciling %s: %s", name, key, e)
                queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: reconciling %s failed", name, key)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
                if again is not None:
                    queue.add_after(key, again)
            finally:
                queue.done(key)

    await asyncio.gather(*(worker() for _ in range(workers)))
