"""A worker's day through `Tablet`, against an `Office` served over real HTTP on loopback."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wangge import rulesets
from wangge.app import Office, Tablet
from wangge.core.errors import StoreError, SyncError, ValidationFailed, WanggeError
from wangge.sync.device.atrest import WrongPassphrase
from wangge.web.server import master_app, running

CST = timezone(timedelta(hours=8))
PATROL = datetime(2026, 10, 13, 10, 0, tzinfo=CST)
PASSPHRASE = "王芳的口令 tablet"


@pytest.fixture
def street(tmp_path):
    """An office with one grid and its worker, served over HTTP: (office, url, worker id)."""
    office = Office.create(tmp_path / "office.db", rules=str(rulesets.path("teda")))
    office.add_grid("TF", level="社区", name="泰丰社区")
    office.add_grid("TF.01", level="网格", name="泰丰1网格", upper="TF")
    worker = office.add_worker("王芳", role="网格员", grids=["TF.01"])
    office.add_worker("系统中心", role="指挥中心", grids=["TF"])
    with running(master_app(office.master_service(), tmp_path / "files")) as url:
        yield office, url, worker
    office.close()


def _enrolled(tmp_path, office, url, worker, name="tablet.db") -> Tablet:
    tablet = Tablet.create(tmp_path / name, PASSPHRASE, scrypt_n=2**10)
    asked = tablet.enroll("王芳的平板", url)
    assert asked.status == "pending"
    approved = office.approve(tablet.device_id, "王芳")
    assert approved.device_id == tablet.device_id and approved.card.startswith("wangge-master:1:")
    return tablet


def test_a_worker_records_a_household_resident_visit_and_case_that_reach_the_office(tmp_path, street):
    office, url, worker = street
    with _enrolled(tmp_path, office, url, worker) as tablet:
        tablet.sync(url)  # the roster and the ruleset come down
        assert tablet.ruleset.version == office.ruleset.version
        home = tablet.record_household(by=worker, grid="TF.01", address="3-201", members=3,
                                       fields={"户主": "王建国", "人口": 3, "产权": "商品房"})
        tablet.edit_household(home, {"members": 4, "老人": 1}, by=worker)
        resident = tablet.record_resident(by=worker, household=home, name="王大爷", phone="13800000000")
        tablet.edit_resident(resident, {"phone": "13900000000"}, by=worker)
        tablet.record_visit(by=worker, household=home, at=PATROL, minutes=20, purpose="走访", fields={"方式": "入户走访"})
        sha = tablet.photos.put(b"a photo of the broken box")
        reported = tablet.report_case(by=worker, item="0103", grid="TF.01", channel="巡查", at=PATROL,
                                      description="通讯箱破损", photos=[sha], household=home)
        assert tablet.move_case(reported.number, "上报", role="网格员", by=worker, evidence=["photo"],
                                at=PATROL + timedelta(minutes=5)) == "立案"
        said = tablet.sync(url)
    assert "photos: 1 sent" in said
    at_office = office.cases()
    assert [(c.number, c.status, c.grid) for c in at_office] == [(reported.number, "立案", "TF.01")]
    from sqlalchemy import select

    from wangge.core.models import Household, Resident, Visit

    with office.store.read() as conn:
        assert conn.execute(select(Household.members, Household.fields).where(Household.id == home)).one() == \
            (4, {"户主": "王建国", "人口": 3, "产权": "商品房", "老人": 1})
        assert conn.execute(select(Resident.phone).where(Resident.id == resident)).scalar() == "13900000000"
        assert conn.execute(select(Visit.minutes).where(Visit.household_id == home)).scalar() == 20
    from wangge.sync.attachments import BlobStore

    assert BlobStore(tmp_path / "files" / "blobs").read(sha) == b"a photo of the broken box"


def test_district_fields_are_checked_on_the_tablet_before_anything_is_written(tmp_path, street):
    office, url, worker = street
    with _enrolled(tmp_path, office, url, worker) as tablet:
        tablet.sync(url)
        with pytest.raises(ValidationFailed, match="户主"):
            tablet.record_household(by=worker, grid="TF.01", address="1-101")
        home = tablet.record_household(by=worker, grid="TF.01", address="1-101", fields={"户主": "李", "人口": 2})
        with pytest.raises(ValidationFailed) as bad:
            tablet.record_visit(by=worker, household=home)  # 方式 (the kind of visit) is required by TEDA's register
        assert any("走访方式" in p for p in bad.value.problems)
        with pytest.raises(ValidationFailed):
            tablet.edit_household(home, {"产权": "别墅"}, by=worker)
        with pytest.raises(StoreError, match="no household"):
            tablet.record_resident(by=worker, household="nope", name="x")
        assert tablet.sync(url).startswith("sent")
    with office.store.read() as conn:
        from sqlalchemy import func, select

        from wangge.core.models import Visit

        assert conn.execute(select(func.count()).select_from(Visit)).scalar() == 0


def test_a_tablet_without_network_exchanges_bundle_files_with_the_office(tmp_path, street):
    office, url, worker = street
    card = None
    tablet = Tablet.create(tmp_path / "usb.db", PASSPHRASE, scrypt_n=2**10)
    with tablet:
        request = tablet.enroll("离线平板").request
        card = office.approve(request.to_text(), "王芳").card
        assert tablet.trust(card) == office.device_id
        size = tablet.export_bundle(tmp_path / "push.wgb")
        assert size > 0
    imported = office.import_bundle(tmp_path / "push.wgb")
    assert imported.reply == tmp_path / "push.wgb.reply"
    with Tablet.open(tmp_path / "usb.db", PASSPHRASE) as tablet:
        result = tablet.import_bundle(imported.reply)
        assert result.applied > 0  # the roster came back on the stick
        assert "TF.01" in {c.code for c in _grids(tablet)}


def _grids(tablet):
    from sqlalchemy import select

    from wangge.core.models import GridCell

    with tablet.store.read() as conn:
        return conn.execute(select(GridCell.code)).all()


def test_a_wrong_passphrase_and_a_tablet_without_rules_are_said_plainly(tmp_path):
    Tablet.create(tmp_path / "t.db", PASSPHRASE, scrypt_n=2**10).close()
    with pytest.raises(WrongPassphrase):
        Tablet.open(tmp_path / "t.db", "not the passphrase")
    with Tablet.open(tmp_path / "t.db", PASSPHRASE) as tablet:
        with pytest.raises(WanggeError, match="sync with the master first"):
            tablet.report_case(by="w", item="0103", grid="TF.01", channel="巡查")
        with pytest.raises(SyncError, match="knows no master"):
            tablet.export_bundle(tmp_path / "push.wgb")
    assert not (tmp_path / "push.wgb").exists()


def test_a_clash_on_a_critical_field_is_listed_at_the_office_and_answered(tmp_path, street):
    office, url, worker = street
    with _enrolled(tmp_path, office, url, worker) as tablet:
        tablet.sync(url)
        home = tablet.record_household(by=worker, grid="TF.01", address="2-302", fields={"户主": "张", "人口": 2})
        tablet.sync(url)
        tablet.edit_household(home, {"address": "2-303"}, by=worker)  # the tablet's correction, offline
        with office.store.write(actor="office") as rec:  # meanwhile a resident calls the office
            rec.update("household", home, {"address": "2-304"})
        tablet.sync(url)
    listed = office.conflicts()
    assert [(c["kind"], c["entity_id"], c["field"]) for c in listed] == [("critical", home, "address")]
    assert {listed[0]["kept"], listed[0]["lost"]} == {"2-303", "2-304"}  # neither value lost
    said = office.resolve(listed[0]["id"], "take", by="系统中心", note="checked on the phone")
    assert f"address is now {listed[0]['lost']!r}" in said
    from sqlalchemy import select

    from wangge.core.models import Household

    with office.store.read() as conn:
        assert conn.execute(select(Household.address).where(Household.id == home)).scalar() == listed[0]["lost"]
    assert office.conflicts() == []
    settled = office.conflicts(include_resolved=True)
    assert len(settled) == 1 and "take by 系统中心" in settled[0]["note"]


def test_the_office_lists_revokes_and_signs_its_devices(tmp_path, street):
    office, url, worker = street
    with _enrolled(tmp_path, office, url, worker) as tablet:
        tablet.sync(url)
        listed = office.devices()
        assert [(d["device_id"], d["status"], d["worker"]) for d in listed.rows] == [(tablet.device_id, "active", "王芳")]
        snapshot = office.registry_snapshot(tmp_path / "registry.json")
        assert (snapshot.devices, snapshot.master) == (1, office.device_id)
        assert (tmp_path / "registry.json").read_bytes()
        office.revoke(tablet.device_id)
        assert office.devices().rows[0]["status"] == "revoked"
        assert office.devices().registry_version > listed.registry_version
        with pytest.raises(SyncError, match="revoked"):
            tablet.sync(url)
