"""Every time taken or printed is in the ruleset's zone and labelled, whatever zone the machine runs in."""
from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from wangge.cli import cli
from wangge.core import casework, store
from support.district import district

RULES = district()  # timezone Asia/Shanghai, the default
SHANGHAI = timezone(timedelta(hours=8))
REPORTED = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday; the grid's 2 working days end Wed 4 Nov 09:00


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Shanghai"])
def machine_zone(request):
    """Run the test as if the machine's clock were set to another zone."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def office(tmp_path):
    path = str(tmp_path / "office.db")
    s = store.init(path, "master")
    with s.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, RULES)
        top = rec.insert("grid_cell", {"code": "S1", "level": "街道", "name": "街道"})
        mid = rec.insert("grid_cell", {"code": "S1.01", "level": "社区", "name": "社区", "upper_id": top})
        grid = rec.insert("grid_cell", {"code": "S1.01.03", "level": "网格", "name": "网格", "upper_id": mid})
        worker = rec.insert("worker", {"name": "王芳", "role": "网格员"})
    with s.write(actor=worker) as rec:
        number = casework.report_case(rec, RULES, item="0201", grid_id=grid, channel="热线", reporter_id=worker,
                                      at=REPORTED, severity="重大").number
    s.close()
    return path, number


def escalate(path, now):
    result = CliRunner().invoke(cli, ["escalate", path, "--now", now])
    assert result.exit_code == 0, result.output
    return result.output


def test_now_typed_without_an_offset_is_the_rulesets_local_time(machine_zone, office):
    path, _ = office
    early = escalate(path, "2026-11-04 08:59")
    assert "Escalated: 0 as of 2026-11-04 08:59 +08:00 (Asia/Shanghai)" in early
    late = escalate(path, "2026-11-04 09:01")
    assert "Escalated: 1 as of 2026-11-04 09:01 +08:00" in late
    assert "ran out at 2026-11-04 09:00 +08:00" in late


def test_now_with_an_offset_is_converted(machine_zone, office):
    path, _ = office
    # 00:59 UTC is 08:59 in Shanghai: not yet; 01:01 UTC is 09:01: overdue.
    assert "Escalated: 0" in escalate(path, "2026-11-04T00:59+0000")
    assert "Escalated: 1 as of 2026-11-04 09:01 +08:00" in escalate(path, "2026-11-04T01:01+0000")


def test_explain_shows_every_time_in_the_rulesets_zone_with_its_label(machine_zone, office):
    path, number = office
    escalate(path, "2026-11-04 09:01")
    text = CliRunner().invoke(cli, ["explain", path, number]).output
    assert "times in Asia/Shanghai" in text
    assert "from 2026-11-02 09:00 +08:00 on calendar cn" in text  # the SLA start, not 01:00 UTC
    assert "escalated to 社区: overdue at 网格: 2 working_days ran out at 2026-11-04 09:00 +08:00" in text
    stamps = re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?: [+-]\d{2}:\d{2})?", text)
    assert stamps and all(s.endswith("+08:00") for s in stamps), stamps


def test_a_store_time_in_utc_is_shown_local():
    from wangge.core.trace import stamp

    assert stamp(datetime(2026, 11, 4, 1, 1, tzinfo=timezone.utc), "Asia/Shanghai") == "2026-11-04 09:01 +08:00"
    assert stamp(datetime(2026, 11, 4, 9, 1), "Asia/Shanghai") == "2026-11-04 09:01 +08:00"  # naive: local wall time
