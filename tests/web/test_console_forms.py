"""Every form of the console, given bad input: a clear message in the page, a 4xx status, and
nothing saved. Over HTTP with Starlette's test client, against the app `wangge serve` runs."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from support import office as of
from wangge.app import accounts
from wangge.core import accounts as account_tables
from wangge.core.models import Attachment, Case, CaseEvent, Device


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    made = of.office(tmp_path_factory.mktemp("forms"))
    made.numbers = {
        "registered": of.report_at_office(made, "路灯不亮"),
        "review": of.report_at_office(made, "通讯箱", moves=(("派遣", "指挥中心", ()), ("接单", "专业部门", ()),
                                                           ("修复", "专业部门", ()))),
        "other grid": of.report_at_office(made, "井盖缺失", n=1),
    }
    yield made
    made.store.close()


def counts(built) -> tuple[int, int, int]:
    """Events, attachments and photo files: what a refused form must leave as it was."""
    with built.store.read() as conn:
        events = conn.execute(select(func.count()).select_from(CaseEvent.__table__)).scalar()
        photos = conn.execute(select(func.count()).select_from(Attachment.__table__)).scalar()
    return events, photos, sum(1 for p in built.blobs.root.rglob("*") if p.is_file())


def client_for(built, name: str | None = None) -> TestClient:
    client = TestClient(built.app, follow_redirects=False)
    if name is not None:
        page = client.get("/login")
        answer = client.post("/login", data={"csrf": token(page.text), "name": name, "password": of.PASSWORD,
                                             "next": "/cases"})
        assert answer.status_code == 303, answer.text
    return client


def token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def csrf(client: TestClient, path: str = "/cases") -> str:
    return token(client.get(path).text)


def error_in(html: str) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    assert found, "the page shows no error"
    return found.group(1)


def test_login_without_name_or_with_a_wrong_password_says_so(built):
    client = client_for(built)
    page = client.post("/login", data={"csrf": csrf(client, "/login"), "name": "", "password": ""})
    assert page.status_code == 400 and "请填写账号和密码" in error_in(page.text)
    page = client.post("/login", data={"csrf": csrf(client, "/login"), "name": "张主任", "password": "nope nope"})
    assert page.status_code == 400 and "账号或密码错误" in error_in(page.text)
    page = client.post("/login", data={"csrf": csrf(client, "/login"), "name": "无此人", "password": "nope nope"})
    assert "账号或密码错误" in error_in(page.text)  # an unknown name reads the same
    assert client.get("/cases").status_code == 303  # still logged out
    with built.store.read() as conn:
        failed = [r for r in accounts.trail(conn) if r["action"] == "login_failed"]
    assert {r["target"] for r in failed} >= {"张主任", "无此人"}


def test_a_login_never_sends_a_person_to_another_site(built):
    client = client_for(built)
    answer = client.post("/login", data={"csrf": csrf(client, "/login"), "name": "张主任", "password": of.PASSWORD,
                                         "next": "//evil.example/"})
    assert answer.headers["location"] == "/cases"


@pytest.mark.parametrize("who, case, form, status, message", [
    ("张主任", "registered", {"move": "飞天"}, 409, "办理未知操作 '飞天'"),
    ("网格员1", "registered", {"move": "派遣"}, 409, "角色 网格员 不能在状态 立案 办理 派遣"),
    ("张主任", "registered", {"move": "评估"}, 409, "状态 立案 下不能办理 评估"),
    ("网格员1", "review", {"move": "结案"}, 409, "需要 报告人现场确认"),
    ("电信维修", "review", {"move": "结案", "evidence": "onsite_confirmation"}, 409, "不能在状态 审核 办理 结案"),
    ("张主任", "registered", {"move": "派遣", "note": "x" * 10}, 400, "not a JPEG, PNG or WebP"),
    ("网格员1", "other grid", {"move": "派遣"}, 404, "no case"),
])
def test_a_refused_move_says_why_in_the_page_and_saves_nothing(built, who, case, form, status, message):
    client = client_for(built, who)
    number = built.numbers[case]
    before = counts(built)
    files = {"photo": ("notes.txt", b"just some text, not a photo", "text/plain")} if status == 400 else None
    page = client.post(f"/cases/{number}/move", data={"csrf": csrf(client), **form}, files=files)
    assert page.status_code == status
    assert message in error_in(page.text).replace("&#39;", "'")
    assert counts(built) == before


def test_the_move_form_is_the_page_again_with_the_case_as_it_was(built):
    client = client_for(built, "网格员1")
    number = built.numbers["review"]
    page = client.post(f"/cases/{number}/move", data={"csrf": csrf(client), "move": "结案"})
    assert number in page.text and "现场确认结案" in page.text  # the buttons are there to try again
    with built.store.read() as conn:
        assert conn.execute(select(Case.__table__.c.status).where(Case.__table__.c.number == number)).scalar() == "审核"


@pytest.mark.parametrize("path", ["/login", "/logout", "/cases/X/move", "/review/1", "/devices/d/approve",
                                  "/devices/d/revoke", "/escalation/sweep"])
def test_every_form_without_its_csrf_token_is_refused(built, path):
    client = client_for(built, "张主任")
    before = counts(built)
    page = client.post(path.replace("X", built.numbers["registered"]), data={"move": "派遣", "how": "keep",
                                                                             "worker": "网格员1"})
    assert page.status_code == 403 and "security token" in page.text
    assert counts(built) == before


@pytest.mark.parametrize("who, number, how, status, message", [
    ("张主任", "abc", "keep", 400, "no conflict #abc"),
    ("张主任", "999", "keep", 400, "no conflict #999"),
    ("张主任", "99999999999999999999", "keep", 400, "no conflict #99999999999999999999"),
    ("电信维修", "1", "keep", 403, "office roles"),
])
def test_a_bad_answer_to_the_review_says_why(built, who, number, how, status, message):
    client = client_for(built, who)
    page = client.post(f"/review/{number}", data={"csrf": csrf(client), "how": how})
    assert page.status_code == status and message in error_in(page.text)


def test_devices_forms_refuse_a_missing_worker_an_unknown_device_and_a_non_office_role(built):
    from support.transport import Tablet

    pending = Tablet("forms-tablet")
    with built.store.write(actor="enrollment") as rec:
        from wangge.sync import enrollment

        enrollment.submit(rec, pending.request)
    client = client_for(built, "张主任")
    page = client.get("/devices")
    assert pending.request.fingerprint in page.text  # read aloud before approving
    answer = client.post(f"/devices/{pending.device_id}/approve", data={"csrf": token(page.text), "worker": ""})
    assert answer.status_code == 400 and "choose the worker" in error_in(answer.text)
    answer = client.post(f"/devices/{pending.device_id}/approve", data={"csrf": token(page.text), "worker": "无此人"})
    assert answer.status_code == 400 and "no worker '无此人'" in error_in(answer.text).replace("&#39;", "'")
    answer = client.post("/devices/nope/revoke", data={"csrf": token(page.text)})
    assert answer.status_code == 400 and "no device 'nope'" in error_in(answer.text).replace("&#39;", "'")
    department = client_for(built, "电信维修")
    answer = department.post(f"/devices/{pending.device_id}/approve", data={"csrf": csrf(department), "worker": "网格员1"})
    assert answer.status_code == 403 and "office roles" in error_in(answer.text)
    with built.store.read() as conn:
        state = conn.execute(select(Device.__table__.c.status).where(Device.__table__.c.id == pending.device_id)).scalar()
    assert state == "pending"
    answer = client.post(f"/devices/{pending.device_id}/approve", data={"csrf": token(page.text), "worker": "网格员1"})
    assert answer.status_code == 303 and client.get("/devices").text.count("已启用") >= 1


def test_the_sweep_is_refused_to_a_department(built):
    client = client_for(built, "电信维修")
    page = client.post("/escalation/sweep", data={"csrf": csrf(client)})
    assert page.status_code == 403 and "office roles" in error_in(page.text)


def test_scores_show_a_quarter_or_a_year_and_export_it(built):
    client = client_for(built, "张主任")
    page = client.get("/scores?quarter=2026-Q4")
    assert page.status_code == 200 and "2026-Q4" in page.text
    sheet = client.get("/scores.csv?year=2026")
    assert sheet.status_code == 200 and 'filename="scores-2026.csv"' in sheet.headers["content-disposition"]
    assert sheet.content.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese only with the BOM
    bad = client.get("/scores?year=soon")
    assert bad.status_code == 400 and "year 'soon'" in error_in(bad.text).replace("&#39;", "'")


def test_a_bad_month_or_filter_is_named_in_the_page(built):
    client = client_for(built, "张主任")
    page = client.get("/scores?month=2026-13")
    assert page.status_code == 400 and "expected YYYY-MM" in error_in(page.text)
    assert client.get("/scores.xlsx?month=soon").status_code == 400
    page = client.get("/cases?status=飞了&page=zero")
    assert page.status_code == 400
    assert "unknown status '飞了'" in page.text.replace("&#39;", "'") and "not a page number" in page.text
    assert built.numbers["registered"] in page.text  # the queue still shows, without the bad filters


def test_the_queue_filters_by_grid_status_and_overdue_with_counts(built):
    client = client_for(built, "张主任")
    page = client.get("/cases?grid=T.01")
    assert built.numbers["other grid"] in page.text and built.numbers["registered"] not in page.text
    page = client.get("/cases?status=审核")
    assert built.numbers["review"] in page.text and built.numbers["registered"] not in page.text
    counted = dict(re.findall(r'>(\w+) <b>(\d+)</b>', page.text))
    assert counted["审核"] == "1" and counted["立案"] == "2"  # counts under the other filters, all statuses
    page = client.get("/cases?overdue=1")  # reported in 2026-10, long past every deadline
    assert page.text.count('class="overdue"') == 3


def test_a_disabled_account_is_logged_out_at_its_next_request(built):
    accounts.add(built.store, "临时", "指挥中心", of.PASSWORD)
    client = client_for(built, "临时")
    assert client.get("/cases").status_code == 200
    accounts.disable(built.store, "临时")
    assert client.get("/cases").headers["location"].startswith("/login")


def test_every_move_is_recorded_with_the_account_that_made_it(built):
    client = client_for(built, "张主任")
    number = of.report_at_office(built, "护栏倒了")
    answer = client.post(f"/cases/{number}/move", data={"csrf": csrf(client), "move": "派遣", "note": "请电信今天处理"})
    assert answer.status_code == 303
    with built.store.read() as conn:
        line = next(r for r in accounts.trail(conn) if r["action"] == "move")
        audit_rows = conn.execute(select(func.count()).select_from(account_tables.audit)).scalar()
    assert (line["account"], line["target"]) == ("张主任", number) and "立案 → 派遣" in line["detail"]
    assert audit_rows > 1
    page = client.get(f"/cases/{number}")
    assert "张主任" in page.text and "请电信今天处理" in page.text and "通过控制台" in page.text


def test_english_switches_the_interface_and_the_rulesets_labels(built):
    client = client_for(built, "张主任")
    client.get("/lang/en?next=/cases")
    page = client.get(f"/cases/{built.numbers['registered']}")
    assert "Broken telecom box" in page.text and "What you can do" in page.text and "Dispatch" in page.text


@pytest.mark.postgres
def test_the_console_runs_on_a_postgresql_master(tmp_path, pg_url):
    made = of.office(tmp_path, target=pg_url)
    try:
        number = of.report_at_office(made, "PostgreSQL 上的案件")
        client = client_for(made, "张主任")
        assert number in client.get("/cases?status=立案").text
        answer = client.post(f"/cases/{number}/move", data={"csrf": csrf(client), "move": "派遣"})
        assert answer.status_code == 303
        refused = client.post(f"/cases/{number}/move", data={"csrf": csrf(client), "move": "派遣"})
        assert refused.status_code == 409 and "状态 派遣 下不能办理 派遣" in error_in(refused.text)
    finally:
        made.store.close()


def test_the_sweep_escalates_overdue_cases_and_says_why(built):
    client = client_for(built, "张主任")
    board = client.get("/escalation")
    assert built.numbers["registered"] in board.text  # reported in 2026-10: long overdue
    page = client.post("/escalation/sweep", data={"csrf": token(board.text)})
    assert page.status_code == 200
    swept = re.search(r"<section class=\"card\">(.*?)</section>", page.text, re.S).group(1)
    assert "overdue at" in swept and "ran out at" in swept  # the reason, in the sweep's words
    with built.store.read() as conn:
        line = next(r for r in accounts.trail(conn) if r["action"] == "sweep")
    assert line["account"] == "张主任" and "escalated" in line["detail"]


def test_the_audit_trail_shows_who_did_what_to_office_roles_only(built):
    client = client_for(built, "张主任")
    page = client.get("/audit?account=张主任")
    assert page.status_code == 200 and "login" in page.text and "张主任" in page.text
    assert client_for(built, "电信维修").get("/audit").status_code == 403


def test_a_store_without_a_ruleset_says_how_to_install_one(tmp_path):
    from wangge.app import stores
    from wangge.app.office import Office
    from wangge.web.console import console_app

    bare = stores.create_master(str(tmp_path / "bare.db"))
    try:
        with bare.write(actor="test") as rec:
            from wangge.core import accounts as tables
            from datetime import datetime, timezone

            rec.conn.execute(tables.account.insert().values(  # an account made before the ruleset went missing
                name="张主任", role="指挥中心", password_hash=accounts._hasher.hash(of.PASSWORD), disabled=False,
                failed_logins=0, created_at=datetime.now(timezone.utc)))
        client = TestClient(console_app(Office(bare)), follow_redirects=False)
        login = client.get("/login")
        client.post("/login", data={"csrf": token(login.text), "name": "张主任", "password": of.PASSWORD})
        page = client.get("/cases")
        assert page.status_code == 503 and "no ruleset" in page.text and "--rules" in page.text
        assert "Traceback" not in page.text
        assert "no ruleset" in str(pytest.raises(accounts.AccountError, accounts.add, bare, "新人", "网格员",
                                                   of.PASSWORD).value)
    finally:
        bare.close()
