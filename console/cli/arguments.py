"""What the commands share in reading their arguments: kinds, names, namespaces,
durations and the cluster to talk to."""

from __future__ import annotations

import argparse

from console.cli.target import make_client
from control.client import Client
from control.objects.kinds import ResourceType, by_name


class UsageError(Exception):
    """The command line asks for something impossible."""


def client_for(args: argparse.Namespace) -> Client:
    return make_client(getattr(args, "server", None), getattr(args, "kubeconfig", None))


def resolve_kind(name: str) -> ResourceType:
    rt = by_name(name)
    if rt is None:
        raise UsageError(f'the server doesn\'t have a resource type "{name}"')
    return rt


def split_target(target: str, name: str | None) -> tuple[ResourceType, str]:
    """`KIND/NAME`, or `KIND` and NAME apart."""
    if "/" in target:
        kind, _, obj = target.partition("/")
        return resolve_kind(kind), obj
    if not name:
        raise UsageError(f"missing a name: use {target}/NAME or {target} NAME")
    return resolve_kind(target), name


def namespace_of(args: argparse.Namespace, rt: ResourceType) -> str | None:
    return (args.namespace or "default") if rt.namespaced else None


def duration(flag: str, text: str) -> float:
    """Seconds from "90", "90s", "2m", "1m30s" (0 is kubectl's "no limit")."""
    from agent.protocol.primitives import parse_duration

    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_duration(text)
        except ValueError:
            seconds = -1.0
    if seconds < 0:
        raise UsageError(f'{flag}: not a duration: "{text}" (use e.g. "90s", "2m", "1m30s")')
    return seconds
