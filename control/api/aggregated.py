"""Aggregated discovery: every group, version and resource in one answer.

kubectl asks for it on /api and /apis with
`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`
(v2, or v2beta1, of the same shape), and then needs no request per group.
Built from the table of served resources (control.api.apiresources).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from control.api.apiresources import SERVED, ApiResource, group_versions, optional_names

_GROUP = "apidiscovery.k8s.io"
_AS = "APIGroupDiscoveryList"
VERSIONS = ("v2", "v2beta1")


def negotiated_version(accept: str) -> str | None:
    """The aggregated discovery version the Accept header asks for first, or
    None when it prefers a plain (JSON) discovery document. Media types this
    server does not produce (protobuf) are passed over."""
    for media_range in accept.split(","):
        mime, *raw_params = (p.strip() for p in media_range.split(";"))
        params = dict(p.partition("=")[::2] for p in raw_params)
        if mime not in ("application/json", "application/*", "*/*"):
            continue
        if params.get("g") == _GROUP and params.get("as") == _AS:
            if params.get("v") in VERSIONS:
                return params["v"]
            continue
        if "g" not in params and "as" not in params:
            return None
    return None


def _resource(r: ApiResource) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
        **optional_names(r),
    }
    if r.subresources:
        out["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": {
                    "group": r.group if s.group is None else s.group,
                    "version": r.version if s.version is None else s.version,
                    "kind": s.kind,
                },
                "verbs": list(s.verbs),
            }
            for s in r.subresources
        ]
    return out


def _group(name: str, version: str) -> dict[str, Any]:
    resources = [_resource(r) for r in SERVED if r.group == name and r.version == version]
    return {
        "metadata": {"name": name} if name else {},
        "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
    }


def document(path: str, version: str) -> dict[str, Any] | None:
    """The APIGroupDiscoveryList of /api (the core group) or /apis (the others)."""
    if path == "/api":
        items = [_group("", "v1")]
    elif path == "/apis":
        items = [_group(g, v) for g, v in group_versions()]
    else:
        return None
    return {"kind": _AS, "apiVersion": f"{_GROUP}/{version}", "metadata": {}, "items": items}


def response(request: web.Request, path: str) -> web.Response | None:
    """The aggregated answer, when `request` asks for one on a path that has it."""
    if path not in ("/api", "/apis"):
        return None
    version = negotiated_version(request.headers.get("Accept", ""))
    if version is None:
        return None
    doc = document(path, version)
    content_type = f"application/json;g={_GROUP};v={version};as={_AS}"
    return web.Response(
        body=orjson.dumps(doc), headers={"Content-Type": content_type, "Vary": "Accept"}
    )
