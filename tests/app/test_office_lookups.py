"""The office's front-door look-ups: a grid by code, a roster file, an account's queue."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wangge import rulesets
from wangge.app import Office
from wangge.app.accounts import LoginRefused
from wangge.core.errors import ImportRefused, UsageError

CST = timezone(timedelta(hours=8))
MORNING = datetime(2026, 10, 13, 9, 0, tzinfo=CST)
PHOTO = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture
def office(tmp_path):
    with Office.create(tmp_path / "office.db", rules=str(rulesets.path("teda"))) as opened:
        opened.add_grid("TF", level="社区", name="泰丰社区")
        opened.add_grid("TF.01", level="网格", name="泰丰1网格", upper="TF")
        opened.add_grid("HB", level="社区", name="海滨社区")
        opened.add_grid("HB.01", level="网格", name="海滨1网格", upper="HB")
        yield opened


def test_a_grid_is_found_by_its_code_with_the_code_of_the_cell_above(office):
    top, cell = office.grid("TF"), office.grid("TF.01")
    assert (cell.code, cell.name, cell.level, cell.upper) == ("TF.01", "泰丰1网格", "网格", "TF")
    assert top.upper is None
    assert cell.id != top.id
    with pytest.raises(UsageError, match="no grid cell with code 'TF.9'"):
        office.grid("TF.9")


def test_a_roster_file_is_imported_whole_or_refused_whole(office, tmp_path):
    good = tmp_path / "workers.csv"
    good.write_text("姓名,角色,负责网格\n王芳,网格员,TF.01\n李强,网格员,HB.01\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("姓名,角色,负责网格\n赵六,网格员,TF.01\n钱七,保安,TF.01\n", encoding="utf-8")
    with pytest.raises(ImportRefused, match="保安"):
        office.import_roster("workers", bad)
    assert _names(office) == []  # 赵六's good row was not written either
    imported = office.import_roster("workers", good)
    assert (imported.inserted, imported.updated) == (2, 0)
    again = office.import_roster("workers", bad, skip_bad=True)
    assert (again.inserted, again.skipped_rows) == (1, 1)
    assert _names(office) == ["李强", "王芳", "赵六"]
    # an imported worker can report in the grid the file gave them
    wang = office.report_case(by=_worker(office, "王芳"), item="0103", grid="TF.01", channel="巡查", at=MORNING,
                              photos=[PHOTO])
    assert wang.decision.grid == "TF.01"


def _names(office):
    from sqlalchemy import select

    from wangge.core.models import Worker

    with office.store.read() as conn:
        return sorted(conn.execute(select(Worker.name)).scalars())


def _worker(office, name):
    from sqlalchemy import select

    from wangge.core.models import Worker

    with office.store.read() as conn:
        return conn.execute(select(Worker.id).where(Worker.name == name)).scalar_one()


def test_an_account_sees_the_cases_of_its_own_grids_only(office):
    tf = office.add_worker("王芳", role="网格员", grids=["TF.01"])
    hb = office.add_worker("李强", role="网格员", grids=["HB.01"])
    ours = office.report_case(by=tf, item="0103", grid="TF.01", channel="巡查", at=MORNING, photos=[PHOTO])
    theirs = office.report_case(by=hb, item="0103", grid="HB.01", channel="巡查", at=MORNING, photos=[PHOTO])
    office.add_account("泰丰站长", "社工站站长", "a long passphrase 123", grid="TF")
    with pytest.raises(LoginRefused):
        office.login("泰丰站长", "not the passphrase")
    me = office.login("泰丰站长", "a long passphrase 123")
    page = office.queue(me, now=MORNING)
    assert [row.number for row in page.rows] == [ours.number]
    assert theirs.number not in {row.number for row in office.queue(me, now=MORNING, grid="HB.01").rows}
    assert office.queue(me, now=MORNING, status="立案").total == 0
    assert office.queue(me, now=MORNING, status="发现").total == 1
