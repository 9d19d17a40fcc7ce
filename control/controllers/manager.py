"""The controller manager: shared informers and the controllers that use them.

Every controller gets its informers from `ControllerManager.informer(rt)`, so
each kind is listed and watched once however many controllers read it.
Controllers are built by factories with the shape `(manager, config)`; they
register handlers and indexes on the informers in their constructor, and do
their work in `run()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from control.api.registry import Registry
from control.config import Config
from control.controllers.cronjob import CronJobController
from control.controllers.daemonset import DaemonSetController
from control.controllers.deployment import DeploymentController
from control.controllers.gc import GarbageCollector
from control.controllers.job import JobController
from control.controllers.replicaset import ReplicaSetController
from control.machinery.informer import Informer
from control.objects.kinds import ResourceType

log = logging.getLogger(__name__)

# A crashed informer or controller is restarted after this long, doubling to the cap.
_RESTART_INITIAL = 0.5
_RESTART_MAX = 30.0


class Controller(Protocol):
    name: str

    async def run(self) -> None: ...


ControllerFactory = Callable[["ControllerManager", Config], Controller]

# The controllers every manager builds and runs. Others with the same
# `(manager, config)` shape join through `register()`, as the control plane
# adds the endpoints and node lifecycle controllers.
CONTROLLERS: list[ControllerFactory] = [
    ReplicaSetController,
    DeploymentController,
    GarbageCollector,
    DaemonSetController,
    JobController,
    CronJobController,
]


class ControllerManager:
    def __init__(
        self,
        registry: Registry,
        config: Config,
        controllers: Sequence[ControllerFactory] | None = None,
    ) -> None:
        self.registry = registry
        self.config = config
        self.controllers: list[Controller] = []
        self._factories = list(CONTROLLERS if controllers is None else controllers)
        self._informers: dict[str, Informer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False

    def informer(self, rt: ResourceType) -> Informer:
        """The shared informer of one kind (all namespaces), created on first use."""
        informer = self._informers.get(rt.plural)
        if informer is None:
            informer = self._informers[rt.plural] = Informer(self.registry, rt)
            if self._running:
                self._spawn(f"{rt.plural} informer", informer.run)
        return informer

    def register(self, controller: Controller) -> None:
        """Add a controller built elsewhere; it runs with the others."""
        self.controllers.append(controller)
        if self._running:
            self._spawn(controller.name, controller.run)

    async def wait_synced(self) -> None:
        """Until every informer so far has listed once."""
        await asyncio.gather(*(i.synced.wait() for i in self._informers.values()))

    async def run(self) -> None:
        """Build the controllers, start informers and controllers, run until cancelled."""
        for factory in self._factories:
            self.register(factory(self, self.config))
        self._running = True
        try:
            for rt_plural, informer in self._informers.items():
                self._spawn(f"{rt_plural} informer", informer.run)
            for controller in self.controllers:
                self._spawn(controller.name, controller.run)
            await asyncio.Event().wait()
        finally:
            self._running = False
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.create_task(_supervise(name, run), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _supervise(name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run until it returns (the store closed); restart it with backoff if it fails."""
    delay = _RESTART_INITIAL
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in %.1fs", name, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _RESTART_MAX)
