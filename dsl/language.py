"""The language: the textX metamodel built from `wangge.tx`, and parsing.

`parse` turns text into a textX model or raises `RuleFileError` with every
syntax error it can find. textX stops at the first syntax error, so after a
failure each top-level statement is parsed on its own (padded with newlines
to keep line numbers) and every failing statement is reported.
"""
from __future__ import annotations

import difflib
import re
from functools import lru_cache
from importlib import resources

from textx import metamodel_from_str
from textx.exceptions import TextXError, TextXSyntaxError

from wangge.dsl.diagnostics import Diagnostic, did_you_mean, raise_if_any, source_line

__all__ = ["KEYWORDS", "TOP_LEVEL", "metamodel", "parse", "parse_recovering"]

#: Keywords that start a top-level statement; a line starting with one begins a chunk.
TOP_LEVEL = (
    "ruleset", "import", "extends", "settings", "role", "level", "department", "channel",
    "severity", "class", "lifecycle", "route", "escalation", "register", "formula",
    "points", "service", "project", "meeting",
)

# Friendly names for the grammar's match rules in "expected …" messages.
_RULE_NAMES = {
    "Code": "a code", "STRING": "a quoted label", "Number": "a number", "INT": "a whole number",
    "Date": "a date (2026-01-01)", "Clock": "a time (09:00)", "EOF": "end of file",
}


@lru_cache(maxsize=1)
def metamodel():
    """The textX metamodel, built once from the packaged grammar."""
    grammar = resources.files("wangge.dsl").joinpath("wangge.tx").read_text(encoding="utf-8")
    # autokwd: keywords match whole words only, so `items` is never `item` + `s`.
    return metamodel_from_str(grammar, autokwd=True)


def _keywords() -> frozenset[str]:
    grammar = resources.files("wangge.dsl").joinpath("wangge.tx").read_text(encoding="utf-8")
    return frozenset(re.findall(r"'([^'\s]+)'", grammar))


KEYWORDS = _keywords()


def parse(text: str, filename: str):
    """Parse ``text`` (the content of ``filename``) into a textX model.

    Raises `RuleFileError` listing every syntax error found.
    """
    mm = metamodel()  # outside the try: a broken grammar is our bug, not the user's
    try:
        # textX reads `file_name` from disk when the text is empty: never give it "".
        model = mm.model_from_str(text + "\n", file_name=filename)
    except TextXSyntaxError as first:
        diagnostics = _chunk_errors(text, filename) or [_syntax_diagnostic(first, text, filename)]
        raise_if_any(diagnostics)
    except TextXError as error:  # a grammar-level semantic error: still a located message
        raise_if_any([_syntax_diagnostic(error, text, filename)])
    return _finish(model, text, filename)


def _finish(model, text: str, filename: str):
    """The parsed model as the loader wants it; raises `RuleFileError` for an empty file."""
    if isinstance(model, str):  # nothing but blanks and comments: textX returns a string
        raise_if_any([Diagnostic(filename, 1, 1, "the rule file is empty",
                                 'start it with a line such as: ruleset 泰达 "泰达社区" / "TEDA"',
                                 source_line(text, 1))])
    # textX makes the name absolute; messages show the path as the user gave it.
    model._tx_filename = filename
    return model


def _starts_statement(line: str) -> bool:
    # A top-level statement starts flush left; a misspelt keyword there
    # ("levell") still starts a new chunk so the next statements get checked.
    word = re.match(r"\w+", line)
    if not word:
        return False
    return word.group(0) in TOP_LEVEL or bool(
        difflib.get_close_matches(word.group(0), TOP_LEVEL, n=1, cutoff=0.75)
    )


def _chunks(text: str):
    """(first line index, text) of each top-level statement group."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _starts_statement(line)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    for begin, end in zip(starts, starts[1:] + [len(lines)]):
        yield begin, "\n".join(lines[begin:end])


def _chunk_errors(text: str, filename: str) -> list[Diagnostic]:
    return [d for _, _, d in _broken_chunks(text, filename)]


def _broken_chunks(text: str, filename: str) -> list[tuple[int, str, Diagnostic]]:
    """(first line index, text, syntax error) of every top-level statement that does not parse."""
    found = []
    for begin, chunk in _chunks(text):
        try:
            metamodel().model_from_str("\n" * begin + chunk + "\n", file_name=filename)
        except TextXSyntaxError as error:
            found.append((begin, chunk, _syntax_diagnostic(error, text, filename)))
    return found


def parse_recovering(text: str, filename: str):
    """Parse ``text``; on syntax errors, also the model of the statements that do parse.

    Returns ``(model, syntax errors, broken)``: ``broken`` holds the first two
    words of each statement that did not parse (``("role", "网格员")``), so
    the checks can leave alone references to what it would have defined. The
    model is None when even the rest does not parse (or the file is empty);
    the syntax errors are then the whole story. Lines keep their numbers.
    """
    mm = metamodel()
    try:
        whole = mm.model_from_str(text + "\n", file_name=filename)
    except TextXError as first:
        if not isinstance(first, TextXSyntaxError):
            return None, [_syntax_diagnostic(first, text, filename)], []
        broken = _broken_chunks(text, filename)
        if not broken:
            return None, [_syntax_diagnostic(first, text, filename)], []
        syntax = [d for _, _, d in broken]
    else:  # it parses: the usual path
        return _finish(whole, text, filename), [], []
    lines = text.split("\n")
    words = []
    for begin, chunk, _ in broken:
        head = chunk.split(None, 2)
        words.append((head[0] if head else "", head[1] if len(head) > 1 else ""))
        for index in range(begin, begin + chunk.count("\n") + 1):
            lines[index] = ""
    try:
        model = metamodel().model_from_str("\n".join(lines) + "\n", file_name=filename)
    except TextXError:
        return None, syntax, words
    if isinstance(model, str) or model.header is None:
        return None, syntax, words
    model._tx_filename = filename
    return model, syntax, words


def _expected(error: TextXSyntaxError) -> list[str]:
    """Readable names of what the parser would have accepted where it stopped."""
    names = set()
    for rule in error.expected_rules or ():
        to_match = getattr(rule, "to_match", None)
        rule_name = getattr(rule, "rule_name", "")
        if rule_name in _RULE_NAMES:
            names.add(_RULE_NAMES[rule_name])
        elif type(rule).__name__ == "EndOfFile":
            names.add(_RULE_NAMES["EOF"])
        elif isinstance(to_match, str) and to_match in KEYWORDS:
            names.add(to_match)
        elif type(rule).__name__ == "StrMatch" and to_match:
            names.add(to_match)
    statements = names & set(TOP_LEVEL)
    if len(statements) > 4:  # every top-level keyword: say so instead of listing 16 words
        names = (names - statements) | {"a new statement"}
    return sorted(names, key=lambda n: (n.startswith("a ") or n == "end of file", n))


def _is_keyword(name: str) -> bool:
    return name in KEYWORDS


def _found(text: str, line: int, col: int) -> str:
    rest = source_line(text, line)[col - 1:]
    word = re.match(r"\w+|\S", rest)
    return word.group(0) if word else ""


def _syntax_diagnostic(error: TextXError, text: str, filename: str) -> Diagnostic:
    line, col = error.line or 1, error.col or 1
    lines = text.splitlines() or [""]
    if line > len(lines):  # past the newline parse() appends: point at the real end
        line, col = len(lines), len(lines[-1]) + 1
    expected = _expected(error) if isinstance(error, TextXSyntaxError) else []
    found = _found(text, line, col)
    shown = f"'{found}'" if found else "end of file"
    if expected:
        shown_expected = [f"'{e}'" if _is_keyword(e) else e for e in expected]
        message = f"syntax error: expected {_join(shown_expected)}, found {shown}"
    else:
        message = f"syntax error: {error.message}"
    keywords = [e for e in expected if _is_keyword(e)]
    if "a new statement" in expected:
        keywords += TOP_LEVEL
    hint = ""
    if found and keywords:
        hint = did_you_mean(found, keywords)
        if not hint.startswith("did you mean"):
            hint = ""
    if not hint and found in KEYWORDS and "a code" in expected:
        hint = f"'{found}' is a keyword and cannot be a code; choose another code"
    wide = _full_width(source_line(text, line)[col - 1:])
    if wide:
        hint = (f"'{wide}' is full-width punctuation: type the ASCII '{FULL_WIDTH[wide]}' instead "
                f"(switch the input method to half-width)") + (f"; {hint}" if hint else "")
    return Diagnostic(filename, line, col, message, hint, source_line(text, line))


#: Full-width punctuation a Chinese input method types, and the ASCII the language means.
FULL_WIDTH = {"：": ":", "，": ",", "（": "(", "）": ")", "；": ";", "｛": "{", "｝": "}", "“": '"', "”": '"',
              "－": "-", "．": ".", "／": "/", "＞": ">", "＝": "=", "％": "%", "、": ","}


def _full_width(rest: str) -> str:
    """The first full-width punctuation mark at or just after the error, outside quoted labels."""
    head = rest.split('"', 1)[0][:12]
    return next((ch for ch in head if ch in FULL_WIDTH), "")


def _join(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]
