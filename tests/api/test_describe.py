"""`describe`, one text for the CLI and the console: a Secret shows the sizes of
its values, never the values; other kinds show their sections and their events."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from console.cli import main as cli
from control.client import Client
from control.controlplane import ControlPlane
from control.objects.kinds import CONFIGMAP, EVENT, SECRET
from control.operations.describe import describe


async def test_a_secret_shows_sizes_not_values(
    plane: ControlPlane, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = "hunter2-do-not-print"
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque"}
    secret["metadata"] = {"name": "db", "namespace": "default"}
    secret["data"] = {"password": base64.b64encode(marker.encode()).decode()}
    await client.create(SECRET, secret)
    text = await describe(client, SECRET, "db", "default")
    assert "Type:         Opaque\n" in text
    assert f"Data:\n  password:  {len(marker)} bytes\n" in text
    args = cli.parse_args(["describe", "secret", "db", "--server", str(plane.socket_path)])
    assert await args.func(args) == 0
    out = capsys.readouterr().out
    assert out == text
    encoded = base64.b64encode(marker.encode()).decode()
    assert marker not in out and encoded not in out


async def test_other_kinds_show_their_data_and_events(client: Client) -> None:
    await client.create(
        CONFIGMAP,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "site",
                "namespace": "default",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{}",
                    "team": "web",
                },
            },
            "data": {"mode": "blue"},
        },
    )
    await client.create(
        EVENT,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "site.1", "namespace": "default"},
            "involvedObject": {"kind": "ConfigMap", "name": "site", "namespace": "default"},
            "reason": "Checked",
            "message": "looked at it",
            "type": "Normal",
            "count": 2,
            "source": {"component": "tester"},
        },
    )
    text = await describe(client, CONFIGMAP, "site", "default")
    assert "Annotations:  team=web\n" in text  # the last applied configuration is left out
    assert "Data:\n  mode: blue\n" in text
    events = text[text.index("Events:") :].splitlines()
    assert events[1].split() == ["TYPE", "REASON", "COUNT", "FROM", "MESSAGE"]
    assert events[2].split() == ["Normal", "Checked", "2", "tester", "looked", "at", "it"]
