"""A callback that must come from another role than the handler's (the centre calls the resident back)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wangge import dsl
from wangge.core import casework, store
from wangge.core.errors import TransitionError
from support.rules import diagnostics

SH = timezone(timedelta(hours=8))
RULES = """ruleset c
level 社区
role 社工 at 社区
role 指挥中心 office
channel 热线
class 17 "热线" { item 01 "求助" }
lifecycle {
  state 处置 initial
  state 办结 final closed
  transition 回访: 处置 -> 处置 by 指挥中心 requires callback
  transition 办结: 处置 -> 办结 by 社工 requires callback from 指挥中心
}
"""


@pytest.fixture
def case(tmp_path):
    ruleset = dsl.loads(RULES)
    s = store.init(str(tmp_path / "o.db"), "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        grid = rec.insert("grid_cell", {"code": "BY", "level": "社区", "name": "白银社区"})
        worker = rec.insert("worker", {"name": "李明", "role": "社工"})
        centre = rec.insert("worker", {"name": "中心", "role": "指挥中心"})
    with s.write(actor=worker) as rec:
        case_id = casework.report_case(rec, ruleset, item="1701", grid_id=grid, channel="热线", reporter_id=worker,
                                       at=datetime(2026, 10, 12, 9, tzinfo=SH)).case_id
    yield s, ruleset, case_id, worker, centre
    s.close()


def close(s, ruleset, case_id, worker, evidence=()):
    with s.write(actor=worker) as rec:
        return casework.move_case(rec, ruleset, case_id, "办结", role="社工", actor_id=worker, evidence=evidence,
                                  at=datetime(2026, 10, 13, 9, tzinfo=SH))


def test_the_handlers_own_callback_does_not_count(case):
    s, ruleset, case_id, worker, _ = case
    with pytest.raises(TransitionError, match="needs callback given by 指挥中心; none is recorded on the case "
                                              r"\(given by 社工 it does not count\)"):
        close(s, ruleset, case_id, worker, evidence=["callback"])


def test_the_centres_callback_lets_the_handler_close(case):
    s, ruleset, case_id, worker, centre = case
    with s.write(actor=centre) as rec:
        casework.move_case(rec, ruleset, case_id, "回访", role="指挥中心", actor_id=centre, evidence=["callback"],
                           at=datetime(2026, 10, 12, 15, tzinfo=SH))
    assert close(s, ruleset, case_id, worker) == "办结"


def test_an_unknown_role_after_from_is_an_error():
    (found,) = diagnostics(RULES.replace("from 指挥中心", "from 指挥"))
    assert found.message == "role '指挥' is used but not defined" and found.hint == "did you mean 指挥中心?"
