"""Opening and creating stores: settings, roles, migrations and bad input."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import Table, Column, Integer, MetaData, inspect, text

from wangge.core import migrations, store
from wangge.core.errors import StoreError, StoreRoleError, UsageError


def _digest(path: Path) -> str:
    return "".join(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.parent.glob(path.name + "*"))
    )


def test_every_sqlite_connection_gets_wal_full_sync_and_foreign_keys(tmp_path):
    with store.init(str(tmp_path / "t.db"), "device") as s:
        connections = [s.engine.connect() for _ in range(2)]
        for conn in connections:
            pragmas = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "synchronous", "foreign_keys")]
            assert pragmas == ["wal", 2, 1]
            conn.close()


def test_a_store_remembers_its_role_and_device(store_target):
    with store.init(store_target, "master") as created:
        device = created.device_id
    with store.open(store_target, "master") as opened:
        assert (opened.role, opened.device_id) == ("master", device)


def test_opening_a_master_as_a_device_is_refused_and_writes_nothing(tmp_path):
    path = tmp_path / "office.db"
    store.init(str(path), "master").close()
    before = _digest(path)
    with pytest.raises(StoreRoleError) as raised:
        store.open(str(path), "device")
    assert str(raised.value) == (
        f"{path} is a master store, not a device store: open it as a master, "
        "or create a device store with `wangge init --role device`"
    )
    assert raised.value.exit_code == 2 and _digest(path) == before


def test_creating_over_an_existing_store_is_refused(tmp_path):
    path = str(tmp_path / "t.db")
    store.init(path, "device").close()
    with pytest.raises(StoreError, match="already exists"):
        store.init(path, "master")
    with store.open(path) as s:
        assert s.role == "device"


@pytest.mark.parametrize(
    "target, message",
    [
        ("mysql://x/y", "unsupported database URL 'mysql://x/y'"),
        ("postgresql://host:abc/db", "bad database URL 'postgresql://host:abc/db'"),
        ("/no/such/folder/t.db", "folder /no/such/folder does not exist"),
    ],
)
def test_bad_targets_get_one_clear_error(target, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        store.init(target, "device")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_folder_is_refused_before_anything_is_written(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(UsageError, match="permission denied"):
        store.init(str(folder / "t.db"), "device")
    assert list(folder.iterdir()) == []


def test_opening_a_missing_store_says_how_to_create_one(tmp_path):
    with pytest.raises(UsageError, match="wangge init"):
        store.open(str(tmp_path / "none.db"))
    assert not (tmp_path / "none.db").exists()


def test_an_unreachable_postgresql_is_a_store_error():
    with pytest.raises(StoreError, match="Connection refused|connection failed"):
        store.init("postgresql://127.0.0.1:1/test", "master")


def test_migrations_applied_twice_are_a_no_op(store_target):
    with store.init(store_target, "device") as s:
        with s.engine.begin() as conn:
            assert migrations.apply(conn, migrations.CORE) == []
            tables = set(inspect(conn).get_table_names())
        assert {"household", "op", "cases", "schema_migration"} <= tables
    with store.open(store_target) as s, s.read() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM schema_migration")).scalar() == len(migrations.CORE)


def test_a_failing_migration_leaves_no_trace(store_target):
    extra = Table("extra", MetaData(), Column("id", Integer, primary_key=True))

    def broken(conn):
        extra.create(conn)
        raise RuntimeError("step two failed")

    with store.init(store_target, "device") as s:
        with pytest.raises(RuntimeError):
            with s.engine.begin() as conn:
                migrations.apply(conn, [migrations.Migration("0099_broken", broken)])
        with s.read() as conn:
            assert "extra" not in inspect(conn).get_table_names()
            assert "0099_broken" not in migrations.applied(conn)


def test_a_path_the_system_will_not_let_us_write_is_one_clear_error():
    # /proc refuses new files even to root, for whom permission bits mean nothing.
    with pytest.raises((UsageError, StoreError), match="/proc/wangge-test.db"):
        store.init("/proc/wangge-test.db", "device")


@pytest.mark.postgres
def test_a_postgresql_store_made_with_32_bit_counts_is_widened_on_opening(pg_url):
    with store.init(pg_url, "master") as s, s.engine.begin() as conn:
        for table, column in migrations.WIDE_INTEGERS:  # as a store made before 0004 has them
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE INTEGER")
        conn.execute(text("DELETE FROM schema_migration WHERE name = '0004_wide_integers'"))
    with store.open(pg_url) as s:
        with s.write() as rec:
            rec.insert("grid_cell", {"id": "g", "code": "01", "level": "grid", "name": "g"})
            rec.insert("household", {"grid_id": "g", "address": "1-1", "members": 2**63 - 1})
        with s.read() as conn:
            assert conn.execute(text("SELECT members FROM household")).scalar() == 2**63 - 1
