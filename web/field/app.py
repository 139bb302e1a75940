"""The field app: a grid worker's day on the tablet, served on loopback by `wangge field`.

Server-rendered pages (Jinja2, htmx for the partial updates), every asset
vendored, so it works with no network at all. Forms come from the rule file
(`wangge.app.fieldforms`); the use cases are `wangge.app.fieldrecords` and
`wangge.app.fieldsync`. A refused form comes back filled in, with each
message beside its field.

This module builds the app (routes, the loopback gate, the templates'
helpers); the pages are grouped by what the worker does: `sessionpages`
(unlock, home), `casepages`, `householdpages`, `syncpages`, on the shared
`pagekit`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from wangge.app import fieldforms, fieldrecords, fieldsync
from wangge.app.fieldtablet import FieldTablet, aware
from wangge.web.field.casepages import CasePages
from wangge.web.field.guard import host_ok
from wangge.web.field.householdpages import HouseholdPages
from wangge.web.field.pagekit import WEB, FieldState
from wangge.web.field.sessionpages import SessionPages
from wangge.web.field.syncpages import SyncPages

#: The largest form a page may post: six camera photos and a signature.
MAX_BODY = (fieldrecords.MAX_PHOTOS + 1) * fieldrecords.MAX_PHOTO_BYTES + 1024 * 1024
SECURITY_HEADERS = {
    # Everything is served from here: no inline script, no other origin, never framed.
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin",
    "cache-control": "no-store",
}



def _environment(state: FieldState) -> Environment:
    env = Environment(loader=FileSystemLoader(str(WEB / "templates")), autoescape=select_autoescape(["html"]))
    env.filters["label"] = lambda label, lang: label.text(lang) if label is not None else ""
    env.filters["aware"] = lambda moment: aware(moment) if moment else moment

    def zone_of():
        if state.tablet is None:
            return timezone.utc
        with state.tablet.store.read() as conn:
            return state.tablet.zone(conn)

    def from_ms(ms):
        return datetime.fromtimestamp(ms / 1000, timezone.utc)

    env.globals.update(
        shown=fieldforms.shown, zone_of=zone_of, from_ms=from_ms,
        when_ms=lambda ms: from_ms(ms).astimezone(zone_of()).strftime("%Y-%m-%d %H:%M"),
        state_label=_state_label, evidence_label=fieldrecords.evidence_name, code_label=_code_label,
        sync_words=lambda stored, lang: fieldsync.Outcome(**stored).words(lang))
    return env


def _code_label(rules, kind: str, code: str, lang: str) -> str:
    """The label of a lifecycle move (``kind`` "move") or a channel ("channel") in ``lang``, else its code."""
    found = ()
    if rules is not None:
        found = rules.channels if kind == "channel" else (rules.lifecycle.transitions if rules.lifecycle else ())
    for entry in found:
        if entry.code == code:
            return entry.label.text(lang) or code
    return code


def _state_label(rules, code: str, lang: str) -> str:
    """A lifecycle state's label in ``lang`` (its code if the rule file has no such state)."""
    if rules is not None and rules.lifecycle is not None:
        for state in rules.lifecycle.states:
            if state.code == code:
                return state.label.text(lang) or code
    return code or "—"


def field_app(tablet: Optional[FieldTablet], *, path: Optional[str | Path] = None, master_url: Optional[str] = None,
              opener: Optional[Callable[[str], FieldTablet]] = None, client_options: Optional[dict] = None) -> Starlette:
    """The field app for an unlocked ``tablet``, or a locked one at ``path`` that its unlock page opens.

    ``opener(passphrase)`` unlocks the tablet (default: `FieldTablet.open` at ``path``);
    ``master_url`` is where the sync button goes (None: USB only).
    """
    where = Path(path) if path is not None else tablet.path
    state = FieldState(where, tablet, master_url, opener or (lambda secret: FieldTablet.open(where, secret)),
                       client_options)
    env = _environment(state)
    pages = Pages(state, env)
    routes = [
        Route("/", pages.home), Route("/unlock", pages.unlock, methods=["GET", "POST"]),
        Route("/login", pages.login), Route("/lock", pages.lock_tablet, methods=["POST"]),
        Route("/lang", pages.language), Route("/me", pages.choose_worker, methods=["POST"]),
        Route("/report", pages.report, methods=["GET", "POST"]), Route("/report/items", pages.items),
        Route("/report/places", pages.places), Route("/report/duplicates", pages.duplicates),
        Route("/cases", pages.cases), Route("/cases/{case_id}", pages.case), Route("/cases/{case_id}/move", pages.move, methods=["POST"]),
        Route("/households", pages.households), Route("/households/new", pages.household_new, methods=["GET", "POST"]),
        Route("/households/{household_id}", pages.household, methods=["GET", "POST"]),
        Route("/households/{household_id}/residents", pages.resident, methods=["POST"]),
        Route("/households/{household_id}/visit", pages.visit, methods=["GET", "POST"]),
        Route("/residents/{resident_id}", pages.resident_card, methods=["GET", "POST"]),
        Route("/points", pages.points, methods=["GET", "POST"]),
        Route("/sync", pages.sync, methods=["GET", "POST"]), Route("/sync/status", pages.sync_status),
        Route("/sync/export", pages.export, methods=["POST"]), Route("/sync/import", pages.import_reply, methods=["POST"]),
        Route("/photos/{sha}", pages.photo),
        Mount("/static", app=StaticFiles(directory=str(WEB / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_Gate, state=state)],
                    exception_handlers={404: pages.not_found, 405: pages.bad_method, 500: pages.failed})
    app.state.field = state
    return app


class _Gate:
    """ASGI middleware: loopback Host only, a session for every page but unlock and static files, headers."""

    OPEN = ("/unlock", "/login", "/static/", "/lang")

    def __init__(self, app, state: FieldState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if not host_ok(request):
            return await PlainTextResponse("this app answers on loopback only", 421)(scope, receive, send)
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > MAX_BODY):
            # Sent from the page (htmx), nothing is swapped: the form stays filled and a note says why.
            headers = {"hx-reswap": "none", "hx-trigger": "wanggeTooLarge"} if request.headers.get("hx-request") else {}
            return await PlainTextResponse(f"request too large: at most {MAX_BODY // 2**20} MB", 413,
                                           headers=headers)(scope, receive, send)
        path = scope["path"]
        if not path.startswith(self.OPEN) and (self.state.tablet is None or not self.state.guard.session_of(request)):
            target = "/unlock" + (f"?next={quote(path)}" if request.method == "GET" and path != "/" else "")
            if request.headers.get("hx-request"):
                return await Response(status_code=204, headers={"hx-redirect": target})(scope, receive, send)
            return await RedirectResponse(target, 303)(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in names]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


class Pages(SessionPages, CasePages, HouseholdPages, SyncPages):
    """Every page of the field app."""
