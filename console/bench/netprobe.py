"""Traffic from inside one network namespace (a pod's or a node's), for `bench
net` and the Services end-to-end test. Run it there and read its one line:

    nsenter --net=/proc/PID/ns/net python3 -m console.bench.netprobe MODE ...
    ip netns exec NAME python3 -m console.bench.netprobe MODE ...

Modes, each bounded by a count and by `--within` seconds, each printing one
JSON object:

- `http URL...`: GETs, one connection each (as a client without keep-alive
  does), the URLs in turn; `--count` in all, `--concurrency` in flight.
  The count of each body tells which backends answered. `--host` sends that
  Host header (and TLS server name) instead of the URL's; https URLs make a
  TLS handshake per request, verified against `--cafile` (none: unverified).
  SIGTERM ends a run early: no new request starts, and the figures so far are
  printed (a load that lasts as long as something else does).
- `dns SERVER NAME...`: A queries over UDP to SERVER:53, the names in turn.
  Latencies of the answered ones; the answers and rcode of each name.
- `connect IP PORT`: one TCP connect: "ok", "timeout" or the errno's name
  (ECONNREFUSED, EHOSTUNREACH, ...), and how long it took.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import itertools
import json
import signal
import socket
import ssl
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

from console.bench.report import percentile

REQUEST_TIMEOUT = 5.0  # one HTTP request or DNS query


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def _run_bounded(
    count: int,
    concurrency: int,
    within: float,
    one: Callable[[int], Awaitable[None]],
    stop: asyncio.Event | None = None,
) -> float:
    """`one(i)` for i in 0..count-1, `concurrency` at a time, stopping when
    `within` seconds have passed or `stop` is set; returns the seconds it took."""
    numbers: Iterator[int] = iter(range(count))
    deadline = time.monotonic() + within

    async def worker() -> None:
        for i in numbers:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                return
            await one(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return time.perf_counter() - t0


# -- http ------------------------------------------------------------------------------


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """Verifying against `cafile`; None: no verification (a bench's own certificate)."""
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def http_get(url: str, host: str | None = None, tls: ssl.SSLContext | None = None) -> str:
    """The body of GET `url` (HTTP/1.0, so the server closes), with Host (and
    the TLS server name) `host` if given; ValueError on a non-2xx. An https URL
    needs `tls`."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"not an http or https URL: {url!r}")
    secure = u.scheme == "https"
    if secure and tls is None:
        raise ValueError(f"{url}: https needs a TLS context")
    name = host or u.hostname
    reader, writer = await asyncio.open_connection(
        u.hostname,
        u.port or (443 if secure else 80),
        ssl=tls if secure else None,
        server_hostname=name if secure else None,
    )
    try:
        path = u.path or "/"
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host or u.netloc}\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or not status[1].startswith(b"2"):
        raise ValueError(f"GET {url}: {head[:80]!r}")
    return body.decode(errors="replace").strip()


def _summary(
    count: str, rate: str, latencies: list[float], errors: Counter[str], seconds: float
) -> dict[str, Any]:
    """A load run's figures: how many answered, errors by kind, the rate and latencies."""
    done = len(latencies)
    return {
        count: done,
        "errors": dict(errors),
        "seconds": round(seconds, 3),
        rate: round(done / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
    }


async def http_load(
    urls: list[str],
    requests: int,
    concurrency: int,
    within: float,
    *,
    host: str | None = None,
    cafile: str | None = None,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    bodies: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    tls = tls_context(cafile) if any(u.startswith("https:") for u in urls) else None

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                body = await http_get(urls[i % len(urls)], host, tls)
        except (OSError, ValueError, TimeoutError) as e:
            errors[type(e).__name__] += 1
            return
        latencies.append(time.perf_counter() - t0)
        bodies[body] += 1

    cpu0 = time.process_time()
    seconds = await _run_bounded(requests, concurrency, within, one, stop)
    return {
        **_summary("requests", "rps", latencies, errors, seconds),
        "bodies": dict(bodies),
        # The generator's own CPU time: near `seconds`, it is what limits the rate.
        "cpu_seconds": round(time.process_time() - cpu0, 3),
    }


# -- dns -------------------------------------------------------------------------------


class _Answers(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[bytes]] = {}

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) >= 2:
            future = self.waiting.pop(int.from_bytes(data[:2], "big"), None)
            if future is not None and not future.done():
                future.set_result(data)


async def dns_load(
    server: str, names: list[str], queries: int, concurrency: int, within: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    transport, answers = await loop.create_datagram_endpoint(
        _Answers, remote_addr=(server, 53), family=socket.AF_INET
    )
    ids = itertools.count(1)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    seen: dict[str, dict[str, Any]] = {}

    async def one(i: int) -> None:
        name = names[i % len(names)]
        query = DNSRecord.question(name, "A")
        query.header.id = next(ids) % 65536
        future = loop.create_future()
        answers.waiting[query.header.id] = future
        t0 = time.perf_counter()
        transport.sendto(query.pack())
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                data = await future
        except TimeoutError:
            answers.waiting.pop(query.header.id, None)
            errors["timeout"] += 1
            return
        latencies.append(time.perf_counter() - t0)
        reply = DNSRecord.parse(data)
        seen[name] = {
            "rcode": RCODE.get(reply.header.rcode),
            "a": sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A),
        }

    try:
        seconds = await _run_bounded(queries, concurrency, within, one)
    finally:
        transport.close()
    return {**_summary("queries", "qps", latencies, errors, seconds), "answers": seen}


# -- connect ---------------------------------------------------------------------------


async def connect(ip: str, port: int, within: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(within):
            _, writer = await asyncio.open_connection(ip, port)
        writer.close()
        outcome = "ok"
    except TimeoutError:
        outcome = "timeout"
    except OSError as e:
        outcome = errno.errorcode.get(e.errno or 0, type(e).__name__)
    return {"outcome": outcome, "ms": _ms(time.perf_counter() - t0)}


# -- the command -----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m console.bench.netprobe")
    modes = p.add_subparsers(dest="mode", required=True)
    for name in ("http", "dns"):
        m = modes.add_parser(name)
        if name == "dns":
            m.add_argument("server")
        m.add_argument("targets", nargs="+", metavar="URL" if name == "http" else "NAME")
        m.add_argument("--count", type=int, default=100, help="requests or queries in all")
        m.add_argument("--concurrency", type=int, default=8)
        m.add_argument("--within", type=float, default=30.0, metavar="SECONDS")
        if name == "http":
            m.add_argument("--host", help="the Host header and TLS server name to send")
            m.add_argument("--cafile", help="verify https servers against these certificates")
    m = modes.add_parser("connect")
    m.add_argument("ip")
    m.add_argument("port", type=int)
    m.add_argument("--within", type=float, default=10.0, metavar="SECONDS")
    args = p.parse_args(argv)
    if getattr(args, "count", 1) < 1 or getattr(args, "concurrency", 1) < 1 or args.within <= 0:
        p.error("--count, --concurrency and --within must be positive")
    return args


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "http":
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        return await http_load(
            args.targets,
            args.count,
            args.concurrency,
            args.within,
            host=args.host,
            cafile=args.cafile,
            stop=stop,
        )
    if args.mode == "dns":
        return await dns_load(args.server, args.targets, args.count, args.concurrency, args.within)
    return await connect(args.ip, args.port, args.within)


def main(argv: list[str] | None = None) -> None:
    result = asyncio.run(probe(parse_args(argv)))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
