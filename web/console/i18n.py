"""The console's own words in Chinese (the default) and English.

The templates are written with English message ids (``_("Case queue")``);
Chinese comes from the Babel catalog ``web/locale/zh/LC_MESSAGES/console.po``,
read with Babel at start-up. Reading the .po itself means a fresh clone
works with no compile step, and the .po stays the one file a translator
edits (`pybabel extract -F web/babel.cfg` finds new ids). The ruleset's
labels come in both languages from the rule file, not from here.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Callable

from babel.messages.pofile import read_po

LANGUAGES = ("zh", "en")
DEFAULT = "zh"


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """Message id -> translation for ``lang`` (empty for English: the ids are English)."""
    if lang == "en":
        return {}
    source = resources.files("wangge.web").joinpath("locale", lang, "LC_MESSAGES", "console.po")
    with source.open("rb") as po:
        parsed = read_po(po, locale=lang)
    return {m.id: m.string for m in parsed if m.id and m.string and not m.fuzzy}


def translator(lang: str) -> Callable[..., str]:
    """``_(message, **values)``: the message in ``lang``, with ``%(name)s`` values filled in."""
    words = catalog(lang if lang in LANGUAGES else DEFAULT)

    def _(message: str, **values) -> str:
        text = words.get(message, message)
        return text % values if values else text

    return _


def pick(requested: str | None) -> str:
    """A supported language from what a person or browser asked for; Chinese otherwise."""
    return requested if requested in LANGUAGES else DEFAULT
