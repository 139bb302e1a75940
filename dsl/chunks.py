"""Chunks: a rule file cut into top-level statements, and its comments blanked out.

Both are pure text work done before textX sees the file. Parsing a big file
one chunk at a time keeps only one chunk's parse tree alive, and it lets the
parser report every broken statement instead of the first. Blanking the
comments (same length, so every position stays put) lets the grammar do
without a comment rule, which Arpeggio would otherwise try before every
single token.
"""
from __future__ import annotations

import difflib
import re
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Chunk", "RuleText", "blank_comments", "split"]

#: Keywords that start a top-level statement; a line starting with one begins a chunk.
TOP_LEVEL = (
    "ruleset", "import", "extends", "settings", "role", "level", "department", "channel",
    "severity", "class", "lifecycle", "route", "escalation", "register", "formula",
    "points", "service", "project", "meeting",
)
_TOP_LEVEL = frozenset(TOP_LEVEL)

# The language's strings (both quote styles, backslash escapes, may span lines, as textX's
# STRING) and comments. A `field(kind=…)` metric may hold '#' or '//' without starting one.
_LEXEMES = re.compile(r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|field\([^)\n]*\)|(?:\#|//)[^\n]*""")
_LINE_WORD = re.compile(r"^\w+", re.MULTILINE)


def blank_comments(text: str) -> str:
    """``text`` with each comment replaced by as many spaces: same length, same lines.

    A '#' or '//' inside a quoted label is part of the label, not a comment.
    """
    pieces = []
    last = 0
    for found in _LEXEMES.finditer(text):
        start = found.start()
        if text[start] in "#/":
            pieces.append(text[last:start])
            pieces.append(" " * (found.end() - start))
            last = found.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


@dataclass(frozen=True)
class Chunk:
    """One top-level statement (or a run of them): where it starts, and its text."""

    offset: int  # index of its first character in the file's text
    line: int  # 0-based number of its first line
    text: str

    @property
    def blank(self) -> bool:
        """True for a chunk of nothing but blanks and comments."""
        return not blank_comments(self.text).strip()

    def head(self) -> tuple[str, str]:
        """Its first two words: the keyword and, usually, the code it defines."""
        words = self.text.split(None, 2)
        return (words[0] if words else "", words[1] if len(words) > 1 else "")


@lru_cache(maxsize=4096)
def starts_statement(word: str) -> bool:
    # A misspelt keyword flush left ("levell") still starts a chunk, so the
    # statements after a typo are parsed (and checked) on their own.
    return word in _TOP_LEVEL or bool(difflib.get_close_matches(word, TOP_LEVEL, n=1, cutoff=0.75))


def split(text: str) -> list[Chunk]:
    """``text`` cut before every line that starts flush left with a top-level keyword.

    The chunks joined give ``text`` back. A line inside a block that happens to
    start flush left with such a keyword is cut too; the parser joins such a
    chunk back to the one before it when only together they parse.
    """
    starts = [0]
    for found in _LINE_WORD.finditer(text):
        if found.start() and starts_statement(found.group(0)):
            starts.append(found.start())
    starts.append(len(text))
    chunks = []
    line = 0
    for begin, end in zip(starts, starts[1:]):
        piece = text[begin:end]
        if piece:
            chunks.append(Chunk(begin, line, piece))
        line += piece.count("\n")
    return chunks


class RuleText:
    """The whole text of a rule file and its line index: what located messages need.

    It stands in for the textX parser on every chunk's model (as ``_tx_parser``),
    so a message about any object shows the file's own line, comments and all,
    and the parser with its parse tree can be let go.
    """

    def __init__(self, text: str):
        self.input = text
        # An array, not a list: a 5 MB file has some 200,000 lines.
        self._starts = array("q", [0])
        self._starts.extend(m.end() for m in re.finditer("\n", text))

    def pos_to_linecol(self, position: int) -> tuple[int, int]:
        """1-based line and column of a character index, as Arpeggio counts them."""
        line = bisect_right(self._starts, position)
        return line, position - self._starts[line - 1] + 1

    def count(self) -> int:
        """The number of lines, as ``str.splitlines`` counts them (a final line break ends a line)."""
        return len(self._starts) - (1 if self.input.endswith("\n") else 0)

    def line(self, number: int) -> str:
        """Line ``number`` (1-based) without its line break, or "" if out of range."""
        if not 0 < number <= len(self._starts):
            return ""
        start = self._starts[number - 1]
        end = self._starts[number] - 1 if number < len(self._starts) else len(self.input)
        return self.input[start:end].rstrip("\r")
