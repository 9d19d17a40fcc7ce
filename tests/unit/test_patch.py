from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from control.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

# --- RFC 7386 ----------------------------------------------------------------

# Appendix A of RFC 7386, verbatim.
RFC7386_EXAMPLES = [
    ('{"a":"b"}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'),
    ('{"a":"b"}', '{"a":null}', "{}"),
    ('{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'),
    ('{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'),
    ('{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'),
    ('{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'),
    ('["a","b"]', '["c","d"]', '["c","d"]'),
    ('{"a":"b"}', '["c"]', '["c"]'),
    ('{"a":"foo"}', "null", "null"),
    ('{"a":"foo"}', '"bar"', '"bar"'),
    ('{"e":null}', '{"a":1}', '{"e":null,"a":1}'),
    ("[1,2]", '{"a":"b","c":null}', '{"a":"b"}'),
    ("{}", '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7386_EXAMPLES)
def test_merge_patch_rfc7386_appendix(target: str, patch: str, result: str) -> None:
    t, p = json.loads(target), json.loads(patch)
    t0, p0 = copy.deepcopy(t), copy.deepcopy(p)
    assert merge_patch(t, p) == json.loads(result)
    assert (t, p) == (t0, p0)


def test_merge_patch_rfc7386_section3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    target: dict[str, Any] = {"spec": {"a": [1]}, "keep": {"x": 1}}
    patch: dict[str, Any] = {"spec": {"b": {"c": [2]}}}
    out = merge_patch(target, patch)
    out["keep"]["x"] = 2
    out["spec"]["a"].append(9)
    out["spec"]["b"]["c"].append(9)
    assert target == {"spec": {"a": [1]}, "keep": {"x": 1}}
    assert patch == {"spec": {"b": {"c": [2]}}}


def test_a_sharing_merge_patch_leaves_its_inputs_alone() -> None:
    target: dict[str, Any] = {"spec": {"a": [1], "d": 1}, "keep": {"x": 1}, "gone": 1}
    patch: dict[str, Any] = {"spec": {"b": {"c": [2]}, "d": None}, "gone": None}
    out = merge_patch(target, patch, share=True)
    assert (
        out == merge_patch(target, patch) == {"spec": {"a": [1], "b": {"c": [2]}}, "keep": {"x": 1}}
    )
    assert out["keep"] is target["keep"]  # untouched: shared
    out["spec"]["e"] = 3  # a patched object is a new one
    out["spec"]["b"]["c"].append(9)  # so are the patch's values
    assert target == {"spec": {"a": [1], "d": 1}, "keep": {"x": 1}, "gone": 1}
    assert patch == {"spec": {"b": {"c": [2]}, "d": None}, "gone": None}


# --- RFC 6902 ----------------------------------------------------------------

# Appendix A of RFC 6902 (A.13, a duplicate-member document, is a JSON parsing matter).
RFC6902_EXAMPLES: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    (
        "A.1",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
    ),
    (
        "A.2",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    ("A.3", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    (
        "A.4",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A.5",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A.6",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A.10",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A.11",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    ("A.14", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    (
        "A.16",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
]


@pytest.mark.parametrize(
    ("target", "ops", "result"),
    [e[1:] for e in RFC6902_EXAMPLES],
    ids=[e[0] for e in RFC6902_EXAMPLES],
)
def test_json_patch_rfc6902_appendix(target: Any, ops: list[dict[str, Any]], result: Any) -> None:
    t0, o0 = copy.deepcopy(target), copy.deepcopy(ops)
    assert json_patch(target, ops) == result
    assert (target, ops) == (t0, o0)


@pytest.mark.parametrize(
    ("name", "target", "ops", "message"),
    [
        (
            "A.9",
            {"baz": "qux"},
            [{"op": "test", "path": "/baz", "value": "bar"}],
            "test operation failed at /baz: expected 'bar', found 'qux'",
        ),
        (
            "A.12",
            {"foo": "bar"},
            [{"op": "add", "path": "/baz/bat", "value": "qux"}],
            "add operation failed at /baz/bat: path does not exist",
        ),
        (
            "A.15",
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": "10"}],
            "test operation failed at /~01: expected '10', found 10",
        ),
    ],
)
def test_json_patch_rfc6902_error_examples(
    name: str, target: Any, ops: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(PatchError) as e:
        json_patch(target, ops)
    assert str(e.value) == message


def test_rfc6901_pointers_via_test_op() -> None:
    doc = {
        "foo": ["bar", "baz"],
        "": 0,
        "a/b": 1,
        "c%d": 2,
        "e^f": 3,
        "g|h": 4,
        "i\\j": 5,
        'k"l': 6,
        " ": 7,
        "m~n": 8,
    }
    checks = [("", doc), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0), ("/a~1b", 1),
              ("/c%d", 2), ("/e^f", 3), ("/g|h", 4), ("/i\\j", 5), ('/k"l', 6), ("/ ", 7),
              ("/m~0n", 8)]  # fmt: skip
    assert json_patch(doc, [{"op": "test", "path": p, "value": v} for p, v in checks]) == doc


def test_json_patch_kubernetes_style() -> None:
    deploy = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a"}]}}}}
    out = json_patch(
        deploy,
        [
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "b"}},
            {"op": "copy", "from": "/spec/template/spec/containers/0",
             "path": "/spec/template/spec/containers/0/sidecarOf"},
            {"op": "add", "path": "/metadata", "value": {"labels": {"app.kubernetes.io/name": "x"}}},
            {"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"},
        ],
    )  # fmt: skip
    assert out == {
        "metadata": {"labels": {}},
        "spec": {
            "replicas": 5,
            "template": {
                "spec": {"containers": [{"name": "a", "sidecarOf": {"name": "a"}}, {"name": "b"}]}
            },
        },
    }
    assert deploy["spec"]["replicas"] == 2


def test_json_patch_replace_root_and_copy_is_independent() -> None:
    assert json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    out = json_patch({"a": {"x": 1}}, [{"op": "copy", "from": "/a", "path": "/b"}])
    out["b"]["x"] = 2
    assert out["a"] == {"x": 1}


@pytest.mark.parametrize(
    ("target", "ops", "message"),
    [
        ({"spec": {"replicas": 3}}, [{"op": "test", "path": "/spec/replicas", "value": 2}],
         "test operation failed at /spec/replicas: expected 2, found 3"),
        ({"a": 1}, [{"op": "test", "path": "/a", "value": True}],
         "test operation failed at /a: expected True, found 1"),
        ({"a": 1}, [{"op": "remove", "path": "/b"}], "remove operation failed at /b: path does not exist"),
        ({"a": 1}, [{"op": "replace", "path": "/b", "value": 1}],
         "replace operation failed at /b: path does not exist"),
        ({"a": [1]}, [{"op": "add", "path": "/a/2", "value": 1}],
         "add operation failed at /a/2: array index '2' out of range (length 1)"),
        ({"a": [1]}, [{"op": "add", "path": "/a/01", "value": 1}],
         "add operation failed at /a/01: array index '01' out of range (length 1)"),
        ({"a": [1]}, [{"op": "remove", "path": "/a/-"}], "remove operation failed at /a/-: path does not exist"),
        ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}],
         "move operation failed at /a/b/c: cannot move /a into itself"),
        ({"a": 1}, [{"op": "move", "from": "/x", "path": "/y"}], "move operation failed at /x: path does not exist"),
        ({"a": 1}, [{"op": "copy", "from": "/x", "path": "/y"}], "copy operation failed at /x: path does not exist"),
        ({"a": 1}, [{"op": "remove", "path": ""}], "remove operation failed: cannot remove the whole document"),
        ({"a": 1}, [{"op": "add", "path": "a", "value": 1}],
         "add operation: invalid JSON pointer 'a': must start with '/'"),
        ({"a": 1}, [{"op": "add", "path": "/a~2", "value": 1}],
         "add operation: invalid JSON pointer '/a~2': bad escape '~'"),
        ({"a": 1}, [{"op": "add", "path": "/b"}], "add operation 0: missing 'value'"),
        ({"a": 1}, [{"op": "move", "path": "/b"}], "move operation 0: missing 'from'"),
        ({"a": 1}, [{"op": "frobnicate", "path": "/b"}], "operation 0: unknown op 'frobnicate'"),
        ({"a": 1}, [{"path": "/b"}], "operation 0: unknown op None"),
        ({"a": 1}, {"op": "add"}, "a JSON patch must be an array of operations, got dict"),
        ({"a": "s"}, [{"op": "add", "path": "/a/b", "value": 1}],
         "add operation failed at /a/b: parent is not an object or array"),
    ],
)  # fmt: skip
def test_json_patch_errors(target: Any, ops: Any, message: str) -> None:
    with pytest.raises(PatchError) as e:
        json_patch(target, ops)
    assert str(e.value) == message


def test_json_patch_is_atomic() -> None:
    target = {"a": 1}
    with pytest.raises(PatchError):
        json_patch(
            target, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zz"}]
        )
    assert target == {"a": 1}


def test_json_patch_test_compares_json_values() -> None:
    doc = {"a": {"x": [1, 2.0, {"y": None}]}}
    assert (
        json_patch(doc, [{"op": "test", "path": "/a", "value": {"x": [1.0, 2, {"y": None}]}}])
        == doc
    )
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/a", "value": {"x": [1, 2]}}])
    with pytest.raises(PatchError):
        json_patch({"a": 0}, [{"op": "test", "path": "/a", "value": False}])


# --- strategic merge patch ---------------------------------------------------


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


BASE = pod(
    containers=[
        {
            "name": "app",
            "image": "app:1",
            "args": ["a", "b"],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        },
        {"name": "sidecar", "image": "side:1"},
    ],
    volumes=[{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}],
    tolerations=[{"key": "a", "operator": "Exists"}],
)


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["containers"]
    return result


def test_smp_merges_containers_by_name() -> None:
    before = copy.deepcopy(BASE)
    out = strategic_merge_patch(BASE, {"spec": {"containers": [{"name": "app", "image": "app:2"}]}})
    assert BASE == before
    assert [c["name"] for c in containers(out)] == ["app", "sidecar"]
    assert containers(out)[0]["image"] == "app:2"
    assert containers(out)[0]["env"] == BASE["spec"]["containers"][0]["env"]
    # A plain merge patch would have replaced the list.
    assert containers(merge_patch(BASE, {"spec": {"containers": [{"name": "app"}]}})) == [
        {"name": "app"}
    ]


def test_smp_appends_new_items_and_deletes_with_directive() -> None:
    out = strategic_merge_patch(
        BASE,
        {
            "spec": {
                "containers": [
                    {"name": "debug", "image": "busybox"},
                    {"name": "sidecar", "$patch": "delete"},
                    {"name": "ghost", "$patch": "delete"},
                ]
            }
        },
    )
    assert [c["name"] for c in containers(out)] == ["app", "debug"]
    assert containers(out)[1] == {"name": "debug", "image": "busybox"}


def test_smp_nested_lists_merge_by_their_keys() -> None:
    out = strategic_merge_patch(
        BASE,
        {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "env": [
                            {"name": "B", "value": "20"},
                            {"name": "C", "value": "3"},
                            {"name": "A", "$patch": "delete"},
                        ],
                        "ports": [
                            {"containerPort": 80, "protocol": "TCP"},
                            {"containerPort": 8080},
                        ],
                        "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                        "args": ["c"],
                    }
                ],
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "c2"}},
                    {"name": "new", "emptyDir": {}},
                ],
                "tolerations": [{"key": "b", "operator": "Exists"}],
            }
        },
    )
    app = containers(out)[0]
    assert app["env"] == [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
    assert app["ports"] == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 443},
        {"containerPort": 8080},
    ]
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert app["args"] == ["c"]  # lists of scalars replace
    assert out["spec"]["volumes"] == [
        {"name": "data", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c2"}},
        {"name": "new", "emptyDir": {}},
    ]
    # tolerations carry no merge key in Kubernetes: replaced.
    assert out["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_smp_service_ports_merge_by_port() -> None:
    svc = {
        "spec": {
            "selector": {"app": "a"},
            "ports": [{"port": 80, "targetPort": 8080}, {"port": 443}],
        }
    }
    out = strategic_merge_patch(
        svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 53}]}}
    )
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}, {"port": 53}]


def test_smp_conditions_owner_references_and_pull_secrets() -> None:
    obj = {
        "metadata": {
            "ownerReferences": [{"uid": "u1", "name": "rs-1"}, {"uid": "u2", "name": "rs-2"}]
        },
        "spec": {"imagePullSecrets": [{"name": "reg"}]},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Scheduled", "status": "True"},
            ]
        },
    }
    out = strategic_merge_patch(
        obj,
        {
            "metadata": {
                "ownerReferences": [
                    {"uid": "u2", "$patch": "delete"},
                    {"uid": "u3", "name": "rs-3"},
                ]
            },
            "spec": {"imagePullSecrets": [{"name": "other"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
    )
    assert out["metadata"]["ownerReferences"] == [
        {"uid": "u1", "name": "rs-1"},
        {"uid": "u3", "name": "rs-3"},
    ]
    assert out["spec"]["imagePullSecrets"] == [{"name": "reg"}, {"name": "other"}]
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "Scheduled", "status": "True"},
    ]


def test_smp_replace_directives() -> None:
    out = strategic_merge_patch(
        BASE, {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}}
    )
    assert containers(out) == [{"name": "only", "image": "x"}]
    out = strategic_merge_patch(
        {"metadata": {"labels": {"a": "1", "b": "2"}}},
        {"metadata": {"labels": {"$patch": "replace", "c": "3"}}},
    )
    assert out == {"metadata": {"labels": {"c": "3"}}}
    # `$patch: replace` on one list item replaces that item instead of merging it.
    out = strategic_merge_patch(
        BASE, {"spec": {"containers": [{"name": "app", "image": "y", "$patch": "replace"}]}}
    )
    assert containers(out)[0] == {"name": "app", "image": "y"}
    assert containers(out)[1]["name"] == "sidecar"


def test_smp_delete_map_and_null_deletes_key() -> None:
    out = strategic_merge_patch(
        {"spec": {"a": {"x": 1}, "b": 2, "c": 3}}, {"spec": {"a": {"$patch": "delete"}, "b": None}}
    )
    assert out == {"spec": {"c": 3}}


def test_smp_scalar_merge_lists_and_delete_from_primitive_list() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    assert strategic_merge_patch(obj, {"metadata": {"finalizers": ["b", "c"]}}) == {
        "metadata": {"finalizers": ["a", "b", "c"]}
    }
    assert strategic_merge_patch(
        obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    ) == {"metadata": {"finalizers": ["b"]}}


def test_smp_ignores_retain_keys_and_set_element_order() -> None:
    # The shape `kubectl apply` sends.
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{"name": "app", "image": "app:3"}],
                }
            },
        },
    }
    deploy = {
        "metadata": {"name": "d"},
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {"spec": {"containers": BASE["spec"]["containers"]}},
        },
    }
    out = strategic_merge_patch(deploy, patch)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    tpl = out["spec"]["template"]["spec"]
    assert list(tpl) == ["containers"]
    assert [c["image"] for c in tpl["containers"]] == ["app:3", "side:1"]
    assert out["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "{}"
    }


def test_smp_directives_resolved_in_new_values() -> None:
    out = strategic_merge_patch(
        {"spec": {}},
        {
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}],
                    }
                ]
            }
        },
    )
    assert out == {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}}


def test_smp_errors() -> None:
    with pytest.raises(
        PatchError, match=r"spec.containers\[0\]: does not contain declared merge key 'name'"
    ):
        strategic_merge_patch(BASE, {"spec": {"containers": [{"image": "x"}]}})
    with pytest.raises(
        PatchError, match=r"spec.volumes\[0\]: expected an object with merge key 'name'"
    ):
        strategic_merge_patch(BASE, {"spec": {"volumes": ["data"]}})
    with pytest.raises(PatchError, match="spec: unknown \\$patch directive 'explode'"):
        strategic_merge_patch(BASE, {"spec": {"$patch": "explode"}})
    with pytest.raises(PatchError, match="must be an object, got list"):
        strategic_merge_patch(BASE, [])


def test_smp_inputs_untouched_and_result_independent() -> None:
    target = copy.deepcopy(BASE)
    patch = {"spec": {"containers": [{"name": "new", "env": [{"name": "A", "value": "1"}]}]}}
    patch0 = copy.deepcopy(patch)
    out = strategic_merge_patch(target, patch)
    containers(out)[0]["env"].append({"name": "Z"})
    containers(out)[2]["env"].append({"name": "Z"})
    assert target == BASE
    assert patch == patch0
