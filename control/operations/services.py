"""What `describe svc` reads beyond the Service: its EndpointSlices and the
Nodes' service rules."""

from __future__ import annotations

from control.client import Client
from control.objects.discovery import LABEL_SERVICE_NAME
from control.objects.kinds import ENDPOINTSLICE, NODE
from control.objects.servicestatus import service_details
from control.operations.listing import list_all


async def service_details_of(client: Client, namespace: str, name: str) -> list[str]:
    """`describe svc`'s lines for a Service's endpoints and the nodes' rules."""
    slices = await list_all(client, ENDPOINTSLICE, namespace, f"{LABEL_SERVICE_NAME}={name}")
    return service_details(slices, await list_all(client, NODE, None))
