"""The real sync protocol over HTTP: enrollment, first contact, offline cases, scope, revocation.

A real uvicorn server on 127.0.0.1 serves a master store; two encrypted tablets
enroll, learn the master's keys on approval, record cases offline and sync.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from wangge import rulesets
from wangge.core import casework, store
from wangge.core.errors import SyncError
from wangge.core.models import Case
from wangge.sync import enrollment
from wangge.sync.device import atrest
from wangge.sync.log import tables
from wangge.sync.transport.client import MasterClient
from wangge.sync.transport.fieldwork import installed_rules, protocol_exchange, tablet_session
from wangge.sync.identity import store_keys
from wangge.sync.office import Office
from wangge.web.server import master_app, running
from wangge.sync.device.tablet import enrollment_request
from wangge.sync.device import exchange as device_exchange

CST = timezone(timedelta(hours=8))
PATROL = datetime(2026, 10, 13, 10, 0, tzinfo=CST)


@pytest.fixture
def street(tmp_path):
    ruleset = rulesets.load("teda")
    master = store.init(str(tmp_path / "master.db"), "master", extra_migrations=tables.MIGRATIONS)
    with master.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        top = rec.insert("grid_cell", {"code": "T", "level": "区", "name": "泰达"})
        street_ = rec.insert("grid_cell", {"code": "T.1", "level": "街道", "name": "泰达街道", "upper_id": top})
        community = rec.insert("grid_cell", {"code": "T.1.1", "level": "社区", "name": "泰丰", "upper_id": street_})
        grids = {name: rec.insert("grid_cell", {"code": f"T.1.1.{n}", "level": "网格", "name": name, "upper_id": community})
                 for n, name in enumerate(["一网格", "二网格"], 1)}
        for name, grid in zip(["赵巧珍", "李明"], grids.values()):
            worker = rec.insert("worker", {"name": name, "role": "网格员"})
            rec.insert("assignment", {"worker_id": worker, "grid_id": grid})
    office = Office(master, protocol_exchange(master, installed_rules(master)), public_keys=store_keys(master).public)
    with running(master_app(office, tmp_path / "files")) as url:
        yield master, url, grids, ruleset
    master.close()


def _tablet(tmp_path: Path, name: str, worker: str, master, url):
    tablet = atrest.init_tablet(tmp_path / f"{name}.db", "passphrase", n=2**10, extra_migrations=tables.MIGRATIONS)
    with MasterClient(url) as client:
        answer = client.enroll(enrollment_request(tablet, name).__dict__)
        assert answer["status"] == "pending"
        with pytest.raises(SyncError, match="pending at the master: ask the office to approve it"):
            tablet_session(tablet, client)
    with master.write(actor="office") as rec:
        enrollment.approve(rec, tablet.device_id, worker)
    return tablet


def _sync(tablet, url):
    with MasterClient(url) as client:
        return tablet_session(tablet, client)


def _cases(s):
    with s.read() as conn:
        return sorted(conn.execute(select(Case.__table__.c.description)).scalars())


def test_two_tablets_enroll_record_offline_and_sync_within_their_scope(street, tmp_path):
    master, url, grids, ruleset = street
    zhao = _tablet(tmp_path, "zhao", "赵巧珍", master, url)
    li = _tablet(tmp_path, "li", "李明", master, url)
    for tablet in (zhao, li):
        assert "applied" in _sync(tablet, url)  # first contact: learns the master, gets the grid tree
    with zhao.read() as conn:
        assert casework.installed_ruleset(conn).version == ruleset.version  # the ruleset travelled too
    for tablet, grid, text in ((zhao, "一网格", "电信通讯箱破损"), (li, "二网格", "楼道堆物")):
        with tablet.write(actor="worker") as rec:
            casework.report_case(rec, ruleset, item="0103", grid_id=grids[grid], channel="巡查",
                                 reporter_id=None, at=PATROL, description=text, photos=["sha256:p"])
    for tablet in (zhao, li):
        _sync(tablet, url)
    assert _cases(master) == ["楼道堆物", "电信通讯箱破损"]
    _sync(zhao, url)
    assert _cases(zhao) == ["电信通讯箱破损"]  # 李明's grid never reaches 赵巧珍's tablet
    again = _sync(zhao, url)
    assert "0 applied" in again  # idempotent: nothing new, nothing applied twice


def test_a_revoked_tablet_is_refused_and_keeps_its_outbox(street, tmp_path):
    master, url, grids, ruleset = street
    li = _tablet(tmp_path, "li", "李明", master, url)
    _sync(li, url)
    with li.write(actor="worker") as rec:
        casework.report_case(rec, ruleset, item="0103", grid_id=grids["二网格"], channel="巡查",
                             reporter_id=None, at=PATROL, description="revoked later", photos=["sha256:p"])
    with master.write(actor="office") as rec:
        enrollment.revoke(rec, li.device_id)
    with pytest.raises(SyncError, match="revoked"):
        _sync(li, url)
    assert _cases(master) == []
    assert _cases(li) == ["revoked later"]


def test_a_tablet_with_no_network_enrolls_by_text_and_syncs_through_the_inbox(tmp_path, wait_for):
    """The USB story: request text to the office, the master's card back, bundles through the watched inbox."""
    from support import street as st
    from wangge.sync.transport import files, watch
    from wangge.app.commands import approve_device, trust_card
    from wangge.sync.transport.fieldwork import inbox_importer, known_master

    built = st.street(tmp_path)
    path = tmp_path / "offline.db"
    with atrest.init_tablet(path, "我的口令是八个字", n=2**10, extra_migrations=tables.MIGRATIONS) as tablet:
        request = enrollment_request(tablet, "offline").to_text()
        with pytest.raises(SyncError, match="knows no master yet"):
            known_master(tablet)
    answer = approve_device(str(tmp_path / "master.db"), request, built.workers[0])
    card = answer.splitlines()[-1]
    assert card.startswith(enrollment.CARD_PREFIX)
    assert "now syncs with master" in trust_card(str(path), "我的口令是八个字", card)

    inbox = watch.Inbox(tmp_path / "inbox", inbox_importer(
        protocol_exchange(built.store, installed_rules(built.store)), tmp_path / "inbox" / "replies"))
    observer = watch.watch_inbox(inbox)
    try:
        with atrest.open_tablet(path, "我的口令是八个字", extra_migrations=tables.MIGRATIONS) as tablet:
            device = device_exchange.DeviceSync(tablet, store_keys(tablet), known_master(tablet))
            for round_ in range(2):  # first contact brings the grid tree; then a case recorded offline
                if round_:
                    built.report(tablet, 0, "recorded with no network")
                files.write_atomic(tmp_path / "inbox" / f"push{round_}.wgb", device.make_push())
                reply = wait_for(lambda: next((tmp_path / "inbox" / "replies").glob(f"push{round_}.wgb.reply"), None),
                                 "the master's reply in the inbox")
                result = device.accept_reply(files.read_bundle(reply))
            assert result.acked == device.pushed > 0
    finally:
        observer.stop()
        observer.join()
    assert st.cases(built.store) == ["recorded with no network"]
    assert inbox.refused == []
    built.store.close()


def test_a_card_for_another_tablet_is_refused(tmp_path):
    from support import street as st
    from wangge.app.commands import trust_card
    from wangge.sync.transport.fieldwork import master_card

    built = st.street(tmp_path)
    atrest.init_tablet(tmp_path / "t.db", "我的口令是八个字", n=2**10, extra_migrations=tables.MIGRATIONS).close()
    with pytest.raises(SyncError, match="made for device someone-else"):
        trust_card(str(tmp_path / "t.db"), "我的口令是八个字", master_card(built.store, "someone-else"))
    built.store.close()


def test_bundle_export_right_after_enrolling_over_http_learns_the_master(street, tmp_path):
    from wangge.app.commands import enroll_tablet
    from wangge.sync.transport.fieldwork import known_master

    master, url, grids, ruleset = street
    path = tmp_path / "enrolled.db"
    assert "sent to" in enroll_tablet(str(path), "我的口令是八个字", "tablet", url)
    with atrest.open_tablet(path, "我的口令是八个字", extra_migrations=tables.MIGRATIONS) as tablet:
        with pytest.raises(SyncError, match="pending"):
            known_master(tablet)
        with master.write(actor="office") as rec:
            enrollment.approve(rec, tablet.device_id, "赵巧珍")
        assert known_master(tablet).device_id == master.device_id


def test_the_master_authorises_with_the_hot_reloaded_ruleset_and_falls_back_while_the_file_is_broken(street, tmp_path):
    from wangge.sync.transport.fieldwork import live_rules
    from wangge.sync.transport.watch import LiveRuleset

    master, url, grids, ruleset = street
    broken = tmp_path / "street.wg"
    broken.write_text("level 网格 oops {{{\n", encoding="utf-8")
    live = LiveRuleset(broken)
    current = live_rules(live, installed_rules(master))
    assert not live.reload() and live.last_error
    assert current().version == ruleset.version  # the installed one, not nothing
    live.current = "reloaded"
    assert current() == "reloaded"


def test_a_key_file_becomes_a_keyless_stores_identity_but_never_replaces_one(tmp_path):
    from wangge.sync.identity import adopt_keys
    from wangge.sync.keys import DeviceKeys

    keyless = store.init(str(tmp_path / "a.db"), "device")
    given = DeviceKeys.generate()
    adopt_keys(keyless, given)
    assert store_keys(keyless).public == given.public  # kept: later runs need no --keys
    adopt_keys(keyless, given)  # the same file again is fine
    with pytest.raises(SyncError, match="other keys than this store's own"):
        adopt_keys(keyless, DeviceKeys.generate())
    assert store_keys(keyless).public == given.public
    keyless.close()
