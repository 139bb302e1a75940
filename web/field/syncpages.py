"""The field app's sync page: the button and its progress, the result in words, the USB path."""
from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from wangge.app import fieldsync
from wangge.core.errors import WanggeError
from wangge.web.field.pagekit import PageKit, SyncJob, in_thread, lang_of
from wangge.web.field.words import words


class SyncPages(PageKit):
    """Sync with the office over the network or by USB stick."""

    # -- sync -------------------------------------------------------------------------------------

    async def sync(self, request: Request):
        if request.method == "POST":
            await self.form(request)
            if self.state.master_url is None:
                raise HTTPException(400, words(lang_of(request))["no_master"])
            with self.state.lock:
                if self.state.job is None or self.state.job.done.is_set():
                    self.state.job = SyncJob(self.tablet, self.state.master_url, self.state.client_options)
            if request.headers.get("hx-request"):
                return self.render(request, "_sync_status.html", job=self.state.job, last=None)
            await in_thread(self.state.job.done.wait, 120)
            return RedirectResponse("/sync", 303)
        last = await in_thread(fieldsync.last, self.tablet)
        with self.tablet.store.read() as conn:
            waiting = self.tablet.waiting(conn)
            lease = self.tablet.lease(conn)
        return self.render(request, "sync.html", job=self.state.job, last=last, waiting=waiting, lease=lease,
                           errors={}, general=[], folder="", reply="")

    async def sync_status(self, request: Request):
        job = self.state.job
        last, waiting = None, None
        if job is None or job.done.is_set():
            last = await in_thread(fieldsync.last, self.tablet)
            with self.tablet.store.read() as conn:
                waiting = self.tablet.waiting(conn)
        return self.render(request, "_sync_status.html", job=job, last=last, waiting=waiting)

    async def export(self, request: Request):
        data = await self.form(request)
        folder = str(data.get("folder") or "")
        said = words(lang_of(request))
        if not folder.strip() or not Path(folder.strip()).expanduser().is_dir():
            return await self._sync_form_error(request, {"folder": said["no_folder"]}, folder=folder)
        try:
            await in_thread(fieldsync.export_bundle, self.tablet, folder)
        except WanggeError as exc:
            return await self._sync_form_error(request, {"folder": str(exc)}, folder=folder)
        return RedirectResponse("/sync", 303)

    async def import_reply(self, request: Request):
        data = await self.form(request)
        reply = str(data.get("reply") or "")
        try:
            await in_thread(fieldsync.import_reply, self.tablet, reply)
        except WanggeError as exc:
            why = words(lang_of(request))["bad_reply"].format(why=exc)
            return await self._sync_form_error(request, {"reply": why}, reply=reply)
        return RedirectResponse("/sync", 303)

    async def _sync_form_error(self, request: Request, errors: dict, **values):
        last = await in_thread(fieldsync.last, self.tablet)
        with self.tablet.store.read() as conn:
            waiting = self.tablet.waiting(conn)
            lease = self.tablet.lease(conn)
        return self.render(request, "sync.html", 400, job=self.state.job, last=last, waiting=waiting, lease=lease,
                           errors=errors, general=[], folder=values.get("folder", ""), reply=values.get("reply", ""))
