"""A GatewayClass's and a Gateway's status (control.nodes.gatewaystatus)."""

from __future__ import annotations

from control.nodes.gatewaystatus import gateway_class_status, gateway_status


def _gateway(status: dict[str, object] | None = None) -> dict[str, object]:
    return {"metadata": {"name": "gw", "generation": 2}, "status": status or {}}


def test_a_gateway_without_ingress_nodes_is_accepted_but_not_programmed() -> None:
    status = gateway_status(_gateway(), [])
    assert status is not None
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Accepted": ("True", "Accepted"),
        "Programmed": ("False", "AddressNotAssigned"),
    }
    assert status["addresses"] == []
    assert all(c["observedGeneration"] == 2 for c in status["conditions"])


def test_a_served_gateway_is_programmed_and_then_current() -> None:
    status = gateway_status(_gateway(), ["10.0.0.1"])
    assert status is not None
    assert status["addresses"] == [{"type": "IPAddress", "value": "10.0.0.1"}]
    assert gateway_status(_gateway(status), ["10.0.0.1"]) is None  # nothing to write


def test_a_condition_keeps_its_time_until_its_status_changes() -> None:
    first = gateway_status(_gateway(), [])
    assert first is not None
    for c in first["conditions"]:
        c["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    second = gateway_status(_gateway(first), ["10.0.0.1"])
    assert second is not None
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times["Accepted"] == "2020-01-01T00:00:00Z"  # still True
    assert times["Programmed"] != "2020-01-01T00:00:00Z"  # False -> True


def test_a_gateway_class_is_accepted_once() -> None:
    gc = {"metadata": {"name": "pilothouse", "generation": 1}}
    status = gateway_class_status(gc)
    assert status is not None
    [accepted] = status["conditions"]
    assert (accepted["type"], accepted["status"], accepted["reason"]) == (
        "Accepted",
        "True",
        "Accepted",
    )
    assert gateway_class_status({**gc, "status": status}) is None
