"""The HTTP transport on a real uvicorn server on 127.0.0.1, carrying the real sync protocol.

The master runs `MasterSync` behind `Office` as `wangge serve` does; tablets
run `DeviceSync` through `tablet_session` as `wangge sync` does. These tests
pin what HTTP adds: resumption after a cut, applied-once, concurrency,
refusals and clean 4xx errors.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from support import street as st
from support.transport import CuttingProxy
from wangge.core.errors import SyncError, UsageError
from wangge.core.models import Op
from wangge.sync import enrollment
from wangge.sync.log import scope
from wangge.sync.attachments import BlobStore
from wangge.sync.transport.client import MasterClient, Signer, check_master_url
from wangge.sync.transport.fieldwork import tablet_session
from wangge.sync.identity import store_keys
from wangge.web import sync as server
from wangge.web.server import running
from wangge.sync.device.tablet import enrollment_request


@pytest.fixture
def street(tmp_path):
    built = st.street(tmp_path)
    app = built.app()
    with running(app) as url:
        yield built, app, url
    built.store.close()


def _ops_from(s, device_id: str) -> int:
    with s.read() as conn:
        return conn.execute(select(func.count()).select_from(Op.__table__)
                            .where(Op.__table__.c.device == device_id)).scalar_one()


def test_health_and_enrollment_over_http(street, tmp_path):
    built, app, url = street
    tablet = st.store.init(str(tmp_path / "t.db"), "device")
    request = enrollment_request(tablet, "王芳的平板")
    with MasterClient(url) as client:
        assert client.health()["status"] == "ok"
        answer = client.enroll(request.__dict__)
        assert answer["status"] == "pending" and answer["fingerprint"] == request.fingerprint
        assert "master" not in client.enrollment(tablet.device_id)  # no keys before approval
        with built.store.write() as rec:
            enrollment.approve(rec, tablet.device_id, built.workers[0])
        answer = client.enrollment(tablet.device_id)
    assert answer["status"] == "active" and answer["master"]["id"] == built.store.device_id
    tablet.close()


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_connection_cut_mid_transfer_resumes_and_applies_once(street, direction):
    built, app, url = street
    tablet = st.tablet(built, url, 0)
    st.sync(tablet, url)  # first contact: the master's keys and the grid tree
    # Enough cases on one side that the bundle crossing the cut is several chunks long.
    for n in range(200):
        built.report(tablet if direction == "up" else built.store, 0, f"case {n:03d}")
    before = app.exchanges
    proxy = CuttingProxy(url, limit=6_000, direction=direction)
    try:
        with MasterClient(proxy.url, sleep=lambda s: None, chunk=2048) as client:
            summary = tablet_session(tablet, client)
            assert client.traffic.retries >= 1, summary
            assert max(client.traffic.bytes_up, client.traffic.bytes_down) > proxy.limit
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert app.exchanges == before + 1  # the bundle was applied once, not once per attempt
    assert st.cases(tablet) == st.cases(built.store) == [f"case {n:03d}" for n in range(200)]
    assert _ops_from(built.store, tablet.device_id) == _ops_from(tablet, tablet.device_id)
    assert "0 ops acknowledged, 0 applied" in st.sync(tablet, url)  # nothing left over, nothing twice
    tablet.close()


def test_fifty_devices_syncing_at_once_all_succeed_with_one_final_state(tmp_path):
    built = st.street(tmp_path, grids=50)
    app = built.app()
    with running(app) as url:
        tablets = [st.tablet(built, url, n) for n in range(50)]
        with ThreadPoolExecutor(50) as pool:
            list(pool.map(lambda t: st.sync(t, url), tablets))  # first contact, all at once
            for n, tablet in enumerate(tablets):
                built.report(tablet, n, f"case {n:02d}")
            summaries = list(pool.map(lambda t: st.sync(t, url), tablets))
            assert all(s.startswith("sent") and ": 1 ops acknowledged" in s for s in summaries), summaries
            list(pool.map(lambda t: st.sync(t, url), tablets))  # a quiet round: nothing pending anywhere
    assert st.cases(built.store) == [f"case {n:02d}" for n in range(50)]
    with built.store.read() as conn:
        expected = [scope.checksums(conn, [g]) for g in built.grids]
    for n, tablet in enumerate(tablets):
        with tablet.read() as conn:
            assert scope.checksums(conn, None) == expected[n]  # each tablet is the master, within its grid
        assert st.cases(tablet) == [f"case {n:02d}"]
        tablet.close()
    built.store.close()


def test_a_revoked_device_is_refused_at_its_next_sync_and_keeps_its_outbox(street):
    built, app, url = street
    tablet = st.tablet(built, url, 1)
    st.sync(tablet, url)
    built.report(tablet, 1, "recorded before the revocation reached it")
    with built.store.write() as rec:
        enrollment.revoke(rec, tablet.device_id)
    with pytest.raises(SyncError, match="revoked"):
        st.sync(tablet, url)
    assert st.cases(built.store) == []
    assert st.cases(tablet) == ["recorded before the revocation reached it"]
    tablet.close()


def test_an_unapproved_tablet_is_told_to_ask_the_office(street, tmp_path):
    built, app, url = street
    tablet = st.store.init(str(tmp_path / "t.db"), "device")
    with MasterClient(url) as client:
        client.enroll(enrollment_request(tablet, "t").__dict__)
        with pytest.raises(SyncError, match="pending at the master: ask the office"):
            tablet_session(tablet, client)
    tablet.close()


def test_an_unreachable_master_fails_in_one_line():
    with MasterClient("http://127.0.0.1:9", attempts=2, sleep=lambda s: None) as client:
        with pytest.raises(SyncError) as caught:
            client.exchange(b"bundle")
    assert "nothing was lost" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("method, path, body, status, words", [
    ("POST", "/enroll", b"{not json", 400, "not JSON"),
    ("POST", "/enroll", b'{"device_id": "x"}', 400, "exactly the fields"),
    ("PUT", "/uploads/" + "a" * 64 + "?offset=0&total=5", b"x" * (5 * 1024 * 1024), 413, "over the cap"),
    ("PUT", "/uploads/" + "a" * 64 + "?offset=zero&total=5", b"x", 400, "non-negative integer"),
    ("GET", "/uploads/../../etc/passwd", b"", 404, "no endpoint"),
    ("GET", "/uploads/nothex", b"", 400, "bad blob name"),
    ("POST", "/exchange/" + "b" * 64, b"", 409, "incomplete"),
    ("DELETE", "/health", b"", 405, "not allowed"),
    ("GET", "/blobs/" + "c" * 64 + "/data", b"", 401, "signed request"),
])
def test_bad_requests_get_clear_json_errors(street, method, path, body, status, words):
    built, app, url = street
    response = httpx.request(method, url + path, content=body)
    assert response.status_code == status
    error = response.json()
    assert words in error["error"] and error["status"] == status
    assert "Traceback" not in response.text


# -- what the client accepts as a master's URL and as a master's answer ------------------------


@pytest.mark.parametrize("text, expected", [
    ("http://10.0.0.2:8470", "http://10.0.0.2:8470"),
    (" https://office.example/wangge/ ", "https://office.example/wangge"),
    ("http://[::1]:8470/", "http://[::1]:8470"),
])
def test_a_master_url_is_returned_tidied(text, expected):
    assert check_master_url(text) == expected


@pytest.mark.parametrize("text, words", [
    ("", "it is empty"),
    ("10.0.0.2:8470", "did you mean http://10.0.0.2:8470?"),
    ("ftp://10.0.0.2", "ftp:// is not a scheme a master serves"),
    ("http://10.0.0.2:84 70", "space"),
    ("http://10.0.0.2:port", "invalid port"),
    ("http://[::1:8470", "no closing ']'"),
    ("http://:8470", "no host"),
    ("http://10.0.0.2:84700", "outside 1-65535"),
    ("http://10.0.0.2:8470/?token=1", "no ?query"),
])
def test_a_url_that_cannot_name_a_master_is_a_usage_error_naming_it(text, words):
    with pytest.raises(UsageError) as caught:
        MasterClient(text)
    message = str(caught.value)
    assert repr(text) in message and words in message and "http://10.0.0.2:8470" in message
    assert "\n" not in message


def _answering(handler) -> MasterClient:
    return MasterClient("http://master.test", transport=httpx.MockTransport(handler), sleep=lambda s: None)


_PORTAL = httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>log in first</html>")


@pytest.mark.parametrize("answer, words", [
    (_PORTAL, "got HTTP 200 text/html, expected a JSON object"),
    (httpx.Response(302, headers={"location": "http://portal.test/login"}), "redirecting to http://portal.test/login"),
    (httpx.Response(404, headers={"content-type": "text/html"}, content=b"<h1>Not Found</h1>"),
     "got HTTP 404 text/html, expected a JSON error"),
    (httpx.Response(200, content=b'{"received": 0}'), "with no content type"),
    (httpx.Response(200, json=[1, 2]), "expected a JSON object"),
    (httpx.Response(200, json={"received": "0"}), "expected a count for 'received'"),
], ids=["a login page", "a redirect", "an HTML 404", "no content type", "a JSON list", "a count as text"])
def test_a_server_that_does_not_answer_as_a_master_is_named_as_such(answer, words):
    with _answering(lambda request: answer) as client:
        with pytest.raises(SyncError) as caught:
            client.exchange(b"bundle")
    message = str(caught.value)
    assert message.startswith("http://master.test does not answer") and words in message, message
    assert "/uploads/" in message and "\n" not in message


@pytest.mark.parametrize("call", ["enroll", "enrollment", "health"])
def test_enrollment_calls_to_a_login_page_name_what_came_back(call):
    with _answering(lambda request: _PORTAL) as client:
        with pytest.raises(SyncError, match="does not answer as a wangge master: .* got HTTP 200 text/html"):
            {"enroll": lambda: client.enroll({}), "enrollment": lambda: client.enrollment("dev-1"),
             "health": client.health}[call]()


@pytest.mark.parametrize("answer, words", [
    ({"device_id": "d"}, "expected a text for 'status'"),
    ({"status": "active", "master": "m"}, "expected an object for 'master'"),
    ({"status": "active", "master": {"id": "m", "sign_key": 1, "box_key": "b"}}, "for 'sign_key'"),
])
def test_an_enrollment_answer_missing_its_fields_is_refused(answer, words):
    json_answer = httpx.Response(200, json=answer)
    with _answering(lambda request: json_answer) as client:
        with pytest.raises(SyncError, match=words):
            client.enrollment("dev-1")


def test_a_reply_download_that_stops_short_is_an_error_not_a_wait_forever():
    def handler(request):
        path = request.url.path
        if path.startswith("/uploads/"):
            return httpx.Response(200, json={"received": 0, "answered": True})
        if path.startswith("/exchange/"):
            return httpx.Response(200, json={"reply": "e" * 64, "size": 10, "summary": ""})
        return httpx.Response(200, headers={"content-type": "application/octet-stream"}, content=b"")

    with _answering(handler) as client:
        with pytest.raises(SyncError, match="stopped at byte 0 of 10"):
            client.exchange(b"bundle")


def test_a_refusal_keeps_the_masters_own_words():
    refusal = httpx.Response(403, json={"error": "device d is revoked at this master\nmore", "status": 403})
    with _answering(lambda request: refusal) as client:
        with pytest.raises(SyncError, match=r"refused GET /uploads/[0-9a-f]{12}…: device d is revoked at this master$"):
            client.exchange(b"bundle")


def test_a_photo_larger_than_one_chunk_of_the_master_comes_down_whole(street, tmp_path, monkeypatch):
    built, app, url = street
    monkeypatch.setattr(server, "MAX_CHUNK_BYTES", 1000)  # the master sends 4 MiB a chunk; a phone photo can be more
    tablet = st.tablet(built, url, 0)
    data = bytes(range(256)) * 20
    sha = BlobStore(tmp_path / "files" / "blobs").put(data)
    with built.store.write(actor="office") as rec:
        rec.insert("attachment", {"sha256": sha, "size": len(data), "media_type": "image/jpeg",
                                  "grid_id": built.grids[0]})
    photos = BlobStore(tmp_path / "tablet-photos")
    with MasterClient(url) as client:
        client.get_blob(photos, sha, Signer(tablet.device_id, store_keys(tablet).sign), size=len(data))
        assert client.traffic.bytes_down == len(data)
    assert photos.read(sha) == data
    tablet.close()
