"""What the fuzz suite shares: its hypothesis profiles, each test's example
budget, the count of examples run, and strategies for JSON values.

CI runs the `ci` profile: derandomized (the same examples on every run), no
example database, no deadline, and each test's own `budget`; the budgets add
up to at least MIN_CI_EXAMPLES. `PILOTHOUSE_FUZZ=explore` runs ten times the
examples, randomized.
"""

from __future__ import annotations

import copy
import json
import os
import string
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

MIN_CI_EXAMPLES = 2000
EXPLORE = os.environ.get("PILOTHOUSE_FUZZ", "") == "explore"

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "explore", deadline=None, print_blob=True, suppress_health_check=_SUPPRESSED
)
settings.load_profile("explore" if EXPLORE else "ci")

# Each test's budget (its qualified name -> max_examples in CI), and how many
# examples ran in this session.
BUDGETS: dict[str, int] = {}
RUN: dict[str, int] = {}

F = TypeVar("F", bound=Callable[..., Any])


def budget(examples: int) -> Callable[[F], F]:
    """`settings(max_examples=...)` for one test (ten times as many when
    exploring), recorded so that the suite can check the total."""

    def wrap(test: F) -> F:
        BUDGETS[f"{test.__module__}.{test.__qualname__}"] = examples
        return settings(max_examples=examples * 10 if EXPLORE else examples)(test)  # type: ignore[return-value]

    return wrap


def ran(test: str) -> None:
    """Count one example of `test`."""
    RUN[test] = RUN.get(test, 0) + 1


# -- JSON values -------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """JSON as any client may send it: numbers past 64 bits too, which orjson refuses."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


# Field names the kinds use, so that random maps reach the models' fields.
FIELD_NAMES = (
    "apiVersion kind metadata name namespace generateName labels annotations uid "
    "resourceVersion finalizers ownerReferences deletionTimestamp creationTimestamp "
    "spec status data stringData binaryData type replicas selector matchLabels "
    "matchExpressions key operator values template containers initContainers image "
    "command args env value valueFrom ports port containerPort targetPort protocol "
    "nodePort clusterIP clusterIPs resources limits requests cpu memory volumes "
    "volumeMounts mountPath configMap secret secretName items path rules host http "
    "paths pathType backend service number hostnames parentRefs backendRefs weight "
    "matches headers schedule jobTemplate parallelism completions backoffLimit "
    "strategy rollingUpdate maxSurge maxUnavailable nodeName tolerations effect "
    "conditions reason message endpoints addresses podCIDR taints unschedulable "
    "holderIdentity leaseDurationSeconds involvedObject count controllerName "
    "gatewayClassName listeners hostname ingressClassName defaultBackend tls "
    "restartPolicy terminationGracePeriodSeconds activeDeadlineSeconds "
    "minReadySeconds revisionHistoryLimit progressDeadlineSeconds paused "
    "updateStrategy suspend concurrencyPolicy startingDeadlineSeconds timeZone "
    "ttlSecondsAfterFinished completionMode podFailurePolicy addressType "
    "$patch $retainKeys $setElementOrder/containers $deleteFromPrimitiveList/finalizers"
).split()

_INTS = st.integers()
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)

# Strings that mean something somewhere: empty, DNS names and not quite,
# quantities, times, numbers as text, paths, selectors.
_TELLING = (
    "",
    "a",
    "web",
    "Web",
    "-a",
    "a-",
    "a.b",
    "a/b",
    "../x",
    "x" * 64,
    "x" * 254,
    "0",
    "-1",
    "1.5",
    "1e3",
    "100m",
    "1Gi",
    "0x10",
    "true",
    "null",
    "2024-01-01T00:00:00Z",
    "not-a-time",
    "TCP",
    "Always",
    "app=web",
    "app in (a,b)",
    "10.0.0.1",
    "10.0.0.0/24",
    "::1",
    "*.example.com",
    "/",
    "/a/../b",
    "é",
    "\x00",
    "\u2028",
)
TEXT = st.one_of(
    st.sampled_from(_TELLING),
    st.text(max_size=16),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-.", max_size=20),
)
KEYS = st.one_of(st.sampled_from(FIELD_NAMES), TEXT)
SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, TEXT)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value, small and shallow."""
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


JSON = json_values()
JSON_OBJECTS = st.dictionaries(KEYS, JSON, max_size=6)


# Pieces of YAML syntax, explicit tags, anchors and aliases above all, to join at random.
_YAML_PIECES = [
    "!!int ",
    "!!float ",
    "!!timestamp ",
    "!!binary ",
    "!!str ",
    "!!null ",
    "!!bool ",
    "!!set ",
    "!!omap ",
    "!!pairs ",
    "!!seq ",
    "!!map ",
    "!foo ",
    "- ",
    ": ",
    "\n",
    "  ",
    "\t",
    "? ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "0x",
    "0o",
    "0b",
    "1_0",
    "1e9",
    "-.inf",
    ".nan",
    "2024-01-01",
    "2024-13-45",
    "2024-01-01T25:61:00Z",
    "12:30:00",
    "~",
    "'",
    '"',
    "#",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2024:\n",
    "|\n",
    ">-\n",
    "apiVersion",
    "kind",
    "v1",
    "List",
    "items",
    "a",
    "1",
    "\\u0000",
    "&a ",
    "*a",
    "<<: *a\n",
]
YAML_SOUP = st.lists(st.sampled_from(_YAML_PIECES), max_size=24).map("".join)


def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `value` (keys and indexes), the root first."""
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*at, i))
    return out


@st.composite
def mutated(
    draw: st.DrawFn, seed: Any, keep: Callable[[tuple[Any, ...]], bool] | None = None
) -> Any:
    """`seed` with up to four changes: a value replaced, removed, or a field
    added. Paths for which `keep` is true are left alone."""
    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(0, 4))):
        changeable = [p for p in paths(doc) if p and not (keep and keep(p))]
        if not changeable:
            break
        path = draw(st.sampled_from(changeable))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = draw(st.sampled_from(("replace", "remove", "add")))
        if action == "replace":
            parent[last] = draw(JSON)
        elif action == "remove":
            del parent[last]
        elif isinstance(parent[last], dict):
            key = draw(KEYS)
            if not (keep and keep((*path, key))):
                parent[last][key] = draw(JSON)
        elif isinstance(parent[last], list):
            parent[last].append(draw(JSON))
        else:
            parent[last] = draw(JSON)
    return doc
