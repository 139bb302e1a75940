"""`wangge demo --serve`: after the field day, the office console and the field apps stay up to click through."""
from __future__ import annotations

import re

import httpx
import pytest

from support.running import Running


@pytest.fixture
def demo(tmp_path):
    running = Running("demo", "--serve", "--dir", str(tmp_path / "demo"), "--port", "0", cwd=tmp_path)
    yield running
    running.stop()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_the_demo_leaves_its_office_console_running_with_accounts_to_log_in_with(demo, tmp_path):
    url = demo.find(r"console: (http://127\.0\.0\.1:\d+)/").group(1)
    password = demo.find(r"log in as 张主任 \(指挥中心.*with password (\S+)").group(1)
    demo.find(r"Ctrl-C")
    with httpx.Client(base_url=url, timeout=20) as office:
        health = office.get("/health")
        assert health.status_code == 200 and health.json()["role"] == "master"
        login = office.get("/login")
        assert login.status_code == 200
        wrong = office.post("/login", data={"csrf": _csrf(login.text), "name": "张主任", "password": "not the one"})
        assert wrong.status_code == 400
        answer = office.post("/login", data={"csrf": _csrf(office.get("/login").text), "name": "张主任",
                                             "password": password})
        assert answer.status_code == 303 and answer.headers["location"] == "/cases"
        queue = office.get("/cases")
        # The field day's cases are there, numbered with their check suffix, for the command centre to work.
        numbers = set(re.findall(r"C20261013\d{3}-[0-9A-F]{4}", queue.text))
        assert queue.status_code == 200 and len(numbers) == 2
    assert demo.stop() == 0
    assert any("demo stopped" in line for line in demo.lines)


def test_the_demo_serves_each_tablets_field_app_unlocked_behind_its_link(demo):
    master = demo.find(r"console: (http://127\.0\.0\.1:\d+)/").group(1)
    link = demo.find(r"赵巧珍 \(zhao-tablet\): (http://127\.0\.0\.1:\d+/login\?token=\S+)").group(1)
    assert demo.find(r"passphrase: (.+)\)$").group(1) == "演示口令 demo passphrase"
    assert not link.startswith(master)  # a port of its own
    with httpx.Client(follow_redirects=True, timeout=20) as tablet:
        home = tablet.get(link)
        assert home.status_code == 200 and "赵巧珍" in home.text
