"""The loader: the only module of the language that reads files.

It reads a rule file, resolves its imports, parses every file once, merges
the definitions and runs the checks. Imports resolve relative to the
importing file first, then, for a bare name (``import national``), to the
rule files shipped in the ``wangge.rulesets`` package.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

from wangge.core import collector
from wangge.core.errors import RuleFileError
from wangge.dsl import checks
from wangge.dsl.definitions import Definitions, build
from wangge.dsl.diagnostics import Diagnostic, at, raise_if_any
from wangge.dsl.language import parse, parse_recovering

__all__ = ["SUFFIX", "Source", "load_definitions", "load_text_definitions"]

SUFFIX = ".wg"
PACKAGE = "wangge.rulesets"


@dataclass(frozen=True)
class Source:
    """A rule file to load: a key that identifies it, a name to show, a folder for imports."""

    key: str
    display: str
    folder: Optional[Path]  # None for package resources
    text: Optional[str] = None  # given directly instead of read


def _read(source: Source) -> str:
    if source.text is not None:
        return source.text
    try:
        if source.folder is None:
            package, name = source.key.split(":", 1)
            data = resources.files(package).joinpath(name).read_bytes()
        else:
            data = Path(source.key).read_bytes()
    except FileNotFoundError:
        raise RuleFileError([Diagnostic(source.display, 0, 0, "rule file not found",
                                        "check the path; rule files end in .wg")]) from None
    except OSError as error:
        raise RuleFileError([Diagnostic(source.display, 0, 0,
                                        f"cannot read rule file: {error.strerror}")]) from None
    return _decode(data, source.display)


def _decode(data: bytes, display: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        col = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise RuleFileError([Diagnostic(display, line, col, "the file is not valid UTF-8",
                                        "save the rule file as UTF-8")]) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise RuleFileError([Diagnostic(display, line, 1, "the file contains a NUL character",
                                        "is this a binary file? rule files are UTF-8 text")])
    return text.removeprefix("\ufeff")


def _file_source(path: Path, display: str) -> Source:
    return Source(str(path.resolve()), display, path.resolve().parent)


def _resolve(statement, importer: Source) -> Source | Diagnostic:
    """The file an `import` statement names, or a diagnostic saying why there is none."""
    if statement.path:
        name = statement.path
    else:
        name = statement.module + SUFFIX
    if importer.folder is not None:
        candidate = importer.folder / name
        if candidate.is_file():
            return _file_source(candidate, _display_near(importer.display, name))
    if statement.module and resources.files(PACKAGE).joinpath(name).is_file():
        return Source(f"{PACKAGE}:{name}", f"{PACKAGE}:{name}", None)
    searched = f"{importer.folder}" if importer.folder is not None else "nowhere (no folder)"
    where = f"{searched} and the package {PACKAGE}" if statement.module else searched
    return at(statement, f"cannot find the imported rule file '{name}'", f"looked in {where}")


def _display_near(importer_display: str, name: str) -> str:
    if ":" in importer_display and not os.path.exists(importer_display):
        return name
    return os.path.normpath(os.path.join(os.path.dirname(importer_display), name))


class _Run:
    """One load: every file parsed once, import cycles detected."""

    def __init__(self):
        self.done: dict[str, Definitions] = {}

    def load(self, source: Source, stack: tuple[str, ...] = ()) -> Definitions:
        if source.key in self.done:
            return self.done[source.key]
        if stack:  # an imported file: its syntax errors alone are the story
            model = parse(_read(source), source.display)
        else:
            # The top file: when some statements do not parse, the rest are still
            # checked, so one run reports syntax and semantic errors together.
            model, self.syntax, self.broken = parse_recovering(_read(source), source.display)
            if model is None:
                raise_if_any(self.syntax)
        out: list[Diagnostic] = []
        imported = []
        for statement in model.imports:
            target = _resolve(statement, source)
            if isinstance(target, Diagnostic):
                out.append(target)
            elif target.key in stack + (source.key,):
                chain = " -> ".join(Path(k).name for k in stack + (source.key, target.key))
                out.append(at(statement, f"import cycle: {chain}", "remove one of these imports"))
            else:
                try:
                    imported.append((statement, self.load(target, stack + (source.key,))))
                except RuleFileError as error:
                    out.extend(error.diagnostics)
        defs, problems = build(model, imported)
        # A broken import would flood the checks with unknown references: stop.
        # Otherwise the top file's merge problems wait to be reported with the checks'.
        raise_if_any(out + (problems if stack else []))
        if not stack:
            self.problems = problems
        self.done[source.key] = defs
        return defs

    def checked(self, source: Source) -> Definitions:
        """Load ``source`` and run every check; raise with all problems together."""
        self.problems: list[Diagnostic] = []
        self.syntax: list[Diagnostic] = []
        self.broken: list[tuple[str, str]] = []
        with collector.paused():
            try:
                defs = self.load(source)
            except RuleFileError as error:
                raise_if_any(self.syntax + list(error.diagnostics))
                raise
            semantic = self.problems + checks.run(defs)
            if self.syntax:
                semantic = [d for d in semantic if not _about_broken(d, self.broken)]
            found = self.syntax + semantic
            raise_if_any(found)
        self.warnings = [d for d in found if not d.is_error]
        return defs


def _about_broken(diagnostic: Diagnostic, broken: list[tuple[str, str]]) -> bool:
    """True for a semantic error that a statement with a syntax error probably explains.

    A reference to the code a broken statement would have defined (a role, a
    level, an item of a broken class), or anything about the lifecycle when the
    lifecycle block is broken, or a missing definition of a broken kind: the
    syntax error is the thing to fix, and these would only be noise.
    """
    message = diagnostic.message
    named = re.findall(r"'([^']+)'", message)
    for keyword, code in broken:
        if keyword == "lifecycle" and re.search(r"state|transition|lifecycle|close|initial", message):
            return True
        if keyword == "ruleset" and "ruleset" in message:
            return True
        if code and any(name == code or (keyword == "class" and name.startswith(code)) for name in named):
            return True
    return False


def load_definitions(path: str | os.PathLike, warnings: Optional[list] = None) -> Definitions:
    """Load, merge and check the rule file at ``path``.

    Raises `RuleFileError` with every problem found in the file and its imports
    (warnings among them). Without errors, warnings are appended to ``warnings``.
    """
    run = _Run()
    defs = run.checked(_file_source(Path(path), str(path)))
    if warnings is not None:
        warnings.extend(run.warnings)
    return defs


def load_text_definitions(text: str, filename: str = "<string>",
                          folder: str | os.PathLike | None = None) -> Definitions:
    """Like `load_definitions` for text in memory; imports resolve against ``folder``."""
    folder_path = Path(folder).resolve() if folder else None
    return _Run().checked(Source(f"<text>:{filename}", filename, folder_path, text))
