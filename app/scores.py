"""Scoring a period: every worker and every grid by the ruleset's formulas of that period, and the scores as CSV."""
from __future__ import annotations

import csv
from pathlib import Path

from wangge.core import casework, periods
from wangge.core.casework import MonthScore
from wangge.core.errors import UsageError
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store

#: The columns every score has, before the formula and its indicators.
HEADER = ("subject", "worker / grid", "role / level", "grids", "closed/registered", "total", "rank", "tier",
          "empty this period", "targets", "reward")


def score_month(store: Store, ruleset: Ruleset, year: int, month: int) -> list[MonthScore]:
    """The month's scores: each worker's, then each grid's (where the ruleset has grid formulas)."""
    with store.read() as conn:
        return (casework.month_scores(conn, ruleset, year, month)
                + casework.grid_scores(conn, ruleset, year, month))


def score_period(store: Store, ruleset: Ruleset, period: periods.Period) -> list[MonthScore]:
    """The period's scores by the formulas of its kind: each worker's, then each grid's."""
    with store.read() as conn:
        return casework.period_scores(conn, ruleset, period)


def row(score: MonthScore) -> list:
    """The score's common columns (`HEADER`): a total of "-" where nothing was scored (an empty period
    whose indicators are all not counted), the rank among peers where the formula ranks."""
    s = score.score
    return [score.subject, score.worker, score.role, score.grids,
            f"{score.metrics['closed']:g}/{score.metrics['registered']:g}", s.total if s.scored else "-",
            f"{s.rank}/{s.peers}" if s.rank else "-", s.tier or "-", s.empty_note or "-",
            "; ".join(str(t) for t in score.targets) or "-",
            f"{s.reward:g} ({s.reward_why})" if s.reward is not None else "-"]


def write_csv(scores: list[MonthScore], path: str | Path) -> Path:
    """Write ``scores`` as CSV: the common columns, the formula, then one column per indicator.

    Formulas differ by role, level and grade, so the indicator columns are
    every indicator any of them has. Raises `UsageError` if the file cannot be written.
    """
    indicators = list(dict.fromkeys(p.indicator for s in scores for p in s.score.parts))
    try:
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([*HEADER, "formula", *indicators])
            for s in scores:
                points = {p.indicator: p.points for p in s.score.parts}
                writer.writerow(row(s) + [s.score.formula] + [points.get(code, "") for code in indicators])
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return Path(path)
