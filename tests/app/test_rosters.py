"""Rosters from Excel and CSV: every bad cell named, nothing written unless the file passes."""
from __future__ import annotations

import random
import subprocess
import sys

import openpyxl
import pytest
from sqlalchemy import func, select

from support.offices import office
from wangge.app import rosters
from wangge.core import store
from wangge.core.errors import ImportRefused, UsageError
from wangge.core.models import Assignment, Household, Op, Resident, Worker

HEADER = ["网格", "地址", "户主姓名", "常住人口", "建筑面积(平方米)", "产权性质", "车辆", "困难家庭", "户主身份证号"]
GOOD = ["TF.01", "1-101", "张三", 3, 88.5, "商品房", "汽车、自行车", "否", "12010119800101123X"]


def _workbook(path, rows, header=HEADER, title="户籍", banner=True):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    if banner:  # offices put a title row above the header
        sheet.append(["泰丰社区住户登记表"])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return str(path)


def _count(target, model, **where):
    with store.open(target) as opened, opened.read() as conn:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return conn.execute(query).scalar()


@pytest.fixture
def teda(tmp_path):
    return office(tmp_path / "office.db")


def test_a_good_workbook_is_imported_through_change_capture(teda, tmp_path):
    rows = [GOOD, ["TF.02", "2-201", "李四", "2", "60", "保障房", None, "是", None]]
    done = rosters.import_file(teda, "households", _workbook(tmp_path / "h.xlsx", rows))
    assert (done.inserted, done.updated, done.skipped) == (2, 0, ())
    with store.open(teda) as opened, opened.read() as conn:
        stored = {r.address: r for r in conn.execute(select(Household.__table__))}
        ops = conn.execute(select(func.count()).select_from(Op).where(Op.entity == "household")).scalar()
    assert ops == 2  # one op per household: tablets receive them at their next sync
    first = stored["1-101"].fields
    assert first["户主"] == "张三" and first["人口"] == 3 and first["建筑面积"] == 88.5
    assert first["车辆"] == ["汽车", "自行车"] and first["困难"] is False
    assert stored["2-201"].fields["困难"] is True and stored["2-201"].fields["人口"] == 2


def test_every_bad_cell_is_named_and_nothing_is_written(teda, tmp_path):
    rows = [GOOD,
            ["TF.09", "1-102", "李四", "x", 1, "别墅", "飞机", "maybe", 120101198001011234],
            ["TF.01", "1-103", None, 2, 100, "商品房", "汽车", "是", "123"]]
    with pytest.raises(ImportRefused) as refused:
        rosters.import_file(teda, "households", _workbook(tmp_path / "bad.xlsx", rows))
    where = [w for w, _ in refused.value.problems]
    assert where == ["户籍!A4", "户籍!D4", "户籍!E4", "户籍!F4", "户籍!G4", "户籍!H4", "户籍!I4", "户籍!C5", "户籍!I5"]
    messages = dict(refused.value.problems)
    assert "TF.09" in messages["户籍!A4"]
    assert "别墅" in messages["户籍!F4"] and "商品房" in messages["户籍!F4"]
    assert "不小于 5" in messages["户籍!E4"]
    assert "文本" in messages["户籍!I4"]  # an ID number Excel stored as a number has lost digits
    assert "18位身份证号" in messages["户籍!I5"]
    assert "nothing was written" in str(refused.value)
    assert _count(teda, Household) == 0 and _count(teda, Op, entity="household") == 0


def test_skip_bad_writes_the_good_rows_and_reports_the_rest(teda, tmp_path):
    rows = [GOOD, ["TF.01", "1-102", "李四", 0, 50, "商品房", None, None, None], ["TF.02", "1-103", "王五", 4]]
    done = rosters.import_file(teda, "households", _workbook(tmp_path / "h.xlsx", rows), skip_bad=True)
    assert (done.inserted, done.skipped_rows) == (2, 1)
    assert [w for w, _ in done.skipped] == ["户籍!D4"]  # 常住人口 0 is under its minimum of 1
    assert _count(teda, Household) == 2


def test_a_wrong_header_refuses_the_file_even_when_skipping_bad_rows(teda, tmp_path):
    header = ["网格", "地址", "户主名字", "外星人"]
    with pytest.raises(ImportRefused) as refused:
        rosters.import_file(teda, "households", _workbook(tmp_path / "h.xlsx", [["TF.01", "x", "y", "z"]], header),
                            skip_bad=True)
    problems = dict(refused.value.problems)
    assert "did you mean '户主姓名'" in problems["户籍!C2"]
    assert "unknown column '外星人'" in problems["户籍!D2"]
    assert any("常住人口" in message for where, message in refused.value.problems if where == "户籍!2")
    assert _count(teda, Household) == 0


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_files_in_the_encodings_excel_writes(teda, tmp_path, encoding):
    text = "网格,地址,户主姓名,常住人口,困难家庭\nTF.01,泰丰路1号,张三,3,是\nTF.02,泰丰路2号,李四,,否\n"
    path = tmp_path / "h.csv"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(ImportRefused) as refused:
        rosters.import_file(teda, "households", str(path))
    assert [w for w, _ in refused.value.problems] == ["h.csv!D3"]  # 常住人口 is required
    path.write_bytes(text.replace(",,", ",2,").encode(encoding))
    assert rosters.import_file(teda, "households", str(path)).inserted == 2
    with store.open(teda) as opened, opened.read() as conn:
        assert {r.fields["户主"] for r in conn.execute(select(Household.__table__))} == {"张三", "李四"}


def test_an_export_imports_back_unchanged_and_an_edit_updates_only_what_changed(teda, tmp_path):
    rosters.import_file(teda, "households", _workbook(tmp_path / "h.xlsx", [GOOD, ["TF.02", "2-1", "李四", 2]]))
    ops_before = _count(teda, Op, entity="household")
    for out in ("out.xlsx", "out.csv"):
        assert rosters.export_file(teda, "households", str(tmp_path / out)) == 2
        again = rosters.import_file(teda, "households", str(tmp_path / out))
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert _count(teda, Op, entity="household") == ops_before
    book = openpyxl.load_workbook(tmp_path / "out.xlsx")
    sheet = book.active
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[header.index("地址")].value == "1-101")
    row[header.index("常住人口")].value = 5
    book.save(tmp_path / "edited.xlsx")
    edited = rosters.import_file(teda, "households", str(tmp_path / "edited.xlsx"))
    assert (edited.inserted, edited.updated, edited.unchanged) == (0, 1, 1)
    with store.open(teda) as opened, opened.read() as conn:
        last = conn.execute(select(Op.fields).where(Op.entity == "household").order_by(Op.seq.desc())).scalar()
    assert last == {"人口": 5}  # the op carries the one changed field


def test_english_labels_and_codes_map_too(teda, tmp_path):
    header = ["Grid", "Address", "Head of household", "人口", "Vehicles"]
    done = rosters.import_file(teda, "households", _workbook(tmp_path / "h.xlsx", [["TF.01", "a", "b", 1, "汽车"]],
                                                             header, title="Sheet1", banner=False))
    assert done.inserted == 1


def test_workers_residents_and_buildings(teda, tmp_path):
    workers = _workbook(tmp_path / "w.xlsx", [["王芳", "网格社工", "TF.01、TF.02", "13800138000"],
                                              ["赵六", "网格猿", "TF.01", None]],
                        header=["姓名", "角色", "负责网格", "电话"], title="名册", banner=False)
    with pytest.raises(ImportRefused) as refused:
        rosters.import_file(teda, "workers", workers)
    assert [w for w, _ in refused.value.problems] == ["名册!B3"]
    assert "网格员" in refused.value.problems[0][1]
    done = rosters.import_file(teda, "workers", workers, skip_bad=True)
    assert done.inserted == 1
    with store.open(teda) as opened, opened.read() as conn:
        worker = conn.execute(select(Worker.__table__)).one()
        assert worker.role == "网格员"  # named by its label, stored by its code
        assert conn.execute(select(func.count()).select_from(Assignment)).scalar() == 2

    buildings = _workbook(tmp_path / "b.xlsx", [["TF.01", "3栋", "泰丰3栋"]], header=["网格", "楼栋编号", "名称"],
                          banner=False)
    assert rosters.import_file(teda, "buildings", buildings).inserted == 1
    households = _workbook(tmp_path / "h.xlsx", [["3栋", "3栋101", "张三", 2], ["3栋", "3栋102", "李四", 1]],
                           header=["楼栋", "地址", "户主姓名", "常住人口"], banner=False)
    assert rosters.import_file(teda, "households", households).inserted == 2  # the grid comes from the building
    residents = _workbook(tmp_path / "r.xlsx", [["3栋101", "张三", "12010119800101123X"],
                                                ["3栋102", "李四", "12010119800101123X"],
                                                ["9栋999", "王五", None]],
                          header=["住户", "姓名", "身份证号"], title="居民", banner=False)
    with pytest.raises(ImportRefused) as refused:
        rosters.import_file(teda, "residents", residents)
    assert [w for w, _ in refused.value.problems] == ["居民!C3", "居民!A4"]
    assert "row 2" in refused.value.problems[0][1]  # the same ID number twice
    assert rosters.import_file(teda, "residents", residents, skip_bad=True).inserted == 1
    with store.open(teda) as opened, opened.read() as conn:
        resident = conn.execute(select(Resident.__table__)).one()
        household = conn.execute(select(Household.__table__).where(Household.id == resident.household_id)).one()
    assert household.address == "3栋101" and resident.grid_id == household.grid_id
    for kind in ("workers", "buildings", "households", "residents"):  # each exports as it imports
        out = str(tmp_path / f"{kind}.xlsx")
        count = rosters.export_file(teda, kind, out)
        again = rosters.import_file(teda, kind, out)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, count) and count > 0, kind
    header = [c.value for c in openpyxl.load_workbook(tmp_path / "workers.xlsx").active[1]]
    row = [c.value for c in openpyxl.load_workbook(tmp_path / "workers.xlsx").active[2]]
    assert row[header.index("负责网格")] == "TF.01、TF.02" and row[header.index("角色")] == "网格员"


def test_three_thousand_households_with_scattered_mistakes(teda, tmp_path):
    pick = random.Random(7)
    rows, planted = [], []
    for n in range(3000):
        row = ["TF.01" if n % 2 else "TF.02", f"泰丰路{n}号", f"户主{n}", pick.randint(1, 6),
               round(pick.uniform(30, 200), 1), pick.choice(["商品房", "保障房", "公租房"]),
               "、".join(pick.sample(["汽车", "电动车", "自行车"], pick.randint(0, 2))) or None,
               pick.choice(["是", "否"]), None]
        if n % 500 == 123:
            row[4] = 9000  # a floor area over 2000 m²
            planted.append(f"户籍!E{n + 3}")
        rows.append(row)
    path = _workbook(tmp_path / "big.xlsx", rows)
    with pytest.raises(ImportRefused) as refused:
        rosters.import_file(teda, "households", path)
    assert [w for w, _ in refused.value.problems] == planted
    assert _count(teda, Household) == 0
    done = rosters.import_file(teda, "households", path, skip_bad=True)
    assert (done.inserted, done.skipped_rows) == (3000 - len(planted), len(planted))
    assert _count(teda, Op, entity="household") == 3000 - len(planted)


def test_unreadable_files_are_clear_errors(teda, tmp_path):
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(UsageError, match="save it as .xlsx"):
        rosters.import_file(teda, "households", str(tmp_path / "old.xls"))
    (tmp_path / "fake.xlsx").write_text("not a workbook")
    with pytest.raises(UsageError, match="Excel workbook"):
        rosters.import_file(teda, "households", str(tmp_path / "fake.xlsx"))
    with pytest.raises(UsageError, match="no sheet '户籍2'"):
        rosters.import_file(teda, "households", _workbook(tmp_path / "h.xlsx", [GOOD]), sheet="户籍2")
    with pytest.raises(UsageError, match="folder .* does not exist"):
        rosters.export_file(teda, "households", str(tmp_path / "nowhere" / "out.xlsx"))
    with pytest.raises(UsageError, match="expected a name ending in .xlsx or .csv"):
        rosters.export_file(teda, "households", str(tmp_path / "out.pdf"))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "wangge", *args], capture_output=True, text=True)


def test_the_command_line_reports_cells_and_writes_a_problem_report(teda, tmp_path):
    path = _workbook(tmp_path / "h.xlsx", [GOOD, ["TF.01", "x", "y", "many"]])
    refused = _cli("import", "households", teda, path, "--report", str(tmp_path / "problems.csv"))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "户籍!D4: 常住人口(人口):应为整数,实际为 'many'" in refused.stderr
    assert "户籍!D4" in (tmp_path / "problems.csv").read_text(encoding="utf-8-sig")
    skipped = _cli("import", "households", teda, path, "--skip-bad")
    assert skipped.returncode == 0 and "added 1" in skipped.stdout and "户籍!D4" in skipped.stderr
    exported = _cli("export", "households", teda, "--out", str(tmp_path / "out.xlsx"), "--lang", "en")
    assert exported.returncode == 0 and "wrote 1 households" in exported.stdout
    assert [c.value for c in openpyxl.load_workbook(tmp_path / "out.xlsx").active[1]][:3] == [
        "System ID", "Grid", "Building"]


@pytest.mark.postgres
def test_a_roster_round_trip_on_postgresql(pg_url, tmp_path):
    target = office(pg_url)
    rows = [GOOD, ["TF.02", "2-201", "李四", 2, 60, "保障房", None, "是", None]]
    assert rosters.import_file(target, "households", _workbook(tmp_path / "h.xlsx", rows)).inserted == 2
    with pytest.raises(ImportRefused) as refused:
        rosters.import_file(target, "households", _workbook(tmp_path / "bad.xlsx", [["TF.01", "x", "y", 0]]))
    assert [w for w, _ in refused.value.problems] == ["户籍!D3"]
    assert rosters.export_file(target, "households", str(tmp_path / "out.xlsx")) == 2
    again = rosters.import_file(target, "households", str(tmp_path / "out.xlsx"))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    with store.open(target) as opened, opened.read() as conn:
        stored = {r.address: r.fields for r in conn.execute(select(Household.__table__))}
    assert stored["1-101"]["车辆"] == ["汽车", "自行车"] and stored["2-201"]["困难"] is True


def test_imported_households_reach_the_tablet_of_their_grid_at_its_next_sync(tmp_path):
    from support import street as streets

    from wangge.web.server import running

    office_street = streets.street(tmp_path, grids=2)
    rows = [["T.00", "泰丰路1号", "张三", 3], ["T.01", "泰丰路2号", "李四", 2], ["T.00", "泰丰路3号", "王五", 1]]
    path = _workbook(tmp_path / "h.xlsx", rows, header=["网格", "地址", "户主姓名", "常住人口"], banner=False)
    assert rosters.import_file(str(tmp_path / "master.db"), "households", path).inserted == 3
    with running(office_street.app()) as url:
        tablet = streets.tablet(office_street, url, 0)
        streets.sync(tablet, url)
        with tablet.read() as conn:
            held = {r.address: r.fields["户主"] for r in conn.execute(select(Household.__table__))}
    assert held == {"泰丰路1号": "张三", "泰丰路3号": "王五"}  # grid T.00's, and only those
    tablet.close()
    office_street.store.close()
