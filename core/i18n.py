"""Words in Chinese and English for the command line and the console: gettext catalogs.

Messages are written in English in the source; the English text is the message id.
Chinese comes from Babel catalogs, ``locale/zh/LC_MESSAGES/<domain>.po`` inside a
package (the console's under ``wangge.web``, the command line's and click's under
``wangge``), read with Babel when first asked for. Reading the .po itself means a
fresh clone or ``pip install -e .`` works with no compile step, and the .po stays
the one file a translator edits.

A library error's text is English, formatted from a template; `reword` recognises
a known template in such a text and gives it in the reader's language with the
same values, so the most common refusals need no second copy of their wording.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Callable, Iterable, Mapping, Optional

from wangge.core.errors import TransitionError

LANGUAGES = ("zh", "en")

#: Locale variables in the order POSIX gives them precedence for messages.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


@lru_cache(maxsize=None)
def catalog(package: str, domain: str, lang: str) -> Mapping[str, str]:
    """Message id -> translation of ``domain`` in ``lang`` (empty for English: the ids are English).

    A plural message answers to its singular and its plural id with its first form: the
    catalogs' languages (Chinese) have one form. Fuzzy and untranslated entries are left out,
    so their English shows instead of a guess.
    """
    if lang == "en":
        return {}
    from babel.messages.pofile import read_po  # only a run in Chinese reads a catalog

    source = resources.files(package).joinpath("locale", lang, "LC_MESSAGES", f"{domain}.po")
    with source.open("rb") as po:
        parsed = read_po(po, locale=lang)
    words: dict[str, str] = {}
    for message in parsed:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        text = message.string[0] if isinstance(message.string, tuple) else message.string
        if ids[0] and text and not message.fuzzy:
            words.update((one, text) for one in ids)
    return words


def translator(words: Mapping[str, str]) -> Callable[..., str]:
    """``_(message, **values)``: the message from ``words``, with ``%(name)s`` values filled in."""

    def _(message: str, **values) -> str:
        text = words.get(message, message)
        return text % values if values else text

    return _


def from_locale(environ: Mapping[str, str]) -> str:
    """Chinese where the locale is Chinese (the first set of LC_ALL, LC_MESSAGES, LANG starts
    with ``zh``), English otherwise, the C and POSIX locales included."""
    setting = next((environ[name] for name in LOCALE_VARIABLES if environ.get(name)), "")
    return "zh" if setting.lower().startswith("zh") else "en"


# -- library errors by their templates -------------------------------------------------------

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=None)
def _pattern(template: str) -> re.Pattern:
    """``template`` as a regular expression whose named groups take the values; a name used
    twice must match the same text both times."""
    parts, seen, end = [], set(), 0
    for found in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[end:found.start()]))
        name = found.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        end = found.end()
    parts.append(re.escape(template[end:]))
    return re.compile("".join(parts), re.DOTALL)


def values_of(text: str, template: str) -> Optional[dict[str, str]]:
    """The values ``template`` was filled with to give ``text``, or None if it did not give it."""
    found = _pattern(template).fullmatch(text)
    return found.groupdict() if found else None


def reword(text: str, templates: Iterable[str], _: Callable[..., str]) -> str:
    """``text`` in ``_``'s language if one of ``templates`` made it, else ``text`` unchanged.

    A value in the text that is itself a message (an evidence name, say) stays as it came;
    the caller can translate such values before calling ``_`` itself with `values_of`.
    """
    for template in templates:
        values = values_of(text, template)
        if values is not None:
            return _(template, **values)
    return text


def refusal(error: Exception, _: Callable[..., str], evidence: Mapping[str, str]) -> Optional[str]:
    """A move the lifecycle refused, said in ``_``'s language from its template (`lifecycle.REFUSALS`)
    with the same values, the evidence missing named by ``evidence`` (code -> name); None for any
    other error."""
    from wangge.core import lifecycle  # the command line starts without the ruleset's models

    template = lifecycle.REFUSALS.get(getattr(error, "reason", None) or "")
    if not isinstance(error, TransitionError) or not template:
        return None
    # The values the refusal was made with; an error built elsewhere is read back by its template.
    values = {k: str(v) for k, v in error.values.items()} or values_of(str(error), template)
    if values is None:
        return None
    if _(template) == template:
        return str(error)  # English: the library's own words
    if error.missing:  # named in English inside the text: said again from their codes
        values["needs"] = "、".join(evidence.get(code, code) for code in error.missing)
    if values.get("legal") == lifecycle.NO_MOVES:
        values["legal"] = _(lifecycle.NO_MOVES)
    return _(template, **values)
