"""Headcounts and stipends are live: a roster check lists grids short of staff, stipends are reported."""
from __future__ import annotations

from click.testing import CliRunner

from wangge import dsl
from wangge.cli import cli
from wangge.core import casework, periods, roster, store

RULES = """ruleset r
level 社区
level 网格
role 网格长 at 网格 headcount 1 stipend 400 per month
role 热线社工 at 社区 headcount 6 stipend 36000 per year
role 网格员 at 网格
"""


def office(tmp_path):
    ruleset = dsl.loads(RULES)
    s = store.init(str(tmp_path / "o.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        roster.add_grid(rec, "BY", "社区", "白银社区")
        roster.add_grid(rec, "BY.1", "网格", "一网格", upper="BY")
        roster.add_grid(rec, "BY.2", "网格", "二网格", upper="BY")
        roster.add_worker(rec, "王芳", "网格长", ["BY.1"])
        roster.add_worker(rec, "李明", "网格员", ["BY.2"])  # not a 网格长: BY.2 still has none
        for n in range(4):
            roster.add_worker(rec, f"社工{n + 1}", "热线社工", ["BY"])
    s.close()
    return str(tmp_path / "o.db"), ruleset


def test_the_roster_check_lists_grids_short_of_staff(tmp_path):
    path, ruleset = office(tmp_path)
    s = store.open(path)
    with s.read() as conn:
        found = {(f.grid, f.role): (f.needed, f.have, f.short) for f in roster.staffing(conn, ruleset)}
    s.close()
    assert found == {("BY.1", "网格长"): (1, 1, 0), ("BY.2", "网格长"): (1, 0, 1), ("BY", "热线社工"): (6, 4, 2)}
    result = CliRunner().invoke(cli, ["roster", "check", path])
    assert result.exit_code == 1 and "Short of staff: 2 of 3" in result.output
    assert any(line.split()[:2] == ["BY.2", "二网格"] for line in result.output.splitlines())


def test_stipends_per_month_and_per_year(tmp_path):
    path, ruleset = office(tmp_path)
    s = store.open(path)
    with s.read() as conn:
        october = {o.worker: o.amount for o in roster.stipends(conn, ruleset, periods.parse("month", "2026-10"))}
        year = {o.worker: o.amount for o in roster.stipends(conn, ruleset, periods.parse("year", "2026"))}
    s.close()
    # 网格长 400 per month (Shushan); 热线社工 36000 per year is 3000 a month.
    assert october == {"王芳": 400, "社工1": 3000, "社工2": 3000, "社工3": 3000, "社工4": 3000}
    assert year["王芳"] == 4800 and year["社工1"] == 36000 and "李明" not in year
    out = CliRunner().invoke(cli, ["roster", "stipends", path, "--month", "2026/10"]).output
    assert "Stipends for 2026-10" in out and "12400.00" in out
