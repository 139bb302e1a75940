"""HTTP sync benchmarks on the real protocol: `python -m wangge.bench.bench_http`.

(a) Provisioning a new tablet: a master holds a 400-household grid (77 fields
    each) and 2,000 historical cases; a freshly enrolled tablet's first sync
    over loopback HTTP pulls them all (signed, sealed bundles; master builds the
    reply, tablet verifies and applies it). Printed against the baseline of
    sending the same number of bytes over a plain TCP socket on the same
    loopback, measured in the same run.
(b) 300 devices syncing a patrol's changes at once, each its own grid: p50 and
    p99 latency of the whole exchange and the error count (target: none). The
    tablets run in separate client processes; the master applies bundles one
    at a time (SQLite has one writer), so latency grows with the queue.
"""
from __future__ import annotations

import multiprocessing
import random
import resource
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from wangge import rulesets
from wangge.core import casework, store
from wangge.sync import enrollment
from wangge.sync.log import tables
from wangge.sync.transport.client import MasterClient
from wangge.sync.transport.fieldwork import installed_rules, protocol_exchange, tablet_session
from wangge.sync.identity import store_keys
from wangge.sync.office import Office
from wangge.web.server import master_app, running
from wangge.web.sync import EnrollmentGate
from wangge.sync.device.tablet import enrollment_request

HOUSEHOLDS, FIELDS, CASES, DEVICES = 400, 77, 2000, 300
CLIENT_PROCESSES = 2
CST = timezone(timedelta(hours=8))


def _master(folder: Path, name: str, grids: int):
    ruleset = rulesets.load("teda")
    master = store.init(str(folder / f"{name}.db"), "master", extra_migrations=tables.MIGRATIONS)
    with master.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        top = rec.insert("grid_cell", {"code": "T", "level": "社区", "name": "泰丰"})
        ids = rec.insert_many("grid_cell", [{"code": f"T.{n:03d}", "level": "网格", "name": f"网格{n}", "upper_id": top}
                                            for n in range(grids)])
        workers = rec.insert_many("worker", [{"name": f"社工{n}", "role": "网格员"} for n in range(grids)])
        rec.insert_many("assignment", [{"worker_id": w, "grid_id": g} for w, g in zip(workers, ids)])
    office = Office(master, protocol_exchange(master, installed_rules(master)), public_keys=store_keys(master).public)
    # One office enrolls every tablet from loopback in a burst: past what the enrollment gate allows one address.
    gate = EnrollmentGate(burst=grids + 10, per_address=grids + 10)
    return master, ruleset, ids, workers, master_app(office, folder / f"{name}-files", gate=gate)


def _tablet(folder: Path, name: str, master, worker: str, url: str):
    tablet = store.init(str(folder / f"{name}.db"), "device", extra_migrations=tables.MIGRATIONS)
    with MasterClient(url) as client:
        client.enroll(enrollment_request(tablet, name).__dict__)
    with master.write(actor="office") as rec:
        enrollment.approve(rec, tablet.device_id, worker)
    return tablet


def _load_grid(master, grid: str) -> None:
    rng = random.Random(3)
    start = datetime(2024, 1, 1, 9, 0, tzinfo=CST)
    with master.write(actor="office") as rec:
        rec.insert_many("household", [
            {"grid_id": grid, "address": f"{n // 40 + 1}-{n % 40 + 1}",
             **{f"f{k:02d}": rng.choice(["是", "否", str(rng.randint(0, 9999)), "自有住房"]) for k in range(FIELDS)}}
            for n in range(HOUSEHOLDS)])
        rec.insert_many("case", [
            {"number": f"H{n:05d}", "item_code": "0103", "grid_id": grid, "channel": "巡查", "status": "评估",
             "description": "历史案件", "reported_at": start + timedelta(hours=7 * n)} for n in range(CASES)])


def raw_socket_seconds(size: int) -> float:
    """Seconds to send ``size`` bytes over a fresh loopback TCP connection and read them all."""
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
    master, _ruleset, grids, workers, app = _master(folder, "provision", 1)
    _load_grid(master, grids[0])
    with running(app) as url:
        tablet = _tablet(folder, "new-tablet", master, workers[0], url)
        start = time.perf_counter()
        with MasterClient(url) as client:
            tablet_session(tablet, client)
            moved = client.traffic.bytes_up + client.traffic.bytes_down
        seconds = time.perf_counter() - start
    raw = min(raw_socket_seconds(moved) for _ in range(3))
    tablet.close()
    master.close()
    return (f"(a) provisioning {HOUSEHOLDS} households x {FIELDS} fields + {CASES:,} cases: {seconds:.2f} s, "
            f"{moved / 1e6:.1f} MB over HTTP; raw socket {raw * 1000:.1f} ms for the same bytes = {seconds / raw:.0f}x")


def bench_concurrent(folder: Path) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
    master, ruleset, grids, workers, app = _master(folder, "patrols", DEVICES)
    latencies, errors = [], []
    with running(app) as url:
        tablets = [_tablet(folder, f"t{n:03d}", master, workers[n], url) for n in range(DEVICES)]
        for tablet in tablets:  # first contact, untimed
            with MasterClient(url) as client:
                tablet_session(tablet, client)
        at = datetime(2026, 10, 13, 10, 0, tzinfo=CST)
        for n, tablet in enumerate(tablets):  # a patrol, offline
            with tablet.write(actor=workers[n]) as rec:
                case = casework.report_case(rec, ruleset, item="0103", grid_id=grids[n], channel="巡查",
                                            reporter_id=workers[n], at=at, photos=["sha256:p"], description="巡查发现")
                casework.move_case(rec, ruleset, case.case_id, "上报", role="网格员", actor_id=workers[n], at=at,
                                   evidence=["photo"])
                home = rec.insert("household", {"grid_id": grids[n], "address": "1-1", "户主": f"住户{n}", "人口": 3})
                for minutes in (20, 35):  # TEDA's visit record requires its 分钟 field: the master checks it
                    rec.insert("visit", {"household_id": home, "grid_id": grids[n], "worker_id": workers[n],
                                         "minutes": minutes, "分钟": minutes})

        paths = [str(folder / f"t{n:03d}.db") for n in range(DEVICES)]
        for tablet in tablets:
            tablet.close()
        # The tablets run in other processes, as they would on 300 tablets: in
        # this one their own work would compete with the master for the GIL.
        groups = [paths[k::CLIENT_PROCESSES] for k in range(CLIENT_PROCESSES)]
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            ready, go = manager.Barrier(CLIENT_PROCESSES + 1), manager.Event()
            with context.Pool(CLIENT_PROCESSES) as pool:
                results = pool.starmap_async(_sync_group, [(url, g, ready, go) for g in groups])
                ready.wait(timeout=120)
                wall = time.perf_counter()
                go.set()
                for got, failed in results.get(timeout=600):
                    latencies += got
                    errors += failed
                wall = time.perf_counter() - wall
    master.close()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    line = (f"(b) {DEVICES} devices syncing a patrol at once: p50 {cuts[49] * 1000:.0f} ms, "
            f"p99 {cuts[98] * 1000:.0f} ms, {len(errors)} errors, {wall:.1f} s wall")
    return line + (f"; first error: {errors[0]}" if errors else "")


def _sync_group(url: str, paths: list[str], ready, go) -> tuple[list[float], list[str]]:
    """In a client process: open these tablets, wait for the start, sync them all at once."""
    tablets = [store.open(p, "device", extra_migrations=tables.MIGRATIONS) for p in paths]
    latencies, errors = [], []

    def sync(tablet):
        start = time.perf_counter()
        try:
            with MasterClient(url, timeout=120) as client:
                tablet_session(tablet, client)
            latencies.append(time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - counted and reported, the benchmark goes on
            errors.append(f"{type(exc).__name__}: {exc}")

    ready.wait(timeout=120)
    go.wait(timeout=120)
    with ThreadPoolExecutor(max_workers=len(tablets)) as pool:
        list(pool.map(sync, tablets))
    for tablet in tablets:
        tablet.close()
    return latencies, errors


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("bench_http: the real sync protocol over loopback HTTP")
        print("  " + bench_provisioning(folder))
        print("  " + bench_concurrent(folder))
    return 0


if __name__ == "__main__":
    main()
