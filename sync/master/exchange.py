"""The master's side of the sync session, sans-IO: a tablet's push in, the reply out.

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
checksum per entity of the device's scope. Re-sending the latest bundle returns
the same reply without applying anything twice.

Keys, clocks (through the `Store`'s ``now_ms``) and the ruleset are passed in.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core import codec, placement
from wangge.core.errors import SyncError
from wangge.core.hlc import DEFAULT_MAX_DRIFT_MS, pack
from wangge.core.ids import uuid7
from wangge.core.capture import stored_json, table_of
from wangge.core.models import Op
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store, set_meta
from wangge.sync import bundle
from wangge.sync.log import apply, scope, tables
from wangge.sync.master import quarantine, revoked
from wangge.sync.master.authorise import Sender, authorise
from wangge.sync.keys import DeviceKeys, PublicKeys
from wangge.sync.log.ops import WireOp
from wangge.sync.protocol import CloneDetected, NotEnrolled, Replayed, body_int, body_ops, op_of_row, referring

_op = Op.__table__


@dataclass
class MasterSync:
    """The master's side. ``exchange`` is what `wangge.web.sync.Master` and file imports call."""

    store: Store
    keys: DeviceKeys
    ruleset: Optional[Ruleset] = None
    max_drift_ms: int = DEFAULT_MAX_DRIFT_MS
    #: Ops received and sent back by the last exchange, for the server's access log.
    counted: tuple[int, int] = field(default=(0, 0), init=False)
    #: The device whose bundle the last exchange took (its id as the bundle's header gives it).
    sender: str = field(default="", init=False)

    @property
    def device_id(self) -> str:
        return self.store.device_id

    def exchange(self, data: bytes) -> tuple[bytes, str]:
        """Verify, authorise and apply a device's push; return the signed reply and a one-line summary.

        Raises `BundleError` (malformed, over a cap), `NotEnrolled`, `SignatureInvalid`,
        `Replayed`, `SealBroken`, `CloneDetected` or `Unauthorised`; the store is unchanged
        then, except that a revoked tablet's own bundle is kept for review (`wangge.sync.master.revoked`).
        """
        env = bundle.parse(data)
        head = env.header
        self.sender = head.sender
        if head.kind != "push" or head.recipient != self.device_id:
            raise bundle.BundleError(f"bundle {head.id} is a {head.kind} for {head.recipient}, "
                                     f"expected a push for this master {self.device_id}")
        with self.store.write(actor="sync") as rec:
            conn = rec.conn
            device = self._known(conn, head)
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
        peer = None
        if device.peer is not None:
            peer = {"bundle_seq": device.bundle_seq, "bundle_id": device.bundle_id, "through": device.through,
                    "cursor": device.cursor, "scope": stored_json(device.scope), "reply": device.reply}
        if peer and head.id == peer["bundle_id"] and peer["reply"]:
            return bytes(peer["reply"]), f"bundle {head.id} from {head.sender} was imported before: same reply, nothing applied"
        self._check_replay(head, peer, bool(device.seen))
        body = env.open(self.keys)
        return self._apply_push(rec, conn, head, body, device, peer)

    @staticmethod
    def _known(conn: Connection, head: bundle.Header):
        """The sender's device row, with its peer row's columns (``peer`` None without one) and
        whether the bundle was seen before: one query for the three lookups."""
        row = scope.written(conn, _DEVICE_SQL, (head.id, head.sender)).first()
        if row is None:
            raise NotEnrolled(f"bundle refused: device {head.sender} is not enrolled at this master")
        return row

    @staticmethod
    def _check_replay(head: bundle.Header, peer, seen: bool) -> None:
        if seen:
            raise Replayed(f"bundle refused: {head.id} from {head.sender} was already imported (replay)")
        if peer and head.seq <= peer["bundle_seq"]:
            raise Replayed(f"bundle refused: sequence {head.seq} from {head.sender} is not above the last "
                           f"accepted {peer['bundle_seq']} (replay or a cloned tablet)")

    def _apply_push(self, rec, conn: Connection, head: bundle.Header, body: dict, device, peer) -> tuple[bytes, str]:
        where = f"bundle {head.id} from {head.sender}"
        ops = body_ops(body, where)
        _one_change_per_op_id(ops, where)
        cursor = body_int(body, "cursor", where)
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
        newest = _meta(conn, newest_key) or ""
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
        changes = scope.assignment_changes(conn, device.worker_id)
        previous |= scope.changed_since(conn, changes, 0)
        sender = Sender(head.sender, device.worker_id, scope.worker_role(conn, device.worker_id), frozenset(grids),
                        frozenset(previous), cursor)
        fresh = [op for op in ops if op.op_id not in known]
        same_rules = self.ruleset is not None and body.get("ruleset") == self.ruleset.version
        ok, drifted = authorise(conn, fresh, sender, self.ruleset, now_ms=rec.physical_ms,
                                max_drift_ms=self.max_drift_ms, validate=same_rules)
        done = apply.apply_ops(conn, ok, ruleset=self.ruleset, masters=frozenset({self.device_id}),
                               record_conflicts=True, fresh=True, derive=False, stored=ok.stored)
        done.duplicates += len(ops) - len(fresh)
        # What belongs to a row the tablet moved, or a row it put with an owner the office moved
        # meanwhile, goes to the owner's grid, in the master's own ops.
        rec.placed.note_ops(done.applied)
        placement.settle(rec, rec.placed, strict=False)
        if fresh:
            _set_meta(conn, newest_key, newest, max(newest, max(op.op_id for op in fresh)))
        # Moves the office recorded here since the last exchange are replayed with the rest.
        apply.rederive_since_last(conn, self.ruleset, frozenset({self.device_id}), True)
        if done.orphans:
            raise SyncError(f"{where}: op {done.orphans[0].op_id} updates a row the master does not have")
        quarantine.hold(conn, drifted, rec.physical_ms)
        if done.max_hlc:
            rec.clock.observe(done.max_hlc, rec.physical_ms)
        acked = max([through] + [op.seq for op in ops])
        clock = max(rec.clock.last, pack(rec.physical_ms))
        reply_body = self._reply_body(conn, head, body, cursor, sender, peer, acked, done, drifted, clock, changes)
        reply = bundle.build("reply", uuid7(), self.device_id, head.sender, head.seq, reply_body, self.keys,
                             PublicKeys.from_b64(device.sign_key, device.box_key), version=head.version)
        self._remember(conn, head, peer, acked, cursor, grids, reply, rec.physical_ms)
        self.counted = (len(ops), len(reply_body["ops"]))
        summary = (f"{len(done.applied)} ops applied from {head.sender} ({done.duplicates} already known, "
                   f"{len(drifted)} quarantined, {len(done.conflicts)} conflicts); {len(reply_body['ops'])} ops sent back")
        return reply, summary

    def _reply_body(self, conn, head, body, cursor, sender, peer, acked, done, drifted, clock, changes) -> dict:
        grids = sorted(sender.grids)
        horizon = int(_meta(conn, "sync.gc_horizon") or 0)
        reset = bool(body.get("repair")) or (cursor < horizon)
        upto = scope.written(conn, "SELECT COALESCE(MAX(seq), 0) FROM op").scalar()
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
            unsure = scope.changed_since(conn, changes, cursor) if peer else set()
            if peer and (old != set(grids) or unsure):
                for entity, ids in _rows_only_in(conn, sorted((old | unsure) - set(grids)), grids).items():
                    evict[entity] = sorted(set(evict.get(entity, ())) | set(ids))
                ops = _merge_ops(ops, _ops_of_scope(conn, sorted(set(grids) - (old - unsure))))
            # Tombstones collected since the cursor go from the tablet too, or its checksums would differ.
            for entity, entity_id in scope.written(conn, "SELECT entity, entity_id FROM sync_collected "
                                                         "WHERE seq > ?", (cursor,)):
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
            scope.written(conn, _REMEMBER_SQL[conn.dialect.name == "postgresql"],
                          (head.seq, head.id, acked, cursor, codec.column(list(grids)), reply, now_ms, head.sender))
        else:
            conn.execute(tables.peer.insert().values(device_id=head.sender, **values))
        scope.written(conn, "INSERT INTO sync_seen (bundle_id, device_id, seq) VALUES (?, ?, ?)",
                      (head.id, head.sender, head.seq))


_DEVICE_SQL = ('SELECT d.status, d.sign_key, d.box_key, d.worker_id, p.device_id AS peer, p.bundle_seq, '
               'p.bundle_id, p.through, p."cursor" AS "cursor", p.scope, p.reply, '
               'EXISTS (SELECT 1 FROM sync_seen s WHERE s.bundle_id = ?) AS seen '
               'FROM device d LEFT JOIN sync_peer p ON p.device_id = d.id WHERE d.id = ? AND d.deleted IS NULL')

#: The peer's row after an exchange; on PostgreSQL the scope's JSON text is cast to the column's type.
_REMEMBER_SQL = {postgres: f'UPDATE sync_peer SET bundle_seq = ?, bundle_id = ?, through = ?, "cursor" = ?, '
                           f'scope = {"CAST(? AS JSON)" if postgres else "?"}, reply = ?, seen_at = ? '
                           f'WHERE device_id = ?' for postgres in (False, True)}


def _meta(conn: Connection, key: str) -> Optional[str]:
    return scope.written(conn, "SELECT value FROM store_meta WHERE key = ?", (key,)).scalar()


def _set_meta(conn: Connection, key: str, was: Optional[str], value: str) -> None:
    """`set_meta` for a key whose value was just read as ``was`` ("" or None: absent)."""
    if was:
        scope.written(conn, "UPDATE store_meta SET value = ? WHERE key = ?", (value, key))
    else:
        set_meta(conn, key, value)


def _one_change_per_op_id(ops: list[WireOp], where: str) -> None:
    """Refuse a push giving one op id to two ops: the second would be taken for the first (a
    duplicate), and what needs it would fail at the store."""
    given: set[str] = set()
    for n, op in enumerate(ops):
        if op.op_id in given:
            raise bundle.BundleError(f"{where} op {n}: op id {op.op_id} is given to an earlier op of the "
                                     f"bundle too: each op needs its own")
        given.add(op.op_id)


def _ops_since(conn: Connection, cursor: int, device_id: str, grids: list[str]) -> list[WireOp]:
    """Master ops after ``cursor`` that the device lacks and may hold, in log order.

    The scope test runs in SQL, row by row of the log since ``cursor``: with
    hundreds of tablets syncing, that stretch holds everyone's ops and
    loading them all to pick a few made each exchange slower than the last.
    """
    sql, repeat = _ops_since_sql(conn.dialect.paramstyle, len(grids))
    rows = conn.exec_driver_sql(sql, (cursor, device_id, *(tuple(grids) * repeat)))
    return [op_of_row(r) for r in rows]


@functools.lru_cache(maxsize=64)
def _ops_since_sql(paramstyle: str, grids: int) -> tuple[str, int]:
    """`_ops_since`'s query for ``grids`` grid ids, written out once per shape: built by the query
    compiler, its joins and cache key cost more than running it. Returns the SQL and how many
    times the grid ids are bound after the cursor and the device id."""
    mark = "?" if paramstyle == "qmark" else "%s"
    wanted, repeat = scope.op_in_scope_sql(mark, grids)
    columns = ", ".join(f"o.{c.name}" for c in _op.columns)
    return (f"SELECT {columns} FROM {_op.name} o WHERE o.seq > {mark} AND o.device <> {mark} AND {wanted} "
            f"ORDER BY o.seq"), repeat


def _ops_of_scope(conn: Connection, grids: list[str], shared: bool = False) -> list[WireOp]:
    """Every op of every row in the scope of ``grids``, in log order; shared rows too if there are
    grids or ``shared`` says so (a download afresh: a worker between two jobs holds none, and still
    needs the grid tree, the workers and the assignments every checksum covers)."""
    out: list[WireOp] = []
    for entity in scope.synced_entities():
        if entity in scope.SHARED:
            if grids or shared:
                out.extend(op_of_row(r) for r in conn.execute(select(_op).where(_op.c.entity == entity)))
            continue
        # Joined, not `entity_id IN (rows in scope)`, which SQLite runs several times slower.
        table = table_of(entity)
        source, grid = scope.placed(entity)
        query = select(_op).select_from(_op.join(source, table.c.id == _op.c.entity_id)).where(grid.in_(grids))
        out.extend(op_of_row(r) for r in conn.execute(query.where(_op.c.entity == entity)))
    return sorted(out, key=lambda op: op.seq)


def _ops_of_rows(conn: Connection, rows: set[tuple[str, str]], grids: list[str]) -> list[WireOp]:
    """Every op of ``rows`` (entity, id), and of the append-only rows that belong to them (a case's
    moves, a household's visits, a visit's photos) and lie in ``grids``, in log order."""
    out: list[WireOp] = []
    wanted = {entity: {i for e, i in rows if e == entity} for entity, _ in rows}
    for entity in apply.ENTITY_ORDER:  # owners first: a visit's photos follow the visit in turn
        for column, owner in placement.BELONGS.get(entity, ()):
            if wanted.get(owner):
                found = referring(conn, entity, column, wanted[owner])
                # A photo of a case taken on a visit lies with the case, wherever the visit goes.
                placed = scope.grids_of(conn, entity, found) if found else {}
                wanted.setdefault(entity, set()).update(i for i in found if placed.get(i) in grids)
    for entity, ids in wanted.items():
        ids = sorted(ids)
        for start in range(0, len(ids), apply.CHUNK):
            chunk = ids[start : start + apply.CHUNK]
            out.extend(op_of_row(r) for r in conn.execute(select(_op).where(_op.c.entity == entity,
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
    found: dict[str, set[str]] = {}
    for entity, entity_id in scope.written(conn, _MOVED_SQL, (cursor, '%"grid_id"%')):
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


_MOVED_SQL = (f"SELECT DISTINCT entity, entity_id FROM op WHERE seq > ? AND kind = 'update' AND entity IN "
              f"({', '.join(repr(e) for e in sorted(placement.WATCHED))}) AND CAST(fields AS TEXT) LIKE ?")


def conflicts(store: Store, include_resolved: bool = False) -> list[dict]:
    """Conflicts for review (critical fields, stale moves, proposals, quarantined ops), oldest first."""
    with store.read() as conn:
        query = select(tables.conflict).order_by(tables.conflict.c.hlc, tables.conflict.c.id)
        if not include_resolved:
            query = query.where(tables.conflict.c.resolved.is_(False))
        return [dict(r) for r in conn.execute(query).mappings()]

