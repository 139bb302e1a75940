"""The tablet's sync state as one record: it round-trips, and reads what older stores wrote."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from wangge.core import store
from wangge.sync.log import tables
from wangge.sync.device.session import KEYS, DeviceSession, Pending

_ids = st.text(alphabet="0123456789abcdef-", min_size=1, max_size=36)
_counts = st.integers(min_value=0, max_value=2**63 - 1)
_sessions = st.builds(
    DeviceSession, through=_counts, cursor=_counts, seq=_counts,
    pending=st.none() | st.builds(Pending, _ids, _counts), repair=st.booleans(),
    ruleset=st.none() | st.text(min_size=1), master=st.none() | st.fixed_dictionaries({"id": _ids, "sign": _ids, "box": _ids}),
    enrolled_with=st.none() | st.just("http://10.0.0.2:8470"), last_sync_ms=st.none() | _counts,
    lease_days=st.none() | st.integers(min_value=1, max_value=365))


def test_every_field_has_its_stored_key():
    from dataclasses import fields

    assert {f.name for f in fields(DeviceSession)} - {"_loaded"} == set(KEYS)


@settings(max_examples=40, deadline=None)
@given(_sessions)
def test_a_session_saved_is_the_session_loaded(tmp_path_factory, session):
    with store.init(str(tmp_path_factory.mktemp("s") / "t.db"), "device", extra_migrations=tables.MIGRATIONS) as s:
        with s.write() as rec:
            DeviceSession.load(rec.conn).evolve(**{name: getattr(session, name) for name in KEYS}).save(rec.conn)
        with s.read() as conn:
            loaded = DeviceSession.load(conn)
    assert loaded == session


def test_a_store_written_key_by_key_reads_as_one_session(tmp_path):
    with store.init(str(tmp_path / "t.db"), "device", extra_migrations=tables.MIGRATIONS) as s:
        with s.write() as rec:
            for key, value in (("sync.through", "7"), ("sync.cursor", "42"), ("sync.seq", "3"),
                               ("sync.pending", '{"id": "b-3", "seq": 3}'), ("sync.repair", "1"),
                               ("last_sync_ms", "1760000000000"), ("lease_days", "14")):
                rec.conn.execute(text("INSERT INTO store_meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value})
        with s.read() as conn:
            session = DeviceSession.load(conn)
        assert (session.through, session.cursor, session.seq, session.pending, session.repair) == \
            (7, 42, 3, Pending("b-3", 3), True)
        assert (session.last_sync_ms, session.lease_days, session.master) == (1760000000000, 14, None)
        with s.write() as rec:
            session.pending = None
            session.save(rec.conn)
            stored = rec.conn.execute(text("SELECT value FROM store_meta WHERE key = 'sync.pending'")).scalar()
        assert stored == "{}"
