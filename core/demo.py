"""The end-to-end demo: a sample street on embedded SQLite, told as a table."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo
from pathlib import Path

from sqlalchemy import text

from wangge.core import samplestreet, store
from wangge.core.report import table


def run(workdir: Path) -> str:
    """Build the sample street in a new master store under ``workdir``; return the report."""
    path = workdir / "street-master.db"
    if path.exists():
        path.unlink()
    with store.init(str(path), "master") as master:
        with master.write(actor="demo") as rec:
            summary = samplestreet.build(rec, datetime(2026, 10, 12, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
        with master.read() as conn:
            cases = conn.execute(
                text(
                    "SELECT c.number, g.name, c.item_code, c.channel, w.name, c.description "
                    "FROM cases c JOIN grid_cell g ON g.id = c.grid_id "
                    "LEFT JOIN worker w ON w.id = c.reporter_id ORDER BY c.number"
                )
            ).all()
            visits = conn.execute(
                text(
                    "SELECT w.name, COUNT(*), SUM(v.minutes) FROM visit v "
                    "JOIN worker w ON w.id = v.worker_id GROUP BY w.name ORDER BY w.name"
                )
            ).all()
            ops = conn.execute(text("SELECT kind, COUNT(*) FROM op GROUP BY kind ORDER BY kind")).all()
    return "\n\n".join(
        [
            f"wangge demo: a sample street in {path}",
            table(
                ["grids", "buildings", "households", "workers", "cases", "visits"],
                [[summary.grids, summary.buildings, summary.households, summary.workers, summary.cases, summary.visits]],
                title="The street",
            ),
            table(["case", "grid", "item", "channel", "reporter", "description"], cases, title="Cases recorded"),
            table(["worker", "visits", "minutes"], visits, title="Household visits"),
            table(["op kind", "ops"], ops, title=f"Change capture: {summary.ops} ops, one per change"),
        ]
    )
