"""What every page of the field app shares: the app's state, rendering, the CSRF-checked form, helpers."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Callable, Optional

from jinja2 import Environment
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from wangge.app import fieldrecords, fieldsync
from wangge.app.fieldrecords import FormProblems, Photo
from wangge.app.fieldtablet import FieldTablet, household_head, title_field
from wangge.core.models import Building, Household
from wangge.web.field.guard import CSRF_FIELD, CSRF_HEADER, PRE_COOKIE, Guard
from wangge.web.field.words import words

WEB = Path(__file__).resolve().parent.parent
_households, _buildings = Household.__table__, Building.__table__


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

def lang_of(request: Request) -> str:
    return "en" if request.cookies.get("wangge_lang") == "en" else "zh"


def safe_next(target: Optional[str]) -> str:
    # Only a path here: "//host" and "/\\host" would take the browser to another site.
    return target if target and target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


class PageKit:
    """Rendering and the checks every handler makes first; the page groups below extend it."""

    def __init__(self, state: FieldState, env: Environment):
        self.state, self.env = state, env

    # -- rendering --------------------------------------------------------------------------------

    @property
    def tablet(self) -> FieldTablet:
        return self.state.tablet

    def render(self, request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        lang = lang_of(request)
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
        return self.render(request, "error.html", 409, message=words(lang_of(request))["not_ready"], sync_link=True)

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
            raise HTTPException(403, words(lang_of(request))["csrf"])
        return data

    def _zone(self):
        with self.tablet.store.read() as conn:
            return self.tablet.zone(conn)

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

    def _mine(self, grid_id: str) -> bool:
        with self.tablet.store.read() as conn:
            return grid_id in self.tablet.grid_ids(conn, self.tablet.worker(conn))


def escape_text(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


async def in_thread(function, *args, **kwargs):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args, **kwargs)


async def uploaded_photos(data: FormData, name: str) -> list[Photo]:
    photos = []
    for upload in data.getlist(name):
        if hasattr(upload, "read"):
            content = await upload.read()
            if content:
                photos.append(Photo(content, (upload.content_type or "").split(";")[0].strip(), upload.filename or ""))
    return photos


def as_sent(data: FormData, f) -> object:
    return [str(v) for v in data.getlist(f.code)] if f.widget == "checks" else str(data.get(f.code) or "")


def split_problems(problems: Exception) -> tuple[dict, list]:
    if isinstance(problems, FormProblems):
        return problems.fields, problems.general
    return {}, [str(problems)]
