"""`pilothouse`: the command line, in the kubectl idiom.

User errors print one line on stderr and exit 1; no tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

from console.cli import commands
from console.cli.target import TargetError
from control.client import ClusterUnreachable
from control.config import ConfigError
from control.errors import ApiError
from control.objects.manifest import ManifestError
from control.store.interface import StoreLocked

Handler = Callable[[argparse.Namespace], Awaitable[int]]


def _cluster_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster")
    g.add_argument(
        "--kubeconfig",
        help="kubeconfig to use (default: $KUBECONFIG, then ~/.pilothouse/kubeconfig)",
    )
    g.add_argument("--server", help="API server: https://HOST:PORT, or the path of a unix socket")


def _ns_flags(p: argparse.ArgumentParser, all_namespaces: bool = False) -> None:
    p.add_argument("-n", "--namespace", help="namespace (default: default)")
    if all_namespaces:
        p.add_argument(
            "-A", "--all-namespaces", action="store_true", help="list across all namespaces"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pilothouse",
        description="A small, real container orchestrator with the Kubernetes architecture.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="run the control plane headless (API server and store)")
    p.add_argument(
        "--data-dir", help="state, PKI and kubeconfig live here (default: ~/.pilothouse)"
    )
    p.add_argument("--config", help="config file (default: DATA_DIR/config.toml)")
    p.add_argument(
        "--listen", help="TLS listen address HOST:PORT (default 127.0.0.1:6443; '' disables)"
    )
    p.set_defaults(func=commands.serve)

    p = sub.add_parser("apply", help="create or update objects from manifests")
    p.add_argument(
        "-f", "--filename", action="append", required=True, help="file, directory or - for stdin"
    )
    _ns_flags(p)
    _cluster_flags(p)
    p.set_defaults(func=commands.apply)

    p = sub.add_parser("get", help="list objects, or show some by name")
    p.add_argument("kind", help="kind, plural or short name: pods, po, deploy, svc, ing, no, ...")
    p.add_argument("names", nargs="*", help="object names")
    _ns_flags(p, all_namespaces=True)
    p.add_argument("-l", "--selector", help="label selector, e.g. app=web,tier!=db")
    p.add_argument("--field-selector", help="field selector, e.g. spec.nodeName=node-1")
    p.add_argument(
        "-o",
        "--output",
        default="",
        choices=["", "wide", "yaml", "json", "name"],
        help="output format",
    )
    _cluster_flags(p)
    p.set_defaults(func=commands.get)

    p = sub.add_parser("describe", help="show an object in detail, with its events")
    p.add_argument("kind")
    p.add_argument("name")
    _ns_flags(p)
    _cluster_flags(p)
    p.set_defaults(func=commands.describe)

    p = sub.add_parser("delete", help="delete objects by name or from manifests")
    p.add_argument("kind", nargs="?", help="kind (omit with -f)")
    p.add_argument("names", nargs="*")
    p.add_argument("-f", "--filename", action="append", help="delete what these manifests name")
    _ns_flags(p)
    _cluster_flags(p)
    p.set_defaults(func=commands.delete)

    p = sub.add_parser("scale", help="set the replica count of a Deployment or ReplicaSet")
    p.add_argument("target", help="KIND/NAME, or KIND followed by NAME")
    p.add_argument("name", nargs="?")
    p.add_argument("--replicas", type=int, required=True, help="the new replica count")
    _ns_flags(p)
    _cluster_flags(p)
    p.set_defaults(func=commands.scale)

    p = sub.add_parser("version", help="show the client and server versions")
    _cluster_flags(p)
    p.set_defaults(func=commands.version)

    p = sub.add_parser("bench", help="run a benchmark and print its figures next to a baseline")
    bench = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    b = bench.add_parser("api", help="API server and store: writes, lists and watch latency")
    b.add_argument(
        "--objects", type=int, default=10000, help="objects to create and update (default 10000)"
    )
    b.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    b.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object on the last line"
    )
    b.set_defaults(func=commands.bench_api)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(0)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    sys.exit(run(args.func, args))


def run(func: Handler, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(func(args))
    except KeyboardInterrupt:
        return 130
    except ApiError as e:
        _fail(f"Error from server ({e.reason or e.code}): {e.message}")
    except (
        ClusterUnreachable,
        TargetError,
        ConfigError,
        ManifestError,
        StoreLocked,
        commands.UsageError,
    ) as e:
        _fail(f"error: {e}")
    except OSError as e:
        _fail(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}")
    return 1


def _fail(message: str) -> None:
    sys.stderr.write(message.rstrip() + "\n")
