"""A month's scores as files the office files on: CSV (UTF-8 with a BOM, so Excel reads the
Chinese) and .xlsx. One table, one column per indicator any formula has."""
from __future__ import annotations

import csv
import io

from wangge.app.boards import indicators
from wangge.core.casework import MonthScore

HEADER = ["subject", "worker / grid", "role / level", "grids", "closed/registered", "total", "tier", "vetoes",
          "reward", "formula"]


def score_table(results: list[MonthScore]) -> tuple[list[str], list[list]]:
    """The header and rows every export and the page share."""
    codes = indicators(results)
    rows = []
    for r in results:
        points = {p.indicator: p.points for p in r.score.parts}
        rows.append([r.subject, r.worker, r.role, r.grids,
                     f"{r.metrics.get('closed', 0):g}/{r.metrics.get('registered', 0):g}", r.score.total,
                     r.score.tier or "", "; ".join(r.score.barred),
                     r.score.reward if r.score.reward is not None else "", r.score.formula]
                    + [points.get(code, "") for code in codes])
    return HEADER + codes, rows


def scores_csv(results: list[MonthScore]) -> bytes:
    header, rows = score_table(results)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def scores_xlsx(results: list[MonthScore], title: str) -> bytes:
    from openpyxl import Workbook

    header, rows = score_table(results)
    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]  # Excel's limit on a sheet name
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
