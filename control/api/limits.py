"""What one client may hold at once: requests being served, and long-running ones.

As kube-apiserver's max-in-flight filter: past a cap a request is refused at
once with 429 TooManyRequests and `Retry-After`, before any work is done. The
caps are per user on TLS (a bearer token's user) and in total on the unix
socket. Long-running requests (watch, exec, attach, logs with follow) hold a
connection for minutes, so they count against caps of their own, not against
the requests in flight.
"""

from __future__ import annotations

from aiohttp import web

from control.api.query import TRUE
from control.config import ApiLimits
from control.errors import ApiError

# The limits an application serves under (watch.py reads the watch bounds).
LIMITS = web.AppKey("limits", ApiLimits)
# Who a request counts against: ("unix", "") for the unix socket, ("tls", user) on TLS.
Holder = tuple[str, str]
UNIX: Holder = ("unix", "")
ANONYMOUS = "system:anonymous"
RETRY_AFTER_SECONDS = 1
_STREAMS = ("/exec", "/attach")


def too_many_requests() -> ApiError:
    """kube-apiserver's answer past its max-in-flight limit."""
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        retry_after=RETRY_AFTER_SECONDS,
    )


def is_long_running(request: web.Request) -> bool:
    """A watch, an exec or attach stream, or logs followed."""
    query = request.query
    if request.method == "GET" and query.get("watch") in TRUE:
        return True
    path = request.path.rstrip("/")
    if path.endswith(_STREAMS):
        return True
    return path.endswith("/log") and query.get("follow") in TRUE


class RequestLimits:
    """The counts of requests each holder has in progress, against the caps."""

    def __init__(self, limits: ApiLimits) -> None:
        self.limits = limits
        self._held: dict[tuple[Holder, bool], int] = {}

    def held(self, holder: Holder, *, long_running: bool) -> int:
        return self._held.get((holder, long_running), 0)

    def _cap(self, holder: Holder, long_running: bool) -> int:
        lim = self.limits
        if holder == UNIX:
            return lim.max_watches_unix if long_running else lim.max_requests_unix
        return lim.max_watches_per_user if long_running else lim.max_requests_per_user

    def acquire(self, holder: Holder, request: web.Request) -> tuple[Holder, bool]:
        """Count the request against `holder`; 429 past the cap. The key
        returned goes to `release` when the request ends. (A pair of calls
        rather than a context manager: this runs on every request.)"""
        key = (holder, is_long_running(request))
        count = self._held.get(key, 0)
        if count >= self._cap(*key):
            raise too_many_requests()
        self._held[key] = count + 1
        return key

    def release(self, key: tuple[Holder, bool]) -> None:
        left = self._held[key] - 1
        if left:
            self._held[key] = left
        else:
            del self._held[key]
