"""The tablet's side of the sync session, sans-IO: ``make_push() -> bytes`` and
``accept_reply(bytes)``, and the master the tablet trusts.

The device clears its outbox only after verifying the master's signed ack; a
reply that answers another push is refused. Keys, clocks (through the `Store`'s
``now_ms``) and the ruleset are passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from sqlalchemy import delete, exists, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from wangge.core.errors import SyncError, WanggeError
from wangge.core.hlc import DEFAULT_MAX_DRIFT_MS, pack, span, wall_of
from wangge.core.ids import uuid7
from wangge.core.models import Op
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store
from wangge.sync import bundle
from wangge.sync.log import apply, merge, scope
from wangge.sync.keys import DeviceKeys, PublicKeys
from wangge.sync.log.ops import MAX_INT, WireOp, coalesce
from wangge.sync.device import atrest
from wangge.sync.device.session import DeviceSession, Pending
from wangge.sync.protocol import Peer, Replayed, body_int, body_ops, op_of_row, referring

_op = Op.__table__


@dataclass
class DeviceResult:
    applied: int = 0
    acked: int = 0
    evicted: int = 0
    quarantined: list = field(default_factory=list)
    reset: bool = False
    again: bool = False  # checksums differed: sync once more to repair
    clock_ahead_ms: int = 0  # this tablet's wall clock still runs this far ahead of the master's

    def summary(self) -> str:
        text = f"{self.acked} ops acknowledged, {self.applied} received, {self.evicted} evicted"
        if self.quarantined:
            text += f", {len(self.quarantined)} quarantined at the master"
        if self.clock_ahead_ms:
            text += (f"; this tablet's clock runs {span(self.clock_ahead_ms)} ahead of the master's: "
                     f"set its date and time right, or its edits wait at the office")
        return text + ("; scope checksum differs: sync again to repair" if self.again else "")


@dataclass
class DeviceSync:
    """The tablet's side: ``make_push() -> bytes`` and ``accept_reply(bytes)``."""

    store: Store
    keys: DeviceKeys
    master: Peer
    ruleset: Optional[Ruleset] = None
    pushed: int = field(default=0, init=False)  # ops in the last push, for a transport's progress

    @property
    def device_id(self) -> str:
        return self.store.device_id

    def make_push(self, deliver: Optional[Callable[[bytes], object]] = None) -> bytes:
        """A bundle of every own op not yet acknowledged, to the master. Safe to call again after a lost reply.

        ``deliver`` (writing the bundle to a file, say) runs before the push counts as made: if it
        raises, the tablet still waits for the reply to its previous push, which may be on its way.
        """
        with self.store.write(actor="sync") as rec:
            conn = rec.conn
            state = DeviceSession.load(conn)
            rows = conn.execute(select(_op).where(_op.c.device == self.device_id, _op.c.seq > state.through)
                                .order_by(_op.c.seq)).all()
            ruleset = self._ruleset(state)
            ops = [_with_seen(conn, op_of_row(r), ruleset) for r in rows]
            # Edits of critical fields are reviewed one by one at the office: never folded.
            critical = {entity: merge.critical_fields(ruleset, entity) for entity in {op.entity for op in ops}}
            ops = coalesce(ops, lambda op: not critical[op.entity].isdisjoint(op.fields),
                           _may_join(pack(rec.physical_ms + DEFAULT_MAX_DRIFT_MS)))
            seq = state.seq + 1
            bundle_id = uuid7()
            body = {"ops": [op.to_wire() for op in ops], "cursor": state.cursor,
                    "repair": state.repair, "ruleset": ruleset.version if ruleset else ""}
            data = bundle.build("push", bundle_id, self.device_id, self.master.device_id, seq, body, self.keys,
                                self.master.keys, version=bundle.VERSION)
            state.seq, state.pending = seq, Pending(bundle_id, seq)
            state.save(conn)
            if deliver is not None:
                deliver(data)
        self.pushed = len(rows)  # the edits made, however many ops carry them
        return data

    def _ruleset(self, state: DeviceSession) -> Optional[Ruleset]:
        if self.ruleset is None and state.ruleset:
            self.ruleset = Ruleset.from_json(state.ruleset)
        return self.ruleset

    def accept_reply(self, data: bytes) -> DeviceResult:
        """Verify the master's signed reply and apply it in one transaction.

        Raises `BundleError`, `SignatureInvalid`, `SealBroken` or `Replayed` (a
        reply to another push); the store is unchanged then and the outbox kept.
        """
        env = bundle.parse(data)
        head = env.header
        if head.kind != "reply" or head.sender != self.master.device_id or head.recipient != self.device_id:
            raise bundle.BundleError(f"bundle {head.id} is a {head.kind} from {head.sender} to {head.recipient}, "
                                     f"expected a reply from master {self.master.device_id} to {self.device_id}")
        env.verify(self.master.keys)
        with self.store.write(actor="sync") as rec:
            conn = rec.conn
            state = DeviceSession.load(conn)
            pending = state.pending
            if pending is None or head.seq != pending.seq:
                raise Replayed(_unexpected_reply(head, pending.seq if pending else None, state.seq))
            body = env.open(self.keys)
            ack = body.get("ack") or {}
            if ack.get("bundle") != pending.bundle_id:
                raise Replayed(f"reply {head.id} acknowledges bundle {ack.get('bundle')}, not {pending.bundle_id}")
            return self._apply_reply(rec, conn, head, body, ack, state)

    def _apply_reply(self, rec, conn: Connection, head, body: dict, ack: dict, state: DeviceSession) -> DeviceResult:
        where = f"reply {head.id}"
        ops = body_ops(body, where)
        if conn.dialect.name == "sqlite":
            # A row moved in comes as all its ops: its insert may name the owner it had then, which this
            # tablet never holds; the update after it names the one it has. Foreign keys hold at commit.
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        through, before = body_int(ack, "through", where), state.through
        # Count own ops only: the local op log interleaves ops received from the master.
        acked = conn.execute(select(func.count()).select_from(_op).where(
            _op.c.device == self.device_id, _op.c.seq > before, _op.c.seq <= through)).scalar()
        result = DeviceResult(acked=acked,
                              quarantined=list(ack.get("quarantined") or []), reset=bool(body.get("reset")))
        if body.get("ruleset"):
            self.ruleset = Ruleset.from_json(body["ruleset"])
            state.ruleset = body["ruleset"]
        # Own ops the master has not got (recorded while the push travelled): no wipe or eviction loses them.
        sent = max(through, before)
        unsent = [op_of_row(r) for r in conn.execute(select(_op).where(
            _op.c.device == self.device_id, _op.c.seq > sent, _op.c.kind != "mark").order_by(_op.c.seq))]
        if result.reset:
            _wipe(conn, self.device_id)
        result.evicted = _evict(conn, body.get("evict") or {}, self.device_id, keep_after=sent)
        masters = frozenset({self.master.device_id})
        done = apply.apply_ops(conn, ops, ruleset=self._ruleset(state), masters=masters, derive=False)
        result.applied = len(done.applied)
        top = apply.log_top(conn)
        if result.reset and unsent:
            _replay_own(conn, unsent, self._ruleset(state), masters)
        apply.rederive_since_last(conn, self._ruleset(state), masters, False)
        if done.max_hlc:
            rec.clock.last = max(rec.clock.last, done.max_hlc)
        result.clock_ahead_ms = _set_back(rec, ack)
        through = max(ack["through"], before)  # never back: after a download afresh it ran ahead of the master's
        if result.reset:
            # Every own op the download brought came back from the master, which has it:
            # none is to be pushed again (the unsent ones replayed after it are).
            through = max(through, top)
        _forget_evicted(conn, self.device_id, before, through)
        # With unsent own ops the replicas differ by them until the next push: no repair for that.
        mine = scope.checksums(conn, None)
        result.again = not unsent and mine != body.get("checksums")
        state.through, state.cursor, state.pending, state.repair = through, body_int(body, "upto", where), None, result.again
        state.save(conn)
        atrest.accept_reply_lease(conn, ack.get("clock"), self._ruleset(state))  # by HTTP or by file alike
        return result


def _unexpected_reply(head, waiting: Optional[int], made: int) -> str:
    """Why a reply is not the one the tablet waits for, said for the person importing it."""
    if waiting is None and head.seq <= made:
        return (f"reply {head.id} answers push {head.seq}, which was imported before: nothing applied, "
                f"and no push waits for a reply")
    if waiting is None:
        return f"reply {head.id} answers push {head.seq}, which this tablet never made: nothing applied"
    return (f"reply {head.id} answers push {head.seq}, but the tablet waits for the reply to push {waiting}, "
            f"made since: import that one, or sync again")


def _may_join(newest: int):
    """Whether an update may fold into its row's insert: not if it sets a reference (the
    insert keeps its place, ahead of the row the reference may name), nor if its stamp
    runs past ``newest`` (a drifted edit would have the master hold the whole insert)."""
    def may(insert: WireOp, update: WireOp) -> bool:
        columns = scope.REFERENCES[update.entity]
        return update.top <= newest and not any(column in update.fields for column, _ in columns)
    return may


def _set_back(rec, ack: dict) -> int:
    """Set a clock that ran beyond the drift bound back to the master's time; return how far ahead of
    the master's it still runs when the tablet's own wall clock is wrong too (else 0).

    Its ops stamped meanwhile are held at the master, so no stamp the
    master applied is overtaken; without this every later edit would carry
    the future stamp and be held too. A tablet whose own wall clock is still
    wrong keeps stamping ahead until it is set right (the summary says so).
    """
    clock, bound = ack.get("clock"), ack.get("max_drift_ms")
    if type(clock) is not int or type(bound) is not int or not 0 < clock <= MAX_INT or not 0 <= bound <= MAX_INT:
        return 0  # a master that does not say, or says what no stamp or bound can be
    if wall_of(rec.clock.last) - wall_of(clock) <= bound:
        return 0
    rec.clock.last = max(clock, pack(rec.physical_ms))
    still = wall_of(rec.clock.last) - wall_of(clock)
    return still if still > bound else 0


def _with_seen(conn: Connection, op: WireOp, ruleset: Optional[Ruleset]) -> WireOp:
    """Attach to an update the stamps of the critical values the worker saw (from the local log)."""
    if op.kind != "update":
        return op
    critical = merge.critical_fields(ruleset, op.entity) & op.fields.keys()
    if not critical:
        return op
    earlier = [op_of_row(r) for r in conn.execute(select(_op).where(
        _op.c.entity == op.entity, _op.c.entity_id == op.entity_id, _op.c.seq < op.seq,
        _op.c.kind.in_(("insert", "update"))))]
    seen = {}
    for name in critical:
        # A stamp above the edit's own is the tablet's own earlier edit stamped while its clock ran
        # ahead, which the master holds unapplied: what the worker saw before it is what counts.
        stamps = [(r.field_hlc(name), r.device) for r in earlier
                  if name in r.fields and r.field_hlc(name) <= op.hlc]
        if stamps:
            seen[name] = list(max(stamps))
    return op._replace(seen=seen or None)


def _wipe(conn: Connection, device_id: str) -> None:
    """Drop every replicated row and the op log before a full download (all own ops are acknowledged).

    The log's position must not go back: the master knows this device's ops
    by position, and a later op at a position it acknowledged before would
    look like a cloned tablet (`apply.remove_ops`).
    """
    for entity in reversed(apply.ENTITY_ORDER):
        if entity not in scope.PRIVATE:
            conn.execute(delete(apply.table_of(entity)))
    apply.remove_ops(conn, _op.c.entity != "device", device_id)


def _replay_own(conn: Connection, unsent: list[WireOp], ruleset: Optional[Ruleset], masters: frozenset) -> None:
    """Apply the device's unsent ops again after a download afresh wiped them, each logged anew to be
    pushed. One that no longer applies (its row, or a row it names, left the scope) is logged all the
    same: the master holds or refuses it, and says so."""
    for op in unsent:
        try:
            with conn.begin_nested():
                done = apply.apply_ops(conn, [op], ruleset=ruleset, masters=masters, derive=False)
        except (SQLAlchemyError, WanggeError):
            done = None
        if done is None or done.orphans:
            apply.log_ops(conn, [op])


def _evict(conn: Connection, evict: dict, device_id: str, keep_after: int) -> int:
    """Remove rows that left the device's scope, children first, with their ops (not replicated),
    but for the device's own ops after ``keep_after``: unsent, they go to the master, which holds them.

    A row here that refers to an evicted one goes with it: the tablet's own, which the master
    never had and so does not list (a visit recorded before the tablet heard), would stop the
    eviction on its foreign key.
    """
    doomed = {entity: {i for i in (evict.get(entity) or []) if isinstance(i, str)}
              for entity in scope.SCOPED if isinstance(evict.get(entity), list)}
    for parent in apply.ENTITY_ORDER:  # parents first: a child's own children follow it in turn
        for child in scope.SCOPED:
            for column, target in scope.REFERENCES[child]:
                if target == parent and doomed.get(parent):
                    doomed.setdefault(child, set()).update(referring(conn, child, column, doomed[parent]))
    count = 0
    for entity in reversed(apply.ENTITY_ORDER):
        ids = sorted(doomed.get(entity) or ())
        table = apply.table_of(entity)
        for start in range(0, len(ids), apply.CHUNK):
            chunk = ids[start : start + apply.CHUNK]
            count += conn.execute(delete(table).where(table.c.id.in_(chunk))).rowcount
            own_unsent = (_op.c.device == device_id) & (_op.c.seq > keep_after)
            apply.remove_ops(conn, (_op.c.entity == entity) & _op.c.entity_id.in_(chunk) & ~own_unsent, device_id)
    return count


def _forget_evicted(conn: Connection, device_id: str, before: int, through: int) -> None:
    """Drop the own ops just acknowledged whose row is gone (evicted while they waited to be pushed):
    the master has them now, and no record of a grid the worker left stays on the tablet."""
    if through <= before:
        return
    acked = (_op.c.device == device_id) & (_op.c.seq > before) & (_op.c.seq <= through)
    orphaned = [seq for entity in scope.SCOPED for seq in conn.execute(select(_op.c.seq).where(
        acked, _op.c.entity == entity, ~exists().where(apply.table_of(entity).c.id == _op.c.entity_id))).scalars()]
    if orphaned:
        apply.remove_ops(conn, _op.c.seq.in_(orphaned), device_id)


def trust_master(store: Store, master: Peer) -> None:
    """Record on a device which master it syncs with (from enrollment), for file transports."""
    sign, box = master.keys.b64()
    with store.write(actor="sync") as rec:
        state = DeviceSession.load(rec.conn)
        state.master = {"id": master.device_id, "sign": sign, "box": box}
        state.save(rec.conn)


def trusted_master(store: Store) -> Peer:
    """The master recorded by `trust_master`. Raises `SyncError` if there is none."""
    with store.read() as conn:
        data = DeviceSession.load(conn).master
    if not data:
        raise SyncError("this tablet knows no master yet: enroll it at the office first")
    return Peer(data["id"], PublicKeys.from_b64(data["sign"], data["box"]))

