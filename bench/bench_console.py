"""The office console over a street-sized store: 100,000 cases in 1,000 grids.

Measures the server time (the app's own Server-Timing header) of the case queue (first page, a filtered page and a
deep page) and of a case's page, p50 and p95 over repeated requests through
the whole app (session, account, ruleset, query, template), against the
store's bare query for the same rows measured in the same run: the page's
SELECTs (status counts and the page's rows; the case, its grid path and its
events) executed directly on a connection. Targets: p95 under 200 ms, and
within 3x of the bare query.

    wangge bench console
    python -m wangge.bench.bench_console --json
"""
from __future__ import annotations

import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, or_, select

from wangge import rulesets
from wangge.app import accounts, queries
from wangge.app.office import Office
from wangge.core import casework, store
from wangge.core.models import Attachment, Case, CaseEvent, GridCell
from wangge.sync.log import tables

CASES = 100_000
COMMUNITIES = 10
GRIDS_PER = 99  # 10 communities + 990 grids = 1,000 cells
REQUESTS = 40
PASSWORD = "benchmark password"


def build(folder: Path):
    """The store: TEDA's ruleset, 1,000 grid cells, a worker per grid, 100k cases with events."""
    master = store.init(str(folder / "office.db"), "master", extra_migrations=tables.MIGRATIONS)
    ruleset = rulesets.load("teda")
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    states = [s.code for s in ruleset.lifecycle.states]
    items = list(ruleset.items)
    channels = [c.code for c in ruleset.channels]
    with master.write(actor="bench") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        tops = rec.insert_many("grid_cell", [{"code": f"C{c:02d}", "level": "社区", "name": f"社区{c}"}
                                             for c in range(COMMUNITIES)])
        cells = rec.insert_many("grid_cell", [
            {"code": f"C{c:02d}.{g:03d}", "level": "网格", "name": f"{c}-{g}网格", "upper_id": tops[c]}
            for c in range(COMMUNITIES) for g in range(GRIDS_PER)])
        people = rec.insert_many("worker", [{"name": f"网格员{n}", "role": "网格员"} for n in range(len(cells))])
        rec.insert_many("assignment", [{"worker_id": w, "grid_id": g} for w, g in zip(people, cells)])
    for start in range(0, CASES, 10_000):
        with master.write(actor="bench") as rec:
            rows = []
            for n in range(start, start + 10_000):
                g = rng.randrange(len(cells))
                reported = now - timedelta(days=rng.uniform(0, 60))
                rows.append({"number": f"C{reported:%Y%m%d}{n:06d}", "item_code": rng.choice(items), "grid_id": cells[g],
                             "channel": rng.choice(channels), "status": rng.choice(states), "description": f"案件{n}",
                             "reporter_id": people[g], "owner": "department 电信", "ruleset_version": ruleset.version,
                             "reported_at": reported, "deadline": reported + timedelta(days=rng.uniform(1, 30)),
                             "fields": {"photos": [], "escalation_step": 0}})
            ids = rec.insert_many("case", rows)
            rec.insert_many("case_event", [{"case_id": i, "move": "上报", "from_status": "发现", "to_status": "立案",
                                            "actor_id": r["reporter_id"], "role": "网格员", "at": r["reported_at"]}
                                           for i, r in zip(ids, rows)])
    accounts.add(master, "张主任", "指挥中心", PASSWORD)
    return master, ruleset


def _timed(run, repeat: int = REQUESTS) -> list[float]:
    """Seconds per call of ``run``; a call that returns a number reports its own time (the
    server's, from its Server-Timing header) instead of the time around it."""
    run()  # warm: templates compiled, ruleset parsed, pages cached by the database
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        reported = run()
        times.append(reported if isinstance(reported, float) else time.perf_counter() - start)
    return times


def _p(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=100)[int(q) - 1] if len(times) > 1 else times[0]


def bare_queue(master, ruleset, status: str = "", overdue: bool = False, page: int = 1):
    """The page's SELECTs, straight on a connection: counts per status (dated ones too), then the
    page's rows by the deadline index, joined to their grid."""
    cases, grids = Case.__table__, GridCell.__table__
    now = datetime.now(timezone.utc)
    conds = [cases.c.deleted.is_(None)]
    if overdue:
        conds += [cases.c.status.not_in(queries.settled_states(ruleset)), cases.c.deadline < now]
    with master.read() as conn:
        conn.execute(select(cases.c.status, func.count(), func.count(cases.c.deadline)).where(*conds)
                     .group_by(cases.c.status)).all()
        if status:
            conds.append(cases.c.status == status)
        picked = (select(cases.c.id).where(*conds, cases.c.deadline.is_not(None))
                  .order_by(cases.c.deadline, cases.c.number).limit(50).offset((page - 1) * 50).subquery())
        return conn.execute(select(cases.c.id, cases.c.number, cases.c.item_code, cases.c.channel, cases.c.status,
                                   cases.c.owner, cases.c.deadline, cases.c.reported_at, grids.c.code, grids.c.name)
                            .select_from(picked.join(cases, cases.c.id == picked.c.id)
                                         .join(grids, grids.c.id == cases.c.grid_id))
                            .order_by(cases.c.deadline, cases.c.number)).all()


def bare_case(master, number: str):
    """The case page's SELECTs: the case with its grid, the grids above it, its events and photos."""
    cases, grids, events = Case.__table__, GridCell.__table__, CaseEvent.__table__
    photos = Attachment.__table__
    with master.read() as conn:
        row = conn.execute(select(cases, grids.c.code.label("grid_code"))
                           .select_from(cases.join(grids, grids.c.id == cases.c.grid_id))
                           .where(or_(cases.c.id == number, cases.c.number == number))).first()
        parts = row.grid_code.split(".")
        conn.execute(select(grids.c.level, grids.c.code, grids.c.name)
                     .where(grids.c.code.in_([".".join(parts[:n]) for n in range(1, len(parts) + 1)]))).all()
        conn.execute(select(photos).where(photos.c.case_id == row.id)).all()
        return conn.execute(select(events).where(events.c.case_id == row.id).order_by(events.c.hlc)).all()


def run(folder: Path) -> dict:
    from starlette.testclient import TestClient

    from wangge.web.console import console_app

    started = time.perf_counter()
    master, ruleset = build(folder)
    built_s = time.perf_counter() - started
    client = TestClient(console_app(Office(master)), follow_redirects=False)
    login = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    assert client.post("/login", data={"csrf": token, "name": "张主任", "password": PASSWORD}).status_code == 303
    with master.read() as conn:
        number = conn.execute(select(Case.__table__.c.number).order_by(Case.__table__.c.number).offset(CASES // 2)
                              .limit(1)).scalar()

    def page(path: str):
        def go():
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)
            return float(answer.headers["server-timing"].split("dur=")[1]) / 1000
        return go

    figures = {"cases": CASES, "grids": COMMUNITIES * (GRIDS_PER + 1), "build_s": round(built_s, 1)}
    cpu = time.process_time()
    wall = time.perf_counter()
    for name, path, bare in [
        ("queue", "/cases", lambda: bare_queue(master, ruleset)),
        ("queue_filtered", "/cases?status=处置&overdue=1", lambda: bare_queue(master, ruleset, "处置", True)),
        ("queue_page_500", "/cases?page=500", lambda: bare_queue(master, ruleset, page=500)),
        ("case", f"/cases/{number}", lambda: bare_case(master, number)),
    ]:
        served, direct = _timed(page(path)), _timed(bare)
        figures[name] = {"p50_ms": round(_p(served, 50) * 1000, 1), "p95_ms": round(_p(served, 95) * 1000, 1),
                         "bare_p50_ms": round(_p(direct, 50) * 1000, 1), "bare_p95_ms": round(_p(direct, 95) * 1000, 1),
                         "ratio_p50": round(_p(served, 50) / _p(direct, 50), 2),
                         "ratio_p95": round(_p(served, 95) / _p(direct, 95), 2)}
    figures["cpu_s"] = round(time.process_time() - cpu, 2)
    figures["wall_s"] = round(time.perf_counter() - wall, 2)
    master.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(Path(tmp))
    if "--json" in argv:
        print(json.dumps(figures, ensure_ascii=False))
        return 0
    print(f"bench_console: the office console over {figures['cases']:,} cases in {figures['grids']:,} grids "
          f"(store built in {figures['build_s']} s)")
    for name in ("queue", "queue_filtered", "queue_page_500", "case"):
        f = figures[name]
        met = "met" if f["p95_ms"] < 200 and f["ratio_p95"] <= 3 else "NOT met"
        print(f"  {name}: server p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms; bare query p50 {f['bare_p50_ms']} ms, "
              f"p95 {f['bare_p95_ms']} ms; ratio p50 {f['ratio_p50']}x, p95 {f['ratio_p95']}x "
              f"(target p95 < 200 ms and within 3x: {met})")
    print(f"  measuring: {figures['cpu_s']} s CPU, {figures['wall_s']} s wall")
    return 0


if __name__ == "__main__":
    main()
