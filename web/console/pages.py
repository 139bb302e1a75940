"""The console's pages and forms: each handler reads the request, runs one use case of
`wangge.app` in a worker thread (the store's drivers block), and renders a template.

A form that fails (bad input, a move the lifecycle refuses) shows the page
again with the message in it and a 4xx status; nothing is saved then. A
form that succeeds redirects (303) to the page it came from with a notice.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from wangge.app import accounts, actions, boards, exports, queries
from wangge.app.accounts import Account, AccountError, LoginRefused
from wangge.app.actions import NotAllowed, PhotoUpload
from wangge.app.queries import NotVisible
from wangge.core import periods
from wangge.core.errors import TransitionError, WanggeError
from wangge.core.store import Store
from wangge.dsl.summary import summary
from wangge.sync.attachments import DEFAULT_MAX_BYTES, AttachmentError, BlobStore, check_sha
from wangge.web.console import auth, i18n

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
#: The periods a score page can show, as query parameters.
_SCORE_KINDS = ("month", "quarter", "half_year", "year")


class LoginNeeded(Exception):
    """No usable session: the person is sent to the login page."""

    def __init__(self, next_url: str):
        self.next_url = next_url


class Refused(Exception):
    """A request refused before any work: a missing CSRF token, a role without the right."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _safe_next(target: str) -> str:
    """Only paths of this console: a login must never send a person to another site."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/cases"


class Console:
    """The handlers, over one master store."""

    def __init__(self, store: Store, blobs: Optional[BlobStore], rules_error: Callable[[], Optional[str]]):
        self.store, self.blobs, self.rules_error = store, blobs, rules_error
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.templates.env.globals["urlencode"] = urlencode

    # -- plumbing ---------------------------------------------------------------------

    async def _account(self, request: Request) -> Account:
        found = await run_in_threadpool(auth.current, self.store, request)
        if found is None:
            raise LoginNeeded(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return found

    async def _form(self, request: Request):
        """The posted form, once its CSRF token checks out; raises `Refused` (403) otherwise."""
        try:
            form = await request.form(max_files=2, max_fields=50)
        except Exception:  # noqa: BLE001 - multipart's own errors: a malformed body, too many parts
            raise Refused(400, "the form could not be read: send it again from the console's page") from None
        if not auth.csrf_ok(request, form.get("csrf") or request.headers.get("x-csrf-token")):
            raise Refused(403, "this form has no valid security token (it expired, or it did not come from this "
                               "console): reload the page and send it again")
        return form

    def render(self, request: Request, name: str, context: dict, *, account: Optional[Account] = None,
               status: int = 200, ruleset=None) -> HTMLResponse:
        lang = i18n.pick(request.session.get("lang"))
        _ = i18n.translator(lang)
        base = {"_": _, "lang": lang, "account": account, "csrf": auth.csrf_token(request),
                "notice": request.session.pop("notice", None), "path": request.url.path,
                "labels": queries.labels(ruleset, lang) if ruleset is not None else {},
                "owner_label": (lambda owner: queries.owner_label(ruleset, owner, lang)) if ruleset is not None else str,
                "evidence_names": i18n.evidence_names(_)}
        return self.templates.TemplateResponse(request, name, {**base, **context}, status_code=status)

    def _done(self, request: Request, url: str, notice: str) -> RedirectResponse:
        request.session["notice"] = notice
        return RedirectResponse(url, status_code=303)

    async def _read(self, request: Request, fn, account: Optional[Account] = None):
        """``(account, fn(conn, ruleset, account))``, the session's account looked up in the same
        read transaction as the page's rows. Raises `LoginNeeded` if the session has none."""
        def work():
            with self.store.read() as conn:
                who = account or auth.current_in(conn, request)
                return (who, fn(conn, queries.current_ruleset(conn), who)) if who is not None else (None, None)
        who, result = await run_in_threadpool(work)
        if who is None:
            raise LoginNeeded(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return who, result

    # -- logging in ---------------------------------------------------------------------

    async def home(self, request: Request):
        return RedirectResponse("/cases", status_code=303)

    async def login_page(self, request: Request):
        return self.render(request, "console/login.html", {"next": _safe_next(request.query_params.get("next", "/cases")),
                                                          "name": "", "error": None})

    async def login(self, request: Request):
        form = await self._form(request)
        name, password = str(form.get("name") or "").strip(), str(form.get("password") or "")
        next_url = _safe_next(str(form.get("next") or "/cases"))
        _ = i18n.translator(i18n.pick(request.session.get("lang")))
        if not name or not password:
            error = _("Give your account name and password.")
        else:
            try:
                found = await run_in_threadpool(accounts.login, self.store, name, password)
            except LoginRefused as refused:
                error = _login_refusal(refused, _, await run_in_threadpool(self._zone))
            else:
                auth.start(request, found)
                return RedirectResponse(next_url, status_code=303)
        return self.render(request, "console/login.html", {"next": next_url, "name": name, "error": error}, status=400)

    def _zone(self):
        """The ruleset's time zone, for times a page shows outside any case (UTC if there is no ruleset)."""
        try:
            with self.store.read() as conn:
                return queries.zone_of(queries.current_ruleset(conn))
        except WanggeError:
            return timezone.utc

    async def logout(self, request: Request):
        await self._form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def language(self, request: Request):
        request.session["lang"] = i18n.pick(request.path_params["lang"])
        return RedirectResponse(_safe_next(request.query_params.get("next", "/cases")), status_code=303)

    # -- cases ----------------------------------------------------------------------------

    async def queue_page(self, request: Request, *, account: Optional[Account] = None):
        lang = i18n.pick(request.session.get("lang"))
        now = _now()

        def work(conn, ruleset, account):
            chosen, problems = queries.parse_filter(request.query_params, ruleset)
            return ruleset, chosen, problems, queries.queue(conn, ruleset, account, chosen, now, lang)

        account, (ruleset, chosen, problems, found) = await self._read(request, work, account)
        partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "queue"
        return self.render(request, "console/_queue.html" if partial else "console/queue.html",
                           {"queue": found, "filter": chosen, "problems": problems, "ruleset": ruleset},
                           account=account, ruleset=ruleset, status=400 if problems else 200)

    async def case_page(self, request: Request, *, error: Optional[str] = None, status: int = 200,
                        account: Optional[Account] = None):
        lang = i18n.pick(request.session.get("lang"))
        ref = request.path_params["ref"]
        try:
            account, (ruleset, detail) = await self._read(
                request, lambda conn, rs, who: (rs, queries.case_detail(conn, rs, who, ref, _now(), lang)), account)
        except NotVisible as missing:
            return self.render(request, "console/error.html", {"message": str(missing)}, account=account, status=404)
        return self.render(request, "console/case.html", {"case": detail, "error": error}, account=account,
                           ruleset=ruleset, status=status)

    async def move(self, request: Request):
        account = await self._account(request)
        form = await self._form(request)
        move = str(form.get("move") or "")
        evidence = [str(e) for e in form.getlist("evidence")]
        satisfied = {"yes": True, "no": False}.get(str(form.get("satisfied") or ""))
        if form.get("callback_result") in ("satisfied", "unsatisfied"):
            evidence.append("callback")
            satisfied = form.get("callback_result") == "satisfied"
        photo = await self._photo(form.get("photo"))
        _ = i18n.translator(i18n.pick(request.session.get("lang")))
        try:
            status = await run_in_threadpool(
                lambda: actions.move(self.store, account, request.path_params["ref"], move, now=_now(), evidence=evidence,
                                     note=str(form.get("note") or ""), satisfied=satisfied, photo=photo, blobs=self.blobs))
        except NotVisible as missing:
            return self.render(request, "console/error.html", {"message": str(missing)}, account=account, status=404)
        except (TransitionError, WanggeError) as refused:
            return await self.case_page(request, error=i18n.refusal(refused, _),
                                        status=409 if isinstance(refused, TransitionError) else 400, account=account)
        return self._done(request, f"/cases/{request.path_params['ref']}", _("Done: the case is now %(status)s.", status=status))

    async def _photo(self, upload) -> Optional[PhotoUpload]:
        if not isinstance(upload, UploadFile) or not upload.filename:
            return None
        data = await upload.read(DEFAULT_MAX_BYTES + 1)
        if len(data) > DEFAULT_MAX_BYTES:
            raise Refused(413, f"the photo is larger than {DEFAULT_MAX_BYTES // (1024 * 1024)} MB: send a smaller one")
        return PhotoUpload(data, upload.filename) if data else None

    async def photo(self, request: Request):
        sha = request.path_params["sha"]
        try:
            check_sha(sha)
            _, media = await self._read(request, lambda conn, rs, who: queries.case_photo(
                conn, who, request.path_params["ref"], sha))
            if self.blobs is None or not self.blobs.has(sha):
                raise NotVisible("the photo has not reached the office yet: the tablet sends it at its next sync")
        except (AttachmentError, NotVisible) as missing:
            return PlainTextResponse(str(missing), status_code=404)
        if not media.startswith("image/") or "svg" in media:  # a tablet's word for it: never served as a page
            media = "application/octet-stream"
        return Response(self.blobs.read(sha), media_type=media,
                        headers={"Cache-Control": "private, max-age=86400"})

    # -- review -----------------------------------------------------------------------------

    async def review_page(self, request: Request, *, error: Optional[str] = None, status: int = 200,
                          account: Optional[Account] = None):
        account, (ruleset, rows) = await self._read(request, lambda conn, rs, who: (rs, boards.conflicts(conn, rs)),
                                                    account)
        if not account.office(ruleset):
            status, error, rows = 403, str(NotAllowed(f"the review is for office roles; account {account.name} is a "
                                                      f"{account.role}")), []
        return self.render(request, "console/review.html", {"conflicts": rows, "error": error}, account=account,
                           ruleset=ruleset, status=status)

    async def resolve(self, request: Request):
        account = await self._account(request)
        form = await self._form(request)
        number = request.path_params["number"]
        how = str(form.get("how") or "")
        try:
            if not number.isdigit() or len(number) > 18:
                raise AccountError(f"no conflict #{number}: the review lists them with their numbers")
            done = await run_in_threadpool(lambda: actions.resolve(self.store, account, int(number), how,
                                                                   note=str(form.get("note") or ""), now=_now()))
        except WanggeError as refused:
            return await self.review_page(request, error=str(refused), status=403 if isinstance(refused, NotAllowed) else 400,
                                          account=account)
        return self._done(request, "/review", done)

    # -- devices ----------------------------------------------------------------------------

    async def devices_page(self, request: Request, *, error: Optional[str] = None, status: int = 200,
                           account: Optional[Account] = None):
        now = _now()
        account, (ruleset, rows, people) = await self._read(
            request, lambda conn, rs, who: (rs, boards.devices(conn, rs, now), boards.workers(conn)), account)
        if not account.office(ruleset):
            status, error, rows = 403, f"tablets are managed by office roles; account {account.name} is a {account.role}", []
        return self.render(request, "console/devices.html", {"devices": rows, "workers": people, "error": error},
                           account=account, ruleset=ruleset, status=status)

    async def approve(self, request: Request):
        account = await self._account(request)
        form = await self._form(request)
        try:
            done = await run_in_threadpool(lambda: actions.approve_device(
                self.store, account, request.path_params["device_id"], str(form.get("worker") or ""), now=_now()))
        except WanggeError as refused:
            return await self.devices_page(request, error=str(refused), account=account,
                                           status=403 if isinstance(refused, NotAllowed) else 400)
        return self._done(request, "/devices", done)

    async def revoke(self, request: Request):
        account = await self._account(request)
        await self._form(request)
        try:
            done = await run_in_threadpool(lambda: actions.revoke_device(
                self.store, account, request.path_params["device_id"], now=_now()))
        except WanggeError as refused:
            return await self.devices_page(request, error=str(refused), account=account,
                                           status=403 if isinstance(refused, NotAllowed) else 400)
        return self._done(request, "/devices", done)

    # -- escalation ---------------------------------------------------------------------------

    async def escalation_page(self, request: Request, *, swept=None, error: Optional[str] = None, status: int = 200,
                              account: Optional[Account] = None):
        now = _now()
        account, (ruleset, levels) = await self._read(
            request, lambda conn, rs, who: (rs, boards.escalation_board(conn, rs, who, now)), account)
        return self.render(request, "console/escalation.html", {"levels": levels, "swept": swept, "error": error,
                                                               "office": account.office(ruleset)},
                           account=account, ruleset=ruleset, status=status)

    async def sweep(self, request: Request):
        account = await self._account(request)
        await self._form(request)
        try:
            swept = await run_in_threadpool(lambda: actions.sweep(self.store, account, now=_now()))
        except WanggeError as refused:
            return await self.escalation_page(request, error=str(refused), account=account,
                                              status=403 if isinstance(refused, NotAllowed) else 400)
        return await self.escalation_page(request, swept=swept, account=account)

    # -- scores -------------------------------------------------------------------------------

    def _period(self, request: Request) -> tuple[periods.Period, Optional[str]]:
        """The period the page scores (``?month=2026-10``, ``?quarter=2026-Q4``, ``?half_year=2026-H2`` or
        ``?year=2026``; this month by default) and what is wrong with the one asked for, if anything."""
        this_month = periods.of("month", _now().date())
        for kind in _SCORE_KINDS:
            text = request.query_params.get(kind, "").strip()
            if not text:
                continue
            if kind == "month":
                found = _MONTH.match(text)
                if found and 1 <= int(found.group(2)) <= 12 and 2000 <= int(found.group(1)) <= 2100:
                    return periods.parse("month", text), None
                return this_month, f"month {text!r} is not a month: expected YYYY-MM, e.g. 2026-10"
            try:
                return periods.parse(kind, text), None
            except WanggeError as exc:
                return this_month, f"{kind.replace('_', '-')} {text!r}: {exc}"
        return this_month, None

    async def scores_page(self, request: Request):
        period, error = self._period(request)
        account, (ruleset, results) = await self._read(
            request, lambda conn, rs, who: (rs, boards.scores(conn, rs, who, period)))
        header, rows = exports.score_table(results)
        today = _now().date()
        # The kinds of period the rule file scores (a month always has its page, even with no formula).
        kinds = [(kind, periods.of(kind, today).label) for kind in _SCORE_KINDS
                 if kind == "month" or any(f.period == kind for f in ruleset.formulas)]
        return self.render(request, "console/scores.html", {"results": results, "header": header, "rows": rows,
                                                           "month": period.label, "period": period,
                                                           "kinds": kinds, "error": error},
                           account=account, ruleset=ruleset, status=400 if error else 200)

    async def _export(self, request: Request, make, suffix: str, media: str):
        period, error = self._period(request)
        if error:
            return PlainTextResponse(error, status_code=400)
        _, results = await self._read(request, lambda conn, rs, who: boards.scores(conn, rs, who, period))
        data = await run_in_threadpool(make, results, period.label)
        name = f"scores-{period.label}.{suffix}"
        return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def scores_csv(self, request: Request):
        return await self._export(request, lambda results, _: exports.scores_csv(results), "csv", "text/csv; charset=utf-8")

    async def scores_xlsx(self, request: Request):
        return await self._export(request, exports.scores_xlsx, "xlsx",
                                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    # -- grids and the ruleset --------------------------------------------------------------------

    async def grids_page(self, request: Request):
        now = _now()
        account, (ruleset, tree) = await self._read(request, lambda conn, rs, who: (rs, boards.grid_tree(conn, rs, who, now)))
        shapes = [_feature(n) for n in _walk(tree) if n.boundary]
        return self.render(request, "console/grids.html", {"tree": tree, "shapes": shapes}, account=account,
                           ruleset=ruleset)

    async def ruleset_page(self, request: Request):
        lang = i18n.pick(request.session.get("lang"))
        account, ruleset = await self._read(request, lambda conn, rs, who: rs)
        return self.render(request, "console/ruleset.html",
                           {"ruleset": ruleset, "summary": summary(ruleset, lang), "rules_error": self.rules_error()},
                           account=account, ruleset=ruleset)

    async def audit_page(self, request: Request):
        name = request.query_params.get("account") or None
        account, (ruleset, lines) = await self._read(
            request, lambda conn, rs, who: (rs, accounts.trail(conn, 300, name) if who.office(rs) else None))
        if lines is None:
            return self.render(request, "console/error.html", {"message": f"the audit trail is for office roles; account "
                                                                        f"{account.name} is a {account.role}"},
                               account=account, ruleset=ruleset, status=403)
        zone = queries.zone_of(ruleset)
        for line in lines:
            line["at"] = queries.local(line["at"], ruleset).astimezone(zone)
        return self.render(request, "console/audit.html", {"lines": lines, "who": name or ""}, account=account,
                           ruleset=ruleset)


def _login_refusal(refused: LoginRefused, _, zone) -> str:
    """A refused login in the page's language, the end of a lock in ``zone``."""
    until = refused.until.astimezone(zone).strftime("%H:%M") if refused.until else ""
    return {
        "wrong": _("Wrong account name or password."),
        "now_locked": _("Wrong account name or password. After %(failures)s failed logins the account is locked "
                        "until %(until)s.", failures=accounts.MAX_FAILURES, until=until),
        "locked": _("This account is locked after %(failures)s failed logins until %(until)s: try again then, or ask "
                    "the office to set a new password.", failures=accounts.MAX_FAILURES, until=until),
        "disabled": _("This account is disabled: ask the office to enable it."),
    }.get(refused.reason, str(refused))


def _walk(nodes):
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _feature(node) -> dict:
    return {"type": "Feature", "geometry": node.boundary,
            "properties": {"code": node.code, "name": node.name, "open": node.open, "overdue": node.overdue,
                           "colour": node.colour}}


async def _login_needed(request: Request, exc: LoginNeeded):
    url = "/login?" + urlencode({"next": exc.next_url})
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def _refused(request: Request, exc: Refused):
    _ = i18n.translator(i18n.pick(request.session.get("lang")))
    return HTMLResponse(_plain_page(_("Refused"), exc.message), status_code=exc.status)


async def _wangge_error(request: Request, exc: WanggeError):
    # A store without a ruleset, a store that cannot be read: the office is told what to do, in one line.
    return HTMLResponse(_plain_page("503", str(exc)), status_code=503)


async def _http_error(request: Request, exc: HTTPException):
    return HTMLResponse(_plain_page(str(exc.status_code), exc.detail or ""), status_code=exc.status_code)


async def _internal(request: Request, exc: Exception):
    # The last line of defence: a person sees one line, never a traceback.
    return HTMLResponse(_plain_page("500", f"internal error ({type(exc).__name__}); the office's log has the details"),
                        status_code=500)


def _plain_page(title: str, message: str) -> str:
    from html import escape

    return (f"<!doctype html><meta charset=utf-8><title>{escape(title)}</title>"
            f"<link rel=stylesheet href=/static/console.css><main class=plain><h1>{escape(title)}</h1>"
            f"<p class=error>{escape(message)}</p><p><a href=/cases>←</a></p></main>")


HANDLERS = {LoginNeeded: _login_needed, Refused: _refused, WanggeError: _wangge_error, HTTPException: _http_error,
            Exception: _internal}
