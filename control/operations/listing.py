"""Reading a whole list from the API, page by page."""

from __future__ import annotations

from typing import Any

from control.client import Client
from control.objects.kinds import ResourceType

PAGE = 500


async def list_all(
    client: Client,
    rt: ResourceType,
    namespace: str | None,
    label: str | None = None,
    field: str | None = None,
) -> list[dict[str, Any]]:
    """Every object of `rt` in `namespace` (all namespaces when None) that the selectors match."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = await client.list(
            rt,
            namespace,
            label_selector=label,
            field_selector=field,
            limit=PAGE,
            continue_token=token,
        )
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items
