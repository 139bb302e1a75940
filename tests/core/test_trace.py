"""Explanations render the routing trace, the escalation and every event."""
from __future__ import annotations

from datetime import datetime, timezone

from wangge.core import trace


def test_an_explanation_names_rule_escalation_and_events():
    case = trace.CaseSummary("C20261012001", "id-1", "broken telecom box", "处置", "department 电信", "ab" * 32)
    events = [trace.EventLine(datetime(2026, 10, 12, 1, 0, tzinfo=timezone.utc), "立案", "发现", "立案", "网格员"),
              trace.EventLine(datetime(2026, 10, 12, 10, 0), "派遣", "立案", "派遣", "中心", note="to 电信", stale=True)]
    text = trace.render(case, ["route by item 0102 → department 电信"], events, "社区", "overdue at 网格")
    assert text.splitlines() == [
        "case C20261012001 (id-1): broken telecom box",
        "status 处置; owner department 电信; ruleset abababababab; times in Asia/Shanghai",
        "routing:",
        "  - route by item 0102 → department 电信",
        "escalated to 社区: overdue at 网格",
        "events:",
        "  - 2026-10-12 09:00 +08:00 立案: 发现 → 立案 by 网格员",  # stored in UTC, shown local
        "  - 2026-10-12 10:00 +08:00 派遣: 立案 → 派遣 by 中心 (to 电信) [stale]",
    ]


def test_a_case_without_events_says_so():
    case = trace.CaseSummary("C1", "id", "d", "发现", "?", "v")
    assert trace.render(case, [], []).endswith("events:\n  (none)")
