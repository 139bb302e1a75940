"""The field app's pages on a full tablet: `python -m wangge.bench.bench_field [--json]`.

A worker's encrypted tablet holds one grid of 400 households with 77 fields
each (TEDA's resident card) and 2,000 cases over the years, a third of them
open. The home page (grids, open cases by deadline, households due a visit,
the lease, what waits to sync) and the household form (77 inputs from the
rule file, in sections) are served by the real app; their server time (from
the request entering the app to the last byte of its answer) is measured per
request, p50 and p95 (target: p95 under 100 ms), against the store's bare
query for the same page: the SQL that fetches its rows through the same
encrypted store, measured in the same run. CPU time is the process's, per
request.
"""
from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, text

HOUSEHOLDS, FIELDS, CASES, REQUESTS = 400, 77, 2000, 80
TARGET_MS = 100.0


def _ruleset():
    """TEDA's rule file with its household card widened to 77 fields, as the seed's resident database."""
    from wangge import rulesets
    from wangge.core.ruleset import FieldSpec, FieldType, Label, Register

    teda = rulesets.load("teda")
    own = teda.register("household")
    kinds = (FieldType.integer, FieldType.text, FieldType.choice, FieldType.boolean, FieldType.decimal)
    extra = tuple(FieldSpec(code=f"项{n:02d}", label=Label(zh=f"登记项{n}", en=f"Entry {n}"), type=kinds[n % 5],
                            choices=("甲", "乙", "丙") if kinds[n % 5] is FieldType.choice else (),
                            min=0 if kinds[n % 5] in (FieldType.integer, FieldType.decimal) else None)
                  for n in range(FIELDS - len(own)))
    registers = tuple(Register(entity=r.entity, fields=r.fields + extra) if r.entity == "household" else r
                      for r in teda.registers)
    return teda.model_copy(update={"registers": registers})


def _value(spec, n: int):
    from wangge.core.ruleset import FieldType

    if spec.type is FieldType.integer:
        return max(int(spec.min or 0), min(int(spec.max or 1000), n % 7 + 1))
    if spec.type is FieldType.decimal:
        return max(float(spec.min or 0), 60.0 + n % 40)
    if spec.type is FieldType.boolean:
        return n % 2 == 0
    if spec.type is FieldType.choice:
        return spec.choices[n % len(spec.choices)]
    if spec.type is FieldType.choices:
        return list(spec.choices[:1 + n % len(spec.choices)])
    if spec.type is FieldType.phone:
        return f"139{n:08d}"
    if spec.type is FieldType.id_number:
        return f"120101198001{n % 10000:04d}12"
    return f"值{n}"


def build(folder: Path):
    """A tablet at ``folder`` holding the grid, its households and cases; return the open `FieldTablet`."""
    from wangge.app import stores
    from wangge.app.fieldtablet import META_WORKER, FieldTablet
    from wangge.core import casework
    from wangge.core.store import set_meta

    ruleset = _ruleset()
    path = folder / "tablet.db"
    store = stores.create_tablet(path, "bench passphrase", scrypt_n=2**10)
    now = datetime.now(timezone.utc)
    rng = random.Random(7)
    with store.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        top = rec.insert("grid_cell", {"code": "TD.1.TF", "level": "社区", "name": "泰丰社区"})
        grid = rec.insert("grid_cell", {"code": "TD.1.TF.01", "level": "网格", "name": "泰丰1网格", "upper_id": top})
        worker = rec.insert("worker", {"name": "赵巧珍", "role": "网格员"})
        rec.insert("assignment", {"worker_id": worker, "grid_id": grid})
        set_meta(rec.conn, META_WORKER, worker)
        specs = ruleset.register("household")
        homes = rec.insert_many("household", [
            {"grid_id": grid, "address": f"{n // 20 + 1}号楼{n % 20 + 1:02d}室",
             **{s.code: _value(s, n) for s in specs}} for n in range(HOUSEHOLDS)])
        rec.insert_many("visit", [{"household_id": homes[n], "grid_id": grid, "worker_id": worker, "minutes": 30,
                                   "at": now - timedelta(days=rng.randint(1, 90))} for n in range(0, HOUSEHOLDS, 2)])
        items = list(ruleset.items)
        states = ["立案", "派遣", "处置", "审核", "结案", "评估", "结案", "评估", "结案"]
        rec.insert_many("case", [
            {"number": f"C2026{n:07d}", "item_code": items[n % len(items)], "grid_id": grid, "channel": "巡查",
             "status": states[n % len(states)], "description": f"第{n}号案件", "reporter_id": worker,
             "ruleset_version": ruleset.version, "reported_at": now - timedelta(days=n % 700),
             "deadline": now + timedelta(hours=rng.randint(-200, 200)), "household_id": homes[n % HOUSEHOLDS]}
            for n in range(CASES)])
    return FieldTablet(store, path), homes, grid


class _Timed:
    """ASGI wrapper recording each request's server time, from entering the app to its last byte."""

    def __init__(self, app):
        self.app, self.seconds = app, []

    async def __call__(self, scope, receive, send):
        start = time.perf_counter()

        async def timed_send(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.seconds.append(time.perf_counter() - start)

        await self.app(scope, receive, timed_send)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def _bare_home(tablet, grid: str) -> None:
    """The rows the home page shows, fetched by bare SQL through the same store."""
    with tablet.store.read() as conn:
        conn.execute(text("SELECT id, number, item_code, status, description, deadline FROM cases "
                          "WHERE grid_id = :g AND deleted IS NULL AND status NOT IN ('结案', '评估', '作废') "
                          "ORDER BY deadline IS NULL, deadline LIMIT 30"), {"g": grid}).all()
        conn.execute(text("SELECT h.id, h.address FROM household h LEFT JOIN (SELECT household_id, max(at) AS last "
                          "FROM visit GROUP BY household_id) v ON v.household_id = h.id WHERE h.grid_id = :g "
                          "AND (v.last IS NULL OR v.last < :since) ORDER BY v.last IS NOT NULL, v.last LIMIT 30"),
                     {"g": grid, "since": datetime.now(timezone.utc) - timedelta(days=30)}).all()


def _bare_household(tablet, home: str) -> None:
    from wangge.core.models import Household

    with tablet.store.read() as conn:
        conn.execute(select(Household.__table__).where(Household.__table__.c.id == home)).first()


def measure(tablet, homes: list[str], grid: str) -> dict:
    from starlette.testclient import TestClient

    from wangge.web.field import field_app

    app = field_app(tablet)
    timed = _Timed(app)
    rng = random.Random(11)
    figures = {}
    with TestClient(timed, base_url="http://127.0.0.1:8471") as client:
        client.get("/login?token=" + app.state.field.guard.new_login())
        for name, path, bare in (("home", lambda: "/", lambda: _bare_home(tablet, grid)),
                                 ("household_form", lambda: f"/households/{rng.choice(homes)}",
                                  lambda: _bare_household(tablet, rng.choice(homes)))):
            client.get(path())  # warm: templates compiled, ruleset parsed
            timed.seconds.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(REQUESTS):
                answer = client.get(path())
                assert answer.status_code == 200, answer.text[:200]
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            served = list(timed.seconds)
            queries = []
            for _ in range(REQUESTS):
                start = time.perf_counter()
                bare()
                queries.append(time.perf_counter() - start)
            p95, base = _percentile(served, 0.95), _percentile(queries, 0.95)
            figures[name] = {"p50_ms": round(statistics.median(served) * 1000, 2), "p95_ms": round(p95 * 1000, 2),
                             "bare_query_p95_ms": round(base * 1000, 2), "ratio": round(p95 / base, 1),
                             "cpu_ms_per_request": round(cpu / REQUESTS * 1000, 2),
                             "wall_ms_per_request": round(wall / REQUESTS * 1000, 2),
                             "target_met": p95 * 1000 < TARGET_MS}
    return figures


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    with tempfile.TemporaryDirectory() as tmp:
        tablet, homes, grid = build(Path(tmp))
        try:
            figures = measure(tablet, homes, grid)
        finally:
            tablet.close()
    if "--json" in args:
        print(json.dumps({"bench": "field", "households": HOUSEHOLDS, "fields": FIELDS, "cases": CASES,
                          "requests": REQUESTS, **figures}, ensure_ascii=False))
        return 0
    print(f"bench_field: the field app on a tablet of {HOUSEHOLDS} households × {FIELDS} fields and {CASES:,} cases "
          f"({REQUESTS} requests a page)")
    for name, f in figures.items():
        verdict = "met" if f["target_met"] else "NOT met"
        print(f"  {name}: server time p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms (target < {TARGET_MS:g} ms: {verdict}); "
              f"bare query p95 {f['bare_query_p95_ms']} ms = {f['ratio']}x; "
              f"CPU {f['cpu_ms_per_request']} ms, wall {f['wall_ms_per_request']} ms per request")
    return 0


if __name__ == "__main__":
    main()
