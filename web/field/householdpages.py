"""The field app's household pages: the card, residents, visits, and volunteer points."""
from __future__ import annotations

from typing import Optional
from urllib.parse import quote

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from wangge.app import fieldforms, fieldrecords
from wangge.app.fieldrecords import FormProblems
from wangge.app.fieldtablet import household_head, title_field
from wangge.core.errors import WanggeError
from wangge.core.models import Household, Resident, Visit
from wangge.sync.device.atrest import LeaseExpired
from wangge.web.field.pagekit import PageKit, as_sent, in_thread, lang_of, split_problems, uploaded_photos
from wangge.web.field.words import words


_households, _residents, _visits = Household.__table__, Resident.__table__, Visit.__table__

class HouseholdPages(PageKit):
    """Households of the worker's grids, their residents and visits; residents' points."""

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
        lang = lang_of(request)
        if request.method == "GET":
            values = fieldrecords.household_values(self.tablet, household_id) if household_id else {}
            if household_id and (values is None or not self._mine(values["grid_id"])):
                raise HTTPException(404)
            context = await in_thread(self._household_context, household_id)
            if not household_id:
                values = {"grid_id": context["grids"][0]["id"] if context["grids"] else ""}
            return self.render(request, "household.html", household_id=household_id, values=values, errors={},
                               general=[], places=self._places(values.get("grid_id", ""), households=False),
                               flash=request.query_params.get("flash", ""), rvalues={}, rerrors={}, **context)
        data = await self.form(request)
        try:
            saved = await in_thread(fieldrecords.save_household, self.tablet, household_id, data, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            context = await in_thread(self._household_context, household_id)
            values = {"grid_id": data.get("grid_id"), "building_id": data.get("building_id"),
                      "address": data.get("address"), **{f.code: as_sent(data, f) for f in context["form"].fields}}
            errors, general = split_problems(problems)
            return self.render(request, "household.html", 400, household_id=household_id, values=values,
                               errors=errors, general=general, places=self._places(str(values["grid_id"] or ""), households=False),
                               flash="", rvalues={}, rerrors={}, **context)
        return RedirectResponse(f"/households/{saved}?flash={quote(words(lang)['saved'])}", 303)

    async def resident(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = lang_of(request)
        household_id = request.path_params["household_id"]
        data = await self.form(request)
        try:
            await in_thread(fieldrecords.add_resident, self.tablet, household_id, data, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            values = fieldrecords.household_values(self.tablet, household_id)
            if values is None:
                raise HTTPException(404) from None
            context = await in_thread(self._household_context, household_id)
            errors, general = split_problems(problems)
            rvalues = {f.code: as_sent(data, f) for f in context["resident_form"].fields}
            return self.render(request, "household.html", 400, household_id=household_id, values=values, errors={},
                               general=general, places=self._places(values["grid_id"], households=False), flash="", rvalues=rvalues,
                               rerrors=errors, **context)
        return RedirectResponse(f"/households/{household_id}?flash={quote(words(lang)['resident_saved'])}", 303)

    async def resident_card(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = lang_of(request)
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
            household = await in_thread(fieldrecords.edit_resident, self.tablet, resident_id, data, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            errors, general = split_problems(problems)
            return self.render(request, "resident.html", 400, resident=values, form=form,
                               values={f.code: as_sent(data, f) for f in form.fields}, errors=errors, general=general)
        return RedirectResponse(f"/households/{household}?flash={quote(words(lang)['saved'])}", 303)

    async def visit(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = lang_of(request)
        household_id = request.path_params["household_id"]
        values = fieldrecords.household_values(self.tablet, household_id)
        if values is None or not self._mine(values["grid_id"]):
            raise HTTPException(404)
        form = fieldrecords.visit_form(self.tablet.rules())
        if request.method == "GET":
            return self.render(request, "visit.html", household=values, form=form, values={}, errors={}, general=[])
        data = await self.form(request)
        photos = await uploaded_photos(data, "photos")
        try:
            await in_thread(fieldrecords.log_visit, self.tablet, household_id, data, photos, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            errors, general = split_problems(problems)
            shown_values = {f.code: as_sent(data, f) for f in form.fields} | {"notes": data.get("notes")}
            return self.render(request, "visit.html", 400, household=values, form=form, values=shown_values,
                               errors=errors, general=general)
        return RedirectResponse(f"/households/{household_id}?flash={quote(words(lang)['visit_saved'])}", 303)

    # -- points -----------------------------------------------------------------------------------

    async def points(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = lang_of(request)
        errors, general, flash = {}, [], request.query_params.get("flash", "")
        status = 200
        if request.method == "POST":
            data = await self.form(request)
            times = str(data.get("times") or "1")
            try:
                balance = await in_thread(
                    fieldrecords.record_points, self.tablet, str(data.get("resident_id") or ""),
                    earn=str(data.get("earn") or ""), times=int(times) if times.isdigit() else 0,
                    reward=str(data.get("reward") or ""), lang=lang)
            except (FormProblems, LeaseExpired, WanggeError) as problems:
                errors, general = split_problems(problems)
                status = 400
            else:
                return RedirectResponse(f"/points?flash={quote(words(lang)['points_saved'].format(n=balance))}", 303)
        with self.tablet.store.read() as conn:
            grid_ids = self.tablet.grid_ids(conn, self.tablet.worker(conn))
            people = fieldrecords.balances(conn, grid_ids)
        return self.render(request, "points.html", status, people=people, errors=errors, general=general, flash=flash)
