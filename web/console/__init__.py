"""The office console: the street office works every case in the browser.

`console_app(store, ...)` builds a Starlette app over an open master store:
log in with an office account (`wangge user add`), then the case queue, a
case's page with the moves the account's role may make, the review of what
sync queued, tablets, the escalation board, the month's scores, the grid
map and the installed ruleset. Server-rendered Jinja2 pages with htmx for
partial updates; every asset is vendored under web/static.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from wangge.app.office import Office
from wangge.sync.attachments import BlobStore
from wangge.web.console import auth, pages

STATIC = Path(__file__).resolve().parent.parent / "static"


def console_app(office: Office, *, blobs: Optional[BlobStore] = None,
                rules_error: Optional[Callable[[], Optional[str]]] = None, https: bool = False) -> Starlette:
    """The console over an open master (`wangge.app.office.Office`).

    ``blobs`` is the master's photo store (the one the sync endpoints fill);
    ``rules_error`` gives the errors of a watched rule file that failed to
    hot-reload, if any (by default, those of the office's own watch);
    ``https`` marks the session cookie Secure.
    """
    store = office.store
    if rules_error is None:
        rules_error = lambda: getattr(office.live, "last_errors", None)  # noqa: E731 - read at each request
    console = pages.Console(store, blobs, rules_error)
    routes = [
        Route("/", console.home),
        Route("/login", console.login_page, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.logout, methods=["POST"]),
        Route("/lang/{lang}", console.language),
        Route("/cases", console.queue_page),
        Route("/cases/{ref}", console.case_page),
        Route("/cases/{ref}/move", console.move, methods=["POST"]),
        Route("/cases/{ref}/photos/{sha}", console.photo),
        Route("/review", console.review_page),
        Route("/review/{number}", console.resolve, methods=["POST"]),
        Route("/devices", console.devices_page),
        Route("/devices/{device_id}/approve", console.approve, methods=["POST"]),
        Route("/devices/{device_id}/revoke", console.revoke, methods=["POST"]),
        Route("/escalation", console.escalation_page),
        Route("/escalation/sweep", console.sweep, methods=["POST"]),
        Route("/scores", console.scores_page),
        Route("/scores.csv", console.scores_csv),
        Route("/scores.xlsx", console.scores_xlsx),
        Route("/grids", console.grids_page),
        Route("/ruleset", console.ruleset_page),
        Route("/audit", console.audit_page),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=auth.session_secret(store), session_cookie="wangge_console",
                             max_age=auth.SESSION_SECONDS, same_site="strict", https_only=https)]
    return Starlette(routes=routes, middleware=[Middleware(ServerTiming), *middleware],
                     exception_handlers=pages.HANDLERS)


#: Every page's own scripts and styles come from /static: no inline script runs, no other site
#: frames the console or receives a form (Leaflet sets style attributes, hence 'unsafe-inline' there).
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                 b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class ServerTiming:
    """Adds ``Server-Timing: app;dur=MS`` to every response (the time the console spent on the
    request, which a browser's developer tools and `bench/bench_console.py` read), and the
    console's security headers."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message):
            if message["type"] == "http.response.start":
                spent = (time.perf_counter() - started) * 1000
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS,
                                                  (b"server-timing", f"app;dur={spent:.2f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed)



def console_mount(office: Office, **options) -> Mount:
    """The console mounted at ``/``, for `wangge.web.server.master_app`'s ``mounts`` (after the
    sync endpoints, which keep their paths). ``options`` go to `console_app`."""
    return Mount("/", app=console_app(office, **options))
