"""A move the lifecycle refuses is said in the console's language: Chinese pages say it in Chinese."""
from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from support import office as of
from wangge.core import i18n as catalogs
from wangge.core import lifecycle
from wangge.web.console import i18n


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    made = of.office(tmp_path_factory.mktemp("console-lang"))
    to_review = (("派遣", "指挥中心", ()), ("接单", "专业部门", ()), ("修复", "专业部门", ()))
    made.numbers = {
        "review": of.report_at_office(made, "通讯箱", moves=to_review),
        "final": of.report_at_office(made, "井盖", moves=(*to_review, ("结案", "网格员", ("onsite_confirmation",)),
                                                          ("评估", "第三方", ()))),
    }
    yield made
    made.store.close()


def _client(built, name: str, lang: str) -> TestClient:
    client = TestClient(built.app, follow_redirects=False)
    page = client.get("/login")
    client.post("/login", data={"csrf": _token(page.text), "name": name, "password": of.PASSWORD, "next": "/cases"})
    client.get(f"/lang/{lang}?next=/cases")
    return client


def _token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _refused(client: TestClient, number: str, **form) -> str:
    page = client.post(f"/cases/{number}/move", data={"csrf": _token(client.get("/cases").text), **form})
    assert page.status_code == 409
    return re.search(r'<p class="error" role="alert">(.*?)</p>', page.text, re.S).group(1).replace("&#39;", "'")


def test_a_missing_confirmation_is_named_in_chinese_and_in_english(built):
    number = built.numbers["review"]
    chinese = _refused(_client(built, "网格员1", "zh"), number, move="结案")
    names = i18n.evidence_names(i18n.translator("zh"))
    assert chinese == i18n.translator("zh")(lifecycle.REFUSALS["missing_evidence"], move="结案", state="审核",
                                            role="网格员", needs=names["onsite_confirmation"])
    assert "报告人现场确认" in chinese and not re.search(r"[A-Za-z]{3,}", chinese)
    english = _refused(_client(built, "网格员1", "en"), number, move="结案")
    assert english == "move 结案 from state 审核 by 网格员 needs the reporter's on-site confirmation; it was not given"


def test_a_move_from_a_final_state_says_there_is_none(built):
    said = _refused(_client(built, "张主任", "zh"), built.numbers["final"], move="派遣")
    assert said.endswith("下可办理：" + i18n.translator("zh")(lifecycle.NO_MOVES)) and "none" not in said


@pytest.mark.parametrize("reason", sorted(lifecycle.REFUSALS))
def test_every_refusal_is_in_the_console_catalog(reason):
    template = lifecycle.REFUSALS[reason]
    words = i18n.catalog("zh")
    assert words.get(template), f"web/locale/zh/LC_MESSAGES/console.po lacks {template!r}"
    values = {name: f"<{name}>" for name in re.findall(r"%\((\w+)\)s", template)}
    assert set(re.findall(r"%\((\w+)\)s", words[template])) <= set(values)
    assert catalogs.values_of(template % values, template) == values

