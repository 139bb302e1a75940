"""Shared helpers for the language tests: a valid base file and error capture."""
from __future__ import annotations

from pathlib import Path

import pytest

from wangge import dsl
from wangge.core.errors import RuleFileError

FIXTURES = Path(__file__).parents[1] / "dsl" / "fixtures"
BASIC = (FIXTURES / "basic.wg").read_text(encoding="utf-8")


def diagnostics(text: str, filename: str = "t.wg"):
    """Every diagnostic of ``text``; fails the test if it compiles."""
    with pytest.raises(RuleFileError) as info:
        dsl.loads(text, filename, FIXTURES)
    return info.value.diagnostics


def only(text: str):
    """The single diagnostic of ``text`` (asserts there is exactly one)."""
    found = diagnostics(text)
    assert len(found) == 1, "\n\n".join(d.format() for d in found)
    return found[0]


def lines_of(text: str) -> int:
    return text.count("\n")
