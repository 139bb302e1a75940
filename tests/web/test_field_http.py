"""Every form of the field app given bad input at the HTTP level: a clear message beside the field, the
form filled in again, and nothing written; the guards (loopback Host, session, CSRF, Origin, size)."""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from support.fieldapp import PASSPHRASE, enrolled_tablet, png, running, street_office
from wangge import rulesets
from wangge.app import fieldsync
from wangge.app.fieldtablet import FieldTablet
from wangge.core.models import Case, Household, Op
from wangge.web.field import field_app

BASE = "http://127.0.0.1:8471"


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    """TEDA's street office on loopback and 赵巧珍's tablet, synced once, in the field app."""
    folder = tmp_path_factory.mktemp("field-http")
    office = street_office(folder)
    with running(office.app()) as master_url:
        tablet = FieldTablet.open(enrolled_tablet(office, master_url), PASSPHRASE)
        assert fieldsync.sync_now(tablet, master_url).ok
        app = field_app(tablet, master_url=master_url)
        yield {"office": office, "tablet": tablet, "app": app, "master": master_url, "folder": folder}
        tablet.close()
    office.store.close()


@pytest.fixture
def client(street):
    """A browser session: logged in through a one-time link, with the page's CSRF token at hand."""
    with TestClient(street["app"], base_url=BASE, follow_redirects=False) as c:
        c.get("/login?token=" + street["app"].state.field.guard.new_login())
        c.token = _token(c.get("/").text)
        yield c


def _token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _ops(tablet) -> int:
    with tablet.store.read() as conn:
        return conn.execute(select(func.count()).select_from(Op.__table__)).scalar()


def _error_beside(html: str, field: str) -> str:
    """The message shown beside ``field`` (its data-field block), or '' if there is none."""
    block = re.search(rf'data-field="{re.escape(field)}".*?(?=data-field=|</form>)', html, re.S)
    found = re.search(r'class="error"[^>]*>([^<]+)<', block.group(0)) if block else None
    return found.group(1) if found else ""


def _household(tablet, address: str = "1号楼03室") -> str:
    with tablet.store.read() as conn:
        return conn.execute(select(Household.__table__.c.id).where(Household.__table__.c.address == address)).scalar()


# -- the guards -------------------------------------------------------------------------------

def test_a_page_without_a_session_goes_to_the_unlock_page(street):
    with TestClient(street["app"], base_url=BASE, follow_redirects=False) as c:
        assert c.get("/households").headers["location"] == "/unlock?next=/households"
        assert c.get("/", headers={"hx-request": "true"}).headers["hx-redirect"] == "/unlock"
        assert c.post("/households/new", data={"address": "x"}).status_code == 303


def test_a_wrong_passphrase_is_refused_without_a_session_or_a_hint(street):
    with TestClient(street["app"], base_url=BASE, follow_redirects=False) as c:
        token = _token(c.get("/unlock").text)
        wrong = c.post("/unlock", data={"csrf": token, "passphrase": "guess", "next": "/"})
        assert wrong.status_code == 401 and "口令不对" in wrong.text and "wangge_field=" not in wrong.headers.get(
            "set-cookie", "")
        assert str(street["tablet"].path) not in wrong.text
        right = c.post("/unlock", data={"csrf": token, "passphrase": PASSPHRASE, "next": "/households"})
        assert right.status_code == 303 and right.headers["location"] == "/households"
        assert c.get("/households").status_code == 200


def test_a_run_of_wrong_passphrases_pauses_the_unlock_page(tmp_path):
    from wangge.app import stores
    from support.fieldapp import TEST_SCRYPT_N

    path = tmp_path / "tablet.db"
    stores.create_tablet(path, PASSPHRASE, scrypt_n=TEST_SCRYPT_N).close()
    app = field_app(None, path=path)
    with TestClient(app, base_url=BASE, follow_redirects=False) as c:
        token = _token(c.get("/unlock").text)
        answers = [c.post("/unlock", data={"csrf": token, "passphrase": f"guess {n}"}).status_code for n in range(6)]
        assert answers == [401] * 5 + [429]
        paused = c.post("/unlock", data={"csrf": token, "passphrase": PASSPHRASE})
        assert paused.status_code == 429 and "秒后再试" in paused.text  # even the right one waits
    assert app.state.field.tablet is None


def test_locking_closes_the_store_and_ends_every_session(tmp_path):
    from wangge.app import stores
    from support.fieldapp import TEST_SCRYPT_N

    path = tmp_path / "tablet.db"
    stores.create_tablet(path, PASSPHRASE, scrypt_n=TEST_SCRYPT_N).close()
    app = field_app(None, path=path)
    with TestClient(app, base_url=BASE, follow_redirects=False) as c, \
            TestClient(app, base_url=BASE, follow_redirects=False) as other:
        token = _token(c.get("/unlock").text)
        assert c.post("/unlock", data={"csrf": token, "passphrase": PASSPHRASE}).status_code == 303
        other.get("/login?token=" + app.state.field.guard.new_login())
        assert other.get("/").status_code == 200
        locked = c.post("/lock", data={"csrf": _token(c.get("/").text)})
        assert locked.status_code == 303 and app.state.field.tablet is None
        assert other.get("/").headers["location"] == "/unlock"  # the other tab's session ended too
        token = _token(c.get("/unlock").text)
        assert c.post("/unlock", data={"csrf": token, "passphrase": PASSPHRASE}).status_code == 303
        assert c.get("/").status_code == 200
    app.state.field.tablet.close()


def test_before_the_first_sync_every_recording_page_says_to_sync_first(tmp_path):
    from wangge.app import stores
    from support.fieldapp import TEST_SCRYPT_N

    path = tmp_path / "tablet.db"
    stores.create_tablet(path, PASSPHRASE, scrypt_n=TEST_SCRYPT_N).close()
    tablet = FieldTablet.open(path, PASSPHRASE)
    app = field_app(tablet)
    with TestClient(app, base_url=BASE, follow_redirects=False) as c:
        c.get("/login?token=" + app.state.field.guard.new_login())
        assert "尚未同步过" in c.get("/").text
        for page in ("/report", "/households", "/households/new", "/points", "/report/items?q=x"):
            answer = c.get(page)
            assert answer.status_code == 409 and "请先同步一次" in answer.text, page
        token = _token(c.get("/sync").text)
        assert c.post("/households/new", data={"csrf": token, "address": "x"}).status_code == 409
    tablet.close()


def test_the_unlock_page_sends_back_only_to_a_path_of_its_own(street):
    with TestClient(street["app"], base_url=BASE, follow_redirects=False) as c:
        for target in ("//evil.example/", "/\\evil.example/", "http://evil.example/"):
            token = _token(c.get("/unlock").text)  # a new session after each unlock: its token with it
            answer = c.post("/unlock", data={"csrf": token, "passphrase": PASSPHRASE, "next": target})
            assert answer.headers["location"] == "/"


def test_the_unlock_form_needs_its_token(street):
    with TestClient(street["app"], base_url=BASE, follow_redirects=False) as c:
        c.get("/unlock")
        assert c.post("/unlock", data={"passphrase": PASSPHRASE}).status_code == 403


def test_a_host_other_than_loopback_is_refused(street, client):
    """A page that rebinds its DNS name to 127.0.0.1 still sends its own name as Host."""
    assert client.get("/", headers={"host": "evil.example:8471"}).status_code == 421
    assert client.get("/", headers={"host": "localhost:8471"}).status_code == 200


def test_a_form_without_its_token_or_from_another_origin_changes_nothing(street, client):
    tablet = street["tablet"]
    before = _ops(tablet)
    data = {"grid_id": street["office"].ids["grid1"], "address": "9号", "户主": "某", "人口": "2"}
    assert client.post("/households/new", data=data).status_code == 403
    assert client.post("/households/new", data={**data, "csrf": "0" * 64}).status_code == 403
    other = client.post("/households/new", data={**data, "csrf": client.token},
                        headers={"origin": "http://127.0.0.1:9999"})
    assert other.status_code == 403 and "表单已过期" in other.text
    assert _ops(tablet) == before


def test_a_body_past_the_cap_is_refused_before_it_is_read(client):
    assert client.post("/report", headers={"content-length": str(200 * 2**20)}, content=b"").status_code == 413


def test_a_body_past_the_cap_sent_from_the_page_leaves_the_form_in_place(client):
    answer = client.post("/report", headers={"content-length": str(200 * 2**20), "hx-request": "true"}, content=b"")
    assert answer.status_code == 413 and answer.headers["hx-reswap"] == "none"
    assert answer.headers["hx-trigger"] == "wanggeTooLarge"


def test_a_photo_past_the_size_cap_is_refused_beside_the_photos(street, client, monkeypatch):
    from wangge.app import fieldrecords

    monkeypatch.setattr(fieldrecords, "MAX_PHOTO_BYTES", 1024)
    data, _ = _report(street)
    answer = client.post("/report", data={**data, "csrf": client.token},
                         files=[("photos", ("big.png", png(400, 400) + bytes(4096), "image/png"))])
    assert answer.status_code == 400 and "照片不能超过" in _error_beside(answer.text, "photos")


def test_unknown_pages_and_methods_say_so_in_the_page(street, client):
    missing = client.get("/cases/no-such-case")
    assert missing.status_code == 404 and "没有找到这一页" in missing.text
    assert client.get("/points/extra").status_code == 404
    assert client.put("/report").status_code == 405


def test_pages_carry_a_content_security_policy(client):
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"


# -- reporting a case -------------------------------------------------------------------------

def _report(street, **changes):
    office = street["office"]
    data = {"item": "0103", "channel": "巡查", "grid_id": office.ids["grid1"], "description": "通讯箱门坏了"}
    data.update({k: v for k, v in changes.items() if k != "files"})
    return data, changes.get("files", [("photos", ("a.png", png(), "image/png"))])


@pytest.mark.parametrize("changes, field, message", [
    ({"item": ""}, "item", "事项"),
    ({"item": "9999"}, "item", "事项目录"),
    ({"channel": "热线"}, "channel", "巡查"),
    ({"files": []}, "photos", "至少一张照片"),
    ({"files": [("photos", ("a.txt", b"not a photo", "text/plain"))]}, "photos", "只能上传照片"),
    ({"files": [("photos", (f"{n}.png", png(), "image/png")) for n in range(7)]}, "photos", "最多 6 张"),
    ({"grid_id": "grid2"}, "grid", "您负责的网格"),
    ({"household_id": "grid2-home"}, "household", "不在所选网格"),
], ids=["no-item", "unknown-item", "channel", "no-photo", "not-an-image", "too-many", "foreign-grid", "foreign-home"])
def test_a_bad_report_comes_back_filled_in_with_the_message_beside_the_field(street, client, changes, field, message):
    office, tablet = street["office"], street["tablet"]
    changes = {k: (office.ids[v] if v == "grid2" else office.ids["homes2"][0] if v == "grid2-home" else v)
               for k, v in changes.items()}
    data, files = _report(street, **changes)
    before = _ops(tablet)
    answer = client.post("/report", data={**data, "csrf": client.token}, files=files)
    assert answer.status_code == 400
    assert message in _error_beside(answer.text, field)
    assert "通讯箱门坏了" in answer.text  # the description is kept
    assert _ops(tablet) == before


def test_a_good_report_is_recorded_and_submitted_with_its_photo(street, client):
    tablet = street["tablet"]
    data, files = _report(street, description="路灯不亮", item="0104")
    answer = client.post("/report", data={**data, "csrf": client.token}, files=files)
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    number = re.search(r"已上报 (C\d{11}-\w+)", page.text).group(1)
    with tablet.store.read() as conn:
        status = conn.execute(select(Case.__table__.c.status).where(Case.__table__.c.number == number)).scalar()
    assert status == "立案" and re.search(r'<img src="/photos/[0-9a-f]{64}"', page.text)


# -- households, residents, visits --------------------------------------------------------------

@pytest.mark.parametrize("changes, field, message", [
    ({"人口": "abc"}, "人口", "请填整数"),
    ({"人口": "99"}, "人口", "不大于 30"),
    ({"人口": ""}, "人口", "必填"),
    ({"电话": "123"}, "电话", "11位手机号"),
    ({"身份证": "12345"}, "身份证", "18位身份证号"),
    ({"住房": "城堡"}, "住房", "以下之一"),
    ({"车辆": ["汽车", "飞机"]}, "车辆", "以下若干"),
    ({"困难": "maybe"}, "困难", "是"),
    ({"建筑面积": "1e9"}, "建筑面积", "不大于 2000"),
], ids=["not-a-number", "above-max", "required-cleared", "phone", "id-number", "choice", "choices", "boolean", "range"])
def test_a_bad_household_card_comes_back_with_the_validators_message(street, client, changes, field, message):
    tablet = street["tablet"]
    home = _household(tablet)
    data = {"grid_id": street["office"].ids["grid1"], "address": "1号楼03室", "户主": "住户1-3", "人口": "3",
            "csrf": client.token, **changes}
    before = _ops(tablet)
    answer = client.post(f"/households/{home}", data=data)
    assert answer.status_code == 400
    assert message in _error_beside(answer.text, field)
    assert 'value="住户1-3"' in answer.text
    assert _ops(tablet) == before


def test_a_new_household_needs_its_required_fields_and_one_of_the_workers_grids(street, client):
    tablet, office = street["tablet"], street["office"]
    before = _ops(tablet)
    answer = client.post("/households/new", data={"grid_id": office.ids["grid1"], "address": "新楼", "csrf": client.token})
    assert answer.status_code == 400 and "必填" in _error_beside(answer.text, "户主")
    answer = client.post("/households/new", data={"grid_id": office.ids["grid2"], "address": "新楼", "户主": "甲",
                                                  "人口": "1", "csrf": client.token})
    assert answer.status_code == 400 and "您负责的网格" in _error_beside(answer.text, "grid")
    assert _ops(tablet) == before


def test_an_edit_sends_only_the_fields_that_changed(street, client):
    tablet = street["tablet"]
    home = _household(tablet, "1号楼04室")
    before = _ops(tablet)
    answer = client.post(f"/households/{home}", data={"grid_id": street["office"].ids["grid1"], "address": "1号楼04室",
                                                      "building_id": street["office"].ids["building1"],
                                                      "户主": "住户1-4", "人口": "5", "csrf": client.token})
    assert answer.status_code == 303
    with tablet.store.read() as conn:
        fields = conn.execute(select(Op.__table__.c.fields).where(Op.__table__.c.seq > 0)
                              .order_by(Op.__table__.c.seq.desc())).scalars().first()
    assert _ops(tablet) == before + 1
    assert (fields if isinstance(fields, dict) else __import__("json").loads(fields)) == {"人口": 5}


def test_a_resident_needs_a_name_and_a_real_id_number(street, client):
    tablet = street["tablet"]
    home = _household(tablet)
    before = _ops(tablet)
    answer = client.post(f"/households/{home}/residents", data={"name": "", "id_number": "1", "csrf": client.token})
    assert answer.status_code == 400
    assert "必填" in _error_beside(answer.text, "name") and "18位身份证号" in _error_beside(answer.text, "id_number")
    assert _ops(tablet) == before
    good = client.post(f"/households/{home}/residents", data={"name": "王小明", "id_number": "12010119800101123X",
                                                              "csrf": client.token})
    assert good.status_code == 303 and "王小明" in client.get(f"/households/{home}").text


def test_a_residents_card_is_edited_field_by_field(street, client):
    from wangge.core.models import Resident

    tablet = street["tablet"]
    home = _household(tablet, "1号楼06室")
    client.post(f"/households/{home}/residents", data={"name": "李桂英", "phone": "13900001111", "csrf": client.token})
    with tablet.store.read() as conn:
        resident = conn.execute(select(Resident.__table__.c.id).where(Resident.__table__.c.name == "李桂英")).scalar()
    assert 'value="13900001111"' in client.get(f"/residents/{resident}").text
    before = _ops(tablet)
    bad = client.post(f"/residents/{resident}", data={"name": "李桂英", "phone": "12", "csrf": client.token})
    assert bad.status_code == 400 and "11位手机号" in _error_beside(bad.text, "phone") and _ops(tablet) == before
    good = client.post(f"/residents/{resident}", data={"name": "李桂英", "phone": "13900002222", "csrf": client.token})
    assert good.status_code == 303 and _ops(tablet) == before + 1
    with tablet.store.read() as conn:
        assert conn.execute(select(Resident.__table__.c.phone).where(
            Resident.__table__.c.id == resident)).scalar() == "13900002222"


# TEDA's visit register names the kind of visit (走访方式); its minutes are the visit's own field.
@pytest.mark.parametrize("minutes, message", [("", "必填"), ("0", "不小于 1"), ("半小时", "请填整数")])
def test_a_visit_needs_its_minutes_in_range(street, client, minutes, message):
    tablet = street["tablet"]
    home = _household(tablet)
    before = _ops(tablet)
    answer = client.post(f"/households/{home}/visit", data={"minutes": minutes, "方式": "入户走访",
                                                            "notes": "了解家庭情况", "csrf": client.token})
    assert answer.status_code == 400 and message in _error_beside(answer.text, "minutes")
    assert "了解家庭情况" in answer.text and _ops(tablet) == before


def test_a_visit_is_logged_and_the_household_is_no_longer_due(street, client):
    tablet = street["tablet"]
    home = _household(tablet, "1号楼05室")
    answer = client.post(f"/households/{home}/visit", data={"minutes": "45", "方式": "入户走访", "csrf": client.token})
    assert answer.status_code == 303
    due = tablet.home().due_visits
    assert home not in [h["id"] for h in due]


# -- case moves ---------------------------------------------------------------------------------

def _reported(street, client) -> str:
    data, files = _report(street, description="待确认的通讯箱")
    answer = client.post("/report", data={**data, "csrf": client.token}, files=files)
    return answer.headers["location"].split("/cases/")[1].split("?")[0]


def test_a_move_with_missing_evidence_says_what_is_missing(street, client):
    from wangge.core import casework

    case = _reported(street, client)
    tablet, office = street["tablet"], street["office"]
    wrong = client.post(f"/cases/{case}/move", data={"move": "结案", "csrf": client.token})
    assert wrong.status_code == 400 and "这个操作现在不能做" in wrong.text  # not from 立案
    office_move = client.post(f"/cases/{case}/move", data={"move": "派遣", "csrf": client.token})
    assert office_move.status_code == 400  # the office's move is not a grid worker's to make
    assert fieldsync.sync_now(tablet, street["master"]).ok
    with office.store.write(actor="系统中心") as rec:  # dispatched and repaired: under review
        for move, role in (("派遣", "指挥中心"), ("接单", "专业部门"), ("修复", "专业部门")):
            casework.move_case(rec, office.ruleset, case, move, role=role, actor_id=None, at=datetime.now(timezone.utc))
    assert fieldsync.sync_now(tablet, street["master"]).ok
    before = _ops(tablet)
    unconfirmed = client.post(f"/cases/{case}/move", data={"move": "结案", "csrf": client.token})
    assert unconfirmed.status_code == 400 and "请确认您已到现场" in unconfirmed.text
    bare = client.post(f"/cases/{case}/move", data={"move": "结案", "onsite": "yes", "csrf": client.token})
    assert bare.status_code == 400 and "还需要:现场确认" in bare.text  # the box alone is no confirmation
    not_png = client.post(f"/cases/{case}/move", data={"move": "结案", "onsite": "yes", "csrf": client.token},
                          files=[("signature", ("s.jpg", b"jpeg", "image/jpeg"))])
    assert not_png.status_code == 400 and "只能上传照片" in not_png.text
    assert _ops(tablet) == before
    signed = client.post(f"/cases/{case}/move", data={"move": "结案", "onsite": "yes", "csrf": client.token},
                         files=[("signature", ("s.png", png(), "image/png"))])
    assert signed.status_code == 303
    with tablet.store.read() as conn:
        assert conn.execute(select(Case.__table__.c.status).where(Case.__table__.c.id == case)).scalar() == "结案"


def test_the_list_of_open_cases_puts_the_overdue_first(street, client):
    from wangge.core import casework

    office, tablet = street["office"], street["tablet"]
    now = datetime.now(timezone.utc)
    with tablet.store.write(actor=office.ids["赵巧珍"]) as rec:
        for text, hours in (("明天到期", 24), ("已超期两天", -48), ("下周到期", 24 * 7)):
            made = casework.report_case(rec, office.ruleset, item="0104", grid_id=office.ids["grid1"], channel="巡查",
                                        reporter_id=office.ids["赵巧珍"], at=now, description=text, photos=["p"])
            rec.conn.execute(Case.__table__.update().where(Case.__table__.c.id == made.case_id)
                             .values(deadline=now + timedelta(hours=hours)))
    page = client.get("/cases").text
    order = [page.index(text) for text in ("已超期两天", "明天到期", "下周到期")]
    assert order == sorted(order)
    overdue = re.search(r'<li class="overdue">.*?</li>', page, re.S).group(0)
    assert "已超期两天" in overdue and 'class="badge danger">已超期<' in overdue


def test_a_case_of_another_grid_is_not_shown(street, client):
    office = street["office"]
    with office.store.write(actor="office") as rec:
        from wangge.core import casework

        other = casework.report_case(rec, office.ruleset, item="0104", grid_id=office.ids["grid2"], channel="巡查",
                                     reporter_id=office.ids["李明"], at=datetime.now(timezone.utc), photos=["x"])
    assert client.get(f"/cases/{other.case_id}").status_code == 404
    assert client.post(f"/cases/{other.case_id}/move", data={"move": "接单", "csrf": client.token}).status_code == 404


# -- sync ---------------------------------------------------------------------------------------

def test_the_usb_path_exports_to_a_folder_and_imports_the_offices_reply(street, client, tmp_path):
    from wangge.app.exchange import import_push

    bad = client.post("/sync/export", data={"folder": str(tmp_path / "no-such-stick"), "csrf": client.token})
    assert bad.status_code == 400 and "找不到这个文件夹" in bad.text
    assert client.post("/sync/export", data={"folder": str(tmp_path), "csrf": client.token}).status_code == 303
    (push,) = tmp_path.glob("*.wgb")
    garbage = tmp_path / "garbage.reply"
    garbage.write_bytes(b"not a bundle")
    refused = client.post("/sync/import", data={"reply": str(garbage), "csrf": client.token})
    assert refused.status_code == 400 and "无法导入这个回执" in refused.text
    imported = import_push(street["office"].store, push, lambda: street["office"].ruleset)
    answer = client.post("/sync/import", data={"reply": str(imported.reply), "csrf": client.token})
    assert answer.status_code == 303
    assert "收到" in client.get("/sync").text
    with street["tablet"].store.read() as conn:
        assert street["tablet"].waiting(conn) == 0


def test_an_unreachable_master_is_said_in_plain_words_and_nothing_is_lost(street):
    tablet = street["tablet"]
    with tablet.store.read() as conn:
        waiting = tablet.waiting(conn)
    outcome = fieldsync.sync_now(tablet, "http://127.0.0.1:9", client_options={"attempts": 1, "sleep": lambda s: None})
    assert not outcome.ok and "同步没有完成" in outcome.words()[0] and "还在平板上" in outcome.words()[1]
    with tablet.store.read() as conn:
        assert tablet.waiting(conn) == waiting


def test_a_tablet_past_its_lease_may_only_sync(street):
    tablet = street["tablet"]
    late = FieldTablet(tablet.store, tablet.path, now=lambda: datetime.now(timezone.utc) + timedelta(days=30))
    app = field_app(late, master_url=street["master"])
    with TestClient(app, base_url=BASE, follow_redirects=False) as c:
        c.get("/login?token=" + app.state.field.guard.new_login())
        token = _token(c.get("/").text)
        assert "平板已锁定" in c.get("/").text
        data, files = _report(street)
        answer = c.post("/report", data={**data, "csrf": token}, files=files)
        assert answer.status_code == 400 and "请先同步" in answer.text


# -- other districts' rule files ----------------------------------------------------------------

@contextmanager
def _district(folder, name: str, role: str):
    """A street under rule file ``name`` with 赵巧珍 as ``role``: (office, logged-in client, token)."""
    office = street_office(folder, ruleset=rulesets.load(name), households=2, role=role)
    with running(office.app()) as master_url:
        tablet = FieldTablet.open(enrolled_tablet(office, master_url), PASSPHRASE)
        assert fieldsync.sync_now(tablet, master_url).ok
        app = field_app(tablet, master_url=master_url)
        with TestClient(app, base_url=BASE, follow_redirects=False) as c:
            c.get("/login?token=" + app.state.field.guard.new_login())
            c.master, c.tablet = master_url, tablet
            yield office, c, _token(c.get("/").text)
        tablet.close()
    office.store.close()


def _case_in(c, token: str, item: str, channel: str) -> str:
    answer = c.post("/report", data={"item": item, "channel": channel, "grid_id": c.office_grid,
                                     "description": "居民来电", "csrf": token},
                    files=[("photos", ("a.png", png(), "image/png"))])
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].split("/cases/")[1].split("?")[0]


def test_a_hotline_case_closes_only_with_its_callback(tmp_path):
    """Jiading: every request on the social workers' hotline gets a callback (回访) before it closes."""
    with _district(tmp_path, "jiading", "社工") as (office, c, token):
        c.office_grid = office.ids["grid1"]
        item = next(i.code for i in office.ruleset.items.values() if not i.channels or "社工热线" in i.channels)
        case = _case_in(c, token, item, "社工热线")
        assert c.post(f"/cases/{case}/move", data={"move": "处置", "csrf": token}).status_code == 303
        page = c.get(f"/cases/{case}").text
        assert 'name="satisfied"' in page  # the closing move asks for the callback's result
        refused = c.post(f"/cases/{case}/move", data={"move": "办结", "csrf": token})
        assert refused.status_code == 400 and "还需要:回访结果" in refused.text
        closed = c.post(f"/cases/{case}/move", data={"move": "办结", "satisfied": "yes", "csrf": token})
        assert closed.status_code == 303
        with c.tablet.store.read() as conn:
            row = conn.execute(select(Case.__table__.c.status, Case.__table__.c.fields)
                               .where(Case.__table__.c.id == case)).first()
        assert row.status == "办结" and (row.fields if isinstance(row.fields, dict) else
                                         __import__("json").loads(row.fields))["satisfied"] is True


def test_an_office_move_made_on_the_tablet_is_sent_as_a_proposal(tmp_path):
    """Baotaqiao: the grid office's 上报 made on a tablet waits for the office, and the pages say so."""
    with _district(tmp_path, "baotaqiao", "网格办") as (office, c, token):
        c.office_grid = office.ids["grid1"]
        item = next(i.code for i in office.ruleset.items.values() if not i.channels or "巡查" in i.channels)
        case = _case_in(c, token, item, "巡查")
        page = c.get(f"/cases/{case}").text
        assert "作为提议发送" in page
        answer = c.post(f"/cases/{case}/move", data={"move": "上报", "csrf": token})
        assert answer.status_code == 303 and "已作为提议保存" in c.get(answer.headers["location"]).text
        with c.tablet.store.read() as conn:
            assert conn.execute(select(Case.__table__.c.status).where(Case.__table__.c.id == case)).scalar() == "发现"
        outcome = fieldsync.sync_now(c.tablet, c.master)
        assert outcome.proposals == 1 and "1 条待办公室审核" in outcome.words()


# -- volunteer points (Lianchi's self-help mode) -------------------------------------------------

def test_points_are_credited_and_a_redemption_past_the_balance_is_refused(tmp_path):
    office = street_office(tmp_path, ruleset=rulesets.load("lianchi"), households=2)
    with running(office.app()) as master_url:
        tablet = FieldTablet.open(enrolled_tablet(office, master_url), PASSPHRASE)
        assert fieldsync.sync_now(tablet, master_url).ok
        app = field_app(tablet, master_url=master_url)
        with TestClient(app, base_url=BASE, follow_redirects=False) as c:
            c.get("/login?token=" + app.state.field.guard.new_login())
            token = _token(c.get("/").text)
            home = office.ids["homes1"][0]
            c.post(f"/households/{home}/residents", data={"name": "张大爷", "csrf": token})
            resident = re.search(r'<option value="([^"]+)">张大爷', c.get("/points").text).group(1)
            earned = c.post("/points", data={"resident_id": resident, "earn": "志愿服务", "times": "2", "csrf": token})
            assert earned.status_code == 303 and "余额 2 分" in c.get(earned.headers["location"]).text
            refused = c.post("/points", data={"resident_id": resident, "reward": "玩具", "csrf": token})
            assert refused.status_code == 400 and "the balance is 2" in refused.text
            zero = c.post("/points", data={"resident_id": resident, "earn": "志愿服务", "times": "0", "csrf": token})
            assert zero.status_code == 400 and "1 到 100" in zero.text
        tablet.close()
    office.store.close()
