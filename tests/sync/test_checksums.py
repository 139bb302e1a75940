"""Scope checksums digest stamps in one canonical form, however a store wrote them."""
from __future__ import annotations

import json
import uuid

import pytest

from hypothesis import given
from hypothesis import strategies as st

from wangge.sync.log import scope

stamps = st.dictionaries(st.text(max_size=6), st.tuples(st.integers(0, 2**63 - 1), st.text(max_size=8)).map(list),
                         max_size=8)


@given(stamps)
def test_the_canonical_form_is_sorted_ascii_json_whatever_the_stored_spacing_and_order(value):
    expected = json.dumps(value, sort_keys=True)
    shuffled = dict(reversed(list(value.items())))
    for stored in (json.dumps(shuffled, ensure_ascii=False), json.dumps(shuffled, separators=(",", ":"))):
        assert scope._canonical(json.loads(stored)) == expected


def test_rows_an_import_just_wrote_digest_as_they_would_from_a_cold_start(tmp_path):
    from wangge.core import store
    from wangge.sync.log import apply
    from wangge.sync.log.ops import WireOp

    with store.init(str(tmp_path / "m.db"), "master", device_id="m") as s:
        with s.write() as rec:
            grid = rec.insert("grid_cell", {"code": "01", "level": "grid", "name": "g"})
            ids = [rec.insert("household", {"grid_id": grid, "pets": n}) for n in range(5)]
        with s.write() as rec:
            rec.update("household", ids[0], {"note": "capture"})  # stamps merged by SQLite, not canonical
        later = 2**60  # after every stamp the store made, so each edit wins
        edits = [WireOp(f"op{n}", "household", i, later + n, "w", "tab", "update", {"pets": n, "z": 1, "a": "中"},
                        None, n + 1, {"z": later - 1}) for n, i in enumerate(ids)]
        with s.write() as rec:
            assert len(apply.apply_ops(rec.conn, edits).applied) == 5
        with s.read() as conn:
            assert all(set(json.loads(t)) == {"pets", "z", "a", *(["note"] if n == 0 else [])}
                       for n, (t,) in enumerate(conn.exec_driver_sql("SELECT stamps FROM household ORDER BY hlc")))
        with s.read() as conn:
            warm = scope.checksums(conn, [grid])
            scope._written.clear()
            assert scope.checksums(conn, [grid]) == warm


@pytest.mark.postgres
def test_a_postgresql_master_sorting_by_language_digests_as_an_sqlite_tablet_does(tmp_path):
    from sqlalchemy import create_engine, text

    from wangge.core import store
    from wangge.sync.log import apply
    from wangge.sync.log.ops import WireOp

    from ..conftest import PG_SERVER, _pg_engine

    # Most PostgreSQL servers are set up with a language collation (en_US, ICU), which puts "a1" before "A1".
    admin, name = _pg_engine(), "t_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' "
                          "LOCALE 'C.UTF-8'"))
    try:
        ops = [WireOp("op-g", "grid_cell", "g", 10, "o", "m", "insert", {"code": "01", "level": "grid", "name": "g"})]
        ops += [WireOp(f"op-{i}", "household", i, 11 + n, "o", "m", "insert", {"grid_id": "g", "pets": n})
                for n, i in enumerate(["b", "a1", "A1", "ab", "_", "中"])]
        digests = []
        for url in (str(tmp_path / "tablet.db"), PG_SERVER.rsplit("/", 1)[0] + "/" + name):
            with store.init(url, "master", device_id="m") as s:
                with s.write() as rec:
                    apply.apply_ops(rec.conn, ops)
                with s.read() as conn:
                    digests.append(scope.checksums(conn, ["g"]))
        assert digests[0] == digests[1]
    finally:
        create_engine(PG_SERVER).dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
