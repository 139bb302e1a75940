"""Casework on a store: the glue between the store's rows and the pure engines.

Every function here takes a `Recorder` (a write transaction whose changes are
ops) or a connection, reads rows, asks an engine, and writes what it
decided. The engines never see the database; this module never decides.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core import duplicates, meetings, periods, points, scoring, spotchecks, trace
from wangge.core.capture import Recorder
from wangge.core.errors import RoutingError, TransitionError, WanggeError
from wangge.core.escalation import Escalation, escalate
from wangge.core.lifecycle import Lifecycle, closing_requires
from wangge.core.models import Assignment, Case, CaseEvent, GridCell, Visit, Worker
from wangge.core.routing import CaseView, Decision, Router
from wangge.core.ruleset import Ruleset
from wangge.core.store import get_meta, set_meta
from wangge.core.validators import validators

_cases, _events, _grids = Case.__table__, CaseEvent.__table__, GridCell.__table__


def install_ruleset(conn: Connection, ruleset: Ruleset) -> None:
    """Make ``ruleset`` the one this store runs (kept as canonical JSON in the store)."""
    set_meta(conn, "ruleset", ruleset.canonical_json())


def installed_ruleset(conn: Connection) -> Ruleset:
    """The ruleset installed on this store, or the one sync delivered to a tablet.

    Raises `WanggeError` if there is none.
    """
    text = installed_json(conn)
    if not text:
        raise WanggeError("this store has no ruleset: give one with --rules FILE.wg")
    return Ruleset.from_json(text)


def installed_json(conn: Connection) -> Optional[str]:
    """The canonical JSON of the installed ruleset (or the one sync delivered), or None."""
    return get_meta(conn, "ruleset") or get_meta(conn, "sync.ruleset")


def grid_path(conn: Connection, grid_id: str) -> tuple[tuple[str, str], ...]:
    """(level, code) of the grid and every grid above it, top first."""
    path, seen = [], set()
    current: Optional[str] = grid_id
    while current is not None and current not in seen:
        seen.add(current)
        row = conn.execute(select(_grids.c.level, _grids.c.code, _grids.c.upper_id).where(_grids.c.id == current)).first()
        if row is None:
            raise RoutingError(f"no grid cell {current}: the case names a grid this store does not hold")
        path.append((row.level, row.code))
        current = row.upper_id
    return tuple(reversed(path))


@dataclass(frozen=True)
class Reported:
    case_id: str
    number: str
    decision: Decision
    duplicates: tuple[tuple[str, str], ...]  # (case number, why)


def report_case(
    rec: Recorder,
    ruleset: Ruleset,
    *,
    item: str,
    grid_id: str,
    channel: str,
    reporter_id: str,
    at: datetime,
    description: str = "",
    photos: Iterable[str] = (),
    severity: Optional[str] = None,
    building_id: Optional[str] = None,
    household_id: Optional[str] = None,
    fields: Optional[dict] = None,
) -> Reported:
    """Validate, route and record a new case; list its likely duplicates.

    Raises `ValidationFailed` (every problem at once) or `RoutingError`;
    nothing is written then.
    """
    photos = list(photos)
    validators(ruleset)["case"].validate(
        {"item": item, "channel": channel, "description": description, "photos": photos, **(fields or {})}
    )
    router = Router(ruleset)
    view = CaseView(id="new", item=item, grids=grid_path(rec.conn, grid_id), channel=channel, opened_at=at, severity=severity)
    decision = router.route(view)
    lifecycle = Lifecycle.of(ruleset)
    number = _next_number(rec.conn, at)
    case_id = rec.insert(
        "case",
        {
            "number": number, "item_code": item, "grid_id": grid_id, "building_id": building_id,
            "household_id": household_id, "channel": channel, "severity": severity or ruleset.items[item].severity or "",
            "status": lifecycle.initial, "description": description, "reporter_id": reporter_id,
            "owner": decision.owner, "ruleset_version": ruleset.version, "reported_at": at,
            "deadline": decision.deadline, "escalation_level": decision.chain[0].level if decision.chain else "",
            "fields": {**(fields or {}), "photos": photos, "escalation_step": 0},
        },
    )
    found = duplicates.likely_duplicates(
        duplicates.Report(case_id, item, grid_id, at, building_id, household_id),
        _recent_reports(rec.conn, item, at, ruleset.settings.duplicate_window_hours),
        ruleset.settings.duplicate_window_hours,
    )
    numbers = {row.id: row.number for row in _numbers(rec.conn, [r.id for r, _ in found])}
    return Reported(case_id, number, decision, tuple((numbers[r.id], why) for r, why in found))


def move_case(
    rec: Recorder,
    ruleset: Ruleset,
    case_id: str,
    move: str,
    *,
    role: str,
    actor_id: str,
    at: datetime,
    evidence: Iterable[str] = (),
    on_device: bool = False,
    note: str = "",
    satisfied: Optional[bool] = None,
    spot_check: Optional[float] = None,
) -> str:
    """Make a lifecycle move on a case: append its event and return the new status.

    The status column is derived from events (sync replays them in order),
    so it is written here without an op. A move reserved to the office made
    on a tablet is recorded as a proposal and leaves the status as it is.
    Raises `TransitionError` and writes nothing if the move is not allowed.
    """
    found = rec.conn.execute(select(_cases.c.status, _cases.c.channel, _cases.c.reporter_id)
                             .where(_cases.c.id == case_id)).first()
    if found is None:
        raise RoutingError(f"no case {case_id} in this store")
    status, channel, reporter = found
    rule = Lifecycle.of(ruleset).moves.get(move)
    if rule is not None and rule.evidence_by:
        evidence = _evidence_by(rec.conn, case_id, rule, role, evidence, status)
    event = Lifecycle.of(ruleset).move(status, move, role, evidence=evidence, on_device=on_device, actor=actor_id,
                                       at=at, closing_requires=closing_requires(ruleset, channel), reporter=reporter)
    evidence_note = f"evidence={','.join(sorted(event.evidence))}" if event.evidence else ""
    rec.insert(
        "case_event",
        {
            "case_id": case_id, "move": move, "from_status": event.from_status, "to_status": event.to_status,
            "actor_id": actor_id, "role": role, "device_id": rec.device, "at": at,
            "note": "; ".join(x for x in (evidence_note, note, "proposal" if event.proposal else "") if x),
        },
    )
    verdicts = {k: v for k, v in (("satisfied", satisfied), ("spot_check", spot_check)) if v is not None}
    if verdicts:
        rec.update("case", case_id, verdicts)
    if event.proposal:
        return status
    rec.conn.execute(_cases.update().where(_cases.c.id == case_id).values(status=event.to_status))
    if event.to_status in Lifecycle.of(ruleset).closed and event.from_status not in Lifecycle.of(ruleset).closed:
        _credit_service(rec, ruleset, case_id, at)
    return event.to_status


def _credit_service(rec: Recorder, ruleset: Ruleset, case_id: str, at: datetime) -> None:
    """Closing a menu order (a case naming a `service` and the `volunteer` who served) credits its points, once."""
    row = rec.conn.execute(select(_cases.c.number, _cases.c.fields, _cases.c.grid_id).where(_cases.c.id == case_id)).first()
    fields = row.fields or {}
    if not fields.get("service") or not fields.get("volunteer") or fields.get("points_credited"):
        return
    entry = points.for_service(ruleset, fields["volunteer"], fields["service"], at, order=row.number)
    points.record(rec, entry, row.grid_id)
    rec.update("case", case_id, {"points_credited": entry.delta})


def _evidence_by(conn: Connection, case_id: str, rule, role: str, evidence: Iterable[str], status: str) -> list[str]:
    """The evidence a move may count when its transition says `requires … from ROLE`.

    Only evidence given by a worker of one of those roles counts: on this move
    if the mover has the role, or recorded on an earlier move of the case
    (e.g. the command centre's callback before the handler closes). Raises
    `TransitionError` naming who must give what when it is missing.
    """
    given = set(evidence) if role in rule.evidence_by else set()
    for e in conn.execute(select(_events.c.role, _events.c.note, _events.c.stale).where(_events.c.case_id == case_id)):
        if e.role in rule.evidence_by and not e.stale:
            for part in (e.note or "").split("; "):
                if part.startswith("evidence="):
                    given |= set(part.removeprefix("evidence=").split(","))
    missing = [need for need in rule.requires if need not in given]
    if missing:
        raise TransitionError(
            f"move {rule.code} from state {status} by {role} needs {', '.join(missing)} given by "
            f"{' or '.join(rule.evidence_by)}; none is recorded on the case"
            + (f" (given by {role} it does not count)" if set(missing) & set(evidence) else ""),
            reason="missing_evidence", missing=tuple(missing), state=status, move=rule.code, role=role)
    return sorted(given | set(evidence))


def sweep(rec: Recorder, ruleset: Ruleset, now: datetime) -> tuple[list[Escalation], list[str]]:
    """Escalate every overdue open case in the store; return what moved and what sits at its ceiling."""
    lifecycle = Lifecycle.of(ruleset)
    router = Router(ruleset)
    settled = lifecycle.final | lifecycle.closed
    rows = rec.conn.execute(select(_cases).where(_cases.c.deleted.is_(None), _cases.c.status.not_in(settled))).all()
    paths: dict[str, tuple] = {}
    views = []
    for row in rows:
        if row.grid_id not in paths:
            paths[row.grid_id] = grid_path(rec.conn, row.grid_id)
        since = (row.fields or {}).get("step_since")
        views.append(
            CaseView(
                id=row.id, item=row.item_code, grids=paths[row.grid_id], channel=row.channel,
                opened_at=_aware(row.reported_at), status=row.status, severity=row.severity or None,
                step=int((row.fields or {}).get("escalation_step", 0)),
                step_since=datetime.fromisoformat(since) if since else None,
            )
        )
    result = escalate(router, views, now, closed=settled)
    for view in result.cases:
        moved = [e for e in result.escalations if e.case == view.id]
        if moved:
            last = moved[-1]
            rec.update(
                "case",
                view.id,
                {
                    "escalation_level": last.level, "owner": last.owner, "escalation_step": view.step,
                    "step_since": view.step_since.isoformat(), "escalation_reason": last.reason,
                },
            )
    return list(result.escalations), list(result.at_ceiling)


def explain(conn: Connection, ruleset: Ruleset, case_ref: str) -> str:
    """Why a case is where it is: routing trace, escalation, and its events."""
    row = conn.execute(select(_cases).where((_cases.c.id == case_ref) | (_cases.c.number == case_ref))).first()
    if row is None:
        raise RoutingError(f"no case {case_ref!r}: give a case number (e.g. C20261012001) or id")
    events = conn.execute(select(_events).where(_events.c.case_id == row.id).order_by(_events.c.hlc)).all()
    reached = tuple((e.to_status, _aware(e.at)) for e in events if not e.stale and "proposal" not in (e.note or ""))
    view = CaseView(row.id, row.item_code, grid_path(conn, row.grid_id), row.channel, _aware(row.reported_at),
                    row.status, row.severity or None, reached=reached)
    decision = Router(ruleset).route(view)
    summary = trace.CaseSummary(row.number, row.id, row.description, row.status, row.owner, row.ruleset_version)
    lines = [trace.EventLine(_aware(e.at), e.move, e.from_status, e.to_status, e.role, e.note or "", bool(e.stale))
             for e in events]
    fields = row.fields or {}
    routing = list(decision.trace)
    if row.ruleset_version != ruleset.version:
        # The case was routed under another version: say so rather than pass today's rules off as then's.
        routing.insert(0, f"routed under ruleset {row.ruleset_version[:12]}; explained by ruleset {ruleset.version[:12]}")
    return trace.render(summary, routing, lines, row.escalation_level, fields.get("escalation_reason"),
                        ruleset.settings.timezone)


@dataclass(frozen=True)
class MonthScore:
    worker: str  # the worker's name, or the grid's code when ``subject`` is "grid"
    role: str  # the worker's role, or the grid's level
    grids: int  # grids the worker is assigned, or grids in the subtree scored
    metrics: dict
    score: scoring.Score
    subject: str = "worker"
    targets: tuple = ()  # scoring.TargetCheck per class/grade target of the subject's grid


def month_window(ruleset: Ruleset, year: int, month: int) -> tuple[datetime, datetime]:
    """The month as [start, end) in the district's time zone, whatever zone the machine runs in."""
    return periods.of("month", date(year, month, 1)).window(ruleset.settings.timezone)


def month_scores(conn: Connection, ruleset: Ruleset, year: int, month: int) -> list[MonthScore]:
    """Every worker's score for a month (see `worker_scores`)."""
    return worker_scores(conn, ruleset, periods.of("month", date(year, month, 1)))


def grid_scores(conn: Connection, ruleset: Ruleset, year: int, month: int) -> list[MonthScore]:
    """Every grid's score for a month (see `cell_scores`)."""
    return cell_scores(conn, ruleset, periods.of("month", date(year, month, 1)))


def period_scores(conn: Connection, ruleset: Ruleset, period: periods.Period) -> list[MonthScore]:
    """Every worker's and every grid's score for ``period`` by the formulas of its kind."""
    return worker_scores(conn, ruleset, period) + cell_scores(conn, ruleset, period)


def worker_scores(conn: Connection, ruleset: Ruleset, period: periods.Period) -> list[MonthScore]:
    """Every worker's score for ``period``, by the formula of that period for their role (and grid grade)."""
    zone = ruleset.settings.timezone
    start, end = period.window(zone)
    workers = conn.execute(select(Worker.__table__).where(Worker.deleted.is_(None))).all()
    results, before = [], []
    for worker in workers:
        grids = [g for (g,) in conn.execute(select(Assignment.grid_id).where(Assignment.worker_id == worker.id, Assignment.active))]
        cell = conn.execute(select(GridCell.grade, GridCell.level).where(GridCell.id.in_(grids))).first() if grids else None
        grade, level = (cell.grade, cell.level) if cell else (None, None)
        formulas = scoring.formulas_for(ruleset, "worker", worker.role, grade, period.kind, level=level)
        if not formulas:
            continue
        formula = formulas[0]
        if formula.subtree:  # a community head answers for every grid under theirs
            grids = _subtree_of(conn, grids)
        metrics = worker_metrics(conn, ruleset, grids, worker.id, start, end)
        history = [scoring.score(formula, worker.name, worker_metrics(conn, ruleset, grids, worker.id, *p.window(zone))).tier
                   for p in period.so_far_this_year()]
        metrics["tier_drops_year"] = scoring.tier_drops(history, formula)
        before.append(_before(history))
        results.append(MonthScore(worker.name, worker.role, len(grids), metrics, scoring.score(formula, worker.name, metrics),
                                  targets=_targets(ruleset, level, grade, metrics, period)))
    return _ranked(ruleset, results, before)


def cell_scores(conn: Connection, ruleset: Ruleset, period: periods.Period) -> list[MonthScore]:
    """Every grid's score for ``period``, by the `for grid` formula of that period for its level and grade.

    A grid's cases and visits are those of its whole subtree (a community
    answers for its grids). Grids no formula applies to are left out.
    """
    zone = ruleset.settings.timezone
    start, end = period.window(zone)
    cells = conn.execute(select(_grids).where(_grids.c.deleted.is_(None)).order_by(_grids.c.code)).all()
    below: dict[Optional[str], list[str]] = {}
    for cell in cells:
        below.setdefault(cell.upper_id, []).append(cell.id)
    results, before = [], []
    for cell in cells:
        formulas = scoring.formulas_for(ruleset, "grid", grade=cell.grade, period=period.kind, level=cell.level)
        if not formulas:
            continue
        subtree = _subtree(cell.id, below)
        metrics = grid_metrics(conn, ruleset, subtree, start, end)
        history = [scoring.score(formulas[0], cell.code, grid_metrics(conn, ruleset, subtree, *p.window(zone))).tier
                   for p in period.so_far_this_year()]
        metrics["tier_drops_year"] = scoring.tier_drops(history, formulas[0])
        before.append(_before(history))
        results.append(MonthScore(cell.code, cell.level, len(subtree), metrics,
                                  scoring.score(formulas[0], cell.code, metrics), subject="grid",
                                  targets=_targets(ruleset, cell.level, cell.grade, metrics, period)))
    return _ranked(ruleset, results, before)


def _before(history: list) -> Optional[str]:
    """The tier of the period before this one (``history`` ends with this period's), if in the same year."""
    return history[-2] if len(history) >= 2 else None


def _targets(ruleset: Ruleset, level: Optional[str], grade: Optional[str], metrics: dict, period) -> tuple:
    """The targets of the grid's class or grade, against the period's metrics."""
    classes = [c for lv in ruleset.levels if lv.code == level for c in lv.classes if c.code == grade]
    days = (period.end - period.start).days
    return scoring.against_targets([t for c in classes for t in c.targets], metrics, days)


def _ranked(ruleset: Ruleset, results: list[MonthScore], before: list[Optional[str]]) -> list[MonthScore]:
    """Each result with its rank among those scored by the same formula (and the formula's rank tiers),
    then the reward of the tier it ends in, given its tier of the period ``before``."""
    by_formula: dict[str, list[int]] = {}
    for index, result in enumerate(results):
        by_formula.setdefault(result.score.formula, []).append(index)
    formulas = {f.code: f for f in ruleset.formulas}
    out = list(results)
    for code, indexes in by_formula.items():
        for index, ranked in zip(indexes, scoring.ranked(formulas[code], [results[i].score for i in indexes])):
            out[index] = replace(results[index], score=scoring.rewarded(formulas[code], ranked, before[index]))
    return out


def _subtree_of(conn: Connection, roots: list[str]) -> list[str]:
    """``roots`` and every live grid cell under them."""
    below: dict[Optional[str], list[str]] = {}
    for cell_id, upper in conn.execute(select(_grids.c.id, _grids.c.upper_id).where(_grids.c.deleted.is_(None))):
        below.setdefault(upper, []).append(cell_id)
    found: list[str] = []
    for root in roots:
        found += [g for g in _subtree(root, below) if g not in found]
    return found


def _subtree(root: str, below: dict[Optional[str], list[str]]) -> list[str]:
    found, todo = [], [root]
    while todo:
        grid = todo.pop()
        if grid not in found:  # a cycle in bad data must not loop forever
            found.append(grid)
            todo.extend(below.get(grid, ()))
    return found


def grid_metrics(conn: Connection, ruleset: Ruleset, grids: list[str], start: datetime, end: datetime) -> dict[str, float]:
    """Metrics of the cases and visits in ``grids``."""
    metrics = _case_metrics(conn, ruleset, grids, start, end)
    visits = conn.execute(select(Visit.minutes, Visit.household_id, Visit.at).where(Visit.grid_id.in_(grids))).all()
    return {**metrics, **_visit_metrics(visits, start, end)}


def worker_metrics(conn: Connection, ruleset: Ruleset, grids: list[str], worker_id: str,
                   start: datetime, end: datetime) -> dict[str, float]:
    """Metrics of the cases in a worker's grids and of the worker's visits."""
    metrics = _case_metrics(conn, ruleset, grids, start, end)
    visits = conn.execute(select(Visit.minutes, Visit.household_id, Visit.at).where(Visit.worker_id == worker_id)).all()
    attended = meetings.attended(meetings.held(conn), worker_id, start, end)
    metrics = spotchecks.combined(metrics, spotchecks.of_worker(conn, worker_id, start, end))
    return {**metrics, **_visit_metrics(visits, start, end), "meetings_attended": attended}


def _visit_metrics(visits, start: datetime, end: datetime) -> dict[str, float]:
    in_month = [v for v in visits if start <= _aware(v.at) < end]
    return {"visits": len(in_month), "visit_minutes": sum(v.minutes for v in in_month),
            "households_visited": len({v.household_id for v in in_month})}


def _case_metrics(conn: Connection, ruleset: Ruleset, grids: list[str], start: datetime, end: datetime) -> dict[str, float]:
    closed = Lifecycle.of(ruleset).closed
    rows = conn.execute(select(_cases).where(_cases.c.grid_id.in_(grids), _cases.c.deleted.is_(None))).all() if grids else []
    events: dict[str, list] = {}
    if rows:
        for e in conn.execute(select(_events).where(_events.c.case_id.in_([r.id for r in rows])).order_by(_events.c.hlc)):
            events.setdefault(e.case_id, []).append(e)
    router = Router(ruleset)
    records = [_record(row, events.get(row.id, []), closed, ruleset, router) for row in rows]
    metrics = scoring.case_metrics(records, start, end, scoring.formula_metrics(ruleset))
    metrics["verified_complaints"] = sum(
        1 for row in rows if (row.fields or {}).get("verified_complaint") and start <= _aware(row.reported_at) < end
    )
    return metrics


def _record(row, events, closed: frozenset[str], ruleset: Ruleset, router: Router) -> scoring.CaseRecord:
    visited, reworks, dispatches, closed_at, callback = set(), 0, 0, None, False
    void_states = {s.code for s in ruleset.lifecycle.states if "void" in s.flags} if ruleset.lifecycle else set()
    moves = {t.code: t for t in ruleset.lifecycle.transitions} if ruleset.lifecycle else {}
    parked = {s.code for s in ruleset.lifecycle.states if "suspended" in s.flags} if ruleset.lifecycle else set()
    for e in events:
        if e.stale or "proposal" in (e.note or ""):
            continue
        rule = moves.get(e.move)
        # An office move that hands the case to someone who will work on it.
        dispatches += bool(rule and rule.office and e.to_status not in closed | void_states | parked)
        if e.to_status in visited:
            reworks += 1  # back to a state the case had already left: a rework
        visited.add(e.from_status)
        if e.to_status in closed and closed_at is None:
            closed_at = _aware(e.at)
        callback = callback or "callback" in (e.note or "")
    return scoring.CaseRecord(
        reported_at=_aware(row.reported_at), closed_at=closed_at,
        deadline=_aware(row.deadline) if row.deadline else None, void=row.status in void_states,
        reworks=reworks, dispatches=dispatches, callback=callback, satisfied=(row.fields or {}).get("satisfied"),
        difficulty=ruleset.items[row.item_code].difficulty if row.item_code in ruleset.items else 1.0,
        spot_check=(row.fields or {}).get("spot_check"),
        stages=_stage_exits(row, events, router), fields={f.code: (row.fields or {}).get(f.code)
                                                          for f in ruleset.register("case")},
    )


def _stage_exits(row, events, router: Router) -> tuple:
    """(state, when the case first left it, the stage's deadline) for every state the case left."""
    moves = [e for e in events if not e.stale and "proposal" not in (e.note or "")]
    if not moves or row.item_code not in router.ruleset.items:
        return ()
    reached = tuple((e.to_status, _aware(e.at)) for e in moves)
    view = CaseView(row.id, row.item_code, (), row.channel, _aware(row.reported_at), row.status,
                    row.severity or None, reached=reached)
    deadlines = dict(router.route(view).stages)
    left: dict[str, datetime] = {}
    for e in moves:
        left.setdefault(e.from_status, _aware(e.at))
    return tuple((state, at, deadlines.get(state)) for state, at in left.items())


def _aware(moment: datetime) -> datetime:
    # SQLite hands times back without their zone; change capture wrote them in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _next_number(conn: Connection, at: datetime) -> str:
    """A readable case number. Tablets mint numbers offline, so theirs carry the device's tag."""
    tag = ""
    if get_meta(conn, "role") == "device":
        tag = "-" + (get_meta(conn, "device_id") or "")[-4:].upper()
    prefix = f"C{at:%Y%m%d}"
    count = conn.execute(select(_cases.c.number).where(_cases.c.number.like(prefix + "%" + tag))).all()
    return f"{prefix}{len(count) + 1:03d}{tag}"


def _recent_reports(conn: Connection, item: str, at: datetime, hours: float):
    rows = conn.execute(select(_cases).where(_cases.c.item_code == item, _cases.c.deleted.is_(None))).all()
    window = timedelta(hours=hours)
    return [duplicates.Report(r.id, r.item_code, r.grid_id, _aware(r.reported_at), r.building_id, r.household_id)
            for r in rows if abs(_aware(r.reported_at) - at) <= window]


def _numbers(conn: Connection, ids: list[str]):
    if not ids:
        return []
    return conn.execute(select(_cases.c.id, _cases.c.number).where(_cases.c.id.in_(ids))).all()
