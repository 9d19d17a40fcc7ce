from __future__ import annotations

import time
from typing import Any

import pytest

from control.objects.selectors import (
    FieldRequirement,
    LabelSelector,
    Requirement,
    SelectorError,
    build_matcher,
    parse_field_selector,
    parse_label_selector,
    selector_from_labels,
    selector_from_match,
)

WEB = {"app": "web", "tier": "frontend", "env": "prod"}
DB = {"app": "db", "tier": "backend"}
BARE: dict[str, str] = {}


@pytest.mark.parametrize(
    ("selector", "web", "db", "bare"),
    [
        ("app=web", True, False, False),
        ("app==web", True, False, False),
        ("app!=web", False, True, True),  # absent label satisfies !=
        ("app in (web,db)", True, True, False),
        ("app in (web)", True, False, False),
        ("app notin (web)", False, True, True),
        ("env", True, False, False),
        ("!env", False, True, True),
        ("app=web,tier=frontend", True, False, False),
        ("app=web,tier=backend", False, False, False),
        ("tier,!env", False, True, False),
        ("  app  =  web ,  tier in ( frontend , x )  ", True, False, False),
        ("app in(web,db),env notin(dev)", True, True, False),
        ("", True, True, True),
        ("env=", False, False, False),
    ],
)
def test_label_selector_matches(selector: str, web: bool, db: bool, bare: bool) -> None:
    sel = parse_label_selector(selector)
    assert (sel.matches(WEB), sel.matches(DB), sel.matches(BARE)) == (web, db, bare)


def test_empty_value_and_none_labels() -> None:
    assert parse_label_selector("env=").matches({"env": ""})
    assert parse_label_selector("a in (,x)").matches({"a": ""})
    assert parse_label_selector("!a").matches(None)
    assert not parse_label_selector("a").matches(None)


def test_gt_lt() -> None:
    sel = parse_label_selector("gen>3,gen<10")
    assert sel.matches({"gen": "5"})
    assert not sel.matches({"gen": "3"})
    assert not sel.matches({"gen": "x"})
    assert not sel.matches({})


def test_empty_and_str_round_trip() -> None:
    assert parse_label_selector("").empty
    assert parse_label_selector("  ").empty
    sel = parse_label_selector("z=1, a in (y, x), !b, c, d!=2")
    assert not sel.empty
    assert str(sel) == "a in (x,y),!b,c,d!=2,z=1"  # sorted by key, as Kubernetes prints it
    assert parse_label_selector(str(sel)) == sel


def test_prefixed_keys() -> None:
    sel = parse_label_selector("app.kubernetes.io/name=web,node-role.kubernetes.io/ingress")
    assert sel.matches({"app.kubernetes.io/name": "web", "node-role.kubernetes.io/ingress": ""})
    assert sel.requirements == (
        Requirement("app.kubernetes.io/name", "=", ("web",)),
        Requirement("node-role.kubernetes.io/ingress", "exists"),
    )


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("app=web,,tier", "found ',' at position 8, expected a label key"),
        ("app=web,", "found end of string at position 8, expected a label key"),
        ("app in web", "found 'web' at position 7, expected '('"),
        ("app in (a b)", "found 'b' at position 10, expected ',' or ')'"),
        ("app in (a", "found end of string at position 9, expected ',' or ')'"),
        ("app=a=b", "found '=' at position 5, expected ',' or end of string"),
        ("app web", "found 'web' at position 4, expected '=', '==', '!=', 'in', 'notin'"),
        ("!", "found end of string at position 1, expected a label key after '!'"),
        ("=web", "found '=' at position 0, expected a label key"),
        ("app in ()", "'app': values set can't be empty for 'in'"),
        ("a b c=d", "found 'b' at position 2"),
        ("-app=x", "invalid label key '-app': name part must consist of"),
        (
            "Example.com/app=x",
            "invalid label key 'Example.com/app': prefix part must be a lowercase DNS subdomain",
        ),
        ("app=" + "x" * 64, "must be no more than 63 characters"),
        ("app=we b", "found 'b' at position 7"),
        ("app=-web", "invalid label value '-web' for key 'app'"),
        ("gen>x", "for '>' and '<' the value must be an integer, got 'x'"),
    ],
)
def test_label_selector_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as e:
        parse_label_selector(selector)
    assert message in str(e.value)
    assert repr(selector) in str(e.value)


def test_selector_from_match() -> None:
    sel = selector_from_match(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    labels = {"app": "web", "tier": "edge", "env": "prod", "team": "a"}
    assert sel.matches(labels)
    assert not sel.matches({**labels, "legacy": "1"})
    assert not sel.matches({**labels, "env": "dev"})
    assert not sel.matches({k: v for k, v in labels.items() if k != "team"})
    assert not sel.matches({**labels, "tier": "backend"})
    assert not sel.matches({**labels, "app": "db"})


def test_null_and_empty_match_selectors() -> None:
    assert selector_from_match({}).empty
    assert selector_from_match({}).matches({"a": "b"})
    nothing = selector_from_match(None)
    assert not nothing.empty
    assert not nothing.matches({})
    assert not nothing.matches({"a": "b"})


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            "matchExpressions[0].operator: 'Equals' is not a valid selector operator",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "matchExpressions[0].values: must be specified when operator is In",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "matchExpressions[0].values: may not be specified when operator is Exists",
        ),
        ({"matchExpressions": [{"operator": "Exists"}]}, "matchExpressions[0].key: required"),
        ({"matchLabels": {"a": 1}}, "matchLabels.a: expected a string, got int"),
        ({"matchLabels": {"a b": "x"}}, "invalid label key 'a b'"),
    ],
)
def test_selector_from_match_errors(sel: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError, match=message.replace("[", r"\[").replace("]", r"\]")):
        selector_from_match(sel)


def test_selector_from_labels() -> None:
    sel = selector_from_labels({"app": "web"})
    assert sel == parse_label_selector("app=web")
    assert sel.matches(WEB) and not sel.matches(DB)
    assert selector_from_labels(None).empty


POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"nodeName": "node-1", "unschedulable": False, "replicas": 3},
    "status": {"phase": "Running"},
}
PENDING: dict[str, Any] = {
    "metadata": {"name": "web-2", "namespace": "kube-system"},
    "spec": {"containers": []},
    "status": {"phase": "Pending"},
}


@pytest.mark.parametrize(
    ("selector", "pod", "pending"),
    [
        ("metadata.name=web-1", True, False),
        ("metadata.name==web-1", True, False),
        ("metadata.name!=web-1", False, True),
        ("metadata.namespace=kube-system", False, True),
        ("spec.nodeName=node-1", True, False),
        ("spec.nodeName=", False, True),  # unscheduled pods: missing compares as ""
        ("spec.nodeName!=", True, False),
        ("status.phase!=Running,status.phase!=Succeeded", False, True),
        ("spec.unschedulable=false", True, False),
        ("spec.unschedulable!=true", True, True),
        ("spec.replicas=3", True, False),
        ("spec.containers=x", False, False),  # a list is never equal to a string
        ("metadata.name.first=", True, True),  # walking past a scalar is missing
        (" metadata.name = web-1 , status.phase = Running ", True, False),
        ("", True, True),
    ],
)
def test_field_selector_matches(selector: str, pod: bool, pending: bool) -> None:
    sel = parse_field_selector(selector)
    assert (sel.matches(POD), sel.matches(PENDING)) == (pod, pending)


def test_field_selector_escapes_and_value_of() -> None:
    sel = parse_field_selector(r"involvedObject.name=a\,b\=c\\d,reason=Killing")
    assert sel.requirements == (
        FieldRequirement("involvedObject.name", "=", "a,b=c\\d"),
        FieldRequirement("reason", "=", "Killing"),
    )
    assert sel.matches({"involvedObject": {"name": "a,b=c\\d"}, "reason": "Killing"})
    assert sel.value_of("reason") == "Killing"
    assert sel.value_of("spec.nodeName") is None
    assert parse_field_selector(str(sel)) == sel


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("metadata.name", "'metadata.name' has no operator"),
        ("metadata.name!web", "'metadata.name!web' has no operator"),
        ("=web", "'=web' has an empty field name"),
        ("a=b,,c=d", "empty term"),
        ("metadata..name=x", "invalid field name 'metadata..name'"),
        ("a=b=c", "unescaped '=' in the value of 'a'"),
        (r"a=b\x", r"invalid escape sequence in 'b\\x'"),
    ],
)
def test_field_selector_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as e:
        parse_field_selector(selector)
    assert message in str(e.value)
    assert str(e.value).startswith(f"invalid field selector {selector!r}")


def test_build_matcher() -> None:
    assert build_matcher(None, None) is None
    assert build_matcher("", "") is None
    by_label = build_matcher("app=web", None)
    assert by_label is not None
    assert by_label(POD) and not by_label(PENDING)
    assert not by_label({})  # no metadata at all
    by_field = build_matcher(None, "status.phase=Pending")
    assert by_field is not None
    assert by_field(PENDING) and not by_field(POD)
    both = build_matcher("app=web", "spec.nodeName=node-2")
    assert both is not None
    assert not both(POD)
    assert build_matcher("!app", "spec.nodeName=")(PENDING)  # type: ignore[misc]
    with pytest.raises(SelectorError):
        build_matcher("app in", None)
    with pytest.raises(SelectorError):
        build_matcher(None, "status.phase")


def test_label_selector_is_hashable_and_comparable() -> None:
    a = parse_label_selector("a=1,b=2")
    b = parse_label_selector("b=2,a=1")
    assert a == b and hash(a) == hash(b)
    assert a != LabelSelector()


def test_matching_10000_pods_is_fast() -> None:
    pods = [
        {
            "metadata": {
                "name": f"p{i}",
                "labels": {
                    "app": f"a{i % 50}",
                    "tier": "web" if i % 2 else "db",
                    "pod-template-hash": "x",
                },
            },
            "spec": {"nodeName": f"n{i % 100}"},
            "status": {"phase": "Running"},
        }
        for i in range(10000)
    ]
    m = build_matcher("app in (a1,a3),tier=web,!canary", "spec.nodeName!=n1,status.phase=Running")
    assert m is not None
    start = time.perf_counter()
    for _ in range(5):
        hits = [p for p in pods if m(p)]
    per_list = (time.perf_counter() - start) / 5
    # app a1 or a3: 400 pods, all odd so tier=web; minus the 100 on node n1 (i % 100 == 1).
    assert len(hits) == 300
    # Generous bound: about 5 ms on a laptop; 100 ms would mean something is badly wrong.
    assert per_list < 0.1
