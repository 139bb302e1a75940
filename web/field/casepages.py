"""The field app's case pages: reporting a case from the catalogue, a case and its moves, its photos."""
from __future__ import annotations

from typing import Optional
from urllib.parse import quote

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wangge.app import fieldforms, fieldrecords
from wangge.app.fieldrecords import FormProblems, MoveInput
from wangge.app.fieldtablet import aware
from wangge.core.errors import WanggeError
from wangge.core.models import Attachment, Case, CaseEvent, GridCell
from wangge.sync.device.atrest import LeaseExpired
from wangge.web.field.pagekit import PageKit, as_sent, in_thread, lang_of, split_problems, uploaded_photos
from wangge.web.field.words import words


#: Open cases one page lists; a worker's grid holds a few hundred at most.
CASE_LIST_MAX = 500
_cases, _events = Case.__table__, CaseEvent.__table__
_grids, _attachments = GridCell.__table__, Attachment.__table__

class CasePages(PageKit):
    """Report a case; show one; make the worker's moves on it."""

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
        lang = lang_of(request)
        if request.method == "GET":
            with self.tablet.store.read() as conn:
                context = self._report_context(conn, lang)
            first = context["grids"][0]["id"] if context["grids"] else ""
            values = {"grid_id": first, "channel": _default_channel(context["rules"])}
            return self.render(request, "report.html", values=values, errors={}, general=[],
                               places=self._places(first), items=_catalogue(context["rules"], "", "", lang), **context)
        data = await self.form(request)
        photos = await uploaded_photos(data, "photos")
        report = fieldrecords.CaseReport(
            item=str(data.get("item") or ""), channel=str(data.get("channel") or ""),
            description=str(data.get("description") or "").strip(), grid_id=str(data.get("grid_id") or ""),
            building_id=str(data.get("building_id") or ""), household_id=str(data.get("household_id") or ""),
            photos=photos, submitted=data)
        try:
            done = await in_thread(fieldrecords.report_case, self.tablet, report, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            with self.tablet.store.read() as conn:
                context = self._report_context(conn, lang)
            values = {k: data.get(k) for k in ("item", "channel", "description", "grid_id", "building_id", "household_id")}
            values.update({f.code: as_sent(data, f) for f in (context["form"].fields if context["form"] else ())})
            errors, general = split_problems(problems)
            return self.render(request, "report.html", 400, values=values, errors=errors, general=general,
                               places=self._places(values["grid_id"] or ""),
                               items=_catalogue(context["rules"], "", "", lang), **context)
        said = words(lang)
        flash = (said["reported"] if done.submitted_move else said["reported_draft"]).format(number=done.number)
        return RedirectResponse(f"/cases/{done.case_id}?flash={quote(flash)}", 303)

    async def items(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = lang_of(request)
        rules = self.tablet.rules()
        q = request.query_params
        found = _catalogue(rules, q.get("class", ""), q.get("q", ""), lang)
        chosen = q.get("item", "")
        if chosen and chosen not in {i["code"] for i in found}:
            # The item already picked stays in the list while the worker searches on.
            found = [i for i in _catalogue(rules, "", "", lang) if i["code"] == chosen] + found
        return self.render(request, "_items.html", items=found, values={"item": chosen})

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
        found = await in_thread(fieldrecords.near_duplicates, self.tablet, q.get("item", ""), q.get("grid_id", ""),
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
                "states": states, "deadline": aware(row.deadline) if row.deadline else None}

    async def cases(self, request: Request):
        """Every open case of the worker's grids (the home page shows the first few), overdue first."""
        if (unready := self._unready(request)) is not None:
            return unready
        with self.tablet.store.read() as conn:
            grid_ids = self.tablet.grid_ids(conn, self.tablet.worker(conn))
            found, total = self.tablet.open_cases(conn, grid_ids, self.tablet.rules(conn), limit=CASE_LIST_MAX)
            zone = self.tablet.zone(conn)
        return self.render(request, "cases.html", cases=found, total=total, zone=zone)

    async def case(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        found = await in_thread(self._case, request.path_params["case_id"])
        if found is None:
            raise HTTPException(404)
        return self.render(request, "case.html", case=found, errors={}, general=[], zone=self._zone(),
                           flash=request.query_params.get("flash", ""), evidence_name=fieldrecords.evidence_name)

    async def move(self, request: Request):
        if (unready := self._unready(request)) is not None:
            return unready
        lang = lang_of(request)
        case_id = request.path_params["case_id"]
        data = await self.form(request)
        signature = await uploaded_photos(data, "signature")
        satisfied = {"yes": True, "no": False}.get(str(data.get("satisfied") or ""))
        given = MoveInput(move=str(data.get("move") or ""), note=str(data.get("note") or ""),
                          onsite=data.get("onsite") == "yes", satisfied=satisfied,
                          photos=await uploaded_photos(data, "photos"), signature=signature[0] if signature else None)
        try:
            status, proposal = await in_thread(fieldrecords.move_case, self.tablet, case_id, given, lang)
        except (FormProblems, LeaseExpired, WanggeError) as problems:
            found = await in_thread(self._case, case_id)
            if found is None:
                raise HTTPException(404) from None
            errors, general = split_problems(problems)
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
        return Response(await in_thread(self.tablet.photos.read, sha), media_type=row.media_type,
                        headers={"cache-control": "private, max-age=3600"})


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
