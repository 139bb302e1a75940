"""`wangge serve` serves the console at / beside the sync endpoints, on one port, and the
ruleset page shows the errors of a rule file that failed to reload."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import httpx

from support.transport import wait_for
from wangge import rulesets

PASSWORD = "first account 1"


def _run(*args):
    return subprocess.run([sys.executable, "-m", "wangge", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "WANGGE_ACCOUNT_PASSWORD": PASSWORD})


def _serve_url(proc) -> str:
    line = wait_for(proc.stdout.readline, "wangge serve's first line", timeout=60)
    assert " serving " in line, line
    return line.split(" on ")[-1].strip()


def test_the_first_account_logs_in_to_the_console_that_serve_serves(tmp_path):
    for name in ("national", "teda"):
        shutil.copy(rulesets.path(name), tmp_path / f"{name}.wg")
    rules, office = tmp_path / "teda.wg", str(tmp_path / "office.db")
    assert _run("init", office, "--role", "master", "--rules", str(rules)).returncode == 0
    added = _run("user", "add", office, "张主任", "--role", "指挥中心")
    assert added.returncode == 0, added.stderr
    proc = subprocess.Popen([sys.executable, "-m", "wangge", "serve", office, "--rules", str(rules), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _serve_url(proc)
        with httpx.Client(base_url=url, follow_redirects=True, timeout=30) as client:
            assert client.get("/health").json()["role"] == "master"  # the sync endpoints, same port
            page = client.get("/")
            assert page.url.path == "/login" and "登录" in page.text
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            set_cookie = page.headers["set-cookie"].lower()
            assert set_cookie.startswith("wangge_console=") and "httponly" in set_cookie and "samesite=strict" in set_cookie
            page = client.post("/login", data={"csrf": token, "name": "张主任", "password": PASSWORD})
            assert page.url.path == "/cases" and "张主任" in page.text
            assert "天津泰达" in client.get("/ruleset").text
            rules.write_text(rules.read_text(encoding="utf-8") + "\nrole 坏 at 不存在的层级\n", encoding="utf-8")
            shown = wait_for(lambda: (lambda text: text if "failed to reload" in text or "重新加载失败" in text else None)(
                client.get("/ruleset").text), "the ruleset page to show the reload error", timeout=30)
            assert re.search(r"teda\.wg:\d+:\d+", shown) and "不存在的层级" in shown
    finally:
        proc.terminate()
        proc.wait(timeout=30)
