"""Rule files shipped with wangge: the national baseline and one per seed model.

    names() -> list[str]          # the shipped rule files, without ".wg"
    path(name) -> Traversable     # where one lives (package data)
    load(name) -> Ruleset         # compiled; raises UsageError for an unknown name
"""
from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from wangge.core.errors import UsageError
from wangge.core.ruleset import Ruleset


def names() -> list[str]:
    return sorted(p.name[: -len(".wg")] for p in resources.files(__name__).iterdir() if p.name.endswith(".wg"))


def path(name: str) -> Traversable:
    """The shipped rule file called ``name``; raises `UsageError` listing the valid names."""
    if name not in names():
        raise UsageError(f"no shipped ruleset {name!r}: expected one of {', '.join(names())}")
    return resources.files(__name__) / f"{name}.wg"


def load(name: str) -> Ruleset:
    """Compile the shipped rule file ``name``."""
    from wangge import dsl

    with resources.as_file(path(name)) as file:
        return dsl.load(file)
