"""The field app: a grid worker's day on the tablet, served on loopback by `wangge field`.

Server-rendered pages (Jinja2, htmx for the partial updates), every asset
vendored, so it works with no network at all. Forms come from the rule file
(`wangge.app.fieldforms`); the use cases are `wangge.app.fieldrecords` and
`wangge.app.fieldsync`. A refused form comes back filled in, with each
message beside its field.
"""
from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from wangge.app import fieldforms, fieldrecords, fieldsync
from wangge.app.fieldrecords import FormProblems, MoveInput, Photo
from wangge.app.fieldtablet import FieldTablet, _aware, household_head, title_field
from wangge.core.errors import WanggeError
from wangge.core.models import Attachment, Building, Case, CaseEvent, GridCell, Household, Resident, Visit
from wangge.sync.atrest import LeaseExpired, WrongPassphrase
from wangge.web.field.guard import CSRF_FIELD, CSRF_HEADER, PRE_COOKIE, SESSION_COOKIE, Guard, host_ok
from wangge.web.field.words import words

WEB = Path(__file__).resolve().parent.parent
_cases, _events, _households = Case.__table__, CaseEvent.__table__, Household.__table__
_grids, _buildings, _residents = GridCell.__table__, Building.__table__, Resident.__table__
_visits, _attachments = Visit.__table__, Attachment.__table__
#: The largest form a page may post: six camera photos and a signature.
MAX_BODY = (fieldrecords.MAX_PHOTOS + 1) * fieldrecords.MAX_PHOTO_BYTES + 1024 * 1024
#: Wrong passphrases in a row before the unlock page pauses, and how long it pauses.
UNLOCK_TRIES, UNLOCK_PAUSE_S = 5, 30.0
SECURITY_HEADERS = {
    # Everything is served from here: no inline script, no other origin, never framed.
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class FieldState:
    """The running app: the tablet's path, the open tablet once unlocked, the guard, the sync under way."""

    def __init__(self, path: str | Path, tablet: Optional[FieldTablet], master_url: Optional[str],
                 opener: Callable[[str], FieldTablet], client_options: Optional[dict] = None):
        self.path, self.tablet, self.master_url = Path(path), tablet, master_url
        self.opener = opener
        self.guard = Guard()
        self.client_options = client_options or {}
        self.job: Optional[SyncJob] = None
        self.lock = threading.Lock()
        self.failures, self.quiet_until = 0, 0.0  # wrong passphrases in a row, and when guessing may resume
        self.opening = asyncio.Lock()


class SyncJob:
    """A sync running in a thread, so the page can show its progress while it goes."""

    def __init__(self, tablet: FieldTablet, master_url: str, client_options: dict):
        self.stage, self.outcome = "upload", None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(tablet, master_url, client_options), daemon=True)
        self.thread.start()

    def _run(self, tablet, master_url, client_options) -> None:
        try:
            self.outcome = fieldsync.sync_now(tablet, master_url, on_progress=self._progress,
                                              client_options=client_options)
        except Exception as exc:  # noqa: BLE001 - shown to the worker in one line, never a traceback
            self.outcome = fieldsync.Outcome(ok=False, at_ms=tablet.now_ms(), error=f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()

    def _progress(self, traffic) -> None:
        self.stage = traffic.stage or self.stage


def _environment(state: FieldState) -> Environment:
    env = Environment(loader=FileSystemLoader(str(WEB / "templates")), autoescape=select_autoescape(["html"]))
    env.filters["label"] = lambda label, lang: label.text(lang) if label is not None else ""
    env.filters["aware"] = lambda moment: _aware(moment) if moment else moment

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
        Route("/cases/{case_id}", pages.case), Route("/cases/{case_id}/move", pages.move, methods=["POST"]),
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


def _lang(request: Request) -> str:
    return "en" if request.cookies.get("wangge_lang") == "en" else "zh"


def _safe_next(target: Optional[str]) -> str:
    # Only a path here: "//host" and "/\\host" would take the browser to another site.
    return target if target and target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


class Pages:
    """The request handlers; each reads the form, calls one use case, renders one template."""

    def __init__(self, state: FieldState, env: Environment):
        self.state, self.env = state, env

    # -- rendering --------------------------------------------------------------------------------

    @property
    def tablet(self) -> FieldTablet:
        return self.state.tablet

    def render(self, request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        lang = _lang(request)
        session = self.state.guard.session_of(request) or request.cookies.get(PRE_COOKIE) or ""
        context.setdefault("rules", self._rules())
        html = self.env.get_template(f"field/{name}").render(
            lang=lang, t=words(lang), csrf=self.state.guard.token(session) if session else "",
            csrf_field=CSRF_FIELD, path=request.url.path, request=request, master_url=self.state.master_url,
            unlocked=self.state.tablet is not None, **context)
        return HTMLResponse(html, status_code=status)

    def _rules(self):
        return self.tablet.rules() if self.tablet is not None else None

    def _unready(self, request: Request) -> Optional[Response]:
        """A page saying to sync first, for pages that need the rule file and the worker before the first sync."""
        with self.tablet.store.read() as conn:
            ready = self.tablet.rules(conn) is not None and self.tablet.worker(conn) is not None
        if ready:
            return None
        if request.headers.get("hx-request") and request.method == "GET":
            return HTMLResponse("")
        return self.render(request, "error.html", 409, message=words(_lang(request))["not_ready"], sync_link=True)

    async def form(self, request: Request) -> FormData:
        """The posted form, after its CSRF token is checked. Raises 403 for a forged request."""
        try:
            data = await request.form(max_files=fieldrecords.MAX_PHOTOS + 2, max_part_size=fieldrecords.MAX_PHOTO_BYTES)
        except Exception as exc:  # noqa: BLE001 - a malformed body is the client's error, said in one line
            raise HTTPException(400, f"malformed form: {exc}") from None
        binding = self.state.guard.session_of(request) or (
            request.cookies.get(PRE_COOKIE) if request.url.path == "/unlock" else None)
        sent = data.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        if not self.state.guard.csrf_ok(request, binding, sent):
            raise HTTPException(403, words(_lang(request))["csrf"])
        return data

    # -- unlocking --------------------------------------------------------------------------------

    async def unlock(self, request: Request):
        import secrets as _secrets

        if request.method == "GET":
            pre = request.cookies.get(PRE_COOKIE) or _secrets.token_urlsafe(24)
            request.cookies[PRE_COOKIE] = pre
            response = self.render(request, "unlock.html", next=_safe_next(request.query_params.get("next")))
            response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict")
            return response
        data = await self.form(request)
        passphrase = str(data.get("passphrase") or "")
        wait = self.state.quiet_until - time.monotonic()
        if wait > 0:
            # Each guess already costs a key derivation; after a run of them, a pause as well.
            return self.render(request, "unlock.html", 429, error=words(_lang(request))["slow_down"].format(
                seconds=int(wait) + 1), next=_safe_next(data.get("next")))
        try:
            if self.state.tablet is None:
                async with self.state.opening:  # two tabs unlocking at once open the store once
                    if self.state.tablet is None:
                        self.state.tablet = await _thread(self.state.opener, passphrase)
            else:
                # Already open (another tab, or unlocked at start): the passphrase must still fit.
                from wangge.sync import atrest

                await _thread(atrest.unlock, self.state.path, passphrase)
        except WrongPassphrase:
            self.state.failures += 1
            if self.state.failures >= UNLOCK_TRIES:
                self.state.quiet_until = time.monotonic() + UNLOCK_PAUSE_S
                self.state.failures = 0
            return self.render(request, "unlock.html", 401, error=words(_lang(request))["wrong"],
                               next=_safe_next(data.get("next")))
        except WanggeError as exc:
            return self.render(request, "unlock.html", 400, error=str(exc), next="/")
        self.state.failures = 0
        response = RedirectResponse(_safe_next(data.get("next")), 303)
        response.set_cookie(SESSION_COOKIE, self.state.guard.new_session(), httponly=True, samesite="strict")
        return response

    async def login(self, request: Request):
        session = self.state.guard.use_login(request.query_params.get("token", ""))
        if session is None or self.state.tablet is None:
            return RedirectResponse("/unlock", 303)
        response = RedirectResponse("/", 303)
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict")
        return response

    async def lock_tablet(self, request: Request):
        await self.form(request)
        with self.state.lock:
            tablet, self.state.tablet = self.state.tablet, None
            self.state.guard.end_all()
        if tablet is not None:
            if self.state.job is not None:  # a sync under way finishes first: its store closes after it
                await _thread(self.state.job.done.wait, 120)
            tablet.close()
        response = RedirectResponse("/unlock", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def language(self, request: Request):
        lang = "en" if request.query_params.get("to") == "en" else "zh"
        response = RedirectResponse(_safe_next(request.query_params.get("next")), 303)
        response.set_cookie("wangge_lang", lang, samesite="strict", max_age=10 * 365 * 86400)
        return response

    # -- home -------------------------------------------------------------------------------------

    async def home(self, request: Request):
        home = await _thread(self.tablet.home)
        return self.render(request, "home.html", home=home, zone=self._zone())

    def _zone(self):
        with self.tablet.store.read() as conn:
            return self.tablet.zone(conn)

    async def choose_worker(self, request: Request):
        data = await self.form(request)
        try:
            await _thread(self.tablet.set_worker, str(data.get("worker_id") or ""))
        except WanggeError as exc:
            raise HTTPException(400, str(exc)) from None
        return RedirectResponse("/", 303)

    # -- reporting a case ------------------------------------------------------------------------

    def _report_context(self, conn, lang: str) -> dict:
        rules = self.tablet.rules(conn)
        worker = self.tablet.worker(conn)
        grid_ids = self.tablet.grid_ids(conn, worker)
        return {"grids": self.tablet.grids(conn, grid_ids), "rules": rules,
                "form": fieldforms.form_for(rules, "case") if rules else None}

    async def report(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = _lang(request)
        if request.method == "GET":
            with self.tablet.store.read() as conn:
                context = self._report_context(conn, lang)
            first = context["grids"][0]["id"] if context["grids"] else ""
            values = {"grid_id": first, "channel": _default_channel(context["rules"])}
            return self.render(request, "report.html", values=values, errors={}, general=[],
                               places=self._places(first), items=_catalogue(context["rules"], "", "", lang), **context)
        data = await self.form(request)
        photos = await _photos(data, "photos")
        report = fieldrecords.CaseReport(
            item=str(data.get("item") or ""), channel=str(data.get("channel") or ""),
            description=str(data.get("description") or "").strip(), grid_id=str(data.get("grid_id") or ""),
            building_id=str(data.get("building_id") or ""), household_id=str(data.get("household_id") or ""),
            photos=photos, submitted=data)
        try:
            done = await _thread(fieldrecords.report_case, self.tablet, report, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            with self.tablet.store.read() as conn:
                context = self._report_context(conn, lang)
            values = {k: data.get(k) for k in ("item", "channel", "description", "grid_id", "building_id", "household_id")}
            values.update({f.code: _raw(data, f) for f in (context["form"].fields if context["form"] else ())})
            errors, general = _problems(problems)
            return self.render(request, "report.html", 400, values=values, errors=errors, general=general,
                               places=self._places(values["grid_id"] or ""),
                               items=_catalogue(context["rules"], "", "", lang), **context)
        said = words(lang)
        flash = (said["reported"] if done.submitted_move else said["reported_draft"]).format(number=done.number)
        return RedirectResponse(f"/cases/{done.case_id}?flash={quote(flash)}", 303)

    async def items(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = _lang(request)
        rules = self.tablet.rules()
        q = request.query_params
        found = _catalogue(rules, q.get("class", ""), q.get("q", ""), lang)
        chosen = q.get("item", "")
        if chosen and chosen not in {i["code"] for i in found}:
            # The item already picked stays in the list while the worker searches on.
            found = [i for i in _catalogue(rules, "", "", lang) if i["code"] == chosen] + found
        return self.render(request, "_items.html", items=found, values={"item": chosen})

    def _places(self, grid_id: str, households: bool = True) -> dict:
        """The buildings (and, for a case's location, the households) of ``grid_id``."""
        if not grid_id:
            return {"buildings": [], "households": []}
        with self.tablet.store.read() as conn:
            title = title_field(self.tablet.rules(conn))
            buildings = conn.execute(select(_buildings.c.id, _buildings.c.code, _buildings.c.name).where(
                _buildings.c.grid_id == grid_id, _buildings.c.deleted.is_(None)).order_by(_buildings.c.code)).all()
            homes = conn.execute(select(_households.c.id, _households.c.address, _households.c.head_name,
                                        _households.c.fields).where(
                _households.c.grid_id == grid_id, _households.c.deleted.is_(None)).order_by(_households.c.address)
            ).all() if households else []
        return {"buildings": [dict(b._mapping) for b in buildings],
                "households": [{"id": h.id, "address": h.address, "head": household_head(h, title)} for h in homes]}

    async def places(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        q = request.query_params
        grid = q.get("grid_id", "")
        with self.tablet.store.read() as conn:
            if grid not in self.tablet.grid_ids(conn, self.tablet.worker(conn)):
                grid = ""
        return self.render(request, "_places.html", places=self._places(grid),
                           values={"building_id": q.get("building_id", ""), "household_id": q.get("household_id", "")},
                           errors={})

    async def duplicates(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        q = request.query_params
        found = await _thread(fieldrecords.near_duplicates, self.tablet, q.get("item", ""), q.get("grid_id", ""),
                              q.get("building_id", ""), q.get("household_id", ""))
        return self.render(request, "_duplicates.html", found=found)

    # -- a case and its moves --------------------------------------------------------------------

    def _case(self, case_id: str) -> Optional[dict]:
        with self.tablet.store.read() as conn:
            worker = self.tablet.worker(conn)
            grids = self.tablet.grid_ids(conn, worker)
            row = conn.execute(select(_cases).where(_cases.c.id == case_id, _cases.c.deleted.is_(None))).first()
            if row is None or row.grid_id not in grids:
                return None
            rules = self.tablet.rules(conn)
            events = conn.execute(select(_events).where(_events.c.case_id == case_id)
                                  .order_by(_events.c.hlc)).all()
            photos = conn.execute(select(_attachments.c.sha256, _attachments.c.name, _attachments.c.media_type)
                                  .where(_attachments.c.case_id == case_id, _attachments.c.deleted.is_(None))).all()
            grid = conn.execute(select(_grids.c.name).where(_grids.c.id == row.grid_id)).scalar()
        moves = fieldrecords.moves_for(rules, row.status, worker["role"], row.channel) if worker and rules else []
        if worker:
            moves = [m for m in moves if not m["from_reporter"] or row.reporter_id == worker["id"]]
        states = {s.code: s.label for s in rules.lifecycle.states} if rules and rules.lifecycle else {}
        return {"row": row, "item": rules.items.get(row.item_code) if rules else None, "events": events,
                "photos": [p for p in photos if self.tablet.photos.has(p.sha256)], "grid": grid, "moves": moves,
                "states": states, "deadline": _aware(row.deadline) if row.deadline else None}

    async def case(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        found = await _thread(self._case, request.path_params["case_id"])
        if found is None:
            raise HTTPException(404)
        return self.render(request, "case.html", case=found, errors={}, general=[], zone=self._zone(),
                           flash=request.query_params.get("flash", ""), evidence_name=fieldrecords.evidence_name)

    async def move(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = _lang(request)
        case_id = request.path_params["case_id"]
        data = await self.form(request)
        signature = await _photos(data, "signature")
        satisfied = {"yes": True, "no": False}.get(str(data.get("satisfied") or ""))
        given = MoveInput(move=str(data.get("move") or ""), note=str(data.get("note") or ""),
                          onsite=data.get("onsite") == "yes", satisfied=satisfied,
                          photos=await _photos(data, "photos"), signature=signature[0] if signature else None)
        try:
            status, proposal = await _thread(fieldrecords.move_case, self.tablet, case_id, given, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            found = await _thread(self._case, case_id)
            if found is None:
                raise HTTPException(404) from None
            errors, general = _problems(problems)
            # A message for an input this move's form does not draw is said above the form instead.
            drawn = _evidence_inputs(next((m for m in found["moves"] if m["code"] == given.move), None))
            general = general + [v for k, v in errors.items() if k not in drawn]
            return self.render(request, "case.html", 400, case=found, errors=errors, general=general,
                               zone=self._zone(), flash="", chosen=given.move, note=given.note,
                               evidence_name=fieldrecords.evidence_name)
        said = words(lang)
        flash = (said["proposed"] if proposal else said["moved"]).format(move=given.move)
        return RedirectResponse(f"/cases/{case_id}?flash={quote(flash)}", 303)

    async def photo(self, request: Request):
        sha = request.path_params["sha"]
        with self.tablet.store.read() as conn:
            grids = self.tablet.grid_ids(conn, self.tablet.worker(conn))
            row = conn.execute(select(_attachments.c.media_type, _attachments.c.grid_id)
                               .where(_attachments.c.sha256 == sha).limit(1)).first()
        if row is None or row.grid_id not in grids or not self.tablet.photos.has(sha):
            raise HTTPException(404)
        return Response(await _thread(self.tablet.photos.read, sha), media_type=row.media_type,
                        headers={"cache-control": "private, max-age=3600"})

    # -- households -------------------------------------------------------------------------------

    async def households(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        q = request.query_params
        text, grid = q.get("q", "").strip(), q.get("grid_id", "")
        with self.tablet.store.read() as conn:
            worker = self.tablet.worker(conn)
            grid_ids = self.tablet.grid_ids(conn, worker)
            title = title_field(self.tablet.rules(conn))
            query = select(_households.c.id, _households.c.address, _households.c.head_name, _households.c.fields,
                           _households.c.grid_id).where(_households.c.grid_id.in_([grid] if grid in grid_ids else grid_ids),
                                                        _households.c.deleted.is_(None))
            if text:
                like = f"%{text}%"
                query = query.where(_households.c.address.like(like) | _households.c.fields.like(like))
            rows = conn.execute(query.order_by(_households.c.address).limit(200)).all()
            grids = self.tablet.grids(conn, grid_ids)
        homes = [{"id": r.id, "address": r.address, "head": household_head(r, title)} for r in rows]
        return self.render(request, "households.html", homes=homes, grids=grids, q=text, grid_id=grid)

    def _household_context(self, household_id: Optional[str]) -> dict:
        with self.tablet.store.read() as conn:
            rules = self.tablet.rules(conn)
            worker = self.tablet.worker(conn)
            grid_ids = self.tablet.grid_ids(conn, worker)
            context = {"form": fieldforms.form_for(rules, "household"), "grids": self.tablet.grids(conn, grid_ids),
                       "resident_form": fieldrecords.resident_form(rules), "residents": [], "visits": [],
                       "zone": self.tablet.zone(conn)}
            if household_id:
                context["residents"] = conn.execute(select(_residents).where(
                    _residents.c.household_id == household_id, _residents.c.deleted.is_(None))
                    .order_by(_residents.c.name)).all()
                context["visits"] = conn.execute(select(_visits).where(_visits.c.household_id == household_id)
                                                 .order_by(_visits.c.at.desc()).limit(20)).all()
        return context

    async def household_new(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        return await self._household_page(request, None)

    async def household(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        return await self._household_page(request, request.path_params["household_id"])

    async def _household_page(self, request: Request, household_id: Optional[str]):
        lang = _lang(request)
        if request.method == "GET":
            values = fieldrecords.household_values(self.tablet, household_id) if household_id else {}
            if household_id and (values is None or not self._mine(values["grid_id"])):
                raise HTTPException(404)
            context = await _thread(self._household_context, household_id)
            if not household_id:
                values = {"grid_id": context["grids"][0]["id"] if context["grids"] else ""}
            return self.render(request, "household.html", household_id=household_id, values=values, errors={},
                               general=[], places=self._places(values.get("grid_id", ""), households=False),
                               flash=request.query_params.get("flash", ""), rvalues={}, rerrors={}, **context)
        data = await self.form(request)
        try:
            saved = await _thread(fieldrecords.save_household, self.tablet, household_id, data, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            context = await _thread(self._household_context, household_id)
            values = {"grid_id": data.get("grid_id"), "building_id": data.get("building_id"),
                      "address": data.get("address"), **{f.code: _raw(data, f) for f in context["form"].fields}}
            errors, general = _problems(problems)
            return self.render(request, "household.html", 400, household_id=household_id, values=values,
                               errors=errors, general=general, places=self._places(str(values["grid_id"] or ""), households=False),
                               flash="", rvalues={}, rerrors={}, **context)
        return RedirectResponse(f"/households/{saved}?flash={quote(words(lang)['saved'])}", 303)

    def _mine(self, grid_id: str) -> bool:
        with self.tablet.store.read() as conn:
            return grid_id in self.tablet.grid_ids(conn, self.tablet.worker(conn))

    async def resident(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = _lang(request)
        household_id = request.path_params["household_id"]
        data = await self.form(request)
        try:
            await _thread(fieldrecords.add_resident, self.tablet, household_id, data, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            values = fieldrecords.household_values(self.tablet, household_id)
            if values is None:
                raise HTTPException(404) from None
            context = await _thread(self._household_context, household_id)
            errors, general = _problems(problems)
            rvalues = {f.code: _raw(data, f) for f in context["resident_form"].fields}
            return self.render(request, "household.html", 400, household_id=household_id, values=values, errors={},
                               general=general, places=self._places(values["grid_id"], households=False), flash="", rvalues=rvalues,
                               rerrors=errors, **context)
        return RedirectResponse(f"/households/{household_id}?flash={quote(words(lang)['resident_saved'])}", 303)

    async def resident_card(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = _lang(request)
        resident_id = request.path_params["resident_id"]
        values = fieldrecords.resident_values(self.tablet, resident_id)
        if values is None or not self._mine(values["grid_id"]):
            raise HTTPException(404)
        form = fieldrecords.resident_form(self.tablet.rules())
        if request.method == "GET":
            return self.render(request, "resident.html", resident=values, form=form, values=values, errors={},
                               general=[], flash=request.query_params.get("flash", ""))
        data = await self.form(request)
        try:
            household = await _thread(fieldrecords.edit_resident, self.tablet, resident_id, data, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            errors, general = _problems(problems)
            return self.render(request, "resident.html", 400, resident=values, form=form,
                               values={f.code: _raw(data, f) for f in form.fields}, errors=errors, general=general)
        return RedirectResponse(f"/households/{household}?flash={quote(words(lang)['saved'])}", 303)

    async def visit(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = _lang(request)
        household_id = request.path_params["household_id"]
        values = fieldrecords.household_values(self.tablet, household_id)
        if values is None or not self._mine(values["grid_id"]):
            raise HTTPException(404)
        form = fieldrecords.visit_form(self.tablet.rules())
        if request.method == "GET":
            return self.render(request, "visit.html", household=values, form=form, values={}, errors={}, general=[])
        data = await self.form(request)
        photos = await _photos(data, "photos")
        try:
            await _thread(fieldrecords.log_visit, self.tablet, household_id, data, photos, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            errors, general = _problems(problems)
            shown_values = {f.code: _raw(data, f) for f in form.fields} | {"notes": data.get("notes")}
            return self.render(request, "visit.html", 400, household=values, form=form, values=shown_values,
                               errors=errors, general=general)
        return RedirectResponse(f"/households/{household_id}?flash={quote(words(lang)['visit_saved'])}", 303)

    # -- points -----------------------------------------------------------------------------------

    async def points(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = _lang(request)
        errors, general, flash = {}, [], request.query_params.get("flash", "")
        status = 200
        if request.method == "POST":
            data = await self.form(request)
            times = str(data.get("times") or "1")
            try:
                balance = await _thread(
                    fieldrecords.record_points, self.tablet, str(data.get("resident_id") or ""),
                    earn=str(data.get("earn") or ""), times=int(times) if times.isdigit() else 0,
                    reward=str(data.get("reward") or ""), lang=lang)
            except (FormProblems, LeaseExpired, WanggeError) as problems:
                errors, general = _problems(problems)
                status = 400
            else:
                return RedirectResponse(f"/points?flash={quote(words(lang)['points_saved'].format(n=balance))}", 303)
        with self.tablet.store.read() as conn:
            grid_ids = self.tablet.grid_ids(conn, self.tablet.worker(conn))
            people = fieldrecords.balances(conn, grid_ids)
        return self.render(request, "points.html", status, people=people, errors=errors, general=general, flash=flash)

    # -- sync -------------------------------------------------------------------------------------

    async def sync(self, request: Request):
        if request.method == "POST":
            await self.form(request)
            if self.state.master_url is None:
                raise HTTPException(400, words(_lang(request))["no_master"])
            with self.state.lock:
                if self.state.job is None or self.state.job.done.is_set():
                    self.state.job = SyncJob(self.tablet, self.state.master_url, self.state.client_options)
            if request.headers.get("hx-request"):
                return self.render(request, "_sync_status.html", job=self.state.job, last=None)
            await _thread(self.state.job.done.wait, 120)
            return RedirectResponse("/sync", 303)
        last = await _thread(fieldsync.last, self.tablet)
        with self.tablet.store.read() as conn:
            waiting = self.tablet.waiting(conn)
            lease = self.tablet.lease(conn)
        return self.render(request, "sync.html", job=self.state.job, last=last, waiting=waiting, lease=lease,
                           errors={}, general=[], folder="", reply="")

    async def sync_status(self, request: Request):
        job = self.state.job
        last, waiting = None, None
        if job is None or job.done.is_set():
            last = await _thread(fieldsync.last, self.tablet)
            with self.tablet.store.read() as conn:
                waiting = self.tablet.waiting(conn)
        return self.render(request, "_sync_status.html", job=job, last=last, waiting=waiting)

    async def export(self, request: Request):
        data = await self.form(request)
        folder = str(data.get("folder") or "")
        said = words(_lang(request))
        if not folder.strip() or not Path(folder.strip()).expanduser().is_dir():
            return await self._sync_form_error(request, {"folder": said["no_folder"]}, folder=folder)
        try:
            await _thread(fieldsync.export_bundle, self.tablet, folder)
        except WanggeError as exc:
            return await self._sync_form_error(request, {"folder": str(exc)}, folder=folder)
        return RedirectResponse("/sync", 303)

    async def import_reply(self, request: Request):
        data = await self.form(request)
        reply = str(data.get("reply") or "")
        try:
            await _thread(fieldsync.import_reply, self.tablet, reply)
        except WanggeError as exc:
            why = words(_lang(request))["bad_reply"].format(why=exc)
            return await self._sync_form_error(request, {"reply": why}, reply=reply)
        return RedirectResponse("/sync", 303)

    async def _sync_form_error(self, request: Request, errors: dict, **values):
        last = await _thread(fieldsync.last, self.tablet)
        with self.tablet.store.read() as conn:
            waiting = self.tablet.waiting(conn)
            lease = self.tablet.lease(conn)
        return self.render(request, "sync.html", 400, job=self.state.job, last=last, waiting=waiting, lease=lease,
                           errors=errors, general=[], folder=values.get("folder", ""), reply=values.get("reply", ""))

    # -- errors -----------------------------------------------------------------------------------

    async def not_found(self, request: Request, exc):
        lang = _lang(request)
        detail = getattr(exc, "detail", "")
        status = getattr(exc, "status_code", 404)
        message = words(lang)["not_found"] if status == 404 else str(detail)
        return self.render(request, "error.html", status, message=message)

    async def bad_method(self, request: Request, exc):
        return self.render(request, "error.html", 405, message=words(_lang(request))["bad_request"].format(
            why=request.method))

    async def failed(self, request: Request, exc):
        # One line, never a traceback: the worker reads it on a tablet in the street.
        message = str(exc) if isinstance(exc, WanggeError) else f"{type(exc).__name__}"
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>error</title><p>{_escape(message)}</p>"
                            f"<p><a href='/'>←</a></p>", status_code=500)


def _evidence_inputs(move: Optional[dict]) -> set[str]:
    """The inputs case.html draws for ``move``: its evidence decides (keep in step with the template)."""
    if move is None:
        return set()
    needs = set(move["requires"])
    drawn = {"evidence", "note"}
    if "photo" in needs or "onsite_confirmation" in needs or not needs:
        drawn.add("photos")
    if "signature" in needs or "onsite_confirmation" in needs:
        drawn.add("signature")
    if "onsite_confirmation" in needs:
        drawn.add("onsite")
    return drawn


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


async def _thread(function, *args, **kwargs):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args, **kwargs)


async def _photos(data: FormData, name: str) -> list[Photo]:
    photos = []
    for upload in data.getlist(name):
        if hasattr(upload, "read"):
            content = await upload.read()
            if content:
                photos.append(Photo(content, (upload.content_type or "").split(";")[0].strip(), upload.filename or ""))
    return photos


def _raw(data: FormData, f) -> object:
    return [str(v) for v in data.getlist(f.code)] if f.widget == "checks" else str(data.get(f.code) or "")


def _problems(problems: Exception) -> tuple[dict, list]:
    if isinstance(problems, FormProblems):
        return problems.fields, problems.general
    return {}, [str(problems)]


def _default_channel(rules) -> str:
    return rules.channels[0].code if rules and rules.channels else ""


def _catalogue(rules, class_code: str, text: str, lang: str) -> list[dict]:
    """Catalogue items matching a class and a search text (name in either language, or code)."""
    if rules is None:
        return []
    text = text.strip().lower()
    out = []
    for cls in rules.catalogue:
        if class_code and cls.code != class_code:
            continue
        for item in cls.items:
            names = (item.code, item.label.zh, item.label.en, cls.label.zh, cls.label.en)
            if text and not any(text in n.lower() for n in names if n):
                continue
            out.append({"code": item.code, "label": item.label, "class": cls.label, "evidence": item.evidence,
                        "channels": item.channels})
    return out

