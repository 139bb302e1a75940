"""What the office console shows, read from a master store: the case queue and a case's page.

Every function takes an open connection, the installed ruleset and the
account looking, and returns plain data for a template or a command to
render. An account sees only the cases of its grid subtree (`scope_of`);
a case outside it is reported as not found, never shown. Times are turned
into the ruleset's zone here, once, so every page labels them alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Mapping, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.engine import Connection

from wangge.app.accounts import Account
from wangge.core import casework
from wangge.core.errors import RoutingError
from wangge.core.lifecycle import Lifecycle
from wangge.core.models import Attachment, Case, CaseEvent, Device, GridCell, Worker
from wangge.core.routing import CaseView, Router
from wangge.core.ruleset import Ruleset
from wangge.core.store import get_meta

_cases, _grids, _events = Case.__table__, GridCell.__table__, CaseEvent.__table__
_workers, _devices, _attachments = Worker.__table__, Device.__table__, Attachment.__table__
PAGE_SIZE = 50
#: A case whose deadline falls within this window is "due soon".
DUE_SOON = timedelta(hours=24)


class NotVisible(RoutingError):
    """No such case, or one outside the account's grids: the two read alike, by design."""


_PARSED: list = [None, None]  # (the installed JSON, its ruleset): one version runs at a time


def current_ruleset(conn: Connection) -> Ruleset:
    """The installed ruleset, parsed once per version (a page reads it on every request; comparing
    the stored text is far cheaper than parsing it)."""
    text = get_meta(conn, "ruleset") or get_meta(conn, "sync.ruleset")
    if not text:
        return casework.installed_ruleset(conn)  # raises, saying how to install one
    cached_text, cached = _PARSED
    if text != cached_text:
        cached = casework.installed_ruleset(conn)
        _PARSED[:] = [text, cached]
    return cached


def zone_of(ruleset: Ruleset) -> ZoneInfo:
    return ZoneInfo(ruleset.settings.timezone)


def local(moment: Optional[datetime], ruleset: Ruleset) -> Optional[datetime]:
    """A stored time in the ruleset's zone (SQLite hands times back without their zone: UTC)."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(zone_of(ruleset))


def settled_states(ruleset: Ruleset) -> frozenset[str]:
    machine = Lifecycle.of(ruleset)
    return machine.final | machine.closed


def scope_of(account: Account):
    """The SQL condition on ``grid_cell`` an account's cases must meet (None: the whole store)."""
    if not account.grid_code:
        return None
    return or_(_grids.c.code == account.grid_code, _grids.c.code.startswith(account.grid_code + ".", autoescape=True))


def department_of(account: Account):
    """The SQL condition on ``cases`` a department's account must meet (None: no such limit).

    Its cases are those routed to the department now, and those it moved
    itself (a repair it finished and sent back for review stays in its view).
    """
    if not account.department:
        return None
    acted = exists(select(_events.c.id).where(_events.c.case_id == _cases.c.id,
                                              _events.c.actor_id == account.worker_id))
    return or_(_cases.c.owner == f"department {account.department}", acted)


# -- the queue ------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters as a person set them; empty means "any"."""

    status: str = ""
    grid: str = ""
    case_class: str = ""
    item: str = ""
    channel: str = ""
    owner: str = ""
    overdue: bool = False
    due_soon: bool = False
    page: int = 1

    def query(self, **changes) -> dict:
        """The filter as URL parameters, with ``changes``; empty ones left out."""
        values = {"status": self.status, "grid": self.grid, "class": self.case_class, "item": self.item,
                  "channel": self.channel, "owner": self.owner, "overdue": "1" if self.overdue else "",
                  "due_soon": "1" if self.due_soon else "", "page": str(self.page) if self.page > 1 else ""}
        values.update({("class" if k == "case_class" else k): v for k, v in changes.items()})
        return {k: v for k, v in values.items() if v not in ("", None)}


def parse_filter(params: Mapping[str, str], ruleset: Ruleset) -> tuple[QueueFilter, list[str]]:
    """The filter the parameters ask for, and a message for each value that makes no sense
    (that filter is then left out, so the page still shows something)."""
    problems: list[str] = []
    states = [s.code for s in ruleset.lifecycle.states] if ruleset.lifecycle else []
    classes = [c.code for c in ruleset.catalogue]
    channels = [c.code for c in ruleset.channels]

    def pick(name: str, allowed: list[str], what: str) -> str:
        value = (params.get(name) or "").strip()
        if value and value not in allowed:
            problems.append(f"unknown {what} {value!r}: expected one of {', '.join(allowed[:12])}"
                            + (" …" if len(allowed) > 12 else ""))
            return ""
        return value

    page_text = (params.get("page") or "1").strip()
    # isdigit alone takes "¹" and other digits int() refuses: only ASCII digits make a page number.
    page = int(page_text) if page_text.isascii() and page_text.isdigit() and 0 < int(page_text) < 10**6 else 0
    if page == 0:
        problems.append(f"page {page_text!r} is not a page number: expected 1, 2, 3 …")
    item = pick("item", list(ruleset.items), "item")
    return QueueFilter(
        status=pick("status", states, "status"), grid=(params.get("grid") or "").strip()[:100],
        case_class=pick("class", classes, "class"), item=item, channel=pick("channel", channels, "channel"),
        owner=(params.get("owner") or "").strip()[:100], overdue=params.get("overdue") in ("1", "on", "true"),
        due_soon=params.get("due_soon") in ("1", "on", "true"), page=page or 1,
    ), problems


@dataclass(frozen=True)
class QueueRow:
    id: str
    number: str
    item: str
    item_label: str
    grid_code: str
    grid_name: str
    channel: str
    status: str
    owner: str
    deadline: Optional[datetime]
    reported_at: Optional[datetime]
    overdue: bool
    due_soon: bool


@dataclass(frozen=True)
class Queue:
    rows: list[QueueRow]
    counts: dict[str, int]  # per status, under every filter but the status one
    total: int  # rows under every filter
    page: int
    pages: int


def _grid_ids(conn: Connection, *codes: str) -> Optional[list[str]]:
    """Ids of the cells at or below every one of ``codes`` (an intersection); None if no code is
    given. A street has at most a few thousand cells, so the list is small, and the case tables
    are then read without a join."""
    codes = tuple(c for c in codes if c)
    if not codes:
        return None
    query = select(_grids.c.id)
    for code in codes:
        query = query.where(or_(_grids.c.code == code, _grids.c.code.startswith(code + ".", autoescape=True)))
    return list(conn.execute(query).scalars())


def _conditions(conn: Connection, ruleset: Ruleset, account: Account, f: QueueFilter, now: datetime) -> list:
    conds = [_cases.c.deleted.is_(None)]
    department = department_of(account)
    if department is not None:
        conds.append(department)
    grids = _grid_ids(conn, account.grid_code or "", f.grid)
    if grids is not None:
        conds.append(_cases.c.grid_id.in_(grids))
    if f.item:
        conds.append(_cases.c.item_code == f.item)
    elif f.case_class:
        codes = [i.code for c in ruleset.catalogue if c.code == f.case_class for i in c.items]
        conds.append(_cases.c.item_code.in_(codes))
    if f.channel:
        conds.append(_cases.c.channel == f.channel)
    if f.owner:
        conds.append(_cases.c.owner.contains(f.owner, autoescape=True))
    if f.overdue or f.due_soon:
        open_ = _cases.c.status.not_in(settled_states(ruleset))
        windows = []
        if f.overdue:
            windows.append(_cases.c.deadline < now)
        if f.due_soon:
            windows.append(and_(_cases.c.deadline >= now, _cases.c.deadline < now + DUE_SOON))
        conds += [open_, or_(*windows)]
    return conds


def queue(conn: Connection, ruleset: Ruleset, account: Account, f: QueueFilter, now: datetime,
          lang: str = "zh", page_size: int = PAGE_SIZE) -> Queue:
    """One page of the cases the account sees under filter ``f``, soonest deadline first and those
    without a deadline last."""
    conds = _conditions(conn, ruleset, account, f, now)
    counted = conn.execute(select(_cases.c.status, func.count(), func.count(_cases.c.deadline)).where(*conds)
                           .group_by(_cases.c.status)).all()
    counts = {status: n for status, n, _ in counted}
    if f.status:
        conds.append(_cases.c.status == f.status)
    total = counts.get(f.status, 0) if f.status else sum(counts.values())
    dated = sum(d for status, _, d in counted if not f.status or status == f.status)
    pages = max(1, -(-total // page_size))
    page = min(f.page, pages)
    offset = (page - 1) * page_size
    # Two reads rather than one ORDER BY ... NULLS LAST, which no index serves (SQLite sorts NULL
    # first): the dated cases by the deadline index, then those without a deadline.
    found = _page_rows(conn, conds + [_cases.c.deadline.is_not(None)], (_cases.c.deadline, _cases.c.number),
                       page_size, offset) if offset < dated else []
    if len(found) < page_size and total > dated:
        found += _page_rows(conn, conds + [_cases.c.deadline.is_(None)], (_cases.c.number,),
                            page_size - len(found), max(0, offset - dated))
    settled = settled_states(ruleset)
    rows = []
    for r in found:
        deadline = local(r.deadline, ruleset)
        open_ = r.status not in settled
        rows.append(QueueRow(
            r.id, r.number, r.item_code, item_label(ruleset, r.item_code, lang), r.code, r.name, r.channel,
            r.status, r.owner, deadline, local(r.reported_at, ruleset),
            overdue=open_ and deadline is not None and deadline < now,
            due_soon=open_ and deadline is not None and now <= deadline < now + DUE_SOON))
    return Queue(rows, counts, total, page, pages)


def _page_rows(conn: Connection, conds: list, order: tuple, limit: int, offset: int) -> list:
    # The page's ids first, read from the indexes; the grid's code and name only for those rows.
    picked = select(_cases.c.id).where(*conds).order_by(*order).limit(limit).offset(offset).subquery()
    return conn.execute(
        select(_cases.c.id, _cases.c.number, _cases.c.item_code, _cases.c.channel, _cases.c.status, _cases.c.owner,
               _cases.c.deadline, _cases.c.reported_at, _grids.c.code, _grids.c.name)
        .select_from(picked.join(_cases, _cases.c.id == picked.c.id).join(_grids, _grids.c.id == _cases.c.grid_id))
        .order_by(*order)).all()


# -- labels -----------------------------------------------------------------------


def item_label(ruleset: Ruleset, code: str, lang: str) -> str:
    item = ruleset.items.get(code)
    return item.label.text(lang) if item is not None and item.label.text(lang) else code


def state_label(ruleset: Ruleset, code: str, lang: str) -> str:
    for state in (ruleset.lifecycle.states if ruleset.lifecycle else ()):
        if state.code == code:
            return state.label.text(lang) or code
    return code


def owner_label(ruleset: Ruleset, owner: str, lang: str) -> str:
    """A case's owner as routing wrote it ("department 电信", "网格员 at 网格 T.03"), in words of ``lang``."""
    found = labels(ruleset, lang)
    kind, _, rest = owner.partition(" ")
    if kind == "department" and rest:
        return found["department"].get(rest, rest)
    role, at, place = owner.partition(" at ")
    if at:
        level, _, grid = place.partition(" ")
        return f"{found['role'].get(role, role)} · {found['level'].get(level, level)} {grid}".strip()
    return owner


_LABELS: dict[tuple[str, str], dict] = {}


def labels(ruleset: Ruleset, lang: str) -> dict[str, dict[str, str]]:
    """Every code a page names, with its label in ``lang``: states, moves, classes, channels, roles.
    Made once per ruleset version and language: every page asks."""
    key = (ruleset.version, lang)
    if key not in _LABELS:
        if len(_LABELS) > 8:
            _LABELS.clear()
        _LABELS[key] = _labels(ruleset, lang)
    return _LABELS[key]


def _labels(ruleset: Ruleset, lang: str) -> dict[str, dict[str, str]]:
    life = ruleset.lifecycle
    return {
        "state": {s.code: s.label.text(lang) or s.code for s in (life.states if life else ())},
        "move": {t.code: t.label.text(lang) or t.code for t in (life.transitions if life else ())},
        "class": {c.code: c.label.text(lang) or c.code for c in ruleset.catalogue},
        "channel": {c.code: c.label.text(lang) or c.code for c in ruleset.channels},
        "role": {r.code: r.label.text(lang) or r.code for r in ruleset.roles},
        "level": {lv.code: lv.label.text(lang) or lv.code for lv in ruleset.levels},
        "department": {d.code: d.label.text(lang) or d.code for d in ruleset.departments},
        "indicator": {i.code: i.label.text(lang) or i.code for f in ruleset.formulas for i in f.indicators},
        "formula": {f.code: f.label.text(lang) or f.code for f in ruleset.formulas},
        "severity": {v.code: v.label.text(lang) or v.code for v in ruleset.severities},
    }


# -- one case ---------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: Optional[datetime]
    move: str
    from_status: str
    to_status: str
    actor: str  # the worker's name (the account acting at the office is that worker)
    role: str
    via: str  # "office" or the tablet's name
    device_id: str
    note: str  # what the actor wrote, without the evidence and proposal marks
    stale: bool
    proposal: bool
    evidence: tuple[str, ...] = ()  # evidence codes the move came with


def _note_parts(note: str) -> tuple[str, tuple[str, ...], bool]:
    """A case event's note as `casework.move_case` writes it ("evidence=a,b; text; proposal"), apart."""
    text, evidence, proposal = [], (), False
    for part in (note or "").split("; "):
        if part.startswith("evidence="):
            evidence = tuple(e for e in part.removeprefix("evidence=").split(",") if e)
        elif part == "proposal":
            proposal = True
        elif part:
            text.append(part)
    return "; ".join(text), evidence, proposal


@dataclass(frozen=True)
class MoveOption:
    code: str
    target: str
    needs: tuple[str, ...]  # evidence codes the rule file requires for this move from here
    from_reporter: bool  # only the reporting worker may make it
    reporter_ok: bool  # whether this account is that worker


@dataclass(frozen=True)
class Photo:
    sha256: str
    name: str
    media_type: str
    size: int


@dataclass
class CaseDetail:
    id: str
    number: str
    description: str
    status: str
    item: str
    item_label: str
    case_class: str
    channel: str
    severity: str
    owner: str
    grid_path: list[tuple[str, str, str]]  # (level, code, name), top first
    reporter: str
    reported_at: Optional[datetime]
    deadline: Optional[datetime]
    overdue: bool
    escalation_level: str
    escalation_reason: str
    ruleset_version: str
    timeline: list[TimelineEntry] = field(default_factory=list)
    photos: list[Photo] = field(default_factory=list)
    routing: list[str] = field(default_factory=list)
    stages: list[tuple[str, datetime]] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    moves: list[MoveOption] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    zone: str = ""


def find_case(conn: Connection, account: Account, ref: str):
    """The case row ``ref`` (id or number) names, if the account may see it. Raises `NotVisible`."""
    query = (select(_cases, _grids.c.code.label("grid_code"), _workers.c.name.label("reporter_name"))
             .select_from(_cases.join(_grids, _grids.c.id == _cases.c.grid_id)
                          .outerjoin(_workers, _workers.c.id == _cases.c.reporter_id))
             .where(or_(_cases.c.id == ref, _cases.c.number == ref), _cases.c.deleted.is_(None)))
    for limit in (scope_of(account), department_of(account)):
        if limit is not None:
            query = query.where(limit)
    row = conn.execute(query).first()
    if row is None:
        raise NotVisible(f"no case {ref!r} among the cases account {account.name} may see"
                         + (f" (grid {account.grid_code} and below)" if account.grid_code else "")
                         + (f" (department {account.department})" if account.department else ""))
    return row


def case_detail(conn: Connection, ruleset: Ruleset, account: Account, ref: str, now: datetime,
                lang: str = "zh") -> CaseDetail:
    """Everything the case page shows. Raises `NotVisible`."""
    row = find_case(conn, account, ref)
    named = _named_path(conn, row.grid_id, row.grid_code)
    path = tuple((level, code) for level, code, _ in named)
    fields = row.fields or {}
    deadline = local(row.deadline, ruleset)
    item = ruleset.items.get(row.item_code)
    detail = CaseDetail(
        row.id, row.number, row.description, row.status, row.item_code, item_label(ruleset, row.item_code, lang),
        ruleset.item_class[row.item_code].code if row.item_code in ruleset.item_class else "", row.channel,
        row.severity, row.owner, named, row.reporter_name or row.reporter_id or "", local(row.reported_at, ruleset),
        deadline,
        overdue=row.status not in settled_states(ruleset) and deadline is not None and deadline < now,
        escalation_level=row.escalation_level, escalation_reason=str(fields.get("escalation_reason") or ""),
        ruleset_version=row.ruleset_version, zone=ruleset.settings.timezone,
        steps=[s.text(lang) for s in (item.steps if item else ())],
    )
    detail.timeline = _timeline(conn, row.id, ruleset)
    detail.photos = [Photo(p.sha256, p.name, p.media_type, p.size) for p in conn.execute(
        select(_attachments).where(_attachments.c.case_id == row.id, _attachments.c.deleted.is_(None))
        .order_by(_attachments.c.hlc))]
    _routing(detail, row, path, ruleset)
    detail.moves = move_options(ruleset, account, row)
    return detail


def _named_path(conn: Connection, grid_id: str, code: str) -> list[tuple[str, str, str]]:
    """(level, code, name) of the grid and the grids above it, top first, in one read: hierarchical
    codes name their ancestors ("T.03" is under "T"). Where a store's codes do not follow its tree,
    the tree is walked instead."""
    parts = code.split(".")
    prefixes = [".".join(parts[:n]) for n in range(1, len(parts) + 1)]
    rows = {r.id: r for r in conn.execute(select(_grids.c.id, _grids.c.level, _grids.c.code, _grids.c.name,
                                                 _grids.c.upper_id).where(_grids.c.code.in_(prefixes)))}
    chain, current = [], grid_id
    while current in rows and len(chain) <= len(rows):
        chain.append(rows[current])
        current = rows[current].upper_id
    if current is not None:
        walked = casework.grid_path(conn, grid_id)
        names = dict(conn.execute(select(_grids.c.code, _grids.c.name).where(
            _grids.c.code.in_([c for _, c in walked]))).all())
        return [(level, c, names.get(c, "")) for level, c in walked]
    return [(r.level, r.code, r.name) for r in reversed(chain)]


def _timeline(conn: Connection, case_id: str, ruleset: Ruleset) -> list[TimelineEntry]:
    master = get_meta(conn, "device_id") or ""
    query = (select(_events, _workers.c.name.label("worker"), _devices.c.name.label("device_name"))
             .select_from(_events.outerjoin(_workers, _workers.c.id == _events.c.actor_id)
                          .outerjoin(_devices, _devices.c.id == _events.c.device_id))
             .where(_events.c.case_id == case_id).order_by(_events.c.hlc))
    out = []
    for e in conn.execute(query):
        via = "office" if e.device_id in ("", master) else (e.device_name or e.device_id)
        text, evidence, proposal = _note_parts(e.note)
        out.append(TimelineEntry(local(e.at, ruleset), e.move, e.from_status, e.to_status, e.worker or e.actor_id or "",
                                 e.role, via, e.device_id, text, bool(e.stale), proposal, evidence))
    return out


def _routing(detail: CaseDetail, row, path, ruleset: Ruleset) -> None:
    """The routing decision, worked out again as `wangge explain` does, with times in the ruleset's zone."""
    view = CaseView(row.id, row.item_code, path, row.channel, local(row.reported_at, ruleset), row.status,
                    row.severity or None)
    try:
        decision = Router(ruleset).route(view)
    except RoutingError as exc:
        detail.routing = [f"cannot route under the installed ruleset: {exc}"]
        return
    detail.routing = list(decision.trace)
    if row.ruleset_version != ruleset.version:
        detail.routing.insert(0, f"routed under ruleset {row.ruleset_version[:12]}; "
                                 f"explained by ruleset {ruleset.version[:12]}")
    detail.stages = [(state, moment.astimezone(zone_of(ruleset))) for state, moment in decision.stages]
    detail.chain = [f"{s.level} {s.grid} · {s.department or s.role or '?'}"
                    + (f" ({s.within.amount:g} {s.within.unit.value})" if s.within else "") for s in decision.chain]


def move_options(ruleset: Ruleset, account: Account, row) -> list[MoveOption]:
    """The moves the account's role may make on the case now, each with the evidence it needs."""
    machine = Lifecycle.of(ruleset)
    callback = any(c.code == row.channel and c.callback for c in ruleset.channels)
    out = []
    for code, target in machine.allowed(row.status, account.role).items():
        rule = machine.moves[code]
        needs = list(rule.requires)
        if callback and target in machine.closed and "callback" not in needs:
            needs.append("callback")
        out.append(MoveOption(code, target, tuple(needs), rule.from_reporter,
                              not rule.from_reporter or account.worker_id == row.reporter_id))
    return out



def case_photo(conn: Connection, account: Account, ref: str, sha: str) -> str:
    """The media type of photo ``sha`` of a case the account may see. Raises `NotVisible`."""
    row = find_case(conn, account, ref)
    media = conn.execute(select(_attachments.c.media_type).where(
        _attachments.c.case_id == row.id, _attachments.c.sha256 == sha, _attachments.c.deleted.is_(None))).scalar()
    if media is None:
        raise NotVisible(f"case {row.number} has no photo {sha}")
    return media
