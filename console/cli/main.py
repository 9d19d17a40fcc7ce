"""`pilothouse`: the command line, in the kubectl idiom.

User errors print one line on stderr and exit 1; no tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from importlib import import_module

from console.cli.arguments import UsageError
from console.cli.target import TargetError
from control.errors import ApiError, DataDirLocked, TransportError

Handler = Callable[[argparse.Namespace], Awaitable[int]]
Subparsers = argparse._SubParsersAction


class Command:
    """A command's handler: the function `name` in the module console.cli.`module`,
    imported when the command runs, so that each command loads only what it uses.
    `fast_loop`: it runs on uvloop (the control plane spends a fifth less CPU per
    request on it than on asyncio's own loop, and the benchmarks' clients too)."""

    __slots__ = ("fast_loop", "module", "name")

    def __init__(self, module: str, name: str, *, fast_loop: bool = False) -> None:
        self.module, self.name, self.fast_loop = module, name, fast_loop

    def __repr__(self) -> str:
        return f"Command({self.module}.{self.name})"

    async def __call__(self, args: argparse.Namespace) -> int:
        handler: Handler = getattr(import_module(f"console.cli.{self.module}"), self.name)
        return await handler(args)


def _cluster_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster")
    g.add_argument(
        "--kubeconfig",
        help="kubeconfig to use (default: $KUBECONFIG, then ~/.pilothouse/kubeconfig)",
    )
    g.add_argument("--server", help="API server: https://HOST:PORT, or the path of a unix socket")


def _talks_to_cluster(p: argparse.ArgumentParser, command: Command) -> None:
    """A command on a cluster: the flags that choose the cluster, and its handler."""
    _cluster_flags(p)
    p.set_defaults(func=command)


def _ns_flags(p: argparse.ArgumentParser, all_namespaces: bool = False) -> None:
    p.add_argument("-n", "--namespace", help="namespace (default: default)")
    if all_namespaces:
        p.add_argument(
            "-A", "--all-namespaces", action="store_true", help="list across all namespaces"
        )


def _serve(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run the control plane headless (API server and store)")
    p.add_argument(
        "--data-dir", help="state, PKI and kubeconfig live here (default: ~/.pilothouse)"
    )
    p.add_argument("--config", help="config file (default: DATA_DIR/config.toml)")
    p.add_argument(
        "--listen", help="TLS listen address HOST:PORT (default 127.0.0.1:6443; '' disables)"
    )
    p.add_argument(
        "--hollow-nodes",
        type=int,
        default=0,
        metavar="N",
        help="also join N simulated nodes (hollow-1 ...): pods run on them without "
        "containers, no root needed",
    )
    p.set_defaults(func=Command("cluster", "serve", fast_loop=True))


def _migrate(sub: Subparsers) -> None:
    p = sub.add_parser(
        "migrate",
        help="copy every object from one store to another (control plane stopped)",
        description="Copies every object into an empty store and checks the counts "
        "afterwards, e.g. --from sqlite:~/.pilothouse/state.db --to etcd:http://127.0.0.1:2379",
    )
    p.add_argument("--from", dest="source", required=True, help="sqlite:PATH or etcd:URL[,URL...]")
    p.add_argument(
        "--to", dest="destination", required=True, help="sqlite:PATH or etcd:URL[,URL...]"
    )
    p.add_argument(
        "--etcd-prefix", default="/pilothouse", help="etcd key prefix (default /pilothouse)"
    )
    p.add_argument("--etcd-ca-file", help="CA that signed etcd's certificate")
    p.add_argument("--etcd-cert-file", help="client certificate for etcd")
    p.add_argument("--etcd-key-file", help="client key for etcd")
    p.set_defaults(func=Command("cluster", "migrate"))


def _apply(sub: Subparsers) -> None:
    p = sub.add_parser("apply", help="create or update objects from manifests")
    p.add_argument(
        "-f", "--filename", action="append", required=True, help="file, directory or - for stdin"
    )
    _ns_flags(p)
    _talks_to_cluster(p, Command("resources", "apply"))


def _get(sub: Subparsers) -> None:
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
    _talks_to_cluster(p, Command("resources", "get"))


def _describe(sub: Subparsers) -> None:
    p = sub.add_parser("describe", help="show an object in detail, with its events")
    p.add_argument("kind")
    p.add_argument("name")
    _ns_flags(p)
    _talks_to_cluster(p, Command("resources", "describe"))


def _delete(sub: Subparsers) -> None:
    p = sub.add_parser("delete", help="delete objects by name or from manifests")
    p.add_argument("kind", nargs="?", help="kind (omit with -f)")
    p.add_argument("names", nargs="*")
    p.add_argument("-f", "--filename", action="append", help="delete what these manifests name")
    _ns_flags(p)
    _talks_to_cluster(p, Command("resources", "delete"))


def _scale(sub: Subparsers) -> None:
    p = sub.add_parser("scale", help="set the replica count of a Deployment or ReplicaSet")
    p.add_argument("target", help="KIND/NAME, or KIND followed by NAME")
    p.add_argument("name", nargs="?")
    p.add_argument("--replicas", type=int, required=True, help="the new replica count")
    _ns_flags(p)
    _talks_to_cluster(p, Command("resources", "scale"))


def _create(sub: Subparsers) -> None:
    p = sub.add_parser("create", help="create an object: a Job from a CronJob")
    kinds = p.add_subparsers(dest="create_kind", metavar="KIND", required=True)
    job = kinds.add_parser("job", help="run a CronJob's job template now")
    job.add_argument("name", help="the new Job's name")
    job.add_argument("--from", dest="source", required=True, help="cronjob/NAME")
    _ns_flags(job)
    _talks_to_cluster(job, Command("jobs", "create_job"))


def _rollout(sub: Subparsers) -> None:
    p = sub.add_parser("rollout", help="manage the rollout of a deployment")
    rollout_actions = p.add_subparsers(dest="rollout", metavar="ACTION", required=True)
    for action, helptext, func in (
        (
            "status",
            "show the rollout status, following it until done",
            Command("rollout", "status"),
        ),
        ("history", "list the revisions of a deployment", Command("rollout", "history")),
        ("undo", "roll back to the previous (or a given) revision", Command("rollout", "undo")),
        ("restart", "restart every pod with a new rollout", Command("rollout", "restart")),
        ("pause", "pause a deployment: template changes wait", Command("rollout", "pause")),
        ("resume", "resume a paused deployment", Command("rollout", "resume")),
    ):
        r = rollout_actions.add_parser(action, help=helptext)
        r.add_argument("target", help="deployment/NAME, or deployment followed by NAME")
        r.add_argument("name", nargs="?")
        if action == "status":
            r.add_argument(
                "-w",
                "--watch",
                action=argparse.BooleanOptionalAction,
                default=True,
                help="follow the rollout until it finishes (default: yes)",
            )
            r.add_argument(
                "--timeout", default="0", help='give up after this long, e.g. "5m" (0: never)'
            )
        elif action == "history":
            r.add_argument("--revision", type=int, default=0, help="show this revision's template")
        elif action == "undo":
            r.add_argument(
                "--to-revision",
                type=int,
                default=0,
                help="the revision to roll back to (0: the previous)",
            )
        _ns_flags(r)
        _cluster_flags(r)
        r.set_defaults(func=func)


def _logs(sub: Subparsers) -> None:
    p = sub.add_parser("logs", help="print the log of a pod's container")
    p.add_argument("pod", help="POD or pod/POD")
    p.add_argument("-c", "--container", help="container (default: the pod's only one)")
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the container ends"
    )
    p.add_argument(
        "-p", "--previous", action="store_true", help="the previous, terminated container's log"
    )
    p.add_argument("--tail", type=int, help="only the last N lines (default: all)")
    p.add_argument("--since", type=int, metavar="SECONDS", help="only the last SECONDS seconds")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with its time")
    _ns_flags(p)
    _talks_to_cluster(p, Command("pods", "logs"))


def _exec(sub: Subparsers) -> None:
    p = sub.add_parser(
        "exec",
        help="run a command in a pod's container and exit with its exit code",
        usage="pilothouse exec [-i] [-t] POD [-c CONTAINER] [-n NS] -- CMD [ARGS...]",
    )
    p.add_argument("pod", help="POD or pod/POD")
    p.add_argument("-c", "--container", help="container (default: the pod's only one)")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    p.add_argument(
        "-t", "--tty", action="store_true", help="run it on a terminal (raw mode locally)"
    )
    _ns_flags(p)
    _cluster_flags(p)
    p.add_argument("argv", nargs="*", metavar="CMD", help="after --: the command and its arguments")
    p.set_defaults(func=Command("pods", "exec_"))


def _top(sub: Subparsers) -> None:
    p = sub.add_parser("top", help="CPU and memory use of nodes or pods")
    p.add_argument("what", choices=["nodes", "node", "no", "pods", "pod", "po"])
    _ns_flags(p, all_namespaces=True)
    _talks_to_cluster(p, Command("pods", "top"))


def _cordon(sub: Subparsers) -> None:
    p = sub.add_parser("cordon", help="mark a node unschedulable")
    p.add_argument("node")
    _talks_to_cluster(p, Command("nodes", "cordon"))


def _uncordon(sub: Subparsers) -> None:
    p = sub.add_parser("uncordon", help="mark a node schedulable again")
    p.add_argument("node")
    _talks_to_cluster(p, Command("nodes", "uncordon"))


def _drain(sub: Subparsers) -> None:
    p = sub.add_parser("drain", help="cordon a node, evict its pods, and wait until they are gone")
    p.add_argument("node")
    p.add_argument(
        "--ignore-daemonsets", action="store_true", help="leave DaemonSet-managed pods in place"
    )
    p.add_argument(
        "--timeout", default="0s", help="give up after this long, e.g. 2m (default 0s: no limit)"
    )
    p.add_argument(
        "--grace-period",
        type=int,
        default=-1,
        help="seconds each pod gets to stop (default -1: the pod's own)",
    )
    _talks_to_cluster(p, Command("nodes", "drain"))


def _image(sub: Subparsers) -> None:
    p = sub.add_parser("image", help="image tools")
    image = p.add_subparsers(dest="image_command", metavar="ACTION", required=True)
    b = image.add_parser(
        "import",
        help="load an OCI or docker image archive (.tar) onto nodes",
        description="Upload an OCI or docker image archive (`docker save`, `ctr images "
        "export`, an OCI layout as a tar) through the API server to the nodes' agents, "
        "which import it into containerd's k8s.io namespace. Pods then use it with "
        "imagePullPolicy: Never or IfNotPresent. Exits 1 if any node failed.",
    )
    b.add_argument("file", metavar="FILE.tar", help="the image archive")
    b.add_argument(
        "--node",
        action="append",
        metavar="NAME",
        help="import onto this node (repeatable; default: every Ready node)",
    )
    _cluster_flags(b)
    b.set_defaults(func=Command("pods", "image_import"))


def _version(sub: Subparsers) -> None:
    p = sub.add_parser("version", help="show the client and server versions")
    _talks_to_cluster(p, Command("cluster", "version"))


# What a bench on real nodes does when not pointed at a cluster.
THROWAWAY_CLUSTER = "Brings up a throwaway local cluster of its own and takes it down afterwards."


def _prints_figures(b: argparse.ArgumentParser, command: Command) -> None:
    """A benchmark: its --json flag (added last, so last in its help) and its handler."""
    b.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object on the last line"
    )
    b.set_defaults(func=command)


def _store_choice(b: argparse.ArgumentParser) -> None:
    b.add_argument(
        "--store",
        choices=["sqlite", "etcd"],
        default="sqlite",
        help="etcd: run it again on a throwaway etcd, reported beside SQLite (default sqlite)",
    )


def _bench(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print its figures next to a baseline")
    benches = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    b = benches.add_parser("api", help="API server and store: writes, lists and watch latency")
    b.add_argument(
        "--objects", type=int, default=10000, help="objects to create and update (default 10000)"
    )
    b.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    _store_choice(b)
    _prints_figures(b, Command("bench", "api", fast_loop=True))
    b = benches.add_parser(
        "scheduler", help="the whole control plane placing pods on hollow nodes: pods/s, latency"
    )
    b.add_argument("--nodes", type=int, default=5000, help="hollow nodes (default 5000)")
    b.add_argument("--pods", type=int, default=10000, help="pods to schedule (default 10000)")
    b.add_argument("--concurrency", type=int, default=32, help="creates in flight (default 32)")
    _store_choice(b)
    _prints_figures(b, Command("bench", "scheduler", fast_loop=True))
    b = benches.add_parser("console", help="the console: open 20,000 pods, keypress latency, RSS")
    b.add_argument("--pods", type=int, default=20000, help="pods to create (default 20000)")
    b.add_argument("--nodes", type=int, default=50, help="hollow nodes to create (default 50)")
    b.add_argument(
        "--seconds", type=float, default=10.0, help="keypress measurement duration (default 10)"
    )
    b.add_argument("--rate", type=float, default=100.0, help="pod updates per second (default 100)")
    _prints_figures(b, Command("bench", "console"))
    b = benches.add_parser(
        "pods",
        help="pods on real nodes: scale 0 -> 30 and single-pod startup p50/p99 (needs root)",
        description="By default brings up a throwaway local cluster of its own and takes it "
        "down afterwards; --use-current or --server runs against an existing cluster, "
        "in a namespace of its own.",
    )
    b.add_argument(
        "--nodes", type=int, default=3, help="nodes of the throwaway cluster (default 3)"
    )
    b.add_argument("--replicas", type=int, default=30, help="replicas to scale to (default 30)")
    b.add_argument(
        "--samples", type=int, default=20, help="pods started one at a time (default 20)"
    )
    b.add_argument(
        "--use-current",
        action="store_true",
        help="use the cluster the CLI finds (as `get` does) instead of a throwaway one",
    )
    _cluster_flags(b)
    _prints_figures(b, Command("bench", "pods"))
    b = benches.add_parser(
        "net",
        help="Services on real nodes: ClusterIP vs pod IP throughput, cluster DNS, "
        "rule propagation, a 1,000-Service sync (needs root)",
        description=THROWAWAY_CLUSTER,
    )
    _prints_figures(b, Command("bench", "net"))
    b = benches.add_parser(
        "ingress",
        help="the Ingress data plane on real nodes: requests/s against a hand-configured "
        "HAProxy, p99, TLS handshakes/s, failed requests in a rolling update (needs root)",
        description=THROWAWAY_CLUSTER,
    )
    b.add_argument(
        "--requests",
        type=int,
        default=2000,
        help="HTTP requests per run, one run each way in each round (default 2000)",
    )
    b.add_argument(
        "--tls-requests",
        type=int,
        default=300,
        help="new TLS connections per run, one run each way in each round (default 300)",
    )
    b.add_argument(
        "--rounds",
        type=int,
        default=9,
        help="rounds of alternated runs; the median round's figures are given (default 9)",
    )
    b.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    _prints_figures(b, Command("bench", "ingress"))
    b = benches.add_parser(
        "failover",
        help="control planes on one etcd: kill the leader, time until a new one serves writes",
        description="Runs `serve` processes with hollow nodes on a throwaway etcd of its own "
        "(or --etcd), kills the leader again and again, and measures failover_s beside a "
        "baseline without a kill. The config's leader election checks apply "
        "(renew deadline < lease duration, retry period * 1.2 < renew deadline).",
    )
    b.add_argument("--control-planes", type=int, default=3, help="serve processes (default 3)")
    b.add_argument("--kills", type=int, default=5, help="leaders to kill (default 5)")
    b.add_argument("--etcd", help="an etcd endpoint to use (default: start a throwaway one)")
    b.add_argument("--lease-duration", type=int, default=15, help="seconds, whole (default 15)")
    b.add_argument("--renew-deadline", type=float, default=10.0, help="seconds (default 10)")
    b.add_argument("--retry-period", type=float, default=2.0, help="seconds (default 2)")
    _prints_figures(b, Command("bench", "failover"))
    b = benches.add_parser(
        "load",
        help="the API server's memory under a repeated mix of requests, watches, stalled "
        "watchers and idle connections: errors, RSS growth",
    )
    b.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    b.add_argument("--clients", type=int, default=50, help="concurrent API clients (default 50)")
    _prints_figures(b, Command("bench", "load", fast_loop=True))


def _up(sub: Subparsers) -> None:
    p = sub.add_parser("up", help="build a local cluster: N nodes as network namespaces")
    p.add_argument("--nodes", type=int, default=3, help="node count (default 3)")
    p.add_argument("--no-console", action="store_true", help="do not open the console afterwards")
    p.add_argument("--data-dir", help="where the cluster lives (default: ~/.pilothouse)")
    p.add_argument("--name", default="local", help="cluster name, 1-8 of [a-z0-9] (default local)")
    p.add_argument(
        "--node-subnet", default="172.31.250.0/24", help="node addresses (default 172.31.250.0/24)"
    )
    p.add_argument(
        "--pod-cidr", default="10.244.0.0/16", help="pod addresses (default 10.244.0.0/16)"
    )
    p.add_argument(
        "--service-cidr",
        default="10.96.0.0/12",
        help="ClusterIP addresses (default 10.96.0.0/12; the cluster DNS is its 10th)",
    )
    p.add_argument(
        "--listen", help="API TLS address for the config (default 127.0.0.1:6443; '' disables)"
    )
    p.add_argument(
        "--node-grace-period",
        type=float,
        default=40.0,
        metavar="SECONDS",
        help="a node whose agent is silent this long becomes NotReady (default 40)",
    )
    p.add_argument(
        "--backoff-base",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="first CrashLoopBackOff delay on the nodes, doubling to 5 minutes (default 10)",
    )
    p.add_argument(
        "--store-dir",
        metavar="DIR",
        help="an existing directory for the control plane's store (default: the data dir)",
    )
    p.add_argument(
        "--control-planes",
        type=int,
        metavar="N",
        help="control planes (default 1); 3, 5 or 7: as many etcd members and `serve` "
        "processes with leader election, behind HAProxy on --listen",
    )
    for flag, default, what in (
        ("lease-duration", 15, "how long a leader's lease lasts"),
        ("renew-deadline", 10, "how long a leader tries to renew before it stops leading"),
        ("retry-period", 2, "how often candidates try and the leader renews"),
    ):
        p.add_argument(
            f"--leader-elect-{flag}",
            type=float,
            default=float(default),
            metavar="SECONDS",
            help=f"with several control planes: {what} (default {default})",
        )
    p.set_defaults(func=Command("cluster", "up"))


def _down(sub: Subparsers) -> None:
    p = sub.add_parser("down", help="remove the local cluster and everything it made")
    p.add_argument("--data-dir", help="where the cluster lives (default: ~/.pilothouse)")
    p.set_defaults(func=Command("cluster", "down"))


def _node(sub: Subparsers) -> None:
    p = sub.add_parser("node", help="node tools")
    node = p.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    b = node.add_parser("check", help="check over SSH that a node can run the agent")
    b.add_argument("name", help="node name from the config")
    b.add_argument("--socket", help="containerd socket on the node (default: the agent's)")
    b.add_argument("--data-dir", help="data dir (default: ~/.pilothouse)")
    b.add_argument("--config", help="config file (default: DATA_DIR/config.toml)")
    b.set_defaults(func=Command("nodes", "node_check"))


COMMANDS: dict[str, Callable[[Subparsers], None]] = {
    "serve": _serve,
    "migrate": _migrate,
    "apply": _apply,
    "get": _get,
    "describe": _describe,
    "delete": _delete,
    "scale": _scale,
    "create": _create,
    "rollout": _rollout,
    "logs": _logs,
    "exec": _exec,
    "top": _top,
    "cordon": _cordon,
    "uncordon": _uncordon,
    "drain": _drain,
    "image": _image,
    "version": _version,
    "bench": _bench,
    "up": _up,
    "down": _down,
    "node": _node,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `command`, only that command's part of it, which
    is quicker to build than all of it."""
    parser = argparse.ArgumentParser(
        prog="pilothouse",
        description="A small, real container orchestrator with the Kubernetes architecture.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    console = parser.add_argument_group(
        "console (no COMMAND: attach to the data dir's control plane, or host one, and open the TUI)"
    )
    console.add_argument(
        "--server",
        dest="tui_server",
        metavar="URL|SOCKET",
        help="attach to this API server: https://HOST:PORT or a socket",
    )
    console.add_argument(
        "--kubeconfig", dest="tui_kubeconfig", metavar="PATH", help="attach with this kubeconfig"
    )
    console.add_argument(
        "--data-dir", dest="tui_data_dir", metavar="DIR", help="data dir (default: ~/.pilothouse)"
    )
    console.add_argument(
        "--config",
        dest="tui_config",
        metavar="PATH",
        help="config file (default: DATA_DIR/config.toml)",
    )
    console.add_argument("--readonly", action="store_true", help="hide every mutating action")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, add in COMMANDS.items():
        if command is None or name == command:
            add(sub)
    return parser


# The options before COMMAND that take a value (the console's).
_VALUE_OPTIONS = frozenset(("--server", "--kubeconfig", "--data-dir", "--config"))


def _command_word(argv: list[str]) -> str | None:
    """The command a line names, so that only its parser is built: the first
    word that is neither an option nor an option's value. None for help, or
    for a word that names no command (the whole parser then says so)."""
    value = False
    for word in argv:
        if value:
            value = False
        elif word in ("-h", "--help"):
            return None
        elif word in _VALUE_OPTIONS:
            value = True
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line. For `exec`, everything after the first `--` is
    the command, options included."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] | None = None
    if "exec" in argv and "--" in argv and argv.index("exec") < argv.index("--"):
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    args = build_parser(_command_word(argv)).parse_args(argv)
    if args.command == "exec" and command is not None:
        args.argv = [*args.argv, *command]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not getattr(args, "func", None):
        args.func = Command("cluster", "console")
    else:
        # `pilothouse --server X get pods` means what `get pods --server X` does.
        for flag in ("server", "kubeconfig", "data_dir", "config"):
            if hasattr(args, flag) and not getattr(args, flag):
                setattr(args, flag, getattr(args, f"tui_{flag}"))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    sys.exit(run(args.func, args))


def _loop_factory(func: Handler) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not getattr(func, "fast_loop", False):
        return None
    try:
        import uvloop
    except ImportError:  # not built for this platform: asyncio's loop does the same work
        return None
    return uvloop.new_event_loop


async def _call(func: Handler, args: argparse.Namespace) -> int:
    return await func(args)


def run(func: Handler, args: argparse.Namespace) -> int:
    try:
        with asyncio.Runner(loop_factory=_loop_factory(func)) as runner:
            return runner.run(_call(func, args))
    except KeyboardInterrupt:
        return 130
    except ApiError as e:
        _fail(f"Error from server ({e.reason or e.code}): {e.message}")
    except Exception as e:
        if isinstance(e, _user_errors()):
            _fail(f"error: {e}")
        elif isinstance(e, OSError):
            _fail(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        else:
            raise
    return 1


def _user_errors() -> tuple[type[Exception], ...]:
    """What a command raises when the user's request cannot be done: one line
    on stderr, no traceback. (Imported here, on the way out, so that a command
    loads only the modules it uses.)"""
    from control.client import ClusterUnreachable
    from control.config import ConfigError
    from control.localcluster.proc import LocalClusterError
    from control.migrate import MigrateError
    from control.objects.manifest import ManifestError
    from control.operations import OperationError

    return (
        ClusterUnreachable,
        TargetError,
        ConfigError,
        ManifestError,
        DataDirLocked,
        UsageError,
        OperationError,
        LocalClusterError,
        MigrateError,
        TransportError,
    )


def _fail(message: str) -> None:
    sys.stderr.write(message.rstrip() + "\n")
