"""The language: the textX metamodel built from `wangge.tx`, and parsing.

`parse` turns text into a `RuleModel` or raises `RuleFileError` with every
syntax error it can find. The file is parsed one top-level statement at a
time (see dsl/chunks.py): textX stops at the first syntax error, so this is
how every broken statement gets reported, and it keeps only one statement's
parse tree in memory, which is what lets a file of many megabytes be checked
in bounded memory. Each chunk's objects get their positions in the whole
file, so every message still reads file:line:col of the file as written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from sys import intern
from functools import lru_cache
from importlib import resources
from typing import Any, Optional

from textx import metamodel_from_str
from textx.exceptions import TextXError, TextXSyntaxError

from wangge.dsl.chunks import TOP_LEVEL, Chunk, RuleText, blank_comments, split
from wangge.dsl.diagnostics import Diagnostic, did_you_mean, raise_if_any, source_line

__all__ = ["KEYWORDS", "TOP_LEVEL", "RuleModel", "metamodel", "parse", "parse_recovering"]

# Friendly names for the grammar's match rules in "expected …" messages.
_RULE_NAMES = {
    "Code": "a code", "STRING": "a quoted label", "Number": "a number", "INT": "a whole number",
    "Date": "a date (2026-01-01)", "Clock": "a time (09:00)", "EOF": "end of file",
}

#: How many chunks back a chunk that does not parse alone is tried joined to the ones before it.
JOIN_BACK = 4
#: Characters of the statements parsed together while they parse: a few MB of parse tree.
BATCH = 20_000


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


@dataclass
class RuleModel:
    """A parsed rule file: its statements in file order, gathered from its chunks' textX models.

    ``chunks`` holds those models (each a textX ``Model``, the root that
    ``textx.get_model`` finds from any object in it); ``_tx_parser`` is the
    file's `RuleText`, as on each chunk's model.
    """

    _tx_filename: str
    _tx_parser: RuleText
    header: Any = None
    imports: list = field(default_factory=list)
    extends: Any = None
    sections: list = field(default_factory=list)
    chunks: list = field(default_factory=list)

    def add(self, chunk_model) -> None:
        self.chunks.append(chunk_model)
        self.header = self.header or chunk_model.header
        self.imports.extend(chunk_model.imports)
        self.extends = self.extends or chunk_model.extends
        self.sections.extend(chunk_model.sections)


@dataclass
class _Group:
    """Adjacent chunks parsed as one: their model, or the syntax error that stopped them."""

    chunk: Chunk
    model: Any = None
    error: Optional[Diagnostic] = None
    last: Optional[Chunk] = None  # the last statement's own chunk, when the group has several

    @property
    def tail(self) -> Chunk:
        return self.last or self.chunk


def parse(text: str, filename: str) -> RuleModel:
    """Parse ``text`` (the content of ``filename``) into a `RuleModel`.

    Raises `RuleFileError` listing every syntax error found, or saying the file is empty.
    """
    model, syntax, _ = parse_recovering(text, filename)
    raise_if_any(syntax)
    return model


def parse_recovering(text: str, filename: str):
    """Parse ``text``; on syntax errors, also the model of the statements that do parse.

    Returns ``(model, syntax errors, broken)``: ``broken`` holds the first two
    words of each statement that did not parse (``("role", "网格员")``), so
    the checks can leave alone references to what it would have defined. The
    model is None when the statements that parse have no `ruleset` header (or
    the file is empty); the syntax errors are then the whole story.
    """
    source = RuleText(text)
    groups = _parse_groups(text, filename, source)
    syntax = [g.error for g in groups if g.error is not None]
    words = [g.chunk.head() for g in groups if g.error is not None]
    model = RuleModel(filename, source)
    for group in groups:
        if group.model is not None:
            model.add(group.model)
    if not syntax:
        return _finish(model, text, filename), [], []
    if model.header is None:
        return None, syntax, words
    return model, syntax, words


def _finish(model: RuleModel, text: str, filename: str) -> RuleModel:
    """The parsed model; raises `RuleFileError` for a file of nothing but blanks and comments."""
    if not model.chunks:
        raise_if_any([Diagnostic(filename, 1, 1, "the rule file is empty",
                                 'start it with a line such as: ruleset 泰达 "泰达社区" / "TEDA"',
                                 source_line(text, 1))])
    return model


def _parse_groups(text: str, filename: str, source: RuleText) -> list[_Group]:
    """Every statement of ``text`` (indexed by ``source``) parsed, in file order.

    A group that does not parse carries its syntax error instead of a model.
    """
    groups: list[_Group] = []
    for batch in _batches([c for c in split(text) if not c.blank]):
        first, last = batch[0], batch[-1]
        whole = _parse_chunk(Chunk(first.offset, first.line, text[first.offset:last.offset + len(last.text)]),
                             text, filename, source)
        if whole.error is None:
            whole.last = last
            groups.append(whole)
            continue
        for chunk in batch:  # one statement at a time, to find every broken one
            group = whole if len(batch) == 1 else _parse_chunk(chunk, text, filename, source)
            if group.error is not None:
                group = _rejoin(groups, group, text, filename, source)
            groups.append(group)
    _check_order(groups, text, filename, source)
    return groups


def _batches(chunks: list[Chunk]) -> list[list[Chunk]]:
    """Adjacent chunks in runs of about `BATCH` characters: each textX parse has a fixed cost,
    which a file of many one-line statements would otherwise pay per line."""
    batches: list[list[Chunk]] = []
    size = BATCH
    for chunk in chunks:
        if size + len(chunk.text) > BATCH:
            batches.append([])
            size = 0
        batches[-1].append(chunk)
        size += len(chunk.text)
    return batches


def _rejoin(groups: list[_Group], group: _Group, text: str, filename: str, source: RuleText) -> _Group:
    """``group`` (which does not parse alone) or, if it was cut off a statement before it, that statement.

    A chunk can begin with a keyword that only continues the statement before
    it (``class`` flush left inside a `level` block): then the chunks from that
    statement on parse together, or fail further on than the statement did
    alone. Those groups are taken off ``groups`` and returned as one.
    """
    end = group.chunk.offset + len(group.chunk.text)
    for back in range(1, min(len(groups), JOIN_BACK) + 1):
        before = groups[-back]
        first = before.chunk
        # Cheap tests first: a whole batch before it need not be parsed again,
        # and a statement broken in its middle does not go on into the next chunk.
        if before.error is None and not _continues(before.tail, group.chunk, text, filename, source):
            break
        if before.error is not None and not _cut_short(before):
            break
        joined = _parse_chunk(Chunk(first.offset, first.line, text[first.offset:end]), text, filename, source)
        if joined.error is None or (_cut_short(before) and _where(joined) > (group.chunk.line + 1, 1)):
            del groups[-back:]
            return joined
        if before.error is None:  # a statement that parses alone is not cut short
            break
    return group


def _continues(tail: Chunk, chunk: Chunk, text: str, filename: str, source: RuleText) -> bool:
    """True if the complete statement of ``tail`` may go on into ``chunk`` (``service s`` / ``points 10``).

    A statement that ends with '}' never goes on; the others are short, and
    whether one takes in the first line of ``chunk`` shows in how that line
    parses after it: without error, or failing somewhere else than alone.
    """
    if blank_comments(tail.text).rstrip().endswith("}"):
        return False
    line_end = text.find("\n", chunk.offset) + 1 or len(text)
    joined = _parse_chunk(Chunk(tail.offset, tail.line, text[tail.offset:line_end]), text, filename, source)
    if joined.error is None:
        return True
    alone = _parse_chunk(Chunk(chunk.offset, chunk.line, text[chunk.offset:line_end]), text, filename, source)
    return alone.error is None or _where(alone) != _where(joined)


def _where(group: _Group) -> tuple[int, int]:
    return group.error.line, group.error.col


def _cut_short(group: _Group) -> bool:
    """True if the group's text ran out before its statement ended: its error is at its very end."""
    if group.error is None:
        return False
    next_line = group.chunk.line + group.chunk.text.count("\n") + 1
    return _where(group) >= (next_line, 1)


def _check_order(groups: list[_Group], text: str, filename: str, source: RuleText) -> None:
    """Mark a chunk that the grammar would not accept after the ones before it (an `import` after a role)."""
    last = None
    for index, group in enumerate(groups):
        if group.model is None:
            continue
        if last is not None and not _may_follow(groups[last].model, group.model):
            first = groups[last].chunk
            end = group.chunk.offset + len(group.chunk.text)
            joined = _parse_chunk(Chunk(first.offset, first.line, text[first.offset:end]), text, filename, source)
            groups[index] = _Group(group.chunk, None, joined.error or Diagnostic(
                filename, group.chunk.line + 1, 1, "syntax error: this statement is out of place",
                "a rule file starts with `ruleset`, then its imports, then `extends`, then the rest",
                source_line(text, group.chunk.line + 1)))
            continue
        last = index


def _ranks(model) -> list[int]:
    """The places in the grammar's order of the model's statements: header 0, imports 1, extends 2, the rest 3."""
    ranks = [0] if model.header is not None else []
    ranks += [1] if model.imports else []
    ranks += [2] if model.extends is not None else []
    return ranks + ([3] if model.sections else [])


def _may_follow(before, after) -> bool:
    previous, following = _ranks(before), _ranks(after)
    if not previous or not following:
        return True
    # Imports and sections repeat; the header and `extends` come once.
    return following[0] > previous[-1] or (following[0] == previous[-1] and following[0] in (1, 3))


def _parse_chunk(chunk: Chunk, text: str, filename: str, source: RuleText) -> _Group:
    """The chunk's model, its objects at their places in the file, or the syntax error it has.

    Comments are blanked out chunk by chunk: a stray quote then hides the
    comments of its own statement at most, not those of the rest of the file.
    """
    try:
        model = metamodel().model_from_str(blank_comments(chunk.text), file_name=filename)
    except TextXError as error:
        return _Group(chunk, error=_syntax_diagnostic(error, text, filename, chunk.line, source))
    if isinstance(model, str):  # blanks only: textX returns a string
        return _Group(chunk)
    _settle(model, chunk.offset)
    # The parser holds the parse tree, the chunk's text and, in the last parse
    # failure's traceback, cycles back to itself; loads run with the cyclic
    # collector paused (core/collector.py), so empty it for reference counting to free.
    model._tx_parser.__dict__.clear()
    model._tx_parser = source
    model._tx_filename = filename  # textX makes the name absolute; messages show it as given
    return _Group(chunk, model)


_ATOMS = frozenset({str, int, float, bool, type(None)})
_SHORT = 32  # longer strings are labels, seldom repeated


def _settle(model, offset: int) -> None:
    """Move every object of a chunk's model by the chunk's offset in the file; share its short strings.

    Codes repeat all through a big file (every item names a severity, states,
    channels); interned, each is kept once instead of once per use.
    """
    pending = [model]
    while pending:
        obj = pending.pop()
        obj._tx_position += offset
        obj._tx_position_end += offset
        # Reading the attributes one by one: `obj.__dict__` would give every
        # object a dictionary of its own, a sizeable share of a big file's model.
        for name in type(obj)._tx_attrs:
            value = getattr(obj, name)
            if type(value) is str and len(value) <= _SHORT:
                setattr(obj, name, intern(value))
                continue
            if type(value) in _ATOMS:
                continue
            if type(value) is list:
                pending.extend(v for v in value if type(v) not in _ATOMS)
            else:
                pending.append(value)


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


def _found(line_text: str, col: int) -> str:
    rest = line_text[col - 1:]
    word = re.match(r"\w+|\S", rest)
    return word.group(0) if word else ""


def _syntax_diagnostic(error: TextXError, text: str, filename: str, first_line: int = 0,
                       source: Optional[RuleText] = None) -> Diagnostic:
    """The located message of a textX error in a chunk whose first line is line ``first_line`` (0-based) of ``text``.

    ``source`` is ``text``'s line index: a big file with many errors is not split into lines for each.
    """
    source = source or RuleText(text)
    line, col = (error.line or 1) + first_line, error.col or 1
    count = max(source.count(), 1)
    if line > count:  # past the last line break: point at the real end
        line, col = count, len(source.line(count)) + 1
    expected = _expected(error) if isinstance(error, TextXSyntaxError) else []
    found = _found(source.line(line), col)
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
    wide = _full_width(source.line(line)[col - 1:])
    if wide:
        hint = (f"'{wide}' is full-width punctuation: type the ASCII '{FULL_WIDTH[wide]}' instead "
                f"(switch the input method to half-width)") + (f"; {hint}" if hint else "")
    return Diagnostic(filename, line, col, message, hint, source.line(line))


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
