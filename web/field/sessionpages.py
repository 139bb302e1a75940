"""The field app's unlock, lock, language and home pages, and its error pages."""
from __future__ import annotations

import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from wangge.core.errors import WanggeError
from wangge.sync.device.atrest import WrongPassphrase
from wangge.web.field.guard import PRE_COOKIE, SESSION_COOKIE
from wangge.web.field.pagekit import PageKit, escape_text, in_thread, lang_of, safe_next
from wangge.web.field.words import words


#: Wrong passphrases in a row before the unlock page pauses, and how long it pauses.
UNLOCK_TRIES, UNLOCK_PAUSE_S = 5, 30.0

class SessionPages(PageKit):
    """Unlocking the tablet, its sessions, the home page; errors said in the page."""

    # -- unlocking --------------------------------------------------------------------------------

    async def unlock(self, request: Request):
        import secrets as _secrets

        if request.method == "GET":
            pre = request.cookies.get(PRE_COOKIE) or _secrets.token_urlsafe(24)
            request.cookies[PRE_COOKIE] = pre
            response = self.render(request, "unlock.html", next=safe_next(request.query_params.get("next")))
            response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict")
            return response
        data = await self.form(request)
        passphrase = str(data.get("passphrase") or "")
        wait = self.state.quiet_until - time.monotonic()
        if wait > 0:
            # Each guess already costs a key derivation; after a run of them, a pause as well.
            return self.render(request, "unlock.html", 429, error=words(lang_of(request))["slow_down"].format(
                seconds=int(wait) + 1), next=safe_next(data.get("next")))
        try:
            if self.state.tablet is None:
                async with self.state.opening:  # two tabs unlocking at once open the store once
                    if self.state.tablet is None:
                        self.state.tablet = await in_thread(self.state.opener, passphrase)
            else:
                # Already open (another tab, or unlocked at start): the passphrase must still fit.
                from wangge.sync.device import atrest

                await in_thread(atrest.unlock, self.state.path, passphrase)
        except WrongPassphrase:
            self.state.failures += 1
            if self.state.failures >= UNLOCK_TRIES:
                self.state.quiet_until = time.monotonic() + UNLOCK_PAUSE_S
                self.state.failures = 0
            return self.render(request, "unlock.html", 401, error=words(lang_of(request))["wrong"],
                               next=safe_next(data.get("next")))
        except WanggeError as exc:
            return self.render(request, "unlock.html", 400, error=str(exc), next="/")
        self.state.failures = 0
        response = RedirectResponse(safe_next(data.get("next")), 303)
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
                await in_thread(self.state.job.done.wait, 120)
            tablet.close()
        response = RedirectResponse("/unlock", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def language(self, request: Request):
        lang = "en" if request.query_params.get("to") == "en" else "zh"
        response = RedirectResponse(safe_next(request.query_params.get("next")), 303)
        response.set_cookie("wangge_lang", lang, samesite="strict", max_age=10 * 365 * 86400)
        return response

    # -- home -------------------------------------------------------------------------------------

    async def home(self, request: Request):
        home = await in_thread(self.tablet.home)
        return self.render(request, "home.html", home=home, zone=self._zone())

    async def choose_worker(self, request: Request):
        data = await self.form(request)
        try:
            await in_thread(self.tablet.set_worker, str(data.get("worker_id") or ""))
        except WanggeError as exc:
            raise HTTPException(400, str(exc)) from None
        return RedirectResponse("/", 303)

    # -- errors -----------------------------------------------------------------------------------

    async def not_found(self, request: Request, exc):
        lang = lang_of(request)
        detail = getattr(exc, "detail", "")
        status = getattr(exc, "status_code", 404)
        message = words(lang)["not_found"] if status == 404 else str(detail)
        return self.render(request, "error.html", status, message=message)

    async def bad_method(self, request: Request, exc):
        return self.render(request, "error.html", 405, message=words(lang_of(request))["bad_request"].format(
            why=request.method))

    async def failed(self, request: Request, exc):
        # One line, never a traceback: the worker reads it on a tablet in the street.
        message = str(exc) if isinstance(exc, WanggeError) else f"{type(exc).__name__}"
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>error</title><p>{escape_text(message)}</p>"
                            f"<p><a href='/'>←</a></p>", status_code=500)
