"""The master's Starlette app: declared routes, JSON errors, the access log and room for more apps."""
from __future__ import annotations

import logging
import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from support import street as st
from wangge.sync.transport.fieldwork import installed_rules, protocol_exchange
from wangge.sync.identity import store_keys
from wangge.sync.office import Office
from wangge.web.server import master_app, running


@pytest.fixture
def built(tmp_path):
    street = st.street(tmp_path)
    yield street
    street.store.close()


def _office(built) -> Office:
    return Office(built.store, protocol_exchange(built.store, installed_rules(built.store)),
                  public_keys=store_keys(built.store).public)


def test_each_exchange_is_one_access_line_naming_the_device_its_ops_and_its_time(built, caplog):
    caplog.set_level(logging.INFO, logger="wangge.access")
    with running(built.app()) as url:
        tablet = st.tablet(built, url, 0)
        st.sync(tablet, url)
        for n in range(3):
            built.report(tablet, 0, f"case {n}")
        caplog.clear()
        summary = st.sync(tablet, url)
    lines = [r.getMessage() for r in caplog.records if r.name == "wangge.access"]
    exchange = [line for line in lines if " /exchange/" in line]
    assert len(exchange) == 1, lines
    acked = int(re.search(r"(\d+) ops acknowledged", summary).group(1))
    line = exchange[0]
    assert f"device={tablet.device_id}" in line and f" in={acked} " in line, line
    assert re.search(r"POST /exchange/[0-9a-f]{12}.* 200 device=\S+ in=\d+ out=\d+ \d+ ms$", line), line
    tablet.close()


def test_other_apps_mount_beside_the_sync_endpoints_which_keep_their_paths(built, tmp_path):
    console = Starlette(routes=[Route("/", lambda request: PlainTextResponse("街道办控制台"))])
    app = master_app(_office(built), tmp_path / "files", mounts=[Mount("/", app=console)])
    with running(app) as url:
        assert httpx.get(url + "/").text == "街道办控制台"
        assert httpx.get(url + "/health").json()["status"] == "ok"
        refused = httpx.get(url + "/uploads/nothex")
        assert refused.status_code == 400 and "bad blob name" in refused.json()["error"]


class _Broken:
    """A master whose health check fails with a bug, not a refusal."""

    def health(self):
        raise RuntimeError("secret internal state")


def test_a_bug_is_a_json_500_without_internals_logged_once(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with running(master_app(_Broken(), tmp_path / "files")) as url:
        response = httpx.get(url + "/health")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error on the master; it is logged there", "status": 500}
    assert "secret" not in response.text
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "secret internal state" in caplog.text
    assert any(" /health 500 " in r.getMessage() for r in caplog.records if r.name == "wangge.access")


def test_sync_refusals_carry_their_own_http_status():
    from wangge.core.errors import SyncError, WanggeError
    from wangge.sync.attachments import AttachmentError
    from wangge.sync.bundle import BundleError
    from wangge.sync.enrollment import EnrollmentError
    from wangge.sync.protocol import NotEnrolled, Replayed
    from wangge.sync.request_auth import Unsigned

    assert [e.http_status for e in (BundleError, EnrollmentError, AttachmentError)] == [400, 400, 400]
    assert (Replayed.http_status, Unsigned.http_status, NotEnrolled.http_status) == (409, 401, 403)
    assert SyncError.http_status == 403 and WanggeError.http_status == 422
