"""The HTTP floor for `bench api`: an aiohttp server on a unix socket that
answers every request with a fixed small JSON body and does no other work."""

from __future__ import annotations

import sys

from aiohttp import web


async def _handle(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(
        body=b'{"kind":"Status","status":"Success"}', content_type="application/json"
    )


def main() -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _handle)
    web.run_app(app, path=sys.argv[1], print=None, access_log=None)


if __name__ == "__main__":
    main()
