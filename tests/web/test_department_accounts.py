"""A functional department's console account (电信, 城管) sees the cases routed to its
department and those it moved, and no other resident's problem, in the browser's queue, on
the case page, on the boards and from the command line alike."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from support import office as of
from support import street as st
from wangge.app import accounts, boards, queries, stores
from wangge.cli import cli
from wangge.core import casework, periods
from wangge.core.models import Case


def run(*args, password: str | None = None):
    env = {"WANGGE_ACCOUNT_PASSWORD": password} if password else {}
    return CliRunner().invoke(cli, list(args), env=env)


def _report(street, item: str, text: str) -> str:
    """A case of ``item`` reported by the grid worker of T.00 and sent up to the command centre."""
    with street.store.write(actor="office") as rec:
        made = casework.report_case(rec, street.ruleset, item=item, grid_id=street.grids[0], channel="巡查",
                                    reporter_id=street.workers[0], at=st.PATROL, description=text,
                                    photos=["sha256:p"])
        casework.move_case(rec, street.ruleset, made.case_id, "上报", role="网格员", at=st.PATROL,
                           actor_id=street.workers[0], evidence=("photo",))
    return made.number


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    made = of.office(tmp_path_factory.mktemp("departments"))
    made.telecom = _report(made.street, "0103", "电信通讯箱破损")
    made.city = _report(made.street, "0201", "占道经营")
    made.path = str(made.street.folder / "master.db")
    made.store.close()  # the commands open it themselves
    for number in (made.telecom, made.city):
        dispatched = run("case", "move", made.path, number, "派遣", "--as", "张主任")
        assert dispatched.exit_code == 0, dispatched.output
    store = stores.open_master(made.path)
    try:
        with store.read() as conn:
            made.owners = dict(conn.execute(select(Case.__table__.c.number, Case.__table__.c.owner)).all())
    finally:
        store.close()
    added = run("user", "add", made.path, "电信专线", "--role", "专业部门", "--department", "电信",
                password="telecom desk 1")
    assert added.exit_code == 0, added.output
    yield made


def test_the_cases_are_routed_to_two_departments(built):
    # What the department limit reads is routing's own owner, not the test's.
    assert built.owners[built.telecom] == "department 电信"
    assert built.owners[built.city] == "department 城管"


def test_a_department_account_is_listed_with_its_department(built):
    listed = run("user", "list", built.path)
    line = next(line for line in listed.output.splitlines() if "电信专线" in line)
    assert "电信" in line.split("电信专线", 1)[1] and "department" in listed.output


def test_an_unknown_department_is_refused_and_nothing_is_written(built):
    result = run("user", "add", built.path, "水务", "--role", "专业部门", "--department", "水务",
                 password="water desk 1")
    assert result.exit_code == 2 and "unknown department '水务': the ruleset defines" in result.output
    assert "电信" in result.output and "Traceback" not in result.output
    assert "水务" not in run("user", "list", built.path).output


def test_the_department_sees_only_its_own_cases_in_the_queue_and_on_the_case_page(built):
    listed = run("case", "list", built.path, "--as", "电信专线")
    assert listed.exit_code == 0
    assert built.telecom in listed.output and built.city not in listed.output
    refused = run("case", "show", built.path, built.city, "--as", "电信专线")
    assert refused.exit_code == 1
    assert f"no case '{built.city}' among the cases account 电信专线 may see (department 电信)" in refused.output
    # The command centre, with no limit, still sees both.
    both = run("case", "list", built.path, "--as", "张主任")
    assert built.telecom in both.output and built.city in both.output


def test_a_case_the_department_finished_stays_in_its_view(built):
    accepted = run("case", "move", built.path, built.telecom, "接单", "--as", "电信专线")
    assert accepted.exit_code == 0, accepted.output
    repaired = run("case", "move", built.path, built.telecom, "修复", "--as", "电信专线", "--note", "已更换")
    assert repaired.exit_code == 0, repaired.output
    shown = run("case", "show", built.path, built.telecom, "--as", "电信专线")
    assert shown.exit_code == 0 and "修复" in shown.output and "已更换" in shown.output


def test_the_boards_count_only_the_departments_cases(built):
    store = stores.open_master(built.path)
    try:
        desk = next(a for a in accounts.listed(store) if a.name == "电信专线")
        chief = next(a for a in accounts.listed(store) if a.name == "张主任")
        late = datetime(2030, 1, 1, tzinfo=timezone.utc)  # every open case is overdue by then
        with store.read() as conn:
            ruleset = queries.current_ruleset(conn)
            seen = {c[0] for row in boards.escalation_board(conn, ruleset, desk, late) for c in row.cases}
            every = {c[0] for row in boards.escalation_board(conn, ruleset, chief, late) for c in row.cases}
            tree = boards.grid_tree(conn, ruleset, desk, late)
            month = periods.of("month", st.PATROL.date())
            desk_scores = boards.scores(conn, ruleset, desk, month)
            chief_scores = boards.scores(conn, ruleset, chief, month)
            open_for_desk = sum(node.open for node in tree)
    finally:
        store.close()
    assert built.city in every and built.city not in seen
    assert open_for_desk == len(seen)
    # The grid workers' appraisal is the street's: the office sees it, a utility's desk does not.
    assert chief_scores and not desk_scores
