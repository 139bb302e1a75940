"""A small synthetic district under a shipped ruleset, built through the public API."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from wangge import rulesets
from wangge.core import casework, store
from wangge.core.ruleset import Ruleset

CST = timezone(timedelta(hours=8))


@dataclass
class District:
    ruleset: Ruleset
    store: store.Store
    grids: dict[str, str] = field(default_factory=dict)  # code -> id
    workers: dict[str, str] = field(default_factory=dict)  # name -> id

    def grid(self, code: str, level: str, name: str, upper: str | None = None, grade: str | None = None) -> str:
        with self.store.write(actor="office") as rec:
            self.grids[code] = rec.insert("grid_cell", {
                "code": code, "level": level, "name": name, "grade": grade,
                "upper_id": self.grids.get(upper) if upper else None})
        return self.grids[code]

    def worker(self, name: str, role: str, *grids: str) -> str:
        with self.store.write(actor="office") as rec:
            self.workers[name] = rec.insert("worker", {"name": name, "role": role})
            for code in grids:
                rec.insert("assignment", {"worker_id": self.workers[name], "grid_id": self.grids[code]})
        return self.workers[name]

    def report(self, who: str, grid: str, item: str, channel: str, at: datetime, **kw) -> casework.Reported:
        with self.store.write(actor=self.workers[who]) as rec:
            return casework.report_case(rec, self.ruleset, item=item, grid_id=self.grids[grid], channel=channel,
                                        reporter_id=self.workers[who], at=at, **kw)

    def move(self, case_id: str, move: str, role: str, who: str, at: datetime, **kw) -> str:
        with self.store.write(actor=self.workers.get(who, who)) as rec:
            return casework.move_case(rec, self.ruleset, case_id, move, role=role,
                                      actor_id=self.workers.get(who), at=at, **kw)

    def scores(self, year: int, month: int):
        with self.store.read() as conn:
            return {s.worker: s for s in casework.month_scores(conn, self.ruleset, year, month)}


def district(name: str, path) -> District:
    ruleset = rulesets.load(name)
    s = store.init(str(path), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
    return District(ruleset, s)
