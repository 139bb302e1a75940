"""A grid worker's day in the field app, in a real browser, against a real master on loopback.

The worker unlocks the tablet, reports a case with a photo (correcting what
the rule file's validator refused), fills in a household card, loses the
connection and gets it back without losing a thing, syncs; the office
dispatches and the repair is done; the worker sees it arrive, confirms on
site with a signature, and the case closes at the master. A tablet whose
clock runs ahead sees what the office held and why; a refused bundle says
why. Screenshots of each page at both tablet sizes are kept.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from support.fieldapp import PASSPHRASE, enrolled_tablet, png, running, street_office
from support.transport import wait_for
from wangge.app.fieldtablet import FieldTablet
from wangge.core import casework
from wangge.core.models import Attachment, Case, Household
from wangge.sync.device import atrest
from wangge.sync.log import tables
from wangge.web.field import field_app

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

PORTRAIT, LANDSCAPE = {"width": 800, "height": 1280}, {"width": 1280, "height": 800}
WAIT = 20_000  # ms: a sync over loopback takes well under a second; this only bounds a failure


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    """The street office served on loopback, and 赵巧珍's tablet served by the field app (locked)."""
    folder = tmp_path_factory.mktemp("field-day")
    office = street_office(folder)
    with running(office.app()) as master_url:
        path = enrolled_tablet(office, master_url)
        app = field_app(None, path=path, master_url=master_url)
        with running(app) as url:
            yield {"office": office, "master": master_url, "path": path, "app": app, "url": url, "folder": folder}
        if app.state.field.tablet is not None:
            app.state.field.tablet.close()
    office.store.close()


def _page(browser, viewport):
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    return context, context.new_page()


def _shot(page, screenshots, name: str) -> None:
    page.screenshot(path=str(screenshots / f"field-{name}.png"), full_page=True)


def _master_case(office, number: str):
    with office.store.read() as conn:
        return conn.execute(select(Case.__table__).where(Case.__table__.c.number == number)).first()


def _state_label(office, code: str) -> str:
    return next(s.label.zh for s in office.ruleset.lifecycle.states if s.code == code)


def _sync(page) -> str:
    """Press the sync button and return the new result's text, once it replaced the last one."""
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + "/sync")
    result = page.locator("#sync-result")
    before = result.get_attribute("data-at") if result.count() else None
    page.click("#sync-button")
    expect(result).to_be_visible(timeout=WAIT)
    if before is not None:
        expect(result).not_to_have_attribute("data-at", before, timeout=WAIT)
    return result.inner_text()


def test_a_workers_day_from_unlock_to_closure_at_the_master(street, browser, screenshots, tmp_path):
    office, url = street["office"], street["url"]
    context, page = _page(browser, LANDSCAPE)
    photo = tmp_path / "现场.png"
    photo.write_bytes(png())

    # Unlock: a wrong passphrase is refused without saying anything about the tablet.
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/unlock"))
    page.fill("#passphrase", "not the passphrase")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("口令不对,请检查后再试。")
    _shot(page, screenshots, "unlock-refused-1280x800")
    page.fill("#passphrase", PASSPHRASE)
    page.click("button[type=submit]")
    expect(page.locator("#lease")).to_be_visible()

    # The first sync brings the grid, its households and the rule file; the home page fills.
    assert "收到" in _sync(page)
    page.goto(url + "/")
    expect(page.locator("#visits")).to_contain_text("1号楼01室")
    expect(page.locator("#lease")).to_contain_text("还剩")

    # Report a case: find the item by name, forget the photo the rule file demands, then add it.
    page.goto(url + "/report")
    page.fill("#item-search", "通讯箱")
    page.locator("label.item-choice", has_text="电信通讯箱破损").click()
    page.select_option("#f-channel", "巡查")
    page.fill("#f-description", "泰丰1网格电信通讯箱破损,电线裸露")
    page.click("#report-form button[type=submit]")
    photo_field = page.locator('[data-field="photos"]')
    expect(photo_field.locator(".error")).to_have_text("应为至少一张照片")
    expect(page.locator("#f-description")).to_have_value("泰丰1网格电信通讯箱破损,电线裸露")  # nothing lost
    expect(page.locator('input[name=item][value="0103"]')).to_be_checked()
    _shot(page, screenshots, "report-refused-1280x800")
    page.set_input_files("#f-photos", str(photo))
    expect(page.locator(".previews img")).to_have_count(1)
    page.click("#report-form button[type=submit]")
    flash = page.locator(".flash")
    expect(flash).to_contain_text("已上报")
    number = re.search(r"C\d{11}-\w+", flash.inner_text()).group(0)
    expect(page.locator("#case-status")).to_have_text(_state_label(office, "立案"))
    expect(page.locator(".photos img")).to_have_count(1)

    # A second report of the same item in the same grid is hinted as a likely duplicate.
    page.goto(url + "/report")
    page.fill("#item-search", "0103")
    page.locator('input[name=item][value="0103"]').check()
    page.locator('input[name=item][value="0103"]').dispatch_event("change")
    expect(page.locator("#duplicates")).to_contain_text(number, timeout=WAIT)

    # The household card: a bad number comes back with its message beside the field, all else kept.
    page.goto(url + "/households")
    page.locator("a", has_text="1号楼02室").click()
    page.fill("#f-户主", "王秀兰")
    page.fill("#f-人口", "三口")
    page.locator('[data-field="车辆"] input[value="电动车"]').check()
    page.locator('[data-field="困难"] input[value="yes"]').check()
    page.click("#household-form button[type=submit]")
    expect(page.locator('[data-field="人口"] .error')).to_have_text("请填整数")
    expect(page.locator("#f-户主")).to_have_value("王秀兰")
    expect(page.locator('[data-field="车辆"] input[value="电动车"]')).to_be_checked()
    expect(page.locator('[data-field="户主"] .tag')).to_have_text("关键")  # critical fields are marked
    _shot(page, screenshots, "household-refused-1280x800")

    # The connection drops as the worker saves: the card stays filled in, and saves once it is back.
    page.fill("#f-人口", "3")
    context.set_offline(True)
    page.click("#household-form button[type=submit]")
    expect(page.locator("#offline-note")).to_contain_text("没有丢失")
    expect(page.locator("#f-户主")).to_have_value("王秀兰")
    context.set_offline(False)
    page.click("#household-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("已保存")

    # The sync says in plain words what went up; the office holds the photo and the household edit.
    said = _sync(page)
    assert re.search(r"上传 \d+ 条", said) and "照片 上传 1 张" in said
    at_master = _master_case(office, number)
    assert at_master.status == "立案" and at_master.description.startswith("泰丰1网格")
    with office.store.read() as conn:
        home = conn.execute(select(Household.__table__.c.fields).where(
            Household.__table__.c.address == "1号楼02室")).scalar()
        photos = conn.execute(select(Attachment.__table__.c.sha256).where(
            Attachment.__table__.c.case_id == at_master.id)).scalars().all()
    assert home["户主"] == "王秀兰" and home["人口"] == 3 and home["困难"] is True and home["车辆"] == ["电动车"]
    assert (office.folder / "master-files" / "blobs" / photos[0][:2] / photos[0]).read_bytes() == photo.read_bytes()

    # The office dispatches; the department repairs. The worker's next sync brings it.
    at = datetime.now(timezone.utc)
    with office.store.write(actor="系统中心") as rec:
        casework.move_case(rec, office.ruleset, at_master.id, "派遣", role="指挥中心", actor_id=None, at=at)
        for move in ("接单", "修复"):
            casework.move_case(rec, office.ruleset, at_master.id, move, role="专业部门", actor_id=None, at=at)
    assert "收到" in _sync(page)
    page.goto(url + "/")
    expect(page.locator("#cases")).to_contain_text(_state_label(office, _master_case(office, number).status))

    # On-site confirmation with a signature drawn on the screen closes the case at the master.
    page.locator("#cases a", has_text=number).click()
    closing = page.locator('form.move[data-move="结案"]')
    closing.locator("button[type=submit]").click()
    expect(page.locator('form.move[data-move="结案"] .error')).to_contain_text("请确认您已到现场")
    closing = page.locator('form.move[data-move="结案"]')
    closing.locator("input[name=onsite]").check()
    closing.locator("canvas.signature").scroll_into_view_if_needed()
    box = closing.locator("canvas.signature").bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 120)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(box["x"] + 30 + step * 40, box["y"] + 120 + (30 if step % 2 else -30))
    page.mouse.up()
    signed = closing.locator("input.signature-file")
    wait_for(lambda: signed.evaluate("input => input.files.length") == 1, "the drawn signature to become a PNG file")
    _shot(page, screenshots, "case-confirm-1280x800")
    closing.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text("已完成")
    expect(page.locator("#case-status")).to_have_text(_state_label(office, "结案"))
    _sync(page)
    closed = _master_case(office, number)
    assert closed.status == "结案"
    with office.store.read() as conn:
        kinds = conn.execute(select(Attachment.__table__.c.media_type, Attachment.__table__.c.size).where(
            Attachment.__table__.c.case_id == closed.id)).all()
    assert ("image/png", len(photo.read_bytes())) in kinds and len(kinds) == 2  # the photo and the signature
    context.close()


def test_every_page_at_both_tablet_sizes(street, browser, screenshots):
    """Screenshots of each page, portrait and landscape, with nothing wider than the screen."""
    app = street["app"]
    for viewport, size in ((PORTRAIT, "800x1280"), (LANDSCAPE, "1280x800")):
        context, page = _page(browser, viewport)
        page.goto(street["url"] + "/login?token=" + app.state.field.guard.new_login())
        expect(page.locator("#lease")).to_be_visible()
        with app.state.field.tablet.store.read() as conn:
            household = conn.execute(select(Household.__table__.c.id).order_by(Household.__table__.c.address)).scalar()
            case = conn.execute(select(Case.__table__.c.id)).scalar()
        pages = {"home": "/", "report": "/report", "households": "/households",
                 "household": f"/households/{household}", "visit": f"/households/{household}/visit",
                 "case": f"/cases/{case}", "sync": "/sync"}
        for name, target in pages.items():
            page.goto(street["url"] + target)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} is {overflow}px wider than a {size} screen"
            _shot(page, screenshots, f"{name}-{size}")
        page.click("header .lang")
        expect(page.locator("header nav")).to_contain_text("Households")
        _shot(page, screenshots, f"sync-en-{size}")
        page.click("header .lang")
        context.close()


def _second_tablet(street, tmp_path, *, worker: str, name: str, ahead_ms: int = 0):
    """Another worker's tablet served by its own field app; its clock may run ahead."""
    office = street["office"]
    path = enrolled_tablet(office, street["master"], name=name, worker=worker)

    def opener(secret: str) -> FieldTablet:
        store = atrest.open_tablet(path, secret, for_sync=True, extra_migrations=tables.MIGRATIONS)
        store.now_ms = lambda: atrest_now() + ahead_ms  # the clock its changes are stamped with
        return FieldTablet(store, path, now=lambda: datetime.now(timezone.utc) + timedelta(milliseconds=ahead_ms))

    return path, field_app(opener(PASSPHRASE), path=path, master_url=street["master"], opener=opener)


def atrest_now() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def test_what_the_office_held_is_shown_with_its_reason(street, browser, screenshots, tmp_path):
    """李明's tablet clock runs two hours fast: the office holds his report and says why."""
    path, app = _second_tablet(street, tmp_path, worker="李明", name="li-tablet", ahead_ms=2 * 3600 * 1000)
    with running(app) as url:
        context, page = _page(browser, PORTRAIT)
        page.goto(url + "/login?token=" + app.state.field.guard.new_login())
        _sync(page)
        page.goto(url + "/report")
        page.fill("#item-search", "乱堆")
        expect(page.locator("label.item-choice")).to_have_count(1)  # the search narrowed the catalogue
        page.locator("label.item-choice", has_text="乱堆物料").click()
        page.fill("#f-description", "楼道口乱堆物料")
        page.set_input_files("#f-photos", files=[{"name": "a.png", "mimeType": "image/png", "buffer": png()}])
        page.click("#report-form button[type=submit]")
        expect(page.locator(".flash")).to_contain_text("已上报")
        said = _sync(page)
        assert "办公室暂扣" in said
        held = page.locator("ul.held li")
        expect(held.first).to_contain_text("ahead of the master's clock")
        expect(page.locator("ul.held")).to_contain_text("案件(新增)")
        _shot(page, screenshots, "sync-held-800x1280")
        context.close()
    app.state.field.tablet.close()


def test_a_refused_bundle_is_shown_with_its_reason_and_nothing_is_lost(street, browser, tmp_path):
    """The office makes 李明 an inspector while his tablet, offline, still records as a grid worker: the
    bundle is refused, the page says why, his records wait on the tablet, and go once the office agrees."""
    office = street["office"]
    path, app = _second_tablet(street, tmp_path, worker="李明", name="li-spare-tablet")
    with running(app) as url:
        context, page = _page(browser, LANDSCAPE)
        page.goto(url + "/login?token=" + app.state.field.guard.new_login())
        _sync(page)
        page.goto(url + "/report")
        page.fill("#item-search", "绿灯")
        page.locator("label.item-choice", has_text="人行绿灯时间过短").click()
        page.select_option("#f-channel", "巡查")
        page.fill("#f-description", "人行绿灯时间过短")
        page.set_input_files("#f-photos", files=[{"name": "b.png", "mimeType": "image/png", "buffer": png()}])
        page.click("#report-form button[type=submit]")
        expect(page.locator(".flash")).to_contain_text("已上报")
        with office.store.write(actor="office") as rec:
            rec.update("worker", office.ids["李明"], {"role": "监督员"})
        said = _sync(page)
        assert "同步没有完成" in said and "bundle refused" in said and "监督员" in said
        expect(page.locator("#sync-result")).to_contain_text("您的记录都还在平板上")
        page.goto(url + "/")
        waiting = int(re.search(r"待发送 (\d+) 条", page.locator("#sync-box").inner_text()).group(1))
        tablet = app.state.field.tablet
        with tablet.store.read() as conn:
            assert waiting == tablet.waiting(conn) > 0
        with office.store.write(actor="office") as rec:
            rec.update("worker", office.ids["李明"], {"role": "网格员"})
        assert re.search(r"上传 [1-9]\d* 条", _sync(page))
        with office.store.read() as conn:
            assert conn.execute(select(Case.__table__.c.status).where(
                Case.__table__.c.description == "人行绿灯时间过短")).scalar() == "立案"
        context.close()
    app.state.field.tablet.close()
