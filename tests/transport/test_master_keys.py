"""A master's private keys live in a key file of mode 0600, never in its database (SQLite or PostgreSQL)."""
from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select

from wangge.cli import cli
from wangge.core import store
from wangge.core.errors import StoreError
from wangge.core.migrations import schema_migration
from wangge.core.models import StoreMeta
from wangge.core.store import set_meta
from wangge.sync.log import tables
from wangge.sync.keys import KEY_FILE_PREFIX
from wangge.sync.identity import META_BOX, META_SIGN, master_key_path, store_keys
from wangge.sync.device import exchange as device_exchange

_meta = StoreMeta.__table__


def _meta_values(s) -> dict:
    with s.read() as conn:
        return dict(conn.execute(select(_meta.c.key, _meta.c.value)).all())


def _private_b64(keys) -> list[str]:
    """The two private keys as base64 of their raw bytes, from the keys' own export."""
    import base64

    raw = base64.b64decode(keys.to_bytes().strip()[len(KEY_FILE_PREFIX):])
    return [base64.b64encode(raw[:32]).decode(), base64.b64encode(raw[32:]).decode()]


def test_the_masters_keys_are_in_a_file_of_its_owner_and_not_in_the_database(store_target):
    with store.init(store_target, "master", extra_migrations=tables.MIGRATIONS) as master:
        keys = store_keys(master)
        with master.read() as conn:
            path = master_key_path(conn)
        values = _meta_values(master)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert META_SIGN not in values and META_BOX not in values
    # What a backup or pg_dump of the database carries: no private key anywhere in it.
    assert not any(secret in str(v) for v in values.values() for secret in _private_b64(keys))
    with store.open(store_target, "master", extra_migrations=tables.MIGRATIONS) as again:
        assert store_keys(again).public == keys.public  # the same identity after a restart


def test_migration_0005_moves_the_keys_of_an_older_master_out(store_target):
    with store.init(store_target, "master", extra_migrations=tables.MIGRATIONS) as master:
        keys = store_keys(master)
        with master.read() as conn:
            path = master_key_path(conn)
        sign, box = _private_b64(keys)
        with master.write() as rec:  # as a master made before key files kept them
            set_meta(rec.conn, META_SIGN, sign)
            set_meta(rec.conn, META_BOX, box)
            rec.conn.execute(delete(_meta).where(_meta.c.key == "master_keys_fingerprint"))
            rec.conn.execute(delete(schema_migration).where(schema_migration.c.name == "0005_master_keys_out"))
    path.unlink()
    with store.open(store_target, "master", extra_migrations=tables.MIGRATIONS) as master:
        values = _meta_values(master)
        assert path.exists() and META_SIGN not in values and META_BOX not in values
        assert store_keys(master).public == keys.public


def test_a_missing_or_exposed_key_file_is_said_not_replaced(tmp_path):
    office = tmp_path / "office.db"
    with store.init(str(office), "master", extra_migrations=tables.MIGRATIONS) as master:
        store_keys(master)
    path = tmp_path / "office.db.keys"
    out = tmp_path / "registry.json"
    path.chmod(0o644)
    exposed = CliRunner().invoke(cli, ["device", "registry", str(office), "--out", str(out)])
    assert exposed.exit_code == 2 and f"chmod 600 {path}" in exposed.output, exposed.output
    path.unlink()
    missing = CliRunner().invoke(cli, ["device", "registry", str(office), "--out", str(out)])
    assert missing.exit_code == 2 and f"key file {path} is missing" in missing.output, missing.output
    assert not path.exists()  # no new identity made in its place
    with pytest.raises(StoreError, match="restore it from its backup"):
        with store.open(str(office), "master", extra_migrations=tables.MIGRATIONS) as master:
            store_keys(master)


@pytest.mark.postgres
def test_a_postgresql_master_keeps_its_key_file_where_the_environment_says(pg_url, tmp_path, monkeypatch):
    chosen = tmp_path / "secrets" / "district.keys"
    monkeypatch.setenv("WANGGE_MASTER_KEYS", str(chosen))
    with store.init(pg_url, "master", extra_migrations=tables.MIGRATIONS) as master:
        keys = store_keys(master)
    assert chosen.exists() and stat.S_IMODE(chosen.stat().st_mode) == 0o600
    assert os.path.getsize(chosen) > 0 and keys is not None


def test_rotated_keys_reach_a_tablet_by_its_card_and_the_old_ones_are_kept_aside(tmp_path):
    from support import street as st
    from wangge.sync import enrollment, protocol
    from wangge.sync.device import atrest
    from wangge.sync.device.tablet import enrollment_request

    built = st.street(tmp_path)
    tablet = tmp_path / "tablet.db"
    env = {"WANGGE_PASSPHRASE": "王芳的口令 tablet"}
    with atrest.init_tablet(tablet, env["WANGGE_PASSPHRASE"], n=atrest.MIN_SCRYPT_N,
                            extra_migrations=tables.MIGRATIONS) as opened:
        with built.store.write(actor="office") as rec:
            enrollment.submit(rec, enrollment_request(opened, "t"))
            enrollment.approve(rec, opened.device_id, built.workers[0])
        device_exchange.trust_master(opened, protocol.Peer(built.store.device_id, store_keys(built.store).public))
    old = store_keys(built.store).public
    built.store.close()

    def round_trip():
        push = tmp_path / "push.wgb"
        runner = CliRunner()
        assert runner.invoke(cli, ["bundle", "export", str(tablet), "--out", str(push)], env=env).exit_code == 0
        at_master = runner.invoke(cli, ["bundle", "import", str(tmp_path / "master.db"), str(push)])
        if at_master.exit_code:
            return at_master
        return runner.invoke(cli, ["bundle", "import", str(tablet), str(tmp_path / "push.wgb.reply")], env=env)

    assert round_trip().exit_code == 0
    rotated = CliRunner().invoke(cli, ["master", "rotate-keys", str(tmp_path / "master.db")])
    assert rotated.exit_code == 0, rotated.output
    retired = next(tmp_path.glob("master.db.keys.retired-*"))
    assert stat.S_IMODE(retired.stat().st_mode) == 0o600 and str(retired) in rotated.output
    with store.open(str(tmp_path / "master.db"), "master", extra_migrations=tables.MIGRATIONS) as master:
        assert store_keys(master).public != old
    refused = round_trip()  # the tablet still seals to the old keys: refused, and kept in its outbox
    assert refused.exit_code == 1 and "sealed to another device" in refused.output
    card = next(line for line in rotated.output.splitlines() if "wangge-master:" in line).split(": ", 1)[1]
    trusted = CliRunner().invoke(cli, ["device", "trust", str(tablet), card], env=env)
    assert trusted.exit_code == 0, trusted.output
    assert round_trip().exit_code == 0
