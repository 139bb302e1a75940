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
from wangge.core.errors import SyncError
from wangge.core.models import Op
from wangge.sync import enrollment, scope
from wangge.sync.client import MasterClient
from wangge.sync.fieldwork import tablet_session
from wangge.sync.server import running
from wangge.sync.tablet import enrollment_request


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
    ("POST", "/enroll", b'{"device_id": "x"}', 403, "exactly the fields"),
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
