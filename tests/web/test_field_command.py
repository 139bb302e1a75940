"""`wangge field`: loopback only, one line for every refusal, and a one-time link when unlocked at start."""
from __future__ import annotations

import os
import subprocess
import sys

import httpx

from support.fieldapp import PASSPHRASE, TEST_SCRYPT_N
from support.transport import wait_for
from wangge.app import stores


def _wangge(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "wangge", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=60)


def _tablet(tmp_path):
    path = tmp_path / "tablet.db"
    stores.create_tablet(path, PASSPHRASE, scrypt_n=TEST_SCRYPT_N).close()
    return path


def test_any_host_but_loopback_is_refused_before_anything_listens(tmp_path):
    path = _tablet(tmp_path)
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        result = _wangge("field", str(path), "--host", host)
        assert result.returncode != 0 and "loopback only" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_tablet_or_a_wrong_passphrase_is_one_line(tmp_path):
    missing = _wangge("field", str(tmp_path / "none.db"))
    assert missing.returncode != 0 and "no tablet store" in missing.stderr and "Traceback" not in missing.stderr
    wrong = _wangge("field", str(_tablet(tmp_path)), env={"WANGGE_PASSPHRASE": "guess"})
    assert wrong.returncode == 3 and "wrong passphrase" in wrong.stderr


def test_a_port_in_use_is_said_in_one_line(tmp_path):
    import socket

    taken = socket.create_server(("127.0.0.1", 0))
    try:
        result = _wangge("field", str(_tablet(tmp_path)), "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert result.returncode != 0 and "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr


def test_unlocked_at_start_it_prints_a_one_time_link_that_opens_the_home_page(tmp_path):
    path = _tablet(tmp_path)
    server = subprocess.Popen([sys.executable, "-m", "wangge", "field", str(path), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "WANGGE_PASSPHRASE": PASSPHRASE})
    try:
        line = server.stdout.readline()
        assert "unlocked; open http://127.0.0.1:" in line
        link = line.split("open ", 1)[1].strip()
        with httpx.Client(follow_redirects=True) as client:
            home = wait_for(lambda: _get(client, link), "the field app to answer")
            assert home.status_code == 200 and "租期" in home.text
            again = httpx.get(link, follow_redirects=False)
            assert again.headers["location"] == "/unlock"  # the link works once
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get(client, url):
    try:
        return client.get(url)
    except httpx.TransportError:
        return None
