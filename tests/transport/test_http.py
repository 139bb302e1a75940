"""The HTTP transport on a real uvicorn server on 127.0.0.1.

The bundle import behind the server is a stand-in (conftest `LedgerExchange`)
so these tests pin the transport: resumption, applied-once, concurrency,
refusals and clean 4xx errors.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from wangge.core.errors import SyncError
from wangge.sync import enrollment
from wangge.sync.client import MasterClient


def _client(url, **options):
    return MasterClient(url, sleep=lambda s: None, **options)


def test_health_and_enrollment_over_http(master, kit):
    tablet = kit.Tablet("a")
    with _client(master.url) as client:
        assert client.health()["status"] == "ok"
        answer = client.enroll(tablet.request.__dict__)
        assert answer["status"] == "pending" and answer["fingerprint"] == tablet.request.fingerprint
        with master.store.write() as rec:
            enrollment.approve(rec, tablet.device_id, "王芳")
        assert client.enrollment(tablet.device_id)["status"] == "active"


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_connection_cut_mid_transfer_resumes_and_applies_once(master, kit, direction):
    tablet = kit.Tablet("a")
    kit.enroll(master, tablet)
    bundle = tablet.bundle([f"op{i}" for i in range(100)], pad=300_000)
    proxy = kit.CuttingProxy(master.url, limit=150_000, direction=direction)
    try:
        with _client(proxy.url, chunk=64 * 1024) as client:
            reply, record = client.exchange(bundle, ops=100)
            assert client.traffic.retries >= 1
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert json.loads(reply)["state"] == sorted(f"op{i}" for i in range(100))
    assert list(master.ledger.applied.values()) == [1] and master.app.exchanges == 1
    # sending the same bundle again is answered from the record, not re-applied
    with _client(master.url) as client:
        assert client.exchange(bundle)[0] == reply
    assert list(master.ledger.applied.values()) == [1]


def test_fifty_devices_syncing_at_once_all_succeed_with_one_final_state(master, kit):
    tablets = [kit.Tablet(f"t{i}") for i in range(50)]
    for tablet in tablets:
        kit.enroll(master, tablet)

    def patrol(tablet):
        with _client(master.url) as client:
            client.exchange(tablet.bundle([f"{tablet.name}-{k}" for k in range(20)]))

    def final(tablet):
        with _client(master.url) as client:
            return client.exchange(tablet.bundle([]))[0]

    with ThreadPoolExecutor(50) as pool:
        list(pool.map(patrol, tablets))
        finals = set(pool.map(final, tablets))
    assert len(finals) == 1
    assert len(json.loads(finals.pop())["state"]) == 50 * 20


def test_a_revoked_device_is_refused_at_its_next_sync(master, kit):
    tablet = kit.Tablet("a")
    kit.enroll(master, tablet)
    with _client(master.url) as client:
        client.exchange(tablet.bundle(["before"]))
        with master.store.write() as rec:
            enrollment.revoke(rec, tablet.device_id)
        with pytest.raises(SyncError, match="refused .*revoked"):
            client.exchange(tablet.bundle(["after"]))


def test_an_unreachable_master_fails_in_one_line(kit):
    with _client("http://127.0.0.1:9", attempts=2) as client:
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
def test_bad_requests_get_clear_json_errors(master, method, path, body, status, words):
    response = httpx.request(method, master.url + path, content=body)
    assert response.status_code == status
    error = response.json()
    assert words in error["error"] and error["status"] == status
    assert "Traceback" not in response.text
