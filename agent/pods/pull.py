"""Image pulls, shared by the node's pod workers: one pull per image at a time,
and one back-off per image (ErrImagePull, then ImagePullBackOff).

On a node with no route to any registry (the agent's `--offline-registry`, which
`pilothouse up` sets for its nodes), no pull is ever attempted: an image that is
present is used whatever the pull policy, and an absent one fails ErrImagePull
at once with a message that says why, then backs off as any pull failure does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from agent.cri.client import PULL_TIMEOUT, CRIClient, CRIError

from .backoff import Backoff

log = logging.getLogger(__name__)

# A pull of an image that is already here (policy Always) may not hold a pod up long.
REFRESH_TIMEOUT = 10.0
OFFLINE_MESSAGE = (
    'image "{image}" is not present on this node, and image pulls are disabled '
    "(agent --offline-registry); import it into the node's containerd"
)


@dataclass
class PullResult:
    ok: bool
    reason: str = ""
    message: str = ""


class ImagePuller:
    def __init__(
        self,
        cri: CRIClient,
        backoff_base: float = 10.0,
        backoff_max: float = 300.0,
        *,
        offline: bool = False,
    ) -> None:
        self.cri = cri
        self.offline = offline
        self.backoff = Backoff(backoff_base, backoff_max)
        self.errors: dict[str, str] = {}  # image -> the registry's last message
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def policy(image: str, declared: str | None) -> str:
        return declared or ("Always" if image.endswith(":latest") else "IfNotPresent")

    async def ensure(self, image: str, policy: str) -> PullResult:
        present = await self.cri.image_status(image) is not None
        if policy == "Never":
            if present:
                return PullResult(True)
            return PullResult(
                False,
                "ErrImageNeverPull",
                f'Container image "{image}" is not present with pull policy of Never',
            )
        if present and (policy == "IfNotPresent" or self.offline):
            return PullResult(True)
        lock = self._locks.setdefault(image, asyncio.Lock())
        async with lock:
            entry = self.backoff.entries.get(image)
            if entry is not None and self.backoff.remaining(image, entry[1]) > 0:
                if present or await self.cri.image_status(image) is not None:
                    return PullResult(True)
                why = self.errors.get(image, "")
                return PullResult(
                    False, "ImagePullBackOff", f'Back-off pulling image "{image}": {why}'
                )
            if self.offline:
                why = OFFLINE_MESSAGE.format(image=image)
                self.backoff.next(image)
                self.errors[image] = why
                return PullResult(False, "ErrImagePull", why)
            try:
                await self.cri.pull_image(image, REFRESH_TIMEOUT if present else PULL_TIMEOUT)
            except CRIError as e:
                self.backoff.next(image)
                self.errors[image] = e.details
                if present:
                    # Offline nodes keep working with what they have.
                    log.info("pull %s failed, using the local image: %s", image, e.details)
                    return PullResult(True)
                log.warning("pull %s: %s", image, e.details)
                return PullResult(False, "ErrImagePull", e.details)
            self.backoff.entries.pop(image, None)
            self.errors.pop(image, None)
            return PullResult(True)
