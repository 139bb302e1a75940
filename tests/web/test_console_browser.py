"""The office console in a real browser against a real server, as the street office uses it.

One case, reported and synced from a tablet, goes the whole way in the
browser: the command centre dispatches it, the telecom department accepts
and repairs it with a photo, the centre settles a conflicting household edit
in the review, the reporting worker confirms on site and closes it, the
assessor evaluates it, and the month's scores are downloaded as Excel.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from support import office as of
from wangge.core.models import Attachment, Case, CaseEvent

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def status_of(built, number: str) -> str:
    with built.store.read() as conn:
        return conn.execute(select(Case.__table__.c.status).where(Case.__table__.c.number == number)).scalar()


def events_of(built) -> int:
    with built.store.read() as conn:
        return len(conn.execute(select(CaseEvent.__table__.c.id)).all())


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


@pytest.fixture
def new_page(browser, served_office):
    """A fresh browser context (its own cookies) at 1280×800; closed after the test."""
    contexts = []

    def make(width: int = 1280, height: int = 800):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=served_office[1],
                                      accept_downloads=True)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page, name: str, password: str = of.PASSWORD, then: str = "/cases") -> None:
    page.goto(then)
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("section.login button[type=submit]")


def log_out(page) -> None:
    page.click("header form button")
    page.wait_for_url(re.compile(r"/login"))


def make_move(page, label: str, **evidence) -> None:
    form = page.locator("form.move", has=page.locator(f"button:text-is('{label}')"))
    for name in evidence.get("check", ()):
        form.locator(f"input[value={name}]").check()
    if "photo" in evidence:
        form.locator("input[name=photo]").set_input_files(evidence["photo"])
    form.locator(f"button:text-is('{label}')").click()
    page.wait_for_load_state()


def test_a_synced_case_goes_from_dispatch_to_evaluation_in_the_browser(served_office, new_page, tmp_path):
    built, url, number = served_office
    page = new_page()
    page.goto("/cases")
    assert "/login" in page.url  # nothing without an account
    shoot(page, "flow-login-1280x800")
    log_in(page, "张主任")
    page.wait_for_url(re.compile(r"/cases$"))
    row = page.locator("table.queue tbody tr", has=page.locator(f"a:text-is('{number}')"))
    assert "电信通讯箱破损" in row.inner_text() and "立案" in row.inner_text()
    assert page.locator(".counts a", has_text="立案").locator("b").inner_text() == "1"
    shoot(page, "flow-queue-1280x800")

    row.locator("a").click()
    page.wait_for_url(re.compile(number))
    history = page.locator("ol.timeline").inner_text()
    assert "上报立案" in history and "tablet0" in history  # who, and from which tablet
    assert page.locator(".photos img").count() == 1
    assert "现场照片" in page.locator(".photos img").get_attribute("alt")
    assert page.evaluate("document.querySelector('.photos img').naturalWidth") == 8  # the synced photo itself
    assert "Asia/Shanghai" in page.locator("section", has_text="派遣依据").inner_text()
    shoot(page, "flow-case-1280x800")
    make_move(page, "派遣")
    assert "已完成" in page.locator(".notice").inner_text()
    assert status_of(built, number) == "派遣"
    log_out(page)

    log_in(page, "电信维修", then=f"/cases/{number}")
    page.wait_for_url(re.compile(number))
    make_move(page, "接单")
    photo = tmp_path / "修好了.png"
    photo.write_bytes(of.photo_bytes((40, 160, 60)))
    make_move(page, "处置完毕", photo=str(photo))
    assert status_of(built, number) == "审核"
    assert page.locator(".photos img").count() == 2
    log_out(page)

    of.critical_conflict(built, url)
    log_in(page, "张主任", then="/review")
    page.wait_for_url(re.compile(r"/review$"))
    card = page.locator("article.conflict").first
    told = card.inner_text()
    assert "泰丰里3-2-301" in told and "head_name" in told
    assert "赵建华" in told and "赵建国" in told  # both values
    assert "指挥中心（控制台）" in told and "网格员1 (tablet0)" in told  # who wrote each
    assert re.search(r"2026-\d\d-\d\d \d\d:\d\d", told)  # and when
    shoot(page, "flow-review-1280x800")
    card.locator("button", has_text="保留现值").click()
    page.wait_for_load_state()
    assert "keeps" in page.locator(".notice").inner_text()
    assert of.household_head(built) == "赵建华"
    log_out(page)

    log_in(page, "网格员1", then=f"/cases/{number}")
    page.wait_for_url(re.compile(number))
    before = events_of(built)
    make_move(page, "现场确认结案")  # without ticking the confirmation
    # The page is in Chinese, so is the lifecycle's refusal.
    assert "需要 报告人现场确认" in page.locator(".error").inner_text()
    assert status_of(built, number) == "审核" and events_of(built) == before
    make_move(page, "现场确认结案", check=["onsite_confirmation"])
    assert status_of(built, number) == "结案"
    log_out(page)

    log_in(page, "王评估", then=f"/cases/{number}")
    page.wait_for_url(re.compile(number))
    make_move(page, "评估")
    assert status_of(built, number) == "评估"
    history = page.locator("ol.timeline").inner_text()
    for who in ("张主任", "电信维修", "网格员1", "王评估"):
        assert who in history
    shoot(page, "flow-case-evaluated-1280x800")
    log_out(page)

    log_in(page, "张主任", then="/scores")
    page.wait_for_url(re.compile(r"/scores"))
    shown = page.locator("table.scores").inner_text()
    with page.expect_download() as download:
        page.click("a:text-is('下载 Excel')")
    rows = of.xlsx_rows(open(download.value.path(), "rb").read())
    header, mine = rows[0], next(r for r in rows[1:] if r[1] == "网格员1")
    assert header[:7] == ("subject", "worker / grid", "role / level", "grids", "closed/registered", "total", "tier")
    assert mine[4].startswith("1/")  # the case closed in the browser counts for its grid's worker this month
    assert f"{mine[5]:g}" in shown and mine[6] in shown  # the file says what the page says
    with page.expect_download() as download:
        page.click("a:text-is('下载 CSV')")
    text = open(download.value.path(), "rb").read()
    assert text.startswith(b"\xef\xbb\xbf") and "worker / grid" in text.decode("utf-8-sig")
    shoot(page, "flow-scores-1280x800")


def test_five_wrong_passwords_lock_the_account(served_office, new_page):
    page = new_page()
    for attempt in range(5):
        log_in(page, "王评估", password=f"wrong password {attempt}")
        assert "账号或密码错误" in page.locator(".error").inner_text()
    assert "账号已锁定至" in page.locator(".error").inner_text()
    log_in(page, "王评估")  # the right password is refused too while locked
    assert "连续 5 次登录失败，账号已锁定至" in page.locator(".error").inner_text()
    assert "/login" in page.url


def test_a_form_without_its_csrf_token_is_refused(served_office, new_page):
    built, url, number = served_office
    page = new_page()
    log_in(page, "张主任")
    page.wait_for_url(re.compile(r"/cases$"))
    before = events_of(built)
    refused = page.request.post(f"/cases/{number}/move", form={"move": "作废"})
    assert refused.status == 403 and "security token" in refused.text()
    forged = page.request.post(f"/cases/{number}/move", form={"move": "作废", "csrf": "guessed"})
    assert forged.status == 403
    assert events_of(built) == before


def test_an_account_of_one_grid_cannot_open_another_grids_case(served_office, new_page):
    built, url, number = served_office
    page = new_page()
    log_in(page, "网格员2")  # grid T.01; the case is in T.00
    page.wait_for_url(re.compile(r"/cases$"))
    assert number not in page.locator("table.queue").inner_text()
    response = page.goto(f"/cases/{number}")
    assert response.status == 404 and "no case" in page.locator(".error").inner_text()
    with built.store.read() as conn:
        case_id = conn.execute(select(Case.__table__.c.id).where(Case.__table__.c.number == number)).scalar()
        sha = conn.execute(select(Attachment.__table__.c.sha256)).scalars().first()
    assert page.goto(f"/cases/{case_id}").status == 404  # by id neither
    assert page.request.get(f"/cases/{case_id}/photos/{sha}").status == 404  # nor its photos


@pytest.mark.parametrize("width, height", [(1280, 800), (800, 1280)])
def test_every_page_renders_at_office_and_tablet_sizes(served_office, new_page, width, height):
    built, url, number = served_office
    page = new_page(width, height)
    errors = []  # a script the security policy blocked, a missing asset: the browser says so here
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in(page, "张主任")
    page.wait_for_url(re.compile(r"/cases$"))
    for path, name in [("/cases", "queue"), (f"/cases/{number}", "case"), ("/review", "review"),
                       ("/devices", "devices"), ("/escalation", "escalation"), ("/scores", "scores"),
                       ("/grids", "grids"), ("/ruleset", "ruleset"), ("/audit", "audit")]:
        response = page.goto(path)
        assert response.status == 200, path
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}x{height}"
        shoot(page, f"{name}-{width}x{height}")
    assert errors == []
    page.click("a.lang")
    page.wait_for_load_state()
    assert page.locator("header nav").inner_text().split()[0] == "Cases"
    assert "Broken telecom box" in page.goto(f"/cases/{number}").text()  # the ruleset's labels switch too
    shoot(page, f"case-en-{width}x{height}")


def test_the_queue_filters_in_place_and_the_grid_map_draws_boundaries(served_office, new_page):
    built, url, number = served_office
    street = built.street
    square = lambda x: {"type": "Polygon", "coordinates": [[[117.70 + x, 39.03], [117.71 + x, 39.03],  # noqa: E731
                                                             [117.71 + x, 39.04], [117.70 + x, 39.04], [117.70 + x, 39.03]]]}
    with built.store.write(actor="张主任") as rec:
        for n, grid in enumerate(street.grids):
            rec.update("grid_cell", grid, {"boundary": square(n * 0.01)})
    late = of.report_at_office(built, "井盖缺失", n=1)  # in T.01, long overdue
    page = new_page()
    log_in(page, "张主任")
    page.wait_for_url(re.compile(r"/cases$"))
    page.evaluate("window.stayed = true")
    page.select_option("select[name=status]", "立案")
    page.wait_for_url(re.compile(r"status="))
    assert page.evaluate("window.stayed === true")  # htmx swapped the table; the page did not reload
    assert late in page.locator("#queue").inner_text()
    statuses = page.locator("table.queue tbody .status").all_inner_texts()
    assert statuses and set(statuses) == {"立案"}
    page.goto("/grids")
    cells = page.locator("#map path.leaflet-interactive")
    cells.first.wait_for()
    assert cells.count() == 2
    colours = [cells.nth(n).get_attribute("stroke") for n in range(2)]
    tree = page.locator("ul.tree ul").inner_text()
    late_cells = [int(n) for n in re.findall(r"超期 (\d+) 件", tree)]
    assert len(late_cells) == 2 and late_cells[1] >= 1  # T.01 has the overdue case
    assert colours.count("#c0392b") == sum(1 for n in late_cells if n)  # red where the tree counts overdue cases
    shoot(page, "grids-map-1280x800")
    page.goto("/escalation")
    assert late in page.locator("table.board").inner_text()
    page.click("text=立即执行升级检查")
    page.wait_for_load_state()
    assert "ran out at" in page.locator("section.card").inner_text()  # each escalation with its reason
    shoot(page, "escalation-swept-1280x800")


def test_revoking_a_tablet_asks_first(served_office, new_page):
    page = new_page()
    log_in(page, "张主任", then="/devices")
    page.wait_for_url(re.compile(r"/devices$"))
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("button.danger")
    assert asked and "吊销此平板" in asked[0]
    assert "已启用" in page.locator("table.devices").inner_text()  # dismissed: nothing revoked
