"""Pod logs, exec and metrics through the API, the client and the CLI, on
hollow nodes: the agents answer with deterministic synthetic data (see
agent.hollow), so these tests cover the control side end to end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from console.cli import main as cli
from control.errors import ApiError
from control.nodes.reconnecting import LinkState
from control.objects.kinds import POD
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster, make_pod
from tests.polling import eventually

Obj = dict[str, Any]

LINES = [f"web/main line {i}\n" for i in range(1, 6)]


async def _running(
    cluster: HollowCluster, name: str = "web", node: str = "node-1", **kw: Any
) -> Obj:
    await cluster.registry.create(POD, "default", make_pod(name, node, **kw))
    return await cluster.wait_pod_running(name)


async def _cli(
    capsys: pytest.CaptureFixture[str], cluster: HollowCluster, *argv: str
) -> tuple[int, str, str]:
    args = cli.parse_args([argv[0], "--server", cluster.socket, *argv[1:]])
    code = await args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


# -- logs -----------------------------------------------------------------------


async def test_logs_text_and_query_params(hollow_cluster: HollowCluster) -> None:
    await _running(hollow_cluster)
    async with hollow_cluster.client() as client:
        assert await client.logs("web") == "".join(LINES)
        assert await client.logs("web", tail_lines=2) == "".join(LINES[-2:])
        assert await client.logs("web", tail_lines=0) == ""
        assert await client.logs("web", container="main", since_seconds=60) == "".join(LINES)
        stamped = await client.logs("web", timestamps=True, tail_lines=1)
        assert stamped == "2026-01-01T00:00:00.000000000Z web/main line 5\n"
        status, raw = await client.request_raw("GET", "/api/v1/namespaces/default/pods/web/log")
        assert status == 200 and raw.decode() == "".join(LINES)


async def test_logs_follow_streams_until_the_container_ends(
    hollow_cluster: HollowCluster,
) -> None:
    await _running(hollow_cluster)
    async with hollow_cluster.client() as client:
        chunks = [c async for c in client.follow_logs("web", tail_lines=1)]
    assert chunks == [LINES[-1], *[f"web/main line {i}\n" for i in range(6, 9)]]
    # The link keeps no state for the finished stream.
    link = hollow_cluster.plane.node_links.links["node-1"]
    assert not link._streams


async def test_logs_follow_client_may_leave_early(hollow_cluster: HollowCluster) -> None:
    await _running(hollow_cluster)
    async with hollow_cluster.client() as client:
        async for chunk in client.follow_logs("web"):
            assert chunk == LINES[0]
            break
        # The server and link are fine afterwards.
        assert await client.logs("web", tail_lines=1) == LINES[-1]
    link = hollow_cluster.plane.node_links.links["node-1"]
    await eventually(lambda: not link._streams, "the stream to be released", within=DEFAULT_TIMEOUT)


async def test_logs_errors(hollow_cluster: HollowCluster) -> None:
    await _running(hollow_cluster)
    two = make_pod("two", "node-2")
    two["spec"]["containers"].append({"name": "side", "image": "pilothouse/busybox"})
    await hollow_cluster.registry.create(POD, "default", two)
    await hollow_cluster.wait_pod_running("two")
    await hollow_cluster.registry.create(
        POD, "default", make_pod("pending", nodeSelector={"no": "such"})
    )
    async with hollow_cluster.client() as client:
        with pytest.raises(ApiError) as e:
            await client.logs("nope")
        assert e.value.code == 404
        with pytest.raises(ApiError) as e:
            await client.logs("pending")
        assert e.value.code == 400 and "does not have a host assigned" in e.value.message
        with pytest.raises(ApiError) as e:
            await client.logs("web", container="other")
        assert e.value.code == 400 and "container other is not valid" in e.value.message
        with pytest.raises(ApiError) as e:
            await client.logs("two")
        assert e.value.code == 400 and "choose one of: [main side]" in e.value.message
        assert await client.logs("two", container="side", tail_lines=1) == "two/side line 5\n"
        with pytest.raises(ApiError) as e:
            await client.logs("web", previous=True)
        assert e.value.code == 400 and "previous terminated container" in e.value.message
        with pytest.raises(ApiError) as e:
            await client.request("GET", "/api/v1/namespaces/default/pods/web/log?tailLines=x")
        assert e.value.code == 400
        with pytest.raises(ApiError) as e:
            [c async for c in client.follow_logs("nope")]
        assert e.value.code == 404


async def test_logs_and_exec_when_the_node_link_is_down(hollow_cluster: HollowCluster) -> None:
    await _running(hollow_cluster)
    link = hollow_cluster.plane.node_links.links["node-1"]
    transport = hollow_cluster.transports["node-1"]
    await hollow_cluster.disconnect("node-1")
    async with hollow_cluster.client() as client:
        for call in (
            client.logs("web"),
            client.exec("web", ["true"]),
            anext(aiter(client.follow_logs("web"))),
        ):
            with pytest.raises(ApiError) as e:
                await call
            assert e.value.code == 400 and "node-1 is not reachable" in e.value.message
        # Metrics leave the node out rather than fail.
        nodes = await client.node_metrics()
        assert sorted(m["metadata"]["name"] for m in nodes["items"]) == ["node-2", "node-3"]
    transport.refuse = False
    await eventually(lambda: link.state is LinkState.CONNECTED, "reconnect", within=DEFAULT_TIMEOUT)
    async with hollow_cluster.client() as client:
        assert await client.logs("web", tail_lines=1) == LINES[-1]


async def test_follow_ends_when_the_link_drops(hollow_cluster: HollowCluster) -> None:
    await _running(hollow_cluster)
    link = hollow_cluster.plane.node_links.links["node-1"]
    agent = hollow_cluster.agents["node-1"]
    from agent import hollow

    old = hollow.HOLLOW_FOLLOW_LINES
    hollow.HOLLOW_FOLLOW_LINES = 10_000  # long enough to still run when the link drops
    try:
        chunks = link.follow_logs({"namespace": "default", "name": "web"})
        assert await anext(chunks) == "".join(LINES)
        assert await anext(chunks) == "web/main line 6\n"
        await hollow_cluster.transports["node-1"].cut()
        rest = [c async for c in chunks]
        assert len(rest) < 10_000
    finally:
        hollow.HOLLOW_FOLLOW_LINES = old
        for task in list(agent._tasks):
            task.cancel()


# -- exec -----------------------------------------------------------------------


async def test_exec(hollow_cluster: HollowCluster) -> None:
    await _running(hollow_cluster)
    async with hollow_cluster.client() as client:
        assert await client.exec("web", ["echo", "hello", "world"]) == {
            "stdout": "hello world\n",
            "stderr": "",
            "exitCode": 0,
        }
        assert (await client.exec("web", ["exit", "3"], container="main"))["exitCode"] == 3
        missing = await client.exec("web", ["nosuch"])
        assert missing == {"stdout": "", "stderr": "nosuch: not found\n", "exitCode": 127}
        for body in ({"command": []}, {"command": "ls"}, {"command": [1]}, ["ls"]):
            with pytest.raises(ApiError) as e:
                await client.request("POST", "/api/v1/namespaces/default/pods/web/exec", body=body)
            assert e.value.code == 400
        with pytest.raises(ApiError) as e:
            await client.exec("nope", ["true"])
        assert e.value.code == 404
        # Kubernetes-style (query parameters) without the WebSocket upgrade: refused clearly.
        with pytest.raises(ApiError) as e:
            await client.request(
                "POST",
                "/api/v1/namespaces/default/pods/web/exec",
                params={"command": "sh", "tty": "true", "stdin": "true"},
            )
        assert e.value.code == 400 and "Upgrade request required" in e.value.message
        with pytest.raises(ApiError) as e:
            await client.exec("web", ["true"], container="other")
        assert e.value.code == 400


# -- metrics --------------------------------------------------------------------


async def test_metrics_api(hollow_cluster: HollowCluster) -> None:
    await _running(hollow_cluster, "a", "node-1")
    await _running(hollow_cluster, "b", "node-2")
    async with hollow_cluster.client() as client:
        nodes = await client.node_metrics()
        assert nodes["kind"] == "NodeMetricsList"
        by_name = {m["metadata"]["name"]: m["usage"] for m in nodes["items"]}
        assert by_name == {
            "node-1": {"cpu": "1000000n", "memory": "16384Ki"},
            "node-2": {"cpu": "1000000n", "memory": "16384Ki"},
            "node-3": {"cpu": "0n", "memory": "0Ki"},
        }
        pods = await client.pod_metrics("default")
        assert pods["kind"] == "PodMetricsList"
        assert [(m["metadata"]["name"], m["containers"]) for m in pods["items"]] == [
            (n, [{"name": "main", "usage": {"cpu": "1000000n", "memory": "16384Ki"}}])
            for n in ("a", "b")
        ]
        assert (await client.pod_metrics("kube-system"))["items"] == []
        assert len((await client.pod_metrics(None))["items"]) == 2
        one = await client.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes/node-2")
        assert one["kind"] == "NodeMetrics"
        with pytest.raises(ApiError) as e:
            await client.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes/nope")
        assert e.value.code == 404


async def test_metrics_api_honours_selectors(hollow_cluster: HollowCluster) -> None:
    await _running(hollow_cluster, "a", "node-1", labels={"app": "a", "tier": "web"})
    await _running(hollow_cluster, "b", "node-2", labels={"app": "b", "tier": "web"})
    await _running(hollow_cluster, "c", "node-2", labels={"app": "c", "tier": "db"})
    pods = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"
    async with hollow_cluster.client() as client:

        async def names(path: str, **params: str) -> list[str]:
            listed = await client.request("GET", path, params=params)
            return [m["metadata"]["name"] for m in listed["items"]]

        assert await names(pods, labelSelector="tier=web") == ["a", "b"]
        assert await names(pods, labelSelector="app=c") == ["c"]
        assert await names(pods, fieldSelector="metadata.name=b") == ["b"]
        assert await names(pods, labelSelector="app=nothing") == []
        assert await names("/apis/metrics.k8s.io/v1beta1/pods", labelSelector="tier=db") == ["c"]
        assert await names(pods) == ["a", "b", "c"]
        nodes = "/apis/metrics.k8s.io/v1beta1/nodes"
        assert await names(nodes, fieldSelector="metadata.name=node-2") == ["node-2"]
        assert await names(nodes, labelSelector="kubernetes.io/hostname=node-3") == ["node-3"]
        with pytest.raises(ApiError) as e:
            await names(pods, labelSelector="a in (")
        assert e.value.code == 400


# -- CLI ------------------------------------------------------------------------


async def test_cli_logs_exec_top(
    hollow_cluster: HollowCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await _running(hollow_cluster)
    code, out, _ = await _cli(capsys, hollow_cluster, "logs", "web", "--tail", "2")
    assert code == 0 and out == "".join(LINES[-2:])
    code, out, _ = await _cli(capsys, hollow_cluster, "logs", "pod/web", "-c", "main", "-f")
    assert code == 0 and out.splitlines()[-1] == "web/main line 8"
    code, out, _ = await _cli(capsys, hollow_cluster, "logs", "web", "--timestamps", "--tail", "1")
    assert out == "2026-01-01T00:00:00.000000000Z web/main line 5\n"

    code, out, err = await _cli(capsys, hollow_cluster, "exec", "web", "--", "echo", "-n", "hi")
    assert (code, out, err) == (0, "-n hi\n", "")
    code, out, err = await _cli(capsys, hollow_cluster, "exec", "web", "-c", "main", "--", "x")
    assert (code, out, err) == (127, "", "x: not found\n")
    code, _, _ = await _cli(capsys, hollow_cluster, "exec", "web", "--", "exit", "42")
    assert code == 42

    code, out, _ = await _cli(capsys, hollow_cluster, "top", "nodes")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
    assert lines[1].split() == ["node-1", "1m", "0%", "16Mi", "0%"]
    code, out, _ = await _cli(capsys, hollow_cluster, "top", "pods")
    assert out.splitlines()[1].split() == ["web", "1m", "16Mi"]
    code, out, _ = await _cli(capsys, hollow_cluster, "top", "pods", "-A")
    assert out.splitlines()[1].split() == ["default", "web", "1m", "16Mi"]


async def test_cli_errors(
    hollow_cluster: HollowCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.cli.arguments import UsageError

    with pytest.raises(UsageError):
        await _cli(capsys, hollow_cluster, "exec", "web")
    with pytest.raises(ApiError) as e:
        await _cli(capsys, hollow_cluster, "logs", "nope")
    assert e.value.code == 404
    # Through run(): one line on stderr, exit 1.
    args = cli.parse_args(["logs", "--server", hollow_cluster.socket, "nope"])
    code = await asyncio.to_thread(cli.run, args.func, args)
    _, err = capsys.readouterr()
    assert code == 1 and err == 'Error from server (NotFound): pods "nope" not found\n'


def test_cli_exec_parsing() -> None:
    args = cli.parse_args(["exec", "web", "-c", "side", "-n", "x", "--", "sh", "-c", "ls -l"])
    assert (args.pod, args.container, args.namespace) == ("web", "side", "x")
    assert args.argv == ["sh", "-c", "ls -l"]
    args = cli.parse_args(["exec", "web", "--", "a", "--", "-b"])
    assert args.argv == ["a", "--", "-b"]
    args = cli.parse_args(["logs", "web", "-f", "-p", "--tail", "3", "--timestamps", "-c", "c"])
    assert (args.follow, args.previous, args.tail, args.timestamps, args.container) == (
        True,
        True,
        3,
        True,
        "c",
    )


async def test_api_alone_answers_503(tmp_path: Any) -> None:
    from control.config import load_config
    from control.controlplane import ControlPlane

    (tmp_path / "config.toml").write_text('[api]\nlisten = ""\n')
    plane = ControlPlane(load_config(None, data_dir=tmp_path), components=False)
    await plane.start()
    try:
        from control.client import Client

        async with Client(str(plane.socket_path)) as client:
            await client.create(POD, make_pod("web", "node-1"))
            with pytest.raises(ApiError) as e:
                await client.logs("web")
            assert e.value.code == 503
            with pytest.raises(ApiError) as e:
                await client.node_metrics()
            assert e.value.code == 503
    finally:
        await plane.stop()
