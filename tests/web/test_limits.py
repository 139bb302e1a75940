"""What a master withstands from clients that hold no keys, or hold keys and misbehave.

Each test runs a real uvicorn server on 127.0.0.1 and checks what a tablet or
the office would notice: the master still answers, stores nothing it should
not, and says why.
"""
from __future__ import annotations

import hashlib
import logging
import socket

import httpx
import pytest
from sqlalchemy import func, select

from support import street as st
from support.transport import Tablet, wait_for
from wangge.core.ids import uuid7
from wangge.core.models import Device
from wangge.sync import bundle, enrollment
from wangge.sync.identity import store_keys
from wangge.sync.request_auth import sign_headers
from wangge.web.connections import ConnectionGuard, raise_file_limit
from wangge.web.log_limits import RepeatLimit
from wangge.web.server import running
from wangge.web.sync import EnrollmentGate


@pytest.fixture
def built(tmp_path):
    street = st.street(tmp_path)
    yield street
    street.store.close()


def _closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_hundreds_of_idle_connections_do_not_lock_tablets_out(built):
    guard = ConnectionGuard()
    with running(built.app(), max_connections=64, header_timeout=120, guard=guard) as url:
        host, port = url.rsplit("//", 1)[1].split(":")
        idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(300)]
        try:
            wait_for(lambda: guard.evicted >= 300 - 64 and len(guard.open) <= guard.cap,
                     "the server to take every connection and close those past the cap")
            assert guard.cap == 64
            # A tablet arriving now is answered: it takes the place of the oldest idle connection.
            assert httpx.get(url + "/health", timeout=10).json()["status"] == "ok"
            closed = wait_for(lambda: sum(_closed_by_server(s) for s in idle) >= 300 - 64 and
                              sum(_closed_by_server(s) for s in idle), "idle connections to be closed")
            assert closed >= 300 - 64
        finally:
            for sock in idle:
                sock.close()


def test_a_connection_that_never_finishes_its_request_head_is_closed(built):
    with running(built.app(), header_timeout=0.3) as url:
        host, port = url.rsplit("//", 1)[1].split(":")
        with socket.create_connection((host, int(port)), timeout=5) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and then nothing: a slow-loris
            wait_for(lambda: _closed_by_server(slow), "the server to close the silent connection")
        assert httpx.get(url + "/health").json()["status"] == "ok"


def test_the_file_limit_is_raised_to_the_hard_limit():
    import resource

    soft = raise_file_limit()
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard == resource.RLIM_INFINITY or soft == hard


def test_an_upload_without_an_enrolled_devices_signature_stores_nothing(built):
    data = b"x" * (1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    stranger = Tablet("stranger")  # keys of its own, never enrolled
    with running(built.app()) as url:
        bare = httpx.put(f"{url}/uploads/{sha}", params={"offset": 0, "total": len(data)}, content=data)
        forged = httpx.put(f"{url}/uploads/{sha}", params={"offset": 0, "total": len(data)}, content=data,
                           headers=sign_headers("PUT", f"/uploads/{sha}", stranger.device_id, stranger.key.sign,
                                                _now_ms()))
        left = httpx.get(f"{url}/uploads/{sha}").json()
    assert bare.status_code == 401 and "needs a signed request" in bare.json()["error"]
    assert forged.status_code == 403 and f"device {stranger.device_id} is unknown" in forged.json()["error"]
    assert left == {"received": 0, "answered": False}
    assert not any((built.folder / "files" / "uploads").rglob("*" + sha[:8] + "*"))


def test_an_enrollment_flood_from_one_address_is_capped(built):
    gate = EnrollmentGate()
    with running(built.app()) as url:
        answers = [httpx.post(url + "/enroll", json=Tablet(f"fake{n}").request.__dict__).status_code
                   for n in range(300)]
    with built.store.read() as conn:
        waiting = conn.execute(select(func.count()).select_from(Device.__table__)
                               .where(Device.__table__.c.status == "pending")).scalar_one()
    assert answers.count(202) == waiting <= gate.per_address
    assert answers.count(429) == 300 - waiting


def test_a_request_nobody_approves_expires_and_the_store_caps_those_waiting(store_target, monkeypatch):
    from wangge.core import store
    from wangge.sync.log import tables

    first, second, third = Tablet("a"), Tablet("b"), Tablet("c")
    with store.init(store_target, "master", extra_migrations=tables.MIGRATIONS) as master:
        with master.write(actor="office") as rec:
            enrollment.submit(rec, first.request)
        monkeypatch.setattr(enrollment, "PENDING_DAYS", 0)  # a week passes
        monkeypatch.setattr(enrollment, "MAX_PENDING", 1)
        with master.write(actor="office") as rec:
            assert enrollment.submit(rec, second.request) == "pending"
        with master.read() as conn:
            assert enrollment.status(conn, first.device_id)["status"] == "expired"
        monkeypatch.setattr(enrollment, "PENDING_DAYS", 7)
        with pytest.raises(enrollment.EnrollmentFull, match="1 enrollment requests are waiting") as full:
            with master.write(actor="office") as rec:
                enrollment.submit(rec, third.request)
        assert full.value.http_status == 429
        with master.read() as conn:  # refused, and nothing recorded for it
            with pytest.raises(Exception, match="no device"):
                enrollment.status(conn, third.device_id)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def test_a_push_that_would_inflate_far_past_its_payload_is_refused_unopened(built, monkeypatch):
    with running(built.app()) as url:
        tablet = st.tablet(built, url, 0)
        st.sync(tablet, url)
        keys = store_keys(tablet)
        body = {"ops": [], "cursor": 0, "repair": False, "ruleset": "", "pad": " " * (64 * 1024 * 1024)}
        # A tablet with a bug (or a stolen key) compresses as hard as zlib can: about a thousand to one.
        monkeypatch.setattr(bundle, "_compress", lambda raw: __import__("zlib").compress(raw, 9))
        data = bundle.build("push", uuid7(), tablet.device_id, built.store.device_id, 10**6, body, keys,
                            store_keys(built.store).public)
        sha = hashlib.sha256(data).hexdigest()
        put = httpx.put(f"{url}/uploads/{sha}", params={"offset": 0, "total": len(data)}, content=data,
                        headers=sign_headers("PUT", f"/uploads/{sha}", tablet.device_id, keys.sign, _now_ms()))
        assert put.status_code == 200, put.text
        refused = httpx.post(f"{url}/exchange/{sha}")
    assert len(data) < bundle.MIN_BODY_CAP
    assert refused.status_code == 400 and "over the cap" in refused.json()["error"], refused.text
    tablet.close()


def test_a_body_that_compresses_very_well_still_travels(built):
    keys = store_keys(built.store)
    body = {"ops": [], "pad": "网格" * (4 * 1024 * 1024)}
    data = bundle.build("reply", uuid7(), "m", "t", 1, body, keys, keys.public)
    envelope = bundle.parse(data)
    envelope.verify(keys.public)
    assert envelope.open(keys) == body


def test_one_error_repeated_for_every_client_is_logged_once_a_minute(caplog):
    clock = [0.0]
    logger = logging.getLogger("wangge.test.flood")
    limit = RepeatLimit(60, clock=lambda: clock[0])
    logger.addFilter(limit)
    try:
        with caplog.at_level(logging.INFO, logger="wangge.test.flood"):
            for n in range(1000):
                clock[0] = n * 0.01  # a thousand clients in ten seconds
                logger.error("accept failed: %s", "Too many open files")
            logger.info("an access line")
            logger.info("an access line")
            clock[0] = 75.0
            logger.error("accept failed: %s", "Too many open files")
    finally:
        logger.removeFilter(limit)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0] == "accept failed: Too many open files" and len(errors) == 2
    assert "999 more like this held back" in errors[1]
    assert sum(r.levelno == logging.INFO for r in caplog.records) == 2
