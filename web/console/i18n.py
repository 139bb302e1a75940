"""The console's own words in Chinese (the default) and English.

The templates are written with English message ids (``_("Case queue")``);
Chinese comes from the Babel catalog ``web/locale/zh/LC_MESSAGES/console.po``,
read with Babel at start-up. Reading the .po itself means a fresh clone
works with no compile step, and the .po stays the one file a translator
edits (`pybabel extract -F web/babel.cfg` finds new ids). The ruleset's
labels come in both languages from the rule file, not from here.

A move the lifecycle refuses is said by the library in English; `refusal` gives
it in the page's language from the same template (`lifecycle.REFUSALS`, whose
ids the catalog holds too).
"""
from __future__ import annotations

from typing import Callable, Mapping

from wangge.core import i18n

LANGUAGES = ("zh", "en")
DEFAULT = "zh"


def catalog(lang: str) -> Mapping[str, str]:
    """Message id -> translation for ``lang`` (empty for English: the ids are English)."""
    return i18n.catalog("wangge.web", "console", lang)


def translator(lang: str) -> Callable[..., str]:
    """``_(message, **values)``: the message in ``lang``, with ``%(name)s`` values filled in."""
    return i18n.translator(catalog(lang if lang in LANGUAGES else DEFAULT))


def pick(requested: str | None) -> str:
    """A supported language from what a person or browser asked for; Chinese otherwise."""
    return requested if requested in LANGUAGES else DEFAULT


def evidence_names(_: Callable[..., str]) -> dict[str, str]:
    """What a move can require, by its code, in ``_``'s language."""
    return {"photo": _("Photo"), "onsite_confirmation": _("On-site confirmation by the reporter"),
            "callback": _("Callback to the resident"), "signature": _("Resident's signature")}


def refusal(error: Exception, _: Callable[..., str]) -> str:
    """``error``'s message in ``_``'s language if it is a lifecycle refusal, else as it came."""
    return i18n.refusal(error, _, evidence_names(_)) or str(error)
