"""The rules language: grammar, parser, semantic checks and the compiler to a Ruleset.

Public API::

    load(path) -> Ruleset                       # raises RuleFileError with every problem
    loads(text, filename="<string>", folder=None) -> Ruleset
    check(paths, today=None) -> list[Diagnostic]  # errors and warnings; never raises for bad rule files
    summary(ruleset, lang="zh") -> str          # the text of `wangge rules show`

`RuleFileError` (a `RuleError`) carries ``.diagnostics``; each `Diagnostic`
has file, line, col, message, hint and renders gcc-style with ``format()``.
"""
from __future__ import annotations

import os
from datetime import date
from typing import Iterable

from wangge.core import collector
from wangge.core.errors import RuleFileError
from wangge.core.ruleset import Ruleset
from wangge.dsl.calendar_check import calendar_warnings
from wangge.dsl.compiler import compile_definitions
from wangge.dsl.diagnostics import Diagnostic
from wangge.dsl.loader import load_definitions, load_text_definitions
from wangge.dsl.summary import summary

__all__ = ["Diagnostic", "RuleFileError", "check", "load", "loads", "summary"]


def load(path: str | os.PathLike) -> Ruleset:
    """Parse, check and compile the rule file at ``path`` and its imports.

    Raises `RuleFileError` listing every problem found, each located.
    """
    with collector.paused():  # the compile step too: the parsed model is large and acyclic work
        return compile_definitions(load_definitions(path))


def loads(text: str, filename: str = "<string>", folder: str | os.PathLike | None = None) -> Ruleset:
    """Like `load` for text in memory; imports resolve against ``folder``."""
    with collector.paused():
        return compile_definitions(load_text_definitions(text, filename, folder))


def check(paths: Iterable[str | os.PathLike], today: date | None = None) -> list[Diagnostic]:
    """Every problem in the rule files at ``paths`` (and their imports); empty if all are sound.

    Errors and warnings both (``Diagnostic.is_error`` tells them apart). Given
    ``today``, also a warning for each year that deadlines set from today can
    reach and that has no official holiday schedule (see core/calendar.py).
    """
    found: list[Diagnostic] = []
    for path in paths:
        warnings: list[Diagnostic] = []
        try:
            with collector.paused():
                ruleset = compile_definitions(load_definitions(path, warnings))
        except RuleFileError as error:
            found.extend(d for d in error.diagnostics if d not in found)
            continue
        if today is not None:
            warnings.extend(calendar_warnings(ruleset, today, str(path)))
        found.extend(d for d in warnings if d not in found)
    return found
