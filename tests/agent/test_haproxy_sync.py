"""`ingress_sync` on the agent: its parameters are checked before HAProxy sees them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.ingress.ingresssync import IngressSync
from agent.ingress.proxy import IngressProxy
from agent.protocol import INVALID_PARAMS, RpcError
from agent.protocol.ingress import INGRESS_SYNC


async def test_a_bad_table_is_invalid_params(tmp_path: Path) -> None:
    handler = IngressSync(IngressProxy(tmp_path, haproxy="/nonexistent/haproxy"))
    sync = handler.handlers()[INGRESS_SYNC]
    table = {"generation": 1, "frontends": [{"port": 0, "tls": False, "hosts": []}]}
    with pytest.raises(RpcError) as caught:
        await sync({"table": table})
    assert caught.value.code == INVALID_PARAMS
    assert "table.frontends[0].port: must be an integer from 1 to 65535" in caught.value.message
    with pytest.raises(RpcError, match="table: must be an object"):
        await sync({})


async def test_a_missing_haproxy_is_an_error_with_its_message(tmp_path: Path) -> None:
    proxy = IngressProxy(tmp_path, haproxy="/nonexistent/haproxy")
    sync = IngressSync(proxy).handlers()[INGRESS_SYNC]
    with pytest.raises(RpcError, match="/nonexistent/haproxy"):
        await sync({"table": {"generation": 3, "frontends": [], "certificates": []}})
    assert proxy.generation is None
