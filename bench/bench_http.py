"""HTTP transport benchmarks: `python -m wangge.bench.bench_http`.

(a) Provisioning a new tablet: the ops of a 400-household grid (77 fields
    each) and 2,000 historical cases, written through change capture on a
    master, travel as one reply over loopback HTTP (upload a request, apply,
    download the reply in resumable chunks). Printed against the baseline of
    sending the same number of bytes over a plain TCP socket on the same
    loopback, measured in the same run.
(b) 300 devices syncing a patrol's changes at once: p50 and p99 latency of
    the whole exchange and the error count (target: none).

The bundle import behind the server is a ledger that applies op ids
idempotently in one SQLite transaction per bundle (BEGIN IMMEDIATE), so the
numbers measure the transport and the master's write queue; the sync
protocol's verify/decrypt/merge cost is measured by bench_import.
"""
from __future__ import annotations

import hashlib
import json
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text

from wangge.core import store
from wangge.core.capture import dumps
from wangge.sync.client import MasterClient
from wangge.sync.server import MasterApp, running

HOUSEHOLDS, FIELDS, CASES, DEVICES, PATROL_OPS = 400, 77, 2000, 300, 12


class LedgerMaster:
    """A `Master` whose exchange applies op ids once each and replies with a fixed payload."""

    def __init__(self, master, reply: bytes = b""):
        self.master, self.reply = master, reply
        with master.write() as rec:
            rec.conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS ledger (op_id TEXT PRIMARY KEY)")

    def exchange(self, bundle: bytes):
        ops = json.loads(bundle)["ops"]
        with self.master.write() as rec:
            for op_id in ops:
                rec.conn.execute(text("INSERT INTO ledger VALUES (:o) ON CONFLICT DO NOTHING"), {"o": op_id})
        return self.reply or json.dumps({"applied": len(ops)}).encode(), f"{len(ops)} ops"

    def health(self):
        return {"role": "master"}

    def enroll(self, request):
        raise NotImplementedError

    def enrollment(self, device_id):
        raise NotImplementedError

    def device_grids(self, device_id, message, signature):
        raise NotImplementedError


def provisioning_payload(folder: Path) -> tuple[bytes, int]:
    """The ops a new tablet receives for one grid: households and case history, as JSON lines."""
    rng = random.Random(7)
    when = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    with store.init(str(folder / "provision.db"), "master") as master:
        with master.write(actor="bench") as rec:
            grid = rec.insert("grid_cell", {"code": "01.01.001", "level": "网格", "name": "泰丰家园一网格"})
            households = rec.insert_many("household", (
                {"grid_id": grid, "address": f"泰丰家园{h // 20 + 1}号楼{h % 20 + 1}01室", "head_name": f"住户{h}",
                 "members": rng.randint(1, 6),
                 **{f"f{k:02d}": (rng.choice(["是", "否", "自有", "租住"]) if k % 3 else rng.randint(0, 5000))
                    for k in range(FIELDS - 3)}}
                for h in range(HOUSEHOLDS)))
            rec.insert_many("case", (
                {"grid_id": grid, "item_code": f"0{c % 7 + 1}{c % 40:02d}", "number": f"C2026{c:05d}",
                 "household_id": households[c % HOUSEHOLDS], "status": "结案",
                 "description": "楼道堆放杂物,已清理 stairwell clutter, cleared",
                 "reported_at": when + timedelta(hours=c)}
                for c in range(CASES)))
        with master.read() as conn:
            rows = conn.execute(text("SELECT op_id, entity, entity_id, hlc, actor, device, kind, fields FROM op")).all()
    lines = [dumps({"op_id": r[0], "entity": r[1], "entity_id": r[2], "hlc": r[3], "actor": r[4],
                    "device": r[5], "kind": r[6], "fields": json.loads(r[7])}) for r in rows]
    return "\n".join(lines).encode("utf-8"), len(rows)


def raw_socket_seconds(size: int) -> float:
    """Seconds to send ``size`` bytes over a fresh loopback TCP connection, and read them all."""
    listener = socket.create_server(("127.0.0.1", 0))
    payload = b"x" * size

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(64)
            conn.sendall(payload)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    start = time.perf_counter()
    with socket.create_connection(listener.getsockname()) as client:
        client.sendall(b"go")
        got = 0
        while got < size:
            got += len(client.recv(1 << 20))
    seconds = time.perf_counter() - start
    thread.join()
    listener.close()
    return seconds


def bench_provisioning(folder: Path) -> str:
    payload, ops = provisioning_payload(folder)
    with store.init(str(folder / "office-a.db"), "master") as master:
        app = MasterApp(LedgerMaster(master, reply=payload), folder / "files-a")
        with running(app) as url, MasterClient(url) as client:
            client.health()  # connection set up, as a tablet's session would be
            start = time.perf_counter()
            reply, _ = client.exchange(json.dumps({"ops": []}).encode())
            http_s = time.perf_counter() - start
    assert hashlib.sha256(reply).digest() == hashlib.sha256(payload).digest()
    raw_s = min(raw_socket_seconds(len(payload)) for _ in range(3))
    return (f"(a) provisioning {HOUSEHOLDS} households x {FIELDS} fields + {CASES} cases: "
            f"{ops} ops, {len(payload) / 1e6:.1f} MB over loopback HTTP in {http_s:.3f} s; "
            f"raw socket, same bytes: {raw_s:.3f} s; ratio {http_s / raw_s:.1f}x")


def bench_concurrent(folder: Path) -> str:
    with store.init(str(folder / "office-b.db"), "master") as master:
        app = MasterApp(LedgerMaster(master), folder / "files-b")
        with running(app) as url:
            barrier = threading.Barrier(DEVICES)

            def patrol(device: int):
                bundle = json.dumps({"ops": [f"d{device}-op{k}" for k in range(PATROL_OPS)]}).encode()
                with MasterClient(url, timeout=120) as client:
                    barrier.wait()
                    start = time.perf_counter()
                    try:
                        client.exchange(bundle, ops=PATROL_OPS)
                    except Exception as exc:  # noqa: BLE001 - counted, printed below
                        return None, f"{type(exc).__name__}: {exc}"
                    return time.perf_counter() - start, None

            start = time.perf_counter()
            with ThreadPoolExecutor(DEVICES) as pool:
                results = list(pool.map(patrol, range(DEVICES)))
            wall = time.perf_counter() - start
        with master.read() as conn:
            applied = conn.execute(text("SELECT COUNT(*) FROM ledger")).scalar()
    latencies = sorted(r for r, _ in results if r is not None)
    errors = [e for _, e in results if e is not None]
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    line = (f"(b) {DEVICES} devices syncing {PATROL_OPS} ops each at once: p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, errors {len(errors)}, wall {wall:.2f} s, "
            f"ops applied {applied}/{DEVICES * PATROL_OPS}")
    if errors:
        line += f"\n    first error: {errors[0]}"
    return line


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wangge-bench-http-") as tmp:
        folder = Path(tmp)
        print(bench_provisioning(folder), flush=True)
        print(bench_concurrent(folder), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
