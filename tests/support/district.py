"""The sample district rule file (tests/dsl/fixtures/district.wg), compiled once."""
from __future__ import annotations

from functools import lru_cache

from wangge import dsl
from wangge.core.ruleset import Ruleset

from support.rules import FIXTURES


@lru_cache(maxsize=None)
def district() -> Ruleset:
    return dsl.load(FIXTURES / "district.wg")
