"""The street office's answers to what sync queued for review (`wangge conflicts`).

* a proposal (a move the rules reserve to the office, made on a tablet) is
  accepted by making the same move at the office, through the case
  workflow, so the lifecycle's guards and evidence rules apply and the move
  reaches every tablet as an ordinary op; or rejected, leaving the case as it is;
* a critical-field conflict is settled by keeping the value the store holds,
  or by taking the one queued for review (an ordinary, newer edit that syncs);
* a stale move is acknowledged, and so is a bundle a revoked tablet sent
  (`wangge.sync.master.revoked`: it stays kept, unapplied);
* a quarantined op (`wangge.sync.master.quarantine`) is released, once the office
  trusts it: checked as the tablet's own op would be, then made at the
  office as a new change stamped now (its own stamp is what held it), which
  syncs to every tablet; or discarded, applying nowhere and kept on record.
  A released edit leaves the fields someone changed after it was held: the
  edit is older than its stamp said, those changes are not.

Each answer marks the row resolved and notes who answered, how and when.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import select

from wangge.core import casework, placement
from wangge.core.errors import TransitionError, UsageError, WanggeError
from wangge.core.capture import table_of
from wangge.core.hlc import DEFAULT_MAX_DRIFT_MS, wall_of
from wangge.core.models import CaseEvent, Device
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store, get_meta
from wangge.sync.log import apply, scope, tables
from wangge.sync.master import quarantine
from wangge.sync.master.authorise import Sender, Unauthorised, authorise

_events, _devices = CaseEvent.__table__, Device.__table__
#: What each kind of conflict may be answered with.
ANSWERS = {"proposal": ("accept", "reject"), "critical": ("keep", "take"), "stale": ("ack",),
           "quarantine": ("release", "discard"), "revoked": ("ack",)}


class ReviewError(UsageError):
    """A conflict cannot be answered that way; the message says why and what would do."""


def answer(store: Store, conflict_id: int, how: str, *, by: str, note: str = "",
           ruleset: Optional[Ruleset] = None, now: Optional[datetime] = None) -> str:
    """Answer conflict ``conflict_id`` with ``how`` (see `ANSWERS`); return a line saying what happened.

    Raises `ReviewError`, writing nothing, for an unknown or settled conflict
    or an answer that does not fit its kind; `TransitionError` if accepting a
    proposal is no longer a legal move.
    """
    if store.role != "master":
        raise ReviewError(f"store {store.url} is a {store.role}: conflicts are answered at the master")
    now = now or datetime.now(timezone.utc)
    if not 0 < conflict_id < 2**63:  # past 64 bits the lookup itself would fail
        raise ReviewError(f"no conflict #{conflict_id}: `wangge conflicts` lists them with their numbers")
    with store.write(actor=by) as rec:
        row = rec.conn.execute(select(tables.conflict).where(tables.conflict.c.id == conflict_id)).mappings().first()
        if row is None:
            raise ReviewError(f"no conflict #{conflict_id}: `wangge conflicts` lists them with their numbers")
        if row["resolved"]:
            raise ReviewError(f"conflict #{conflict_id} is settled already: {row['note']}")
        allowed = ANSWERS.get(row["kind"], ())
        if how not in allowed:
            raise ReviewError(f"conflict #{conflict_id} is a {row['kind']} one: answer it with "
                              f"{' or '.join(allowed) or 'nothing'}, not {how}")
        if how == "accept":
            done = _accept(rec, row, ruleset or casework.installed_ruleset(rec.conn), by, now)
        elif how == "release":
            done = _release(rec, row, ruleset or _installed(rec.conn))
        elif how == "discard":
            op = quarantine.held_op(rec.conn, row["op_id"])
            done = f"{op.kind} {op.entity} {op.entity_id} discarded; kept on record only"
        elif how == "take":
            rec.update(row["entity"], row["entity_id"], {row["field"]: row["lost"]})
            done = f"{row['entity']} {row['entity_id']}: {row['field']} is now {row['lost']!r}"
        else:
            done = {"reject": "proposal rejected: the case stays as it is",
                    "keep": f"{row['field']} keeps {row['kept']!r}",
                    "ack": "stale move acknowledged: the case stays as it is" if row["kind"] == "stale" else
                           f"noted: the bundle from revoked device {row['entity_id']} stays kept, unapplied"}[how]
        said = f"{how} by {by} at {now:%Y-%m-%d %H:%M} UTC" + (f": {note}" if note else "")
        rec.conn.execute(tables.conflict.update().where(tables.conflict.c.id == conflict_id)
                         .values(resolved=True, note=f"{row['note']} — {said}"))
    return f"conflict #{conflict_id}: {done}"


def _accept(rec, row, ruleset: Ruleset, by: str, now: datetime) -> str:
    event = rec.conn.execute(select(_events).where(_events.c.id == row["op_id"])).mappings().first()
    if event is None:
        raise ReviewError(f"conflict #{row['id']}: the proposed move {row['op_id']} is not in this store")
    evidence = next((part.split("=", 1)[1].split(",") for part in event["note"].split("; ")
                     if part.startswith("evidence=")), [])
    try:
        status = casework.move_case(rec, ruleset, event["case_id"], event["move"], role=event["role"],
                                    actor_id=event["actor_id"], at=now, evidence=evidence,
                                    note=f"accepts the proposal {event['id']} made on "
                                         f"{event['device_id'] or 'a tablet'} by {by}")
    except TransitionError as refused:
        if refused.reason != "not_from_state":
            raise
        raise ReviewError(f"conflict #{row['id']}: the case is {refused.state} now, so {refused.move} can no "
                          f"longer be accepted: reject the proposal, or move the case first") from None
    return f"case {event['case_id']}: {event['move']} accepted at the office, now {status}"


def _installed(conn) -> Optional[Ruleset]:
    # A master that syncs without rules checks a released op as its exchanges do: without them.
    try:
        return casework.installed_ruleset(conn)
    except WanggeError:
        return None


def _release(rec, row, ruleset: Optional[Ruleset]) -> str:
    conn = rec.conn
    op = quarantine.held_op(conn, row["op_id"])
    device = conn.execute(select(_devices).where(_devices.c.id == op.device)).first()
    if device is None:
        raise ReviewError(f"conflict #{row['id']}: device {op.device} is not known here; discard the op")
    grids = scope.worker_grids(conn, device.worker_id)
    sender = Sender(op.device, device.worker_id, scope.worker_role(conn, device.worker_id), frozenset(grids))
    # Stamped now: the stamp it came with is what held it, and a folded op's older field stamps go too.
    stamped = op._replace(hlc=rec.stamp(), stamps=None, seen=None)
    try:
        _, held = authorise(conn, [stamped], sender, ruleset, now_ms=rec.physical_ms,
                            max_drift_ms=DEFAULT_MAX_DRIFT_MS)
    except Unauthorised as refused:
        raise ReviewError(f"conflict #{row['id']} cannot be released: {refused}") from None
    if held:
        raise ReviewError(f"conflict #{row['id']} cannot be released yet: {held[0][1]}")
    values = apply.typed(op.entity, op.fields)
    later = _changed_since(conn, op, quarantine.held_at(conn, op.op_id)) if op.kind == "update" else []
    values = {name: value for name, value in values.items() if name not in later}
    kept = f"; {', '.join(later)} kept as changed since it was held" if later else ""
    if op.kind == "update" and not values:
        quarantine.released(conn, op.op_id)
        return f"update {op.entity} {op.entity_id} released: nothing to apply{kept}"
    if op.kind in ("insert", "append"):
        rec.insert(op.entity, {**values, "id": op.entity_id})
    elif op.kind == "update":
        rec.update(op.entity, op.entity_id, values)
    else:
        rec.delete(op.entity, op.entity_id)
    # The office takes the held op as it came: where its owner has moved since, it follows.
    placement.settle(rec, rec.placed, strict=False)
    quarantine.released(conn, op.op_id)
    if op.entity in ("case", "case_event"):
        master = get_meta(conn, "device_id") or ""
        apply.rederive_since_last(conn, ruleset, frozenset({master}), True)
    return f"{op.kind} {op.entity} {op.entity_id} released: made at the office as a new change, which syncs{kept}"


def _changed_since(conn, op, held_ms: int) -> list[str]:
    """The fields of ``op`` whose stored value was set by an edit stamped at or after ``held_ms``.

    Only a field's own stamp counts: one the row's insert set has none, and
    an insert released after the edit was held must not shadow the edit.
    """
    table = table_of(op.entity)
    stamps = conn.execute(select(table.c.stamps).where(table.c.id == op.entity_id)).scalar() or {}
    return sorted(name for name in op.fields if name in stamps and wall_of(stamps[name][0]) >= held_ms)
