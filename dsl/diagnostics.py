"""Diagnostics: one problem in a rule file, where it is, and how to fix it.

A `Diagnostic` is plain data; `format` renders it gcc-style::

    district.wg:12:41: role '网格猿' is used but not defined
        transition 上报: 发现 -> 立案 by 网格猿
                                        ^
      hint: did you mean 网格员?

`RuleFileError` carries every diagnostic of a run, so a caller sees all the
problems of a file at once instead of only the first.
"""
from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from wangge.core.errors import RuleFileError

__all__ = ["Diagnostic", "RuleFileError", "at", "did_you_mean", "format_all", "raise_if_any", "warning_at"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem. ``line`` and ``col`` are 1-based; both are 0 for a whole-file problem."""

    file: str
    line: int
    col: int
    message: str
    hint: str = ""
    source_line: str = ""
    severity: str = "error"  # or "warning": the rules still compile and run

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        """The gcc-style text: location and message, source line, caret, hint."""
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        kind = "" if self.is_error else f"{self.severity}: "
        parts = [f"{where}: {kind}{self.message}"]
        if self.source_line:
            parts.append("    " + self.source_line)
            parts.append("    " + _caret_padding(self.source_line, self.col) + "^")
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.format()


def _caret_padding(line: str, col: int) -> str:
    # CJK characters take two terminal columns; pad with two spaces for them so
    # the caret lands under the right character.
    pad = []
    for ch in line[: max(col - 1, 0)]:
        if ch == "\t":
            pad.append("\t")
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            pad.append("  ")
        else:
            pad.append(" ")
    return "".join(pad)


def source_line(text: str, line: int) -> str:
    """Line ``line`` (1-based) of ``text`` without its newline, or "" if out of range."""
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def at(obj, message: str, hint: str = "", severity: str = "error") -> Diagnostic:
    """A diagnostic located at the start of textX object ``obj``."""
    from textx import get_model

    model = get_model(obj)
    source = model._tx_parser  # the file's RuleText (dsl/chunks.py): its lines are indexed
    line, col = source.pos_to_linecol(obj._tx_position)
    return Diagnostic(model._tx_filename or "<string>", line, col, message, hint, source.line(line), severity)


def warning_at(obj, message: str, hint: str = "") -> Diagnostic:
    """A warning at ``obj``: the rules compile, but probably do not say what was meant."""
    return at(obj, message, hint, "warning")


def did_you_mean(word: str, candidates: Iterable[str], what: str = "") -> str:
    """A hint naming the closest candidate, or listing the defined ones.

    ``what`` names the kind in the fallback ("defined roles: …").
    """
    candidates = sorted(set(candidates))
    # Numeric codes (national style 0101) that differ in a digit are different
    # things, not typos: list the defined ones instead of guessing.
    close = [] if word.isdigit() else difflib.get_close_matches(word, candidates, n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]}?"
    if not candidates:
        return f"no {what or 'names'} are defined; define one first" if what else ""
    shown = ", ".join(candidates[:8]) + (", …" if len(candidates) > 8 else "")
    return f"defined {what}: {shown}" if what else f"expected one of: {shown}"


def format_all(diagnostics: Iterable[Diagnostic]) -> str:
    """Every diagnostic, separated by blank lines, with a count at the end."""
    diagnostics = list(diagnostics)
    body = "\n\n".join(d.format() for d in diagnostics)
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    counts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors or not warnings else []
    if warnings:
        counts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{body}\n\n{', '.join(counts)}"


def sort_key(d: Diagnostic) -> tuple:
    return (d.file, d.line, d.col, d.message)


def raise_if_any(diagnostics: Iterable[Diagnostic]) -> None:
    """Raise `RuleFileError` carrying ``diagnostics`` (sorted, deduplicated) if any is an error.

    Warnings travel with the errors when there are errors; alone, they do not raise.
    """
    unique = sorted(set(diagnostics), key=sort_key)
    if any(d.is_error for d in unique):
        raise RuleFileError(unique)
