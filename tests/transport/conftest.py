"""Fixtures of the transport tests. Tests never sleep blindly: they wait on a condition with a bounded poll."""
from __future__ import annotations

import time

import pytest


def wait_for(condition, what: str, timeout: float = 10.0, every: float = 0.02):
    """Return ``condition()``'s first truthy value; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    """`wait_for(condition, what, timeout=10)`: a bounded poll on a condition."""
    return wait_for


# -- a master on a real uvicorn server ------------------------------------------

import base64
import hashlib
import json
import socket
import threading
from collections import Counter

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select, text

from wangge.core import store
from wangge.core.errors import SyncError
from wangge.core.models import Device
from wangge.sync import enrollment
from wangge.sync.office import Office
from wangge.sync.server import MasterApp, running


def _raw(public) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


class Tablet:
    """A device identity: keys, and stand-in bundles of op ids signed with them."""

    def __init__(self, name: str):
        self.name = name
        self.key = Ed25519PrivateKey.generate()
        self.request = enrollment.make_request(
            "dev-" + name, name, _raw(self.key.public_key()), _raw(X25519PrivateKey.generate().public_key()), self.key.sign)
        self.device_id = self.request.device_id

    def bundle(self, op_ids: list[str], pad: int = 0) -> bytes:
        body = json.dumps({"device": self.device_id, "ops": op_ids, "pad": "x" * pad}).encode()
        return base64.b64encode(self.key.sign(body)) + b"\n" + body


class LedgerExchange:
    """A stand-in for the sync protocol's bundle import, to test the transport alone.

    It does what matters to HTTP: refuses a bundle whose device is not active or
    whose signature fails, applies op ids idempotently in one transaction on the
    master's SQLite store, and replies with the master's whole state.
    """

    def __init__(self, master):
        self.master = master
        self.applied = Counter()  # bundle sha -> times applied
        self._lock = threading.Lock()
        with master.write() as rec:
            rec.conn.exec_driver_sql("CREATE TABLE ledger (op_id TEXT PRIMARY KEY, device TEXT)")

    def __call__(self, bundle: bytes) -> tuple[bytes, str]:
        signature, body = bundle.split(b"\n", 1)
        data = json.loads(body)
        with self.master.write() as rec:
            row = rec.conn.execute(select(Device.__table__).where(Device.__table__.c.id == data["device"])).first()
            if row is None or row.status != "active":
                raise SyncError(f"device {data['device']} is {row.status if row else 'unknown'}: bundle refused")
            Ed25519PublicKey.from_public_bytes(base64.b64decode(row.sign_key)).verify(base64.b64decode(signature), body)
            for op_id in data["ops"]:
                rec.conn.execute(text("INSERT INTO ledger VALUES (:o, :d) ON CONFLICT DO NOTHING"),
                                 {"o": op_id, "d": data["device"]})
            state = sorted(rec.conn.execute(text("SELECT op_id FROM ledger")).scalars())
        with self._lock:
            self.applied[hashlib.sha256(bundle).hexdigest()] += 1
        # The reply echoes the padding so tests can size downloads as well as uploads.
        reply = {"state": state, "pad": data["pad"]}
        return json.dumps(reply).encode(), f"{len(data['ops'])} ops from {data['device']}"


@pytest.fixture
def master(tmp_path):
    """A master store, its office service and its app served by uvicorn on 127.0.0.1 on a free port."""
    with store.init(str(tmp_path / "office.db"), "master") as office_store:
        with office_store.write() as rec:
            rec.insert("worker", {"id": "w1", "name": "王芳", "role": "网格员"})
        ledger = LedgerExchange(office_store)
        app = MasterApp(Office(office_store, ledger), tmp_path / "master-files")
        with running(app) as url:
            yield type("Master", (), {"url": url, "store": office_store, "ledger": ledger, "app": app})


def enroll(master, tablet: Tablet) -> None:
    """Submit and approve a tablet at the office, bound to worker w1."""
    with master.store.write() as rec:
        enrollment.submit(rec, tablet.request)
        enrollment.approve(rec, tablet.device_id, "w1")


class CuttingProxy:
    """A TCP proxy that cuts its first connection after ``limit`` bytes in one direction."""

    def __init__(self, upstream: str, limit: int, direction: str = "up"):
        host, port = upstream.rsplit("//", 1)[1].split(":")
        self.upstream = (host, int(port))
        self.limit, self.direction = limit, direction
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            cut = self.cuts == 0
            if cut:
                self.cuts += 1
            budget = [self.limit if cut else None]
            up, down = (budget, [None]) if self.direction == "up" else ([None], budget)
            threading.Thread(target=self._pump, args=(client, server, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, down), daemon=True).start()

    @staticmethod
    def _pump(source, sink, budget):
        try:
            while data := source.recv(65536):
                if budget[0] is not None:
                    if len(data) >= budget[0]:
                        sink.sendall(data[: budget[0]])
                        raise ConnectionResetError("cut")
                    budget[0] -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.stopping = True
        self.listener.close()


@pytest.fixture
def kit():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(Tablet=Tablet, enroll=enroll, CuttingProxy=CuttingProxy)
