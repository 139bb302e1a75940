"""The sync session, sans-IO: bundle bytes in, reply bytes out.

A transport (HTTP, a USB stick) only moves bytes::

    push = device.make_push()                 # on the tablet
    reply, summary = master.exchange(push)    # on the master
    result = device.accept_reply(reply)       # on the tablet
    # repeat while result.again (a scope repair was asked for)

The master checks, in this order and before decrypting anything: caps and
layout, header schema, addressee, sender registration and revocation, the
Ed25519 signature, replay (seen bundle ids and the per-device sequence).
Then it decrypts, detects clones, authorises every op and applies the
whole bundle in one transaction, and replies (signed, sealed to the device)
with the ack, the ops the device lacks within its scope, evictions, and a
checksum per entity of the device's scope. The device clears its outbox
only after verifying that signed ack. Re-sending the latest bundle returns
the same reply without applying anything twice.

Keys, clocks (through the `Store`'s ``now_ms``) and the ruleset are passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from sqlalchemy import String, case, cast, delete, exists, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from wangge.core import placement
from wangge.core.errors import SyncError, WanggeError
from wangge.core.hlc import DEFAULT_MAX_DRIFT_MS, pack, span, wall_of
from wangge.core.ids import uuid7
from wangge.core.capture import stored_json, table_of
from wangge.core.models import Device, Op
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store, get_meta, set_meta
from wangge.sync import apply, bundle, merge, quarantine, revoked, scope, tables
from wangge.sync.authorise import Sender, authorise
from wangge.sync.keys import DeviceKeys, PublicKeys
from wangge.sync.ops import MAX_INT, OpError, WireOp, coalesce, from_wire
from wangge.sync.session import DeviceSession, Pending

_devices, _op = Device.__table__, Op.__table__


class NotEnrolled(SyncError, PermissionError):
    """The sender is unknown, not yet approved, or revoked."""


class Replayed(SyncError):
    """A bundle was seen before, or its sequence number is not new."""


class CloneDetected(SyncError):
    """Two tablets (or a restored backup) use one device id."""


@dataclass(frozen=True)
class Peer:
    """Who is at the other end: id and public keys."""

    device_id: str
    keys: PublicKeys


def _body_ops(body: dict, where: str) -> list[WireOp]:
    items = body.get("ops")
    if not isinstance(items, list):
        raise bundle.BundleError(f"{where}: body needs a list of ops")
    try:
        return [from_wire(item, f"{where} op {n}") for n, item in enumerate(items)]
    except OpError as exc:
        raise bundle.BundleError(str(exc)) from None


def _one_change_per_op_id(ops: list[WireOp], where: str) -> None:
    """Refuse a push giving one op id to two ops: the second would be taken for the first (a
    duplicate), and what needs it would fail at the store."""
    given: set[str] = set()
    for n, op in enumerate(ops):
        if op.op_id in given:
            raise bundle.BundleError(f"{where} op {n}: op id {op.op_id} is given to an earlier op of the "
                                     f"bundle too: each op needs its own")
        given.add(op.op_id)


def _int(body: dict, name: str, where: str) -> int:
    value = body.get(name)
    # Log positions go into signed 64-bit columns and SQL comparisons: a larger one fails there.
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise bundle.BundleError(f"{where}: body field {name!r} must be a non-negative integer in 0..{MAX_INT}, "
                                 f"got {value!r:.60}")
    return value


# -- the master ----------------------------------------------------------------------------------


@dataclass
class MasterSync:
    """The master's side. ``exchange`` is what `wangge.sync.server.Master` and file imports call."""

    store: Store
    keys: DeviceKeys
    ruleset: Optional[Ruleset] = None
    max_drift_ms: int = DEFAULT_MAX_DRIFT_MS

    @property
    def device_id(self) -> str:
        return self.store.device_id

    def exchange(self, data: bytes) -> tuple[bytes, str]:
        """Verify, authorise and apply a device's push; return the signed reply and a one-line summary.

        Raises `BundleError` (malformed, over a cap), `NotEnrolled`, `SignatureInvalid`,
        `Replayed`, `SealBroken`, `CloneDetected` or `Unauthorised`; the store is unchanged
        then, except that a revoked tablet's own bundle is kept for review (`wangge.sync.revoked`).
        """
        env = bundle.parse(data)
        head = env.header
        if head.kind != "push" or head.recipient != self.device_id:
            raise bundle.BundleError(f"bundle {head.id} is a {head.kind} for {head.recipient}, "
                                     f"expected a push for this master {self.device_id}")
        with self.store.write(actor="sync") as rec:
            conn = rec.conn
            device = self._known(conn, head.sender)
            if device.status == "revoked":
                # Its own signature: a bundle from the tablet itself (a lost or stolen one, say),
                # kept for the office; one forged in its name is refused and kept nowhere.
                env.verify(PublicKeys.from_b64(device.sign_key, device.box_key))
                refusal = NotEnrolled(f"bundle refused: device {head.sender} is revoked, not active; "
                                      f"{revoked.keep(conn, head, data, rec.physical_ms)}; "
                                      f"enroll it again with new keys")
            else:
                if device.status != "active":
                    raise NotEnrolled(f"bundle refused: device {head.sender} is {device.status}, not active; "
                                      f"approve it first")
                env.verify(PublicKeys.from_b64(device.sign_key, device.box_key))
                return self._import(rec, env, device)
        raise refusal  # after the block: what was kept is committed

    def _import(self, rec, env: bundle.Envelope, device) -> tuple[bytes, str]:
        conn, head = rec.conn, env.header
        peer = conn.execute(select(tables.peer).where(tables.peer.c.device_id == head.sender)).mappings().first()
        if peer and head.id == peer["bundle_id"] and peer["reply"]:
            return bytes(peer["reply"]), f"bundle {head.id} from {head.sender} was imported before: same reply, nothing applied"
        self._check_replay(conn, head, peer)
        body = env.open(self.keys)
        return self._apply_push(rec, conn, head, body, device, peer)

    @staticmethod
    def _known(conn: Connection, device_id: str):
        row = conn.execute(select(_devices).where(_devices.c.id == device_id, _devices.c.deleted.is_(None))).first()
        if row is None:
            raise NotEnrolled(f"bundle refused: device {device_id} is not enrolled at this master")
        return row

    @staticmethod
    def _check_replay(conn: Connection, head: bundle.Header, peer) -> None:
        if conn.execute(select(tables.seen.c.bundle_id).where(tables.seen.c.bundle_id == head.id)).first():
            raise Replayed(f"bundle refused: {head.id} from {head.sender} was already imported (replay)")
        if peer and head.seq <= peer["bundle_seq"]:
            raise Replayed(f"bundle refused: sequence {head.seq} from {head.sender} is not above the last "
                           f"accepted {peer['bundle_seq']} (replay or a cloned tablet)")

    def _apply_push(self, rec, conn: Connection, head: bundle.Header, body: dict, device, peer) -> tuple[bytes, str]:
        where = f"bundle {head.id} from {head.sender}"
        ops = _body_ops(body, where)
        _one_change_per_op_id(ops, where)
        cursor = _int(body, "cursor", where)
        if peer and cursor < peer["cursor"]:
            raise CloneDetected(f"bundle refused: device {head.sender} reports cursor {cursor}, below the "
                                f"{peer['cursor']} it acknowledged before: a cloned tablet or a restored backup; "
                                f"enroll it again as a new device")
        through = peer["through"] if peer else 0
        # Op ids are UUIDv7, increasing on a device: an op above both the
        # acknowledged position and the newest op id taken from this device
        # is new, so only the others are looked up (a tablet that downloaded
        # afresh sends its own old ops again, at new positions).
        newest_key = f"sync.newest.{head.sender}"
        newest = get_meta(conn, newest_key) or ""
        maybe = [op.op_id for op in ops if op.seq <= through or op.op_id <= newest]
        # Held ops are known too: a bundle re-sent after a lost reply carries them again.
        known = apply.known_op_ids(conn, maybe) | quarantine.known(conn, maybe)
        forked = [op for op in ops if op.seq <= through and op.op_id not in known]
        if forked:
            raise CloneDetected(f"bundle refused: device {head.sender} sends a new op {forked[0].op_id} at position "
                                f"{forked[0].seq}, already acknowledged with other ops: a cloned tablet or a restored backup")
        grids = scope.worker_grids(conn, device.worker_id)
        # What the tablet may have held: its scope at the last reply, and the grids of every
        # assignment the worker has had. An op recorded there while a reassignment (or its
        # eviction) travelled is held for the office; refused, it would refuse every later bundle.
        previous = set(peer["scope"]) if peer else set()
        previous |= scope.grids_changed_since(conn, device.worker_id, 0)
        sender = Sender(head.sender, device.worker_id, scope.worker_role(conn, device.worker_id), frozenset(grids),
                        frozenset(previous), cursor)
        fresh = [op for op in ops if op.op_id not in known]
        same_rules = self.ruleset is not None and body.get("ruleset") == self.ruleset.version
        ok, drifted = authorise(conn, fresh, sender, self.ruleset, now_ms=rec.physical_ms,
                                max_drift_ms=self.max_drift_ms, validate=same_rules)
        done = apply.apply_ops(conn, ok, ruleset=self.ruleset, masters=frozenset({self.device_id}),
                               record_conflicts=True, fresh=True, derive=False)
        done.duplicates += len(ops) - len(fresh)
        # What belongs to a row the tablet moved, or a row it put with an owner the office moved
        # meanwhile, goes to the owner's grid, in the master's own ops.
        rec.placed.note_ops(done.applied)
        placement.settle(rec, rec.placed, strict=False)
        if fresh:
            set_meta(conn, newest_key, max(newest, max(op.op_id for op in fresh)))
        # Moves the office recorded here since the last exchange are replayed with the rest.
        apply.rederive_since_last(conn, self.ruleset, frozenset({self.device_id}), True)
        if done.orphans:
            raise SyncError(f"{where}: op {done.orphans[0].op_id} updates a row the master does not have")
        quarantine.hold(conn, drifted, rec.physical_ms)
        if done.max_hlc:
            rec.clock.observe(done.max_hlc, rec.physical_ms)
        acked = max([through] + [op.seq for op in ops])
        clock = max(rec.clock.last, pack(rec.physical_ms))
        reply_body = self._reply_body(conn, head, body, cursor, sender, peer, acked, done, drifted, clock)
        reply = bundle.build("reply", uuid7(), self.device_id, head.sender, head.seq, reply_body, self.keys,
                             PublicKeys.from_b64(device.sign_key, device.box_key))
        self._remember(conn, head, peer, acked, cursor, grids, reply, rec.physical_ms)
        summary = (f"{len(done.applied)} ops applied from {head.sender} ({done.duplicates} already known, "
                   f"{len(drifted)} quarantined, {len(done.conflicts)} conflicts); {len(reply_body['ops'])} ops sent back")
        return reply, summary

    def _reply_body(self, conn, head, body, cursor, sender, peer, acked, done, drifted, clock) -> dict:
        grids = sorted(sender.grids)
        horizon = int(get_meta(conn, "sync.gc_horizon") or 0)
        reset = bool(body.get("repair")) or (cursor < horizon)
        upto = apply.log_top(conn)
        evict: dict[str, list[str]] = {}
        if reset:
            ops = _ops_of_scope(conn, grids, shared=True)
        else:
            ops = _ops_since(conn, cursor, head.sender, grids)
            # A row the office moved into the device's grids comes whole: the device never had its insert.
            moved = {(op.entity, op.entity_id) for op in ops if op.kind == "update" and "grid_id" in op.fields}
            if moved:
                ops = _merge_ops(ops, _ops_of_rows(conn, moved, grids))
            old = set(peer["scope"]) if peer else set()
            if peer:
                evict = _moved_away(conn, cursor, grids, old | set(grids))
            # The last reply may have been lost: a grid whose assignment changed after the cursor
            # this push acknowledges may not have reached the tablet, so it is backfilled again
            # (ops it has are skipped by id), and evicted again if it is gone.
            unsure = scope.grids_changed_since(conn, sender.worker_id, cursor) if peer else set()
            if peer and (old != set(grids) or unsure):
                for entity, ids in _rows_only_in(conn, sorted((old | unsure) - set(grids)), grids).items():
                    evict[entity] = sorted(set(evict.get(entity, ())) | set(ids))
                ops = _merge_ops(ops, _ops_of_scope(conn, sorted(set(grids) - (old - unsure))))
            # Tombstones collected since the cursor go from the tablet too, or its checksums would differ.
            for entity, entity_id in conn.execute(select(tables.collected.c.entity, tables.collected.c.entity_id)
                                                  .where(tables.collected.c.seq > cursor)):
                evict.setdefault(entity, []).append(entity_id)
        version = self.ruleset.version if self.ruleset else ""
        return {
            "ack": {"bundle": head.id, "through": acked, "applied": len(done.applied),
                    "quarantined": [[op.op_id, reason] for op, reason in drifted],
                    # So a tablet whose clock ran ahead can set it back (`DeviceSync`).
                    "clock": clock, "max_drift_ms": self.max_drift_ms},
            "master": self.device_id, "reset": reset, "upto": upto, "ops": [op.to_wire() for op in ops],
            "evict": evict, "checksums": scope.checksums(conn, grids),
            "ruleset": self.ruleset.canonical_json() if self.ruleset and body.get("ruleset") != version else None,
        }

    @staticmethod
    def _remember(conn, head, peer, acked, cursor, grids, reply, now_ms) -> None:
        values = {"bundle_seq": head.seq, "bundle_id": head.id, "through": acked, "cursor": cursor,
                  "scope": list(grids), "reply": reply, "seen_at": now_ms}
        if peer:
            conn.execute(tables.peer.update().where(tables.peer.c.device_id == head.sender).values(**values))
        else:
            conn.execute(tables.peer.insert().values(device_id=head.sender, **values))
        conn.execute(tables.seen.insert().values(bundle_id=head.id, device_id=head.sender, seq=head.seq))


def _wire(row) -> WireOp:
    fields, stamps = stored_json(row.fields), stored_json(row.stamps)
    return WireOp(row.op_id, row.entity, row.entity_id, row.hlc, row.actor, row.device, row.kind, fields, None,
                  row.seq, stamps or None)


def _ops_since(conn: Connection, cursor: int, device_id: str, grids: list[str]) -> list[WireOp]:
    """Master ops after ``cursor`` that the device lacks and may hold, in log order.

    The scope test runs in SQL, row by row of the log since ``cursor``: with
    hundreds of tablets syncing, that stretch holds everyone's ops and
    loading them all to pick a few made each exchange slower than the last.
    A CASE (not an OR) keeps SQLite on the log's position order instead of
    the entity index.
    """
    in_scope = {}
    for entity in scope.SCOPED:
        source, grid = scope.placed(entity)
        in_scope[entity] = exists(select(literal(1)).select_from(source).where(
            table_of(entity).c.id == _op.c.entity_id, grid.in_(grids)))
    wanted = case(in_scope, value=_op.c.entity, else_=_op.c.entity.in_(sorted(scope.SHARED)))
    query = select(_op).where(_op.c.seq > cursor, _op.c.device != device_id, wanted).order_by(_op.c.seq)
    return [_wire(r) for r in conn.execute(query)]


def _ops_of_scope(conn: Connection, grids: list[str], shared: bool = False) -> list[WireOp]:
    """Every op of every row in the scope of ``grids``, in log order; shared rows too if there are
    grids or ``shared`` says so (a download afresh: a worker between two jobs holds none, and still
    needs the grid tree, the workers and the assignments every checksum covers)."""
    out: list[WireOp] = []
    for entity in scope.synced_entities():
        if entity in scope.SHARED:
            if grids or shared:
                out.extend(_wire(r) for r in conn.execute(select(_op).where(_op.c.entity == entity)))
            continue
        # Joined, not `entity_id IN (rows in scope)`, which SQLite runs several times slower.
        table = table_of(entity)
        source, grid = scope.placed(entity)
        query = select(_op).select_from(_op.join(source, table.c.id == _op.c.entity_id)).where(grid.in_(grids))
        out.extend(_wire(r) for r in conn.execute(query.where(_op.c.entity == entity)))
    return sorted(out, key=lambda op: op.seq)


def _ops_of_rows(conn: Connection, rows: set[tuple[str, str]], grids: list[str]) -> list[WireOp]:
    """Every op of ``rows`` (entity, id), and of the append-only rows that belong to them (a case's
    moves, a household's visits, a visit's photos) and lie in ``grids``, in log order."""
    out: list[WireOp] = []
    wanted = {entity: {i for e, i in rows if e == entity} for entity, _ in rows}
    for entity in apply.ENTITY_ORDER:  # owners first: a visit's photos follow the visit in turn
        for column, owner in placement.BELONGS.get(entity, ()):
            if wanted.get(owner):
                found = _referring(conn, entity, column, wanted[owner])
                # A photo of a case taken on a visit lies with the case, wherever the visit goes.
                placed = scope.grids_of(conn, entity, found) if found else {}
                wanted.setdefault(entity, set()).update(i for i in found if placed.get(i) in grids)
    for entity, ids in wanted.items():
        ids = sorted(ids)
        for start in range(0, len(ids), apply.CHUNK):
            chunk = ids[start : start + apply.CHUNK]
            out.extend(_wire(r) for r in conn.execute(select(_op).where(_op.c.entity == entity,
                                                                        _op.c.entity_id.in_(chunk))))
    return sorted(out, key=lambda op: op.seq)


def _merge_ops(first: list[WireOp], second: list[WireOp]) -> list[WireOp]:
    seen, out = set(), []
    for op in sorted(first + second, key=lambda op: op.seq):
        if op.op_id not in seen:
            seen.add(op.op_id)
            out.append(op)
    return out


def _rows_only_in(conn: Connection, old: list[str], new: list[str]) -> dict[str, list[str]]:
    """Ids per entity of rows in the grids ``old`` and not in ``new``: explicit evictions."""
    out = {}
    for entity in scope.SCOPED:
        ids = set(conn.execute(scope.rows_in_scope(conn, entity, old)).scalars())
        ids -= set(conn.execute(scope.rows_in_scope(conn, entity, new)).scalars())
        if ids:
            out[entity] = sorted(ids)
    return out


def _moved_away(conn: Connection, cursor: int, grids: list[str], held: set[str]) -> dict[str, list[str]]:
    """Ids per entity of rows moved after ``cursor`` out of ``grids``, that were once in a grid of
    ``held``: the device evicts each with what belongs to it, rather than finding its checksums
    differ and downloading afresh."""
    movable = sorted(placement.WATCHED)
    found: dict[str, set[str]] = {}
    for entity, entity_id in conn.execute(select(_op.c.entity, _op.c.entity_id).distinct().where(
            _op.c.seq > cursor, _op.c.kind == "update", _op.c.entity.in_(movable),
            cast(_op.c.fields, String).like('%"grid_id"%'))):
        found.setdefault(entity, set()).add(entity_id)
    out = {}
    for entity, ids in found.items():
        now = scope.grids_of(conn, entity, ids)
        away = [i for i, grid in now.items() if grid not in grids]
        ever = scope.grids_ever_of(conn, entity, away) if away else {}
        gone = sorted(i for i in away if not held.isdisjoint(ever.get(i, ())))
        if gone:
            out[entity] = gone
    return out


# -- the device ------------------------------------------------------------------------------------


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
            ops = [_with_seen(conn, _wire(r), ruleset) for r in rows]
            # Edits of critical fields are reviewed one by one at the office: never folded.
            critical = {entity: merge.critical_fields(ruleset, entity) for entity in {op.entity for op in ops}}
            ops = coalesce(ops, lambda op: not critical[op.entity].isdisjoint(op.fields),
                           _may_join(pack(rec.physical_ms + DEFAULT_MAX_DRIFT_MS)))
            seq = state.seq + 1
            bundle_id = uuid7()
            body = {"ops": [op.to_wire() for op in ops], "cursor": state.cursor,
                    "repair": state.repair, "ruleset": ruleset.version if ruleset else ""}
            data = bundle.build("push", bundle_id, self.device_id, self.master.device_id, seq, body, self.keys,
                                self.master.keys)
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
        ops = _body_ops(body, where)
        if conn.dialect.name == "sqlite":
            # A row moved in comes as all its ops: its insert may name the owner it had then, which this
            # tablet never holds; the update after it names the one it has. Foreign keys hold at commit.
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        through, before = _int(ack, "through", where), state.through
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
        unsent = [_wire(r) for r in conn.execute(select(_op).where(
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
        state.through, state.cursor, state.pending, state.repair = through, _int(body, "upto", where), None, result.again
        state.save(conn)
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
    earlier = [_wire(r) for r in conn.execute(select(_op).where(
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
                    doomed.setdefault(child, set()).update(_referring(conn, child, column, doomed[parent]))
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


def _referring(conn: Connection, entity: str, column: str, ids: set[str]) -> set[str]:
    """Ids of the ``entity`` rows whose ``column`` names one of ``ids``."""
    table, found, listed = apply.table_of(entity), set(), sorted(ids)
    for start in range(0, len(listed), apply.CHUNK):
        found.update(conn.execute(select(table.c.id).where(
            table.c[column].in_(listed[start : start + apply.CHUNK]))).scalars())
    return found


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


def conflicts(store: Store, include_resolved: bool = False) -> list[dict]:
    """Conflicts for review (critical fields, stale moves, proposals, quarantined ops), oldest first."""
    with store.read() as conn:
        query = select(tables.conflict).order_by(tables.conflict.c.hlc, tables.conflict.c.id)
        if not include_resolved:
            query = query.where(tables.conflict.c.resolved.is_(False))
        return [dict(r) for r in conn.execute(query).mappings()]
