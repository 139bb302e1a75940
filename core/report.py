"""Plain-text tables for the command line, aware of wide (CJK) characters."""
from __future__ import annotations

import unicodedata
from typing import Any, Iterable, Sequence


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> str:
    """Render rows as an aligned table with a header rule."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([width(h)] + [width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [title] if title else []
    lines.append(_line(headers, widths))
    lines.append("  ".join("─" * w for w in widths))
    lines.extend(_line(r, widths) for r in cells)
    if not cells:
        lines.append("(none)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v + " " * (w - width(v)) for v, w in zip(values, widths)).rstrip()
