"""`bench`: run a benchmark and print its figures next to a baseline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable

from console.cli.arguments import UsageError


async def api(args: argparse.Namespace) -> int:
    from console.bench.api import run_bench_api

    return await run_bench_api(args.objects, args.concurrency, args.json, args.store)


async def scheduler(args: argparse.Namespace) -> int:
    from console.bench.scheduler import run_bench_scheduler

    return await run_bench_scheduler(args.nodes, args.pods, args.concurrency, args.json, args.store)


async def console(args: argparse.Namespace) -> int:
    from console.bench.console import run_bench_console

    return await run_bench_console(args.pods, args.nodes, args.seconds, args.rate, args.json)


async def pods(args: argparse.Namespace) -> int:
    from console.bench.pods import run_bench_pods

    if args.nodes < 1 or args.replicas < 1 or args.samples < 1:
        raise UsageError("--nodes, --replicas and --samples must be positive")
    return await _reported(
        "pods",
        run_bench_pods(
            nodes=args.nodes,
            replicas=args.replicas,
            samples=args.samples,
            use_current=args.use_current,
            server=args.server,
            kubeconfig=args.kubeconfig,
            as_json=args.json,
        ),
    )


async def net(args: argparse.Namespace) -> int:
    from console.bench.net import run_bench_net

    return await _reported("net", run_bench_net(as_json=args.json))


async def ingress(args: argparse.Namespace) -> int:
    from console.bench.ingress import Counts, run_bench_ingress

    if min(args.requests, args.tls_requests, args.concurrency, args.rounds) < 1:
        raise UsageError("--requests, --tls-requests, --concurrency and --rounds must be positive")
    counts = Counts(
        http_requests=args.requests,
        tls_requests=args.tls_requests,
        concurrency=args.concurrency,
        rounds=args.rounds,
    )
    return await _reported("ingress", run_bench_ingress(counts=counts, as_json=args.json))


async def failover(args: argparse.Namespace) -> int:
    from console.bench.failover import run_bench_failover

    if args.control_planes < 2 or args.kills < 1:
        raise UsageError("--control-planes must be at least 2 and --kills at least 1")
    timing = (args.lease_duration, args.renew_deadline, args.retry_period)
    bench = run_bench_failover(args.control_planes, args.kills, args.etcd, timing, args.json)
    return await _reported("failover", bench)


async def _reported(name: str, bench: Awaitable[int]) -> int:
    """The bench's exit code; its failure as one line on stderr and 1."""
    try:
        return await bench
    except RuntimeError as e:
        print(f"error: bench {name}: {e}", file=sys.stderr, flush=True)
        return 1


async def load(args: argparse.Namespace) -> int:
    from console.bench.soak import run_bench_load

    if args.duration <= 0:
        raise UsageError("--duration must be positive")
    if not 1 <= args.clients <= 500:
        raise UsageError("--clients must be between 1 and 500")
    try:
        return await run_bench_load(args.duration, args.json, args.clients)
    except RuntimeError as e:
        print(f"error: bench load: {e}", file=sys.stderr, flush=True)
        return 1
