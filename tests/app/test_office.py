"""The office's use cases through `Office`, on a real SQLite file and the real PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wangge import rulesets
from wangge.app import Office
from wangge.core.lifecycle import Lifecycle
from wangge.core.errors import RuleFileError, StoreRoleError, TransitionError, UsageError, WanggeError

CST = timezone(timedelta(hours=8))
MORNING = datetime(2026, 10, 13, 9, 0, tzinfo=CST)


def _street(office: Office) -> dict:
    ids = {"TF": office.add_grid("TF", level="社区", name="泰丰社区")}
    ids["TF.01"] = office.add_grid("TF.01", level="网格", name="泰丰1网格", upper="TF")
    ids["王芳"] = office.add_worker("王芳", role="网格员", grids=["TF.01"])
    ids["中心"] = office.add_worker("系统中心", role="指挥中心", grids=["TF"])
    return ids


@pytest.fixture
def office(store_target):
    with Office.create(store_target, rules=str(rulesets.path("teda"))) as opened:
        yield opened


def test_a_case_is_reported_moved_listed_and_explained_at_the_office(office):
    ids = _street(office)
    reported = office.report_case(by=ids["王芳"], item="0103", grid="TF.01", channel="巡查", at=MORNING,
                                  description="通讯箱破损", photos=["sha256:p"])
    assert office.move_case(reported.number, "上报", role="网格员", by=ids["王芳"], at=MORNING + timedelta(hours=1),
                            evidence=["photo"]) == "立案"
    assert office.move_case(reported.case_id, "派遣", role="指挥中心", by=ids["中心"],
                            at=MORNING + timedelta(hours=2)) == "派遣"
    listed = office.cases()
    assert [(c.number, c.grid, c.status) for c in listed] == [(reported.number, "TF.01", "派遣")]
    assert office.cases(status="结案") == []
    explained = office.explain(reported.number)
    assert reported.number in explained and "派遣" in explained


def test_a_move_the_lifecycle_forbids_is_refused_naming_its_guard_and_changes_nothing(office):
    ids = _street(office)
    reported = office.report_case(by=ids["王芳"], item="0103", grid="TF.01", channel="巡查", at=MORNING,
                                  photos=["sha256:p"])
    with pytest.raises(TransitionError) as refused:
        office.move_case(reported.number, "上报", role="网格员", by=ids["王芳"], at=MORNING)  # no photo evidence
    assert refused.value.reason == "missing_evidence"
    assert office.cases()[0].status == Lifecycle.of(office.ruleset).initial
    assert "上报" not in office.explain(reported.number).split("events")[-1]


def test_an_unknown_grid_or_case_is_a_clear_error(office):
    ids = _street(office)
    with pytest.raises(UsageError, match="no grid cell 'TF.99'"):
        office.report_case(by=ids["王芳"], item="0103", grid="TF.99", channel="巡查")
    with pytest.raises(WanggeError, match="no case 'C1'"):
        office.move_case("C1", "派遣", role="指挥中心", by=None)
    assert office.cases() == []


def test_escalation_and_the_months_scores(office):
    ids = _street(office)
    office.report_case(by=ids["王芳"], item="0103", grid="TF.01", channel="巡查", at=MORNING, photos=["sha256:p"])
    swept = office.escalate(at=MORNING + timedelta(days=10))
    assert swept.moved and {m.case for m in swept.moved} == {office.cases()[0].id}
    assert office.escalate(at=MORNING + timedelta(days=10)).moved == ()  # the same moment again: nothing
    scored = office.scores(2026, 10)
    assert "王芳" in {s.worker for s in scored}
    registered = next(s for s in scored if s.worker == "王芳").metrics["registered"]
    assert registered == len(office.cases())


def test_rules_are_installed_from_a_file_and_a_bad_file_installs_nothing(tmp_path):
    target = str(tmp_path / "office.db")
    Office.create(target).close()
    with Office.open(target) as bare:
        with pytest.raises(WanggeError, match="no ruleset"):
            bare.ruleset
    bad = tmp_path / "bad.wg"
    bad.write_text("ruleset broken {\n", encoding="utf-8")
    with pytest.raises(RuleFileError):
        Office.open(target, rules=str(bad))
    with Office.open(target, rules=str(rulesets.path("shushan"))) as opened:
        assert opened.ruleset.version == rulesets.load("shushan").version
    with Office.open(target) as again:  # installed for good
        assert again.ruleset.version == rulesets.load("shushan").version


def test_an_office_refuses_a_tablet_store_and_a_missing_one(tmp_path):
    from wangge.app import stores

    stores.create_tablet(tmp_path / "plain-device.db", "pass phrase", scrypt_n=2**10).close()
    with pytest.raises(UsageError, match="encrypted tablet"):
        Office.open(tmp_path / "plain-device.db")
    with pytest.raises(UsageError, match="no store"):
        Office.open(tmp_path / "missing.db")
    from wangge.core import store

    store.init(str(tmp_path / "dev.db"), "device").close()
    with pytest.raises(StoreRoleError):
        Office.open(tmp_path / "dev.db")


def test_a_watched_rule_file_is_reinstalled_when_it_changes_and_a_broken_one_is_not(tmp_path):
    from support.transport import wait_for

    target, street = str(tmp_path / "office.db"), tmp_path / "rules" / "street.wg"
    street.parent.mkdir()
    street.write_text(rulesets.path("shushan").read_text(encoding="utf-8"), encoding="utf-8")
    Office.create(target).close()
    shushan, teda = rulesets.load("shushan").version, rulesets.load("teda").version
    with Office.open(target, rules=street, watch=True) as office:
        assert office.ruleset.version == shushan
        street.write_text(rulesets.path("teda").read_text(encoding="utf-8"), encoding="utf-8")
        wait_for(lambda: office.ruleset.version == teda, "the changed rule file to be running")
        street.write_text("ruleset broken {\n", encoding="utf-8")
        wait_for(lambda: office.live.last_error, "the broken rule file to be reported")
        assert office.ruleset.version == teda
    with Office.open(target) as again:  # what ran last stays installed for the office's commands
        assert again.ruleset.version == teda
