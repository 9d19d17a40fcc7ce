"""RulesAgent: a fake agent that keeps a service table as the agent protocol
says (services_sync replaces it, services_update applies changes on top of its
generation or answers SERVICES_OUT_OF_SYNC) and records what it was sent;
with `ingress`, it keeps the route table `ingress_sync` sends too, and answers
`ingress_stats` with its `traffic`.

It answers hello, network_config and sync_pods too, so that it can stand for a
node (the node link registers a Node for it) or for a service proxy. Failures
are simulated with `fail` (every services request answers that error).
`python -m tests.nodes.rulesagent --name NAME` serves one over stdin and stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from agent.protocol import (
    AGENT_VERSION,
    INTERNAL_ERROR,
    PROTOCOL_VERSION,
    Params,
    Peer,
    Reader,
    RpcError,
    Writer,
    check_hello,
)
from agent.protocol.ingress import RouteTableWire
from control.nodes.services import SERVICES_OUT_OF_SYNC
from control.nodes.servicetable import ServiceTableWire, apply


@dataclass
class Received:
    connection: int
    method: str
    params: Params


@dataclass
class RulesAgent:
    name: str
    generation: int = 0
    table: ServiceTableWire = field(default_factory=lambda: {"services": [], "endpoints": []})
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    fail: str | None = None  # answer every services request with this error
    ingress: bool = False  # answer ingress_sync (as an agent run with --ingress)
    routes: RouteTableWire | None = None  # the last route table it was sent
    traffic: dict[str, Any] = field(default_factory=dict)  # what ingress_stats answers

    def methods(self, connection: int | None = None) -> list[str]:
        return [r.method for r in self.received if connection is None or r.connection == connection]

    def services_requests(self) -> list[Received]:
        return [r for r in self.received if r.method.startswith("services_")]

    async def serve(self, reader: Reader, writer: Writer) -> None:
        self.connections += 1
        connection = self.connections
        peer = Peer(reader, writer, name=f"rules agent {self.name}")

        def handler(method: str, answer: Any) -> None:
            async def handle(params: Params) -> Any:
                self.received.append(Received(connection, method, params))
                return answer(params)

            peer.on(method, handle)

        handler("hello", self._hello)
        handler("network_config", lambda p: {})
        handler("sync_pods", lambda p: {"pods": 0})
        handler("services_sync", self._sync)
        handler("services_update", self._update)
        if self.ingress:
            handler("ingress_sync", self._ingress_sync)
            handler("ingress_stats", lambda p: {"routes": self.traffic})
        try:
            await peer.run()
        finally:
            peer.close()

    def _hello(self, params: Params) -> Params:
        check_hello(params)
        return {
            "hostname": self.name,
            "os": "linux",
            "agentVersion": f"{AGENT_VERSION}-rules",
            "protocolVersion": PROTOCOL_VERSION,
            "networking": False,
        }

    def _check_fail(self) -> None:
        if self.fail is not None:
            raise RpcError(INTERNAL_ERROR, self.fail)

    def _sync(self, params: Params) -> Params:
        self._check_fail()
        self.table = params["table"]
        self.generation = int(params["generation"])
        return {"generation": self.generation}

    def _update(self, params: Params) -> Params:
        self._check_fail()
        if params["base"] != self.generation:
            raise RpcError(
                SERVICES_OUT_OF_SYNC,
                f"services out of sync: at generation {self.generation}, not {params['base']}",
            )
        self.table = apply(self.table, params["changes"])
        self.generation = int(params["generation"])
        return {"generation": self.generation}

    def _ingress_sync(self, params: Params) -> Params:
        self._check_fail()
        self.routes = params["table"]
        return {"generation": self.routes["generation"]}


async def _main(name: str) -> None:
    from agent.stdio import stdio

    reader, writer = await stdio(os.dup(sys.stdout.fileno()))
    await RulesAgent(name).serve(reader, writer)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.nodes.rulesagent")
    parser.add_argument("--name", required=True)
    asyncio.run(_main(parser.parse_args().name))
