"""The access log of the master's HTTP apps, and the last line of defence against a traceback.

`AccessLog` is a plain ASGI middleware around the whole app. For every
request it writes one line on the ``wangge.access`` logger::

    10.0.0.7 POST /exchange/3fa2c1e0b7d4… 200 device=dev-0193… in=12 out=40 85 ms

``device``, ``in`` and ``out`` are what the endpoint noted on the request's
state (the device it served, the ops it received and sent back); a request
that served no device shows ``-``. An exception no handler turned into an
answer is logged once with its traceback on ``wangge.server`` and answered
with a JSON 500 that names no internals: the client never sees a traceback,
and the server's log is not flooded with a second copy by the framework.
"""
from __future__ import annotations

import json
import logging
import time

log = logging.getLogger("wangge.access")
errors = logging.getLogger("wangge.server")

_INTERNAL = json.dumps({"error": "internal error on the master; it is logged there", "status": 500}).encode()


def access_line(client: str, method: str, path: str, status: int, state: dict, ms: float) -> str:
    """One access-log line from what a request did."""
    device = state.get("device") or "-"
    ops = f" in={state['ops_in']} out={state['ops_out']}" if "ops_in" in state else ""
    shown = path if len(path) <= 60 else path[:59] + "…"
    return f"{client} {method} {shown} {status} device={device}{ops} {ms:.0f} ms"


class AccessLog:
    """ASGI middleware: one access-log line per HTTP request; a JSON 500 for an unhandled exception."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})
        answer = {"status": 0}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:  # noqa: BLE001 - never a traceback to a client
            errors.exception("internal error on %s %s", scope["method"], scope["path"])
            if not answer["status"]:
                answer["status"] = 500
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(_INTERNAL)).encode())]})
                await send({"type": "http.response.body", "body": _INTERNAL})
        finally:
            client = scope.get("client")
            log.info("%s", access_line(client[0] if client else "-", scope["method"], scope["path"],
                                       answer["status"], scope["state"], (time.perf_counter() - started) * 1000))
