"""What a worker records on the tablet: cases, households, residents, visits, case moves, points.

Each use case checks a submission with the rule file's own validators
(`wangge.core.validators`, the ones the master runs before merging), then
writes it through change capture (`Store.write`, one transaction with its
ops), exactly as the office's API does. A refused submission raises
`FormProblems`, which carries one message per field (in the page's
language) and writes nothing, so the form comes back filled in.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import func, select

from wangge.app import households
from wangge.app.fieldforms import Form, FormField, Section, form_for, place_problems, read_form, required_word
from wangge.app.fieldtablet import FieldTablet, aware
from wangge.core import casework, duplicates, points
from wangge.core.capture import stored_json
from wangge.core.errors import PointsError, TransitionError, ValidationFailed, WanggeError
from wangge.core.lifecycle import EVIDENCE_NAMES, Lifecycle, closing_requires
from wangge.core.models import Building, Case, GridCell, Household, PointEntry, Resident
from wangge.core.ruleset import FieldSpec, FieldType, Label, Ruleset
from wangge.core.validators import RecordValidator, field_problems, validators
from wangge.sync.device.atrest import LeaseExpired

_cases, _households, _buildings = Case.__table__, Household.__table__, Building.__table__
_residents, _points, _grids = Resident.__table__, PointEntry.__table__, GridCell.__table__

#: Photos a worker attaches to one submission, and the size of each: a tablet camera's JPEG is 2-6 MB.
MAX_PHOTOS = 6
MAX_PHOTO_BYTES = 12 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif", "image/gif")

_WORDS = {
    "zh": {"lease": "平板已超过 {days} 天未同步,已锁定:请先同步,同步后即可继续记录",
           "nobody": "这台平板还不知道您是哪位网格员:请先同步一次", "norules": "还没有规则文件:请先同步一次",
           "grid": "请选择您负责的网格", "building": "该楼栋不在所选网格内", "household": "该住户不在所选网格内",
           "item": "请从事项目录中选择", "photo_type": "只能上传照片(JPEG、PNG 等)", "photo_big": "照片不能超过 {mb} MB",
           "photo_many": "一次最多 {n} 张照片", "missing": "还需要:{what}", "onsite": "请确认您已到现场",
           "move": "这个操作现在不能做:{why}", "name": "请填写姓名", "resident": "请选择居民",
           "rule": "请选择积分项目", "times": "次数应为 1 到 100 的整数", "reward": "请选择兑换物品",
           "not_yours": "这个案件需要上报人本人现场确认"},
    "en": {"lease": "this tablet has not synced for over {days} days and is locked: sync first, then record again",
           "nobody": "this tablet does not know its worker yet: sync once first", "norules": "no rule file yet: sync once first",
           "grid": "choose one of your grids", "building": "that building is not in the chosen grid",
           "household": "that household is not in the chosen grid", "item": "choose an item from the catalogue",
           "photo_type": "only photos (JPEG, PNG, ...) can be attached", "photo_big": "a photo may be at most {mb} MB",
           "photo_many": "at most {n} photos at once", "missing": "still needed: {what}",
           "onsite": "confirm that you are on site", "move": "this move cannot be made now: {why}",
           "name": "enter the name", "resident": "choose a resident", "rule": "choose what the points are for",
           "times": "times must be a whole number from 1 to 100", "reward": "choose a reward",
           "not_yours": "this case needs the on-site confirmation of the worker who reported it"},
}
_EVIDENCE = {"zh": {"photo": "现场照片", "onsite_confirmation": "现场确认", "callback": "回访结果", "signature": "签名"},
             "en": {"photo": "a photo", "onsite_confirmation": "on-site confirmation", "callback": "the callback result",
                    "signature": "a signature"}}


class FormProblems(ValidationFailed):
    """A submission refused: ``fields`` maps a field to its message, ``general`` holds the rest."""

    def __init__(self, fields: dict[str, str], general: list[str] = ()):
        self.fields, self.general = dict(fields), list(general)
        super().__init__("; ".join([*self.fields.values(), *self.general]))
        self.problems = [*self.fields.values(), *self.general]


@dataclass(frozen=True)
class Photo:
    """A photo or drawn signature as uploaded: bytes, media type, file name."""

    data: bytes
    media_type: str
    name: str = ""

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def words(lang: str) -> dict:
    return _WORDS.get(lang, _WORDS["zh"])


def evidence_name(code: str, lang: str) -> str:
    return _EVIDENCE.get(lang, _EVIDENCE["zh"]).get(code) or EVIDENCE_NAMES.get(code, code)


@dataclass
class Context:
    """What every write checks first: the ruleset, the worker and the grids they may record in."""

    rules: Ruleset
    worker: dict
    grids: list[str]


def context(tablet: FieldTablet, conn, lang: str) -> Context:
    """Raises `LeaseExpired` past the lease, `WanggeError` before the first sync."""
    said = words(lang)
    lease = tablet.lease(conn)
    if lease.expired:
        raise LeaseExpired(said["lease"].format(days=lease.lease_days))
    rules = tablet.rules(conn)
    if rules is None:
        raise WanggeError(said["norules"])
    worker = tablet.worker(conn)
    if worker is None:
        raise WanggeError(said["nobody"])
    return Context(rules, worker, tablet.grid_ids(conn, worker))


def check_photos(photos: list[Photo], lang: str, name: str = "photos") -> dict[str, str]:
    said = words(lang)
    if len(photos) > MAX_PHOTOS:
        return {name: said["photo_many"].format(n=MAX_PHOTOS)}
    for photo in photos:
        if photo.media_type not in IMAGE_TYPES:
            return {name: said["photo_type"]}
        if len(photo.data) > MAX_PHOTO_BYTES:
            return {name: said["photo_big"].format(mb=MAX_PHOTO_BYTES // 2**20)}
    return {}


def _attach(tablet: FieldTablet, rec, photos: list[Photo], grid_id: str, **owner) -> list[str]:
    """Seal each photo into the tablet's photo store and record its attachment row (synced as an op)."""
    shas = []
    for photo in photos:
        sha = tablet.photos.put(photo.data)
        rec.insert("attachment", {"sha256": sha, "size": len(photo.data), "media_type": photo.media_type,
                                  "grid_id": grid_id, "name": photo.name or "", **owner})
        shas.append(sha)
    return shas


# -- locations --------------------------------------------------------------------------------

def check_place(conn, ctx: Context, lang: str, grid_id: str, building_id: Optional[str] = None,
                household_id: Optional[str] = None) -> dict[str, str]:
    """Problems with a grid, building and household chosen in a form (each must be the worker's)."""
    said = words(lang)
    if grid_id not in ctx.grids:
        return {"grid": said["grid"]}
    found = {}
    if building_id and conn.execute(select(_buildings.c.grid_id).where(_buildings.c.id == building_id)).scalar() != grid_id:
        found["building"] = said["building"]
    if household_id and conn.execute(select(_households.c.grid_id).where(
            _households.c.id == household_id)).scalar() != grid_id:
        found["household"] = said["household"]
    return found


# -- cases ------------------------------------------------------------------------------------

@dataclass
class CaseReport:
    item: str = ""
    channel: str = ""
    description: str = ""
    grid_id: str = ""
    building_id: str = ""
    household_id: str = ""
    photos: list[Photo] = field(default_factory=list)
    submitted: dict = field(default_factory=dict)  # the case register's own fields, as sent


@dataclass(frozen=True)
class Reported:
    case_id: str
    number: str
    status: str
    submitted_move: str
    duplicates: tuple[tuple[str, str], ...]


def report_case(tablet: FieldTablet, report: CaseReport, lang: str = "zh") -> Reported:
    """Validate and record a case with its photos; then make the worker's first move if the rule file
    gives them one that needs nothing more (TEDA: 上报 with the photo). Raises `FormProblems`."""
    with tablet.store.read() as conn:
        ctx = context(tablet, conn, lang)
        problems = check_place(conn, ctx, lang, report.grid_id, report.building_id or None, report.household_id or None)
    form = form_for(ctx.rules, "case")
    reading = read_form(form, report.submitted, lang)
    problems.update(reading.errors)
    problems.update(check_photos(report.photos, lang))
    checker = validators(ctx.rules, lang)["case"]
    shas = [p.sha for p in report.photos]
    try:
        checker.validate({"item": report.item, "channel": report.channel or None,
                          "description": report.description, "photos": shas, **reading.values})
    except ValidationFailed as failed:
        placed, loose = place_problems(failed.problems, {**checker.names, "photos": _photos_name(lang)})
        problems = {**placed, **problems}
        if loose:
            raise FormProblems(problems, loose) from None
    if report.item not in ctx.rules.items:
        problems["item"] = words(lang)["item"]
    if problems:
        raise FormProblems(problems)
    at = tablet.now()
    with tablet.store.write(actor=ctx.worker["id"]) as rec:
        reported = casework.report_case(
            rec, ctx.rules, item=report.item, grid_id=report.grid_id, channel=report.channel,
            reporter_id=ctx.worker["id"], at=at, description=report.description, photos=shas,
            building_id=report.building_id or None, household_id=report.household_id or None,
            fields=reading.values or None)
        _attach(tablet, rec, report.photos, report.grid_id, case_id=reported.case_id)
        move, status = _first_move(rec, ctx, reported.case_id, at, evidence=["photo"] if shas else [])
    return Reported(reported.case_id, reported.number, status, move, reported.duplicates)


def _photos_name(lang: str) -> str:
    return "照片(photos)" if lang == "zh" else "Photos (photos)"


def _first_move(rec, ctx: Context, case_id: str, at: datetime, evidence: list[str]) -> tuple[str, str]:
    life = Lifecycle.of(ctx.rules)
    # The move that takes a new case into the workflow: not one that voids or closes it.
    ready = [t for t in ctx.rules.lifecycle.transitions
             if life.initial in t.sources and ctx.worker["role"] in t.roles and not t.office
             and t.target not in life.final | life.closed and set(t.requires) <= set(evidence)]
    if len(ready) != 1:
        return "", life.initial
    status = casework.move_case(rec, ctx.rules, case_id, ready[0].code, role=ctx.worker["role"],
                                actor_id=ctx.worker["id"], at=at, evidence=evidence, on_device=True)
    return ready[0].code, status


def near_duplicates(tablet: FieldTablet, item: str, grid_id: str, building_id: str = "",
                    household_id: str = "") -> list[dict]:
    """Open cases like the one being reported (same item, same place, within the rule file's window)."""
    with tablet.store.read() as conn:
        rules = tablet.rules(conn)
        if rules is None or item not in rules.items or not grid_id:
            return []
        life = Lifecycle.of(rules)
        at = tablet.now()
        window = rules.settings.duplicate_window_hours
        rows = conn.execute(select(_cases).where(
            _cases.c.item_code == item, _cases.c.deleted.is_(None),
            _cases.c.status.not_in(sorted(life.final | life.closed)))).all()
        reports = [duplicates.Report(r.id, r.item_code, r.grid_id, aware(r.reported_at), r.building_id, r.household_id)
                   for r in rows if abs(aware(r.reported_at) - at) <= timedelta(hours=window)]
        new = duplicates.Report("new", item, grid_id, at, building_id or None, household_id or None)
        numbers = {r.id: r for r in rows}
        return [{"id": old.id, "number": numbers[old.id].number, "why": why,
                 "description": numbers[old.id].description}
                for old, why in duplicates.likely_duplicates(new, reports, window)]


# -- case moves -------------------------------------------------------------------------------

def moves_for(rules: Ruleset, status: str, role: str, channel: str = "") -> list[dict]:
    """The moves ``role`` may make from ``status``, each with the evidence it needs (a closing move of a
    case from a channel that promises a callback needs the callback too); office moves are proposals."""
    if rules.lifecycle is None:
        return []
    life = Lifecycle.of(rules)
    closing = closing_requires(rules, channel)
    out = []
    for code in life.allowed(status, role):
        rule = life.moves[code]
        needs = list(rule.requires) + [n for n in closing if life.is_closed(rule.target) and n not in rule.requires]
        out.append({"code": code, "label": rule.label, "target": rule.target, "proposal": rule.office,
                    "requires": needs, "from_reporter": rule.from_reporter})
    return out


@dataclass
class MoveInput:
    move: str
    note: str = ""
    onsite: bool = False
    satisfied: Optional[bool] = None  # the callback's (or confirmation's) answer
    photos: list[Photo] = field(default_factory=list)
    signature: Optional[Photo] = None


def move_case(tablet: FieldTablet, case_id: str, given: MoveInput, lang: str = "zh") -> tuple[str, bool]:
    """Make a lifecycle move on a case as the tablet's worker; return (status, sent as a proposal).

    Evidence comes from the form: a photo, a drawn signature, the on-site
    box, the callback answer. Raises `FormProblems` naming what is missing.
    """
    said = words(lang)
    with tablet.store.read() as conn:
        ctx = context(tablet, conn, lang)
        case = conn.execute(select(_cases.c.grid_id, _cases.c.status, _cases.c.channel)
                            .where(_cases.c.id == case_id)).first()
    if case is None or case.grid_id not in ctx.grids:
        raise FormProblems({}, [said["move"].format(why=case_id)])
    problems = check_photos(given.photos, lang)
    if given.signature is not None and given.signature.media_type != "image/png":
        problems["signature"] = said["photo_type"]
    evidence = []
    if given.photos:
        evidence.append("photo")
    if given.signature is not None:
        evidence.append("signature")
    if given.onsite and (given.photos or given.signature is not None):
        evidence.append("onsite_confirmation")
    if given.satisfied is not None:
        evidence.append("callback")
    rule = next((m for m in moves_for(ctx.rules, case.status, ctx.worker["role"], case.channel)
                 if m["code"] == given.move), None)
    if rule is None:
        raise FormProblems(problems, [said["move"].format(why=f"{given.move} / {case.status}")])
    if "onsite_confirmation" in rule["requires"] and not given.onsite:
        problems["onsite"] = said["onsite"]
    if problems:
        raise FormProblems(problems)
    with tablet.store.write(actor=ctx.worker["id"]) as rec:
        try:
            status = casework.move_case(rec, ctx.rules, case_id, given.move, role=ctx.worker["role"],
                                        actor_id=ctx.worker["id"], at=tablet.now(), evidence=evidence,
                                        on_device=True, note=given.note.strip(),
                                        satisfied=given.satisfied)
        except TransitionError as refused:
            raise _move_problems(refused, lang) from None
        owner = {"case_id": case_id}
        _attach(tablet, rec, given.photos, case.grid_id, **owner)
        if given.signature is not None:
            _attach(tablet, rec, [given.signature], case.grid_id, **owner)
    return status, bool(rule["proposal"])


def _move_problems(refused: TransitionError, lang: str) -> FormProblems:
    said = words(lang)
    if refused.reason == "missing_evidence":
        what = "、".join(evidence_name(m, lang) for m in refused.missing) or str(refused)
        return FormProblems({"evidence": said["missing"].format(what=what)})
    if refused.reason == "not_reporter":
        return FormProblems({}, [said["not_yours"]])
    return FormProblems({}, [said["move"].format(why=refused)])


# -- households, residents and visits ---------------------------------------------------------

def household_values(tablet: FieldTablet, household_id: str) -> Optional[dict]:
    with tablet.store.read() as conn:
        row = conn.execute(select(_households).where(_households.c.id == household_id,
                                                     _households.c.deleted.is_(None))).first()
    if row is None:
        return None
    return {"id": row.id, "grid_id": row.grid_id, "building_id": row.building_id or "", "address": row.address,
            **(stored_json(row.fields) or {})}


def save_household(tablet: FieldTablet, household_id: Optional[str], submitted, lang: str = "zh") -> str:
    """Create (``household_id`` None) or edit a household from a submitted card; return its id.

    An edit writes only the fields that changed, so each carries its own
    stamp and merges field by field. Raises `FormProblems`.
    """
    with tablet.store.read() as conn:
        ctx = context(tablet, conn, lang)
        grid_id = str(submitted.get("grid_id") or "")
        building_id = str(submitted.get("building_id") or "")
        problems = check_place(conn, ctx, lang, grid_id, building_id or None)
    before = household_values(tablet, household_id) if household_id else {}
    if household_id and before is None:
        raise FormProblems({}, [words(lang)["household"]])
    form = form_for(ctx.rules, "household")
    reading = read_form(form, submitted, lang)
    problems.update(reading.errors)
    standard = {"grid_id": grid_id, "building_id": building_id or None,
                "address": str(submitted.get("address") or "").strip()}
    if household_id:
        changes = {f.code: reading.values.get(f.code) for f in form.fields
                   if reading.values.get(f.code) != before.get(f.code)
                   and not (f.code not in reading.values and before.get(f.code) in (None, "", []))
                   and f.code not in reading.errors}
        was = {"grid_id": before["grid_id"], "building_id": before.get("building_id") or None,
               "address": before.get("address") or ""}
        changes.update({k: v for k, v in standard.items() if v != was[k]})
    else:
        changes = {**standard, **reading.values}
    names = validators(ctx.rules, lang)["household"].names
    found = field_problems(ctx.rules, "household", changes if household_id else reading.values,
                           new=household_id is None, lang=lang)
    placed, loose = place_problems(found, names)
    problems = {**placed, **problems}
    if problems or loose:
        raise FormProblems(problems, loose)
    if household_id is None:
        own = {k: v for k, v in changes.items() if k not in standard}
        return households.record_household(tablet.store, ctx.rules, by=ctx.worker["id"], grid=grid_id,
                                           address=standard["address"], building=standard["building_id"], fields=own)
    if changes:
        households.edit_household(tablet.store, ctx.rules, household_id, changes, by=ctx.worker["id"])
    return household_id


RESIDENT_FIELDS = (
    FieldSpec(code="name", label=Label(zh="姓名", en="Name"), type=FieldType.text, required=True),
    FieldSpec(code="id_number", label=Label(zh="身份证号", en="ID number"), type=FieldType.id_number),
    FieldSpec(code="phone", label=Label(zh="电话", en="Phone"), type=FieldType.phone),
)


def resident_form(rules: Ruleset) -> Form:
    """The resident card: the fields every resident has, then the rule file's resident register."""
    register = form_for(rules, "resident")
    return Form("resident", (Section(Label(), tuple(FormField.of(s) for s in RESIDENT_FIELDS)), *register.sections))


def resident_values(tablet: FieldTablet, resident_id: str) -> Optional[dict]:
    """A live resident's card as its form shows it (with its household and grid), or None."""
    with tablet.store.read() as conn:
        row = conn.execute(select(_residents).where(_residents.c.id == resident_id,
                                                    _residents.c.deleted.is_(None))).first()
    if row is None:
        return None
    return {"id": row.id, "household_id": row.household_id, "grid_id": row.grid_id, "name": row.name,
            "id_number": row.id_number, "phone": row.phone, **(stored_json(row.fields) or {})}


def _read_resident(ctx: Context, submitted, lang: str):
    """The resident card's values, or `FormProblems` with each message beside its field."""
    reading = read_form(resident_form(ctx.rules), submitted, lang)
    checker = RecordValidator(ctx.rules, "resident", RESIDENT_FIELDS + ctx.rules.register("resident"), lang)
    _validated(checker, dict(reading.values), dict(reading.errors))
    return reading


def edit_resident(tablet: FieldTablet, resident_id: str, submitted, lang: str = "zh") -> str:
    """Save the fields of a resident's card that changed; return the resident's household. Raises `FormProblems`."""
    with tablet.store.read() as conn:
        ctx = context(tablet, conn, lang)
    before = resident_values(tablet, resident_id)
    if before is None or before["grid_id"] not in ctx.grids:
        raise FormProblems({}, [words(lang)["resident"]])
    reading = _read_resident(ctx, submitted, lang)
    changes = {}
    for f in resident_form(ctx.rules).fields:
        now, was = reading.values.get(f.code), before.get(f.code)
        if now != was and not (now is None and was in (None, "", [])):
            # A cleared typed column is empty text, as a new resident's is; a district field is removed.
            changes[f.code] = now if now is not None else ("" if f.code in ("id_number", "phone") else None)
    if changes:
        households.edit_resident(tablet.store, resident_id, changes, by=ctx.worker["id"])
    return before["household_id"]


def add_resident(tablet: FieldTablet, household_id: str, submitted, lang: str = "zh") -> str:
    """Record a resident of a household. Raises `FormProblems`."""
    with tablet.store.read() as conn:
        ctx = context(tablet, conn, lang)
        grid = conn.execute(select(_households.c.grid_id).where(_households.c.id == household_id)).scalar()
    if grid not in ctx.grids:
        raise FormProblems({}, [words(lang)["household"]])
    reading = _read_resident(ctx, submitted, lang)
    own = {k: v for k, v in reading.values.items() if k not in ("name", "id_number", "phone")}
    return households.record_resident(tablet.store, by=ctx.worker["id"], household=household_id,
                                      name=reading.values["name"], id_number=reading.values.get("id_number", ""),
                                      phone=reading.values.get("phone", ""), fields=own)


def minutes_field(rules: Ruleset) -> Optional[str]:
    """The visit register's own minutes field, if it has one (TEDA's 分钟): it stands for the visit's minutes."""
    for spec in rules.register("visit"):
        if spec.type is FieldType.integer and spec.label.en.strip().lower() == "minutes":
            return spec.code
    return None


def _validated(checker, values: dict, problems: dict) -> None:
    """Run the ruleset's ``checker`` over ``values``; raise `FormProblems` with its messages beside their
    fields (and ``problems`` the form itself found) if anything is wrong."""
    try:
        checker.validate(values)
    except ValidationFailed as failed:
        placed, loose = place_problems(failed.problems, checker.names)
        problems = {**placed, **problems}
        if loose:
            raise FormProblems(problems, loose) from None
    if problems:
        raise FormProblems(problems)


def visit_form(rules: Ruleset) -> Form:
    """The visit log: the minutes (unless the register has its own), then the rule file's visit register."""
    register = form_for(rules, "visit")
    if minutes_field(rules):
        return register
    # Every visit says how long it took: the monthly visit minutes count them (TEDA: 8 visits, 380 minutes).
    minutes = FormField("minutes", Label(zh="时长(分钟)", en="Minutes"), FieldType.integer, "number", required=True, min=1)
    if not register.sections:
        return Form("visit", (Section(Label(), (minutes,)),))
    # The minutes head the register's first section: a section of their own would be drawn as a second,
    # folded part with no title, hiding the register's fields (TEDA's required kind of visit) behind it.
    first, *rest = register.sections
    return Form("visit", (Section(first.title, (minutes, *first.fields)), *rest))


def log_visit(tablet: FieldTablet, household_id: str, submitted, photos: list[Photo] = (), lang: str = "zh") -> str:
    """Record a visit (or a social-work log entry) to a household. Raises `FormProblems`."""
    with tablet.store.read() as conn:
        ctx = context(tablet, conn, lang)
        grid = conn.execute(select(_households.c.grid_id).where(_households.c.id == household_id)).scalar()
    if grid not in ctx.grids:
        raise FormProblems({}, [words(lang)["household"]])
    form = visit_form(ctx.rules)
    reading = read_form(form, submitted, lang)
    problems = {**reading.errors, **check_photos(list(photos), lang)}
    own = minutes_field(ctx.rules)
    minutes = reading.values.get(own or "minutes")
    if own is None and minutes is None and "minutes" not in problems:
        problems["minutes"] = required_word(lang)  # the visit's own minutes: the register does not ask them
    checker = validators(ctx.rules, lang)["visit"]
    record = {k: v for k, v in reading.values.items() if k != "minutes"}
    _validated(checker, {"household": household_id, **({"minutes": minutes} if minutes is not None else {}), **record},
               problems)
    notes = str(submitted.get("notes") or "").strip()
    with tablet.store.write(actor=ctx.worker["id"]) as rec:
        visit_id = rec.insert("visit", {"household_id": household_id, "grid_id": grid, "worker_id": ctx.worker["id"],
                                        "at": tablet.now(), "minutes": int(minutes or 0), "notes": notes, **record})
        _attach(tablet, rec, list(photos), grid, visit_id=visit_id)
    return visit_id


# -- volunteer points -------------------------------------------------------------------------

def _entries(conn, resident_id: str) -> list[points.Entry]:
    rows = conn.execute(select(_points).where(_points.c.resident_id == resident_id, _points.c.deleted.is_(None))).all()
    return [points.Entry(r.resident_id, r.delta, r.reason, r.rule, aware(r.at)) for r in rows]


def balances(conn, grid_ids: list[str]) -> list[dict]:
    """Residents of the worker's grids with their point balance, highest first."""
    if not grid_ids:
        return []
    total = (select(_points.c.resident_id, func.sum(_points.c.delta).label("balance"))
             .where(_points.c.deleted.is_(None)).group_by(_points.c.resident_id).subquery())
    rows = conn.execute(select(_residents.c.id, _residents.c.name, _households.c.address, total.c.balance)
                        .select_from(_residents.join(_households, _households.c.id == _residents.c.household_id)
                                     .outerjoin(total, total.c.resident_id == _residents.c.id))
                        .where(_residents.c.grid_id.in_(grid_ids), _residents.c.deleted.is_(None))
                        .order_by(total.c.balance.desc().nulls_last(), _residents.c.name)).all()
    return [{"id": r.id, "name": r.name, "address": r.address, "balance": int(r.balance or 0)} for r in rows]


def record_points(tablet: FieldTablet, resident_id: str, *, earn: str = "", times: int = 1, reward: str = "",
                  lang: str = "zh") -> int:
    """Credit a resident by an earning rule or service (``earn``), or debit a ``reward``; return the new balance.

    Raises `FormProblems` (an unknown rule, a balance that would go negative).
    """
    said = words(lang)
    with tablet.store.read() as conn:
        ctx = context(tablet, conn, lang)
        grid = conn.execute(select(_residents.c.grid_id).where(_residents.c.id == resident_id)).scalar()
        entries = _entries(conn, resident_id)
    if grid not in ctx.grids:
        raise FormProblems({"resident": said["resident"]})
    at = tablet.now()
    services = {s.code: s for s in ctx.rules.services}
    try:
        if reward:
            entry = points.redeem(ctx.rules, entries, resident_id, reward, at)
        elif earn in services:
            if not 1 <= times <= 100:
                raise FormProblems({"times": said["times"]})
            service = services[earn]
            entry = points.Entry(resident_id, service.points * times, f"{service.label.text(lang)} ×{times}", earn, at)
        elif earn:
            if not 1 <= times <= 100:
                raise FormProblems({"times": said["times"]})
            entry = points.earn(ctx.rules, entries, resident_id, earn, at, times)
        else:
            raise FormProblems({"earn": said["rule"]})
    except PointsError as refused:
        raise FormProblems({"reward" if reward else "earn": str(refused)}) from None
    with tablet.store.write(actor=ctx.worker["id"]) as rec:
        rec.insert("point_entry", {"resident_id": resident_id, "grid_id": grid, "delta": entry.delta,
                                   "reason": entry.reason, "rule": entry.rule, "at": at})
    return points.balance([*entries, entry], resident_id)
