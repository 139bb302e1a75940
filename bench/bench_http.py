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
(c) The master's own CPU per patrol exchange, on SQLite and on PostgreSQL:
    1,000 tablets (``--tablets N``), each its own grid and worker, push a
    patrol's changes (a case reported and moved on, a household, two visits)
    to the real `wangge serve` command, started as a subprocess against a
    store prepared here; its CPU (the process and its children, from
    /proc) over the exchanges, and exchanges per second, p50 and p99
    latency, errors. The tablets' bundles are made before the clock starts,
    so their own CPU is not in the figures. Baseline, in the same run: the
    same bundles through the bare exchange protocol in this process, no
    HTTP. On PostgreSQL also ``wangge serve --workers 2`` (a row saying
    "not available" where the command lacks the flag). Median of three, each
    on a fresh copy of the prepared store (bundles apply once). The database
    server's own CPU is not counted.

``--json`` prints (c) alone as one line; ``--server-only`` skips (a) and (b).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from wangge import rulesets
from wangge.core import casework, store
from wangge.sync import enrollment
from wangge.sync.log import tables
from wangge.app import stores
from wangge.sync.device.exchange import DeviceSync
from wangge.sync.keys import DeviceKeys
from wangge.sync.protocol import Peer
from wangge.sync.transport.client import MasterClient, Signer
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
        for n, tablet in enumerate(tablets):  # a patrol, offline
            with tablet.write(actor=workers[n]) as rec:
                _patrol(rec, ruleset, grids[n], workers[n], n)

        paths = [str(folder / f"t{n:03d}.db") for n in range(DEVICES)]
        for tablet in tablets:
            tablet.close()
        # The tablets run in other processes, as they would on 300 tablets: in
        # this one their own work would compete with the master for the GIL.
        got, failed, wall, _ = _at_once(_sync_group, url, paths, ready_within=120, done_within=600)
        latencies += got
        errors += failed
    master.close()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    line = (f"(b) {DEVICES} devices syncing a patrol at once: p50 {cuts[49] * 1000:.0f} ms, "
            f"p99 {cuts[98] * 1000:.0f} ms, {len(errors)} errors, {wall:.1f} s wall")
    return line + (f"; first error: {errors[0]}" if errors else "")


def _at_once(work, url: str, items: list, *, ready_within: float, done_within: float, cpu_of: int | None = None):
    """Run ``work(url, group, ready, go)`` over ``items`` split among `CLIENT_PROCESSES` client
    processes, started together once all are ready: their latencies and errors, the wall seconds
    from the start, and the CPU seconds the process tree ``cpu_of`` spent meanwhile (else None)."""
    groups = [items[k::CLIENT_PROCESSES] for k in range(CLIENT_PROCESSES)]
    context = multiprocessing.get_context("spawn")
    latencies, errors, cpu = [], [], None
    with context.Manager() as manager:
        ready, go = manager.Barrier(CLIENT_PROCESSES + 1), manager.Event()
        with context.Pool(CLIENT_PROCESSES) as pool:
            results = pool.starmap_async(work, [(url, g, ready, go) for g in groups])
            ready.wait(timeout=ready_within)
            if cpu_of is not None:
                cpu = tree_cpu_seconds(cpu_of)
            wall = time.perf_counter()
            go.set()
            for got, failed in results.get(timeout=done_within):
                latencies += got
                errors += failed
            wall = time.perf_counter() - wall
            if cpu_of is not None:
                cpu = tree_cpu_seconds(cpu_of) - cpu
    return latencies, errors, wall, cpu


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


# -- (c) the master's CPU per patrol exchange ---------------------------------------------------

PG_SERVER = "postgresql://127.0.0.1:5432"
POSTS_IN_FLIGHT = 48  # per client process


def _patrol(rec, ruleset, grid: str, worker: str, n: int) -> None:
    """A patrol recorded offline on a tablet: a case reported and moved on, a household, two visits."""
    at = datetime(2026, 10, 13, 10, 0, tzinfo=CST)
    case = casework.report_case(rec, ruleset, item="0103", grid_id=grid, channel="巡查", reporter_id=worker, at=at,
                                photos=["sha256:p"], description="巡查发现")
    casework.move_case(rec, ruleset, case.case_id, "上报", role="网格员", actor_id=worker, at=at, evidence=["photo"])
    home = rec.insert("household", {"grid_id": grid, "address": "1-1", "户主": f"住户{n}", "人口": 3})
    for minutes in (20, 35):  # TEDA's visit record requires its 分钟 and 方式 fields: the master checks them
        rec.insert("visit", {"household_id": home, "grid_id": grid, "worker_id": worker, "minutes": minutes,
                             "分钟": minutes, "方式": "入户走访"})


def prepare_patrols(folder: Path, target: str, tablets: int) -> list[tuple[str, bytes, bytes]]:
    """A master at ``target`` (closed again) with ``tablets`` enrolled tablets that all synced once,
    and each tablet's next push, made after a patrol: (device id, its keys, the bundle).

    One tablet syncs for real; the others start as copies of its store under
    their own ids (all grids are empty, so each would have downloaded the very
    same rows), and the master records each as having synced as it did: a
    thousand first downloads of the grid tree would take most of the run.
    """
    ruleset = rulesets.load("teda")
    master = stores.create_master(target)
    with master.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        top = rec.insert("grid_cell", {"code": "T", "level": "社区", "name": "泰丰"})
        grids = rec.insert_many("grid_cell", [{"code": f"T.{n:04d}", "level": "网格", "name": f"网格{n}",
                                               "upper_id": top} for n in range(tablets)])
        workers = rec.insert_many("worker", [{"name": f"社工{n}", "role": "网格员"} for n in range(tablets)])
        rec.insert_many("assignment", [{"worker_id": w, "grid_id": g} for w, g in zip(workers, grids)])
    exchange = protocol_exchange(master, installed_rules(master))
    peer = Peer(master.device_id, store_keys(master).public)
    devices = [(f"bench-{n:04d}", DeviceKeys.generate()) for n in range(tablets)]
    with master.write(actor="office") as rec:
        for (device_id, keys), worker in zip(devices, workers):
            enrollment.submit(rec, enrollment.make_request(device_id, device_id, keys.public.sign, keys.public.box,
                                                           keys.sign))
            enrollment.approve(rec, device_id, worker)
    first = folder / "first-tablet.db"
    with stores.create(str(first), "device", device_id=devices[0][0]) as tablet:
        sync = DeviceSync(tablet, devices[0][1], peer)
        sync.accept_reply(exchange(sync.make_push()).reply)
    with master.write(actor="bench") as rec:
        synced = dict(rec.conn.execute(tables.peer.select()).mappings().one())
        rec.conn.execute(tables.peer.insert(), [
            {**synced, "device_id": device_id, "bundle_id": f"first-{device_id}", "scope": [grid], "reply": None}
            for (device_id, _), grid in list(zip(devices, grids))[1:]])
    master.close()
    pushes = []
    for n, ((device_id, keys), grid, worker) in enumerate(zip(devices, grids, workers)):
        path = folder / f"{device_id}.db"
        shutil.copyfile(first, path)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE store_meta SET value = ? WHERE key = 'device_id'", (device_id,))
        with store.open(str(path), "device", extra_migrations=tables.MIGRATIONS) as tablet:
            with tablet.write(actor=worker) as rec:
                _patrol(rec, ruleset, grid, worker, n)
            pushes.append((device_id, keys.to_bytes(), DeviceSync(tablet, keys, peer).make_push()))
        path.unlink()
    return pushes


class Copies:
    """Fresh copies of a prepared master store (an SQLite file and its key file, or a PostgreSQL
    database made from it as a template), dropped at the end."""

    def __init__(self, original: str):
        self.original, self.made = original, []

    def make(self) -> str:
        if "://" not in self.original:
            copy = f"{self.original[:-3]}-{len(self.made)}.db"
            for suffix in ("", "-wal", ".keys"):
                if Path(self.original + suffix).exists():
                    shutil.copy2(self.original + suffix, copy + suffix)
            self.made.append(copy)
            return copy
        name = f"{self.original.rsplit('/', 1)[1]}_{len(self.made)}"
        _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.original.rsplit("/", 1)[1]}"')
        self.made.append(name)
        return f"{PG_SERVER}/{name}"

    def drop(self) -> None:
        if "://" in self.original:
            for name in self.made + [self.original.rsplit("/", 1)[1]]:
                _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()


def _pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/test",
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def in_process(target: str, pushes) -> tuple[float, float]:
    """CPU and wall seconds of applying ``pushes`` through the bare exchange protocol, no HTTP."""
    master = stores.open_master(target)
    try:
        exchange = protocol_exchange(master, installed_rules(master))
        cpu, wall = time.process_time(), time.perf_counter()
        for _device, _keys, push in pushes:
            exchange(push)
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        master.close()


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) of process ``pid`` and its live descendants, and of its
    children that ended and were waited for."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo, first = 0, [pid], True
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = [int(c) for task in Path(f"/proc/{current}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        # After the command's name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
        total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if first else 0)
        todo += children
        first = False
    return total / tick


class Served:
    """`wangge serve TARGET --port 0` (and ``extra`` flags) as a subprocess in ``folder``; `url` once
    it listens, None if the command refused its flags."""

    def __init__(self, target: str, folder: Path, extra: tuple[str, ...], env: dict):
        self.process = subprocess.Popen([sys.executable, "-m", "wangge", "serve", target, "--port", "0", *extra],
                                        cwd=folder, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.listening = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:  # drained to the end: a full pipe would stall the server
            if not self.listening.is_set():
                self.lines.append(line.rstrip("\n"))
                if re.search(r" on (https?://\S+)", line):
                    self.listening.set()

    def url(self, timeout: float = 120) -> str | None:
        deadline = time.monotonic() + timeout
        while not self.listening.wait(0.1):
            if self.process.poll() is not None:
                return None
            if time.monotonic() > deadline:
                raise RuntimeError("wangge serve did not start listening:\n" + "\n".join(self.lines[-20:]))
        return re.search(r" on (https?://\S+)", self.lines[-1]).group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def served(target: str, folder: Path, pushes, extra: tuple[str, ...], env: dict) -> dict | None:
    """Post ``pushes`` to a `wangge serve` of ``target`` from client processes, all at once:
    server CPU and wall seconds, latencies and errors; None if the command refused ``extra``."""
    server = Served(target, folder, extra, env)
    try:
        url = server.url()
        if url is None:
            return None
        latencies, errors, wall, cpu = _at_once(_post_group, url, pushes, ready_within=300, done_within=3600,
                                                cpu_of=server.process.pid)
        return {"cpu": cpu, "wall": wall, "latencies": latencies, "errors": errors}
    finally:
        server.stop()


def _post_group(url: str, pushes, ready, go) -> tuple[list[float], list[str]]:
    """In a client process: post these prepared bundles, ``POSTS_IN_FLIGHT`` at a time, once told to."""
    signers = [Signer(device_id, DeviceKeys.from_bytes(keys).sign) for device_id, keys, _ in pushes]
    latencies, errors = [], []

    def post(n: int) -> None:
        start = time.perf_counter()
        try:
            with MasterClient(url, timeout=300) as client:
                client.exchange(pushes[n][2], signer=signers[n])
            latencies.append(time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - counted and reported, the benchmark goes on
            errors.append(f"{type(exc).__name__}: {exc}")

    ready.wait(timeout=300)
    go.wait(timeout=300)
    with ThreadPoolExecutor(max_workers=POSTS_IN_FLIGHT) as pool:
        list(pool.map(post, range(len(pushes))))
    return latencies, errors


def _figures(runs: list[dict | None], baselines: list[tuple[float, float]], exchanges: int) -> dict:
    """Medians of the runs, as figures per exchange and ratios to the in-process baseline."""
    if any(run is None for run in runs):
        return {"available": False}
    base_cpu = statistics.median(cpu for cpu, _ in baselines) / exchanges
    base_wall = statistics.median(wall for _, wall in baselines) / exchanges
    cpu = statistics.median(run["cpu"] for run in runs) / exchanges
    wall = statistics.median(run["wall"] for run in runs) / exchanges
    cuts = [statistics.quantiles(run["latencies"], n=100) if len(run["latencies"]) > 1 else [0.0] * 99
            for run in runs]
    errors = [run["errors"] for run in runs]
    return {"available": True,
            "server_cpu_ms_per_exchange": round(cpu * 1000, 2),
            "exchanges_per_s": round(1 / wall, 1) if wall else None,
            "p50_ms": round(statistics.median(c[49] for c in cuts) * 1000, 1),
            "p99_ms": round(statistics.median(c[98] for c in cuts) * 1000, 1),
            "errors": max(len(e) for e in errors),
            "first_error": next((e[0] for e in errors if e), None),
            "in_process_cpu_ms_per_exchange": round(base_cpu * 1000, 2),
            "in_process_wall_ms_per_exchange": round(base_wall * 1000, 2),
            "cpu_ratio": round(cpu / base_cpu, 2) if base_cpu else None,
            "wall_ratio": round(wall / base_wall, 2) if base_wall else None}


def bench_server(folder: Path, backend: str, tablets: int, repeat: int = 3) -> dict[str, dict]:
    """(c) on ``backend`` ("sqlite" or "postgresql"): figures per way of serving."""
    folder = folder / f"server-{backend}"
    folder.mkdir()
    env = {}
    if backend == "sqlite":
        original = str(folder / "server-master.db")
    else:
        name = f"wangge_bench_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        original = f"{PG_SERVER}/{name}"
        # A PostgreSQL master's key file is found through the environment: this process's and the server's.
        env = {"WANGGE_MASTER_KEYS": str(folder / f"{name}.keys")}
    os.environ.update(env)
    copies = Copies(original)
    try:
        pushes = prepare_patrols(folder, original, tablets)
        ways = {"serve": ()} if backend == "sqlite" else {"serve": (), "serve --workers 2": ("--workers", "2")}
        baselines, runs = [], {way: [] for way in ways}
        for _ in range(repeat):
            baselines.append(in_process(copies.make(), pushes))
            for way, extra in ways.items():
                runs[way].append(served(copies.make(), folder, pushes, extra, env))
        return {way: _figures(got, baselines, len(pushes)) for way, got in runs.items()}
    finally:
        for key in env:
            os.environ.pop(key, None)
        copies.drop()


def _server_lines(results: dict[str, dict[str, dict]], tablets: int) -> list[str]:
    lines = [f"(c) the master's CPU per patrol exchange, {tablets:,} tablets posting at once "
             f"({CLIENT_PROCESSES * POSTS_IN_FLIGHT} in flight), median of three:"]
    for backend, ways in results.items():
        for way, f in ways.items():
            if not f["available"]:
                lines.append(f"    {backend}, wangge {way}: not available (the command refused the flag)")
                continue
            lines.append(
                f"    {backend}, wangge {way}: server CPU {f['server_cpu_ms_per_exchange']} ms per exchange "
                f"vs {f['in_process_cpu_ms_per_exchange']} ms in process without HTTP = {f['cpu_ratio']}x CPU; "
                f"{f['exchanges_per_s']} exchanges/s, wall {f['wall_ratio']}x the in-process "
                f"{f['in_process_wall_ms_per_exchange']} ms; p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, "
                f"{f['errors']} errors" + (f" (first: {f['first_error']})" if f["errors"] else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="bench_http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tablets", type=int, default=1000, help="tablets in (c) (default 1000)")
    parser.add_argument("--json", action="store_true", help="print (c) alone as one JSON line")
    parser.add_argument("--server-only", action="store_true", help="run (c) alone")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append",
                        help="(c) on this backend only (repeatable; default both)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.tablets < 2:
        parser.error(f"--tablets: at least 2 tablets, got {args.tablets}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not (args.json or args.server_only):
            print("bench_http: the real sync protocol over loopback HTTP")
            print("  " + bench_provisioning(folder))
            print("  " + bench_concurrent(folder))
        results = {backend: bench_server(folder, backend, args.tablets)
                   for backend in args.backend or ("sqlite", "postgresql")}
    if args.json:
        print(json.dumps({"bench": "http", "tablets": args.tablets, **{
            f"{backend}{'' if way == 'serve' else '_workers2'}": figures
            for backend, ways in results.items() for way, figures in ways.items()}}))
    else:
        print("\n  ".join(["" if args.server_only else "  ", *_server_lines(results, args.tablets)]).strip("\n"))
    return 0


if __name__ == "__main__":
    main()
