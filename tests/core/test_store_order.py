"""Writers commit in ``seq`` order on PostgreSQL, so a reader moving its cursor never skips an op.

The op log is read by cursor: ops with ``seq`` above the highest one a reader
has. If a writer that took ``seq`` 11 could commit while another holding 10
is still open, a reader would see 11, move its cursor past 10 and never read
10. Here one writer records an op and holds its transaction open while a
second writer tries to record one, and a reader reads in between.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, select, text

from support.transport import wait_for
from wangge.core import store
from wangge.core.models import Op

pytestmark = pytest.mark.postgres
_op = Op.__table__


def _grid(rec, code: str) -> str:
    return rec.insert("grid_cell", {"code": code, "level": "community", "name": code})


def _read_after(s: store.Store, cursor: int) -> list[tuple[int, str]]:
    with s.read() as conn:
        return [tuple(row) for row in conn.execute(select(_op.c.seq, _op.c.entity_id)
                                                   .where(_op.c.seq > cursor).order_by(_op.c.seq))]


def _waiting_for_the_write_lock(url: str) -> bool:
    """Whether some backend waits for the write lock of the store at ``url`` (`store.WRITE_LOCK`)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid = CAST('store_meta' AS regclass)")).scalar())
    finally:
        engine.dispose()


def test_a_reader_between_two_racing_writers_never_skips_an_op(pg_url):
    with store.init(pg_url, "master") as s:
        first_written, first_may_commit = threading.Event(), threading.Event()
        ids: dict[str, str] = {}

        def first():
            with s.write() as rec:
                ids["first"] = _grid(rec, "A")
                first_written.set()
                first_may_commit.wait(30)

        def second():
            with s.write() as rec:
                ids["second"] = _grid(rec, "B")

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        threads[0].start()
        assert first_written.wait(30)
        threads[1].start()
        # The second writer either waits for the first (ordered writers) or commits around it.
        wait_for(lambda: not threads[1].is_alive() or _waiting_for_the_write_lock(pg_url),
                 "the second writer to commit or to wait for the first")
        seen = _read_after(s, 0)
        cursor = max((seq for seq, _ in seen), default=0)
        first_may_commit.set()
        for thread in threads:
            thread.join(30)
        seen += _read_after(s, cursor)

        everything = _read_after(s, 0)
        assert {entity for _, entity in everything} == {ids["first"], ids["second"]}
        assert seen == everything  # nothing skipped, nothing read twice


def test_the_clock_kept_in_the_store_only_moves_forward_across_racing_writers(pg_url):
    with store.init(pg_url, "master") as s:
        def write(code):
            with s.write() as rec:
                _grid(rec, code)

        threads = [threading.Thread(target=write, args=(f"G{i}",)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        with s.read() as conn:
            stamps = [row.hlc for row in conn.execute(select(_op.c.hlc).order_by(_op.c.seq))]
            kept = int(store.get_meta(conn, "hlc"))
    assert len(stamps) == 8 and stamps == sorted(set(stamps))  # in seq order, none repeated
    assert kept == stamps[-1]
