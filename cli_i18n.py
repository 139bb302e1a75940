"""The command line's language: Chinese or English, for its own words and click's.

The command line's messages are written in English in cli.py; Chinese comes from
the Babel catalog ``locale/zh/LC_MESSAGES/cli.po``, read like the console's
(`wangge.core.i18n`). Three kinds of text are translated:

* what cli.py says at run time, wrapped in `_` (prompts, summaries, refusals);
* the help of every command and option, by its English text as the message id,
  swapped in on the command tree before click parses anything (`use`);
* click's own words ("Usage:", "Missing option", "Error: ..."), by the catalog
  ``click.po`` of click's message ids. Click looks them up with
  ``gettext.gettext``, which takes its language from the process's locale and
  needs compiled files on disk; so the modules of click that bound that function
  get one that reads the catalog instead.

The language is ``--lang`` before the command's name, else ``WANGGE_LANG``, else
the locale (`wangge.core.i18n.from_locale`).

When messages change, ``python -m wangge.cli_i18n > /tmp/cli.pot`` writes the
template of every message the command line translates, and
``pybabel update -w 120 -i /tmp/cli.pot -d locale -D cli -l zh`` brings cli.po up to it.
"""
from __future__ import annotations

import gettext
import importlib
import inspect
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Optional, Sequence

import click

from wangge.core import i18n

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

LANGUAGES = i18n.LANGUAGES
ENVIRONMENT = "WANGGE_LANG"

_words: Mapping[str, str] = {}
_say = i18n.translator(_words)


def N_(message: str) -> str:
    """Marks a message for the catalog where it is translated later (`explain`)."""
    return message


def _(message: str, **values) -> str:
    """``message`` in the language of this run, with ``%(name)s`` values filled in."""
    return _say(message, **values)


def choose(args: Sequence[str], environ: Mapping[str, str]) -> str:
    """The language of a run: ``--lang`` among the options before the command, else a valid
    ``WANGGE_LANG``, else the locale. A wrong value is left to click to refuse."""
    for index, arg in enumerate(args):
        if not arg.startswith("-") or arg == "--":
            break  # the command's name: what follows is its own, e.g. `rules show --lang`
        if arg == "--lang" and index + 1 < len(args) and args[index + 1] in LANGUAGES:
            return args[index + 1]
        if arg.startswith("--lang=") and arg.removeprefix("--lang=") in LANGUAGES:
            return arg.removeprefix("--lang=")
    if environ.get(ENVIRONMENT) in LANGUAGES:
        return environ[ENVIRONMENT]
    return i18n.from_locale(environ)


def use(lang: str, command: click.Command) -> None:
    """Speak ``lang`` for the rest of this run: cli.py's messages, ``command``'s help, click's words."""
    global _words, _say
    _words = i18n.catalog("wangge", "cli", lang)
    _say = i18n.translator(_words)
    clicks = i18n.catalog("wangge", "click", lang)
    _click_speaks(clicks)
    for part, english in _english_texts(command):
        for field, text in english.items():
            setattr(part, field, _help(text, clicks) if field != "short_help" else text)
        if isinstance(part, click.Command) and english["short_help"] is None and part.help != english["help"]:
            part.short_help = _first_sentence(part.help)  # click shortens at ". ", which Chinese has none of
    _SPOKEN.add(lang)


# -- library errors -----------------------------------------------------------------------------

#: The library's most common refusals, as their templates: `explain` finds which one made an error's
#: text and gives it in the run's language with the same values. Others stay in English.
LIBRARY_TEMPLATES = (
    N_("no store at %(path)s: create one with `%(command)s`"),
    N_("cannot create a store at %(path)s: folder %(folder)s does not exist"),
    N_("a store already exists at %(path)s; open it instead of creating it"),
    N_("cannot write the store at %(path)s: permission denied; choose a writable path"),
    N_("unsupported database URL %(url)s: expected a file path, sqlite:///PATH or postgresql://HOST/DB, "
       "got scheme %(scheme)s"),
    N_("%(path)s is an encrypted tablet: give --passphrase or set WANGGE_PASSPHRASE"),
    N_("wrong passphrase for %(where)s: it does not unlock this tablet's database; check the keyboard layout "
       "and try again"),
    N_("a passphrase of %(count)s characters is too short to protect a tablet: choose one of %(rule)s, "
       "e.g. a short sentence"),
    N_("a passphrase of one character repeated is guessed first: choose one of %(rule)s, e.g. a short sentence"),
    N_("%(where)s is a %(found)s store, not a %(role)s store: open it as a %(found)s, or create a %(role)s store "
       "with `wangge init --role %(role)s`"),
    N_("expected a %(kind)s like %(example)s, got %(given)s"),
)


def explain(error: Exception) -> str:
    """The text of a library error in the run's language where its template is known."""
    from wangge.core import lifecycle

    evidence = {code: _(name) for code, name in lifecycle.EVIDENCE_NAMES.items()}
    return i18n.refusal(error, _, evidence) or i18n.reword(str(error), LIBRARY_TEMPLATES, _)


# -- the command tree's help --------------------------------------------------------------------

#: The English help and prompts of each command and option, kept when first seen: a run in
#: Chinese replaces them on the (module-wide) objects, and a later run in English puts them back.
_ENGLISH: dict[object, dict[str, Optional[str]]] = {}
#: The languages of the runs so far in this process.
_SPOKEN: set[str] = set()


def _english_texts(command: click.Command) -> Iterator[tuple[object, dict[str, Optional[str]]]]:
    # click makes a command's help option at its first parse, in that run's language: if it was
    # Chinese, its English is found back from the catalog.
    said = {} if _SPOKEN <= {"en"} else i18n.catalog("wangge", "click", "zh")
    clicks = {text: message for message, text in said.items()}
    for part in _parts(command):
        if part not in _ENGLISH:
            fields = ("help", "short_help") if isinstance(part, click.Command) else ("help", "prompt")
            _ENGLISH[part] = {field: clicks.get(getattr(part, field), getattr(part, field)) for field in fields}
        yield part, _ENGLISH[part]


def _parts(command: click.Command) -> Iterator[object]:
    yield command
    # The help option is made at the first parse and kept: a later run must re-word it too.
    helper = getattr(command, "_help_option", None)
    yield from (p for p in [*command.params, *([helper] if helper else [])] if isinstance(p, click.Option))
    for sub in getattr(command, "commands", {}).values():
        yield from _parts(sub)


def messages(command: click.Command) -> set[str]:
    """Every message id of ``command``'s tree: the help of each command and option, and the prompts."""
    return {inspect.cleandoc(text) for _part, english in _english_texts(command) for field, text in english.items()
            if field != "short_help" and isinstance(text, str) and text}


def _help(text: Optional[str], clicks: Mapping[str, str]) -> Optional[str]:
    if not isinstance(text, str) or not text:
        return text
    key = inspect.cleandoc(text)
    return _words.get(key) or clicks.get(key) or text


def _first_sentence(text: str) -> str:
    line = inspect.cleandoc(text).split("\n\n")[0].splitlines()[0]
    end = line.find("。")
    return line[: end + 1] if end != -1 else line


# -- the catalogs' templates --------------------------------------------------------------------


def template() -> "Catalog":
    """Every message the command line translates, as a Babel catalog template (what cli.po holds):
    ``_()`` and ``N_()`` in its source, extracted by Babel; the help of every command and option and
    the prompts, read off the command tree; the lifecycle's refusals and evidence (`explain`).
    Click's own messages (the help and version options' help) are click.po's."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_file

    from wangge import cli
    from wangge.core import lifecycle

    found = Catalog(project="wangge command line", locale=None)
    for module in (cli, sys.modules[__name__]):
        name = Path(module.__file__).name
        for line, message, _comments, _context in extract_from_file("python", module.__file__,
                                                                     keywords={"_": None, "N_": None}):
            found.add(message, locations=[(name, line)])
    for message in sorted(messages(cli.cli) - click_messages()):
        found.add(message, locations=[("cli.py", None)])
    for message in (*lifecycle.REFUSALS.values(), *lifecycle.EVIDENCE_NAMES.values(), lifecycle.NO_MOVES):
        found.add(message, locations=[("core/lifecycle.py", None)])
    return found


def click_messages() -> set[str]:
    """The ids of click's own messages (a plural by its singular), extracted from its source."""
    from babel.messages.extract import extract_from_file

    found = set()
    for source in Path(click.__file__).parent.glob("*.py"):
        for _line, message, _comments, _context in extract_from_file("python", source,
                                                                     keywords={"_": None, "ngettext": (1, 2)}):
            found.add(message[0] if isinstance(message, tuple) else message)
    # click translates the "[required]" of an option's help as `_(extra["required"])`, an id
    # Babel cannot read off the call.
    return found | {"required"}


# -- click's own words --------------------------------------------------------------------------

#: click's modules that bind ``gettext`` at import; `_click_speaks` gives each the catalog's words.
_CLICK_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "shell_completion", "termui",
                  "types", "utils")


def _click_speaks(words: Mapping[str, str]) -> None:
    def gettext_(message: str) -> str:
        return words.get(message, message)

    def ngettext_(singular: str, plural: str, count: int) -> str:
        chosen = singular if count == 1 else plural
        return words.get(chosen, chosen)

    gettext_.wangge = ngettext_.wangge = True
    for name in _CLICK_MODULES:
        try:
            module = importlib.import_module(f"click.{name}")
        except ImportError:  # a click that reorganised its modules keeps its own words there
            continue
        for attribute, ours, theirs in (("_", gettext_, gettext.gettext), ("ngettext", ngettext_, gettext.ngettext)):
            bound = getattr(module, attribute, None)
            if bound is theirs or getattr(bound, "wangge", False):
                setattr(module, attribute, ours)


if __name__ == "__main__":
    from babel.messages.pofile import write_po

    write_po(sys.stdout.buffer, template(), width=120)
