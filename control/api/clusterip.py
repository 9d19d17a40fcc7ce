"""Service ClusterIP allocation from the service CIDR.

Each allocated address is a key in the store (`/registry/ipaddresses/<ip>`),
created with create-if-absent, so two API servers sharing one store can never
hand out the same address. Deleting the Service deletes the key.

As in Kubernetes, the lower part of the range is kept for addresses that users
ask for by hand (like the cluster DNS address); dynamic allocation starts above it.
"""

from __future__ import annotations

import ipaddress
import random

from control.store.interface import KeyExists, KeyNotFound, Store

_PREFIX = "/registry/ipaddresses/"


class ClusterIPAllocator:
    def __init__(self, store: Store, cidr: str) -> None:
        self.store = store
        self.network = ipaddress.ip_network(cidr, strict=False)
        # Usable offsets: skip the network address (and broadcast for IPv4).
        self.size = self.network.num_addresses - (2 if self.network.version == 4 else 1)
        if self.size < 1:
            raise ValueError(f"service CIDR {cidr} has no usable addresses")
        self.static_band = min(max(16, self.size // 16), 256, self.size)
        dynamic = self.size - self.static_band
        self._cursor = random.randrange(dynamic) if dynamic > 0 else 0

    def _address(self, offset: int) -> str:
        return str(self.network.network_address + 1 + offset)

    async def allocate(
        self, owner: str, requested: str | None = None, *, dry_run: bool = False
    ) -> str:
        """Reserve `requested`, or the next free address. Raises ValueError when
        impossible. A dry run reserves nothing: it answers with the address it
        would have reserved."""
        if requested:
            try:
                ip = ipaddress.ip_address(requested)
            except ValueError as e:
                raise ValueError("must be a valid IP address") from e
            if ip not in self.network or ip == self.network.network_address:
                raise ValueError(f"provided IP is not in the valid range {self.network}")
            if not await self._claim(str(ip), owner, dry_run):
                raise ValueError("provided IP is already allocated")
            return str(ip)
        dynamic = self.size - self.static_band
        # Dynamic band first, then the static band when the dynamic one is full.
        bands = [(self.static_band, dynamic), (0, self.static_band)]
        for start, length in bands:
            for i in range(length):
                offset = start + (self._cursor + i) % length
                candidate = self._address(offset)
                if await self._claim(candidate, owner, dry_run):
                    if start == self.static_band and not dry_run:
                        self._cursor = (self._cursor + i + 1) % length
                    return candidate
        raise ValueError(f"range is full: no free address left in {self.network}")

    async def release(self, ip: str) -> None:
        try:
            await self.store.delete(_PREFIX + ip)
        except KeyNotFound:
            pass

    async def _claim(self, ip: str, owner: str, dry_run: bool) -> bool:
        if dry_run:
            return await self.store.get(_PREFIX + ip) is None
        record = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {"name": ip},
            "spec": {"parentRef": {"resource": "services", "name": owner}},
        }
        try:
            await self.store.create(_PREFIX + ip, record)
        except KeyExists:
            return False
        return True
