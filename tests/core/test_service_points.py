"""点单式: closing a menu order credits the volunteer's points; a redemption is stored and refused past the balance."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wangge import dsl
from wangge.core import casework, points, store
from wangge.core.errors import PointsError

SH = timezone(timedelta(hours=8))
RULES = """ruleset l
level 社区
role 社工 at 社区
channel 点单
service 助老 "助老服务" points 2
points { reward 玩具 "玩具套装" costs 5 }
register case {
  field service "点单服务" choice of 助老
  field volunteer "志愿者" text
}
class 31 "点单服务" service { item 01 "助老" }
lifecycle {
  state 派单 initial
  state 完成 final closed
  transition 完成: 派单 -> 完成 by 社工
}
"""


@pytest.fixture
def lianchi(tmp_path):
    ruleset = dsl.loads(RULES)
    s = store.init(str(tmp_path / "o.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        grid = rec.insert("grid_cell", {"code": "LC", "level": "社区", "name": "莲池社区"})
        home = rec.insert("household", {"grid_id": grid, "address": "1-101"})
        volunteer = rec.insert("resident", {"household_id": home, "grid_id": grid, "name": "张大妈"})
        worker = rec.insert("worker", {"name": "李明", "role": "社工"})
    yield s, ruleset, grid, volunteer, worker
    s.close()


def serve(s, ruleset, grid, volunteer, worker, day):
    with s.write(actor=worker) as rec:
        case = casework.report_case(rec, ruleset, item="3101", grid_id=grid, channel="点单", reporter_id=worker,
                                    at=datetime(2026, 10, day, 9, tzinfo=SH),
                                    fields={"service": "助老", "volunteer": volunteer}).case_id
        casework.move_case(rec, ruleset, case, "完成", role="社工", actor_id=worker,
                           at=datetime(2026, 10, day, 11, tzinfo=SH))


def test_a_closed_order_credits_the_services_points_once(lianchi):
    s, ruleset, grid, volunteer, worker = lianchi
    serve(s, ruleset, grid, volunteer, worker, 12)
    with s.read() as conn:
        entries = points.ledger(conn, volunteer)
    assert [(e.delta, e.rule) for e in entries] == [(2, "助老")] and entries[0].reason.startswith("点单 助老服务 (C")


def test_a_redemption_past_the_balance_is_refused_and_one_within_it_is_stored(lianchi):
    s, ruleset, grid, volunteer, worker = lianchi
    serve(s, ruleset, grid, volunteer, worker, 12)
    with pytest.raises(PointsError, match="costs 5 points, the balance is 2"):
        with s.write(actor=worker) as rec:
            points.record_redemption(rec, ruleset, volunteer, "玩具", datetime(2026, 10, 13, tzinfo=SH))
    for day in (14, 15):
        serve(s, ruleset, grid, volunteer, worker, day)
    with s.write(actor=worker) as rec:
        points.record_redemption(rec, ruleset, volunteer, "玩具", datetime(2026, 10, 16, tzinfo=SH))
    with s.read() as conn:
        entries = points.ledger(conn, volunteer)
    # Three orders at 2 points, one toy set at 5: 1 left, the refused attempt left no entry.
    assert [e.delta for e in entries] == [2, 2, 2, -5] and points.balance(entries, volunteer) == 1
