"""Helpers of the transport tests: a bounded poll, bare device identities and a link that breaks.

Tests never sleep blindly: they wait on a condition with `wait_for`, a bounded poll.
"""
from __future__ import annotations

import socket
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wangge.sync import enrollment


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


def _raw(public) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


class Tablet:
    """A bare device identity (keys and a signed enrollment request), for the enrollment tests."""

    def __init__(self, name: str):
        self.name = name
        self.key = Ed25519PrivateKey.generate()
        self.request = enrollment.make_request(
            "dev-" + name, name, _raw(self.key.public_key()), _raw(X25519PrivateKey.generate().public_key()), self.key.sign)
        self.device_id = self.request.device_id


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
