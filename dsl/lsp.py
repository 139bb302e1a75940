"""A language server for .wg rule files: what an administrator's editor asks while they type.

- Diagnostics: the checker's problems (the same as `wangge rules check`,
  every one at once) at their line and column, with the hint, on opening,
  editing and saving a file; problems inside an imported file are shown on
  the file's first line, naming where they are.
- Go to definition: from any code (a role, level, state, item, channel, …)
  to where it is defined, in the file or in a file it imports (the shipped
  baseline included).
- Completion: the language's keywords (read from the grammar) and the codes
  defined in the file and its imports, with their labels.
- Hover: what a code is (its kind and label, and where it is defined).

`wangge rules lsp` runs it over stdio, as editors start language servers.
Everything but `server` is a pure function of the text, tested without one.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Optional
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp

from wangge.core.errors import RuleFileError
from wangge.dsl.diagnostics import Diagnostic

__all__ = ["Definition", "completions", "definitions", "describe", "diagnose", "server", "word_at"]

SOURCE = "wangge"
_WORD = re.compile(r"\w[\w\-]*")


@dataclass(frozen=True)
class Definition:
    """Where a code is defined: its kind (Role, State, CaseItem, …), file, 0-based line and column, label."""

    code: str
    kind: str
    path: str
    line: int
    column: int
    label: str = ""


def diagnose(text: str, path: str) -> list[Diagnostic]:
    """Every problem of the rule file ``text`` (saved at ``path``, for its imports): parse, checks, compile."""
    from wangge import dsl

    try:
        dsl.loads(text, filename=path, folder=os.path.dirname(os.path.abspath(path)))
    except RuleFileError as error:
        return list(error.diagnostics)
    return []


def to_lsp(found: Iterable[Diagnostic], text: str, path: str) -> list[lsp.Diagnostic]:
    """Checker diagnostics as LSP diagnostics on the file at ``path`` (others on its first line)."""
    lines = text.splitlines()
    own = {path, os.path.abspath(path), os.path.basename(path)}
    out = []
    for d in found:
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        severity = lsp.DiagnosticSeverity.Warning if getattr(d, "severity", "error") == "warning" \
            else lsp.DiagnosticSeverity.Error
        if d.file in own or os.path.abspath(d.file) == os.path.abspath(path):
            start = lsp.Position(max(d.line - 1, 0), max(d.col - 1, 0))
            end = _word_end(lines, start)
        else:
            where = f"{d.file}:{d.line}:{d.col}" if d.line else d.file
            message = f"in {where}: {message}"
            start = end = lsp.Position(0, 0)
        out.append(lsp.Diagnostic(range=lsp.Range(start, end), message=message, severity=severity, source=SOURCE))
    return out


def _word_end(lines: list[str], start: lsp.Position) -> lsp.Position:
    if start.line >= len(lines):
        return start
    found = _WORD.match(lines[start.line], start.character)
    if found:
        return lsp.Position(start.line, found.end())
    return lsp.Position(start.line, min(start.character + 1, len(lines[start.line])))


def word_at(text: str, line: int, character: int) -> str:
    """The code under the 0-based position, or ""."""
    lines = text.splitlines()
    if line >= len(lines):
        return ""
    for found in _WORD.finditer(lines[line]):
        if found.start() <= character <= found.end():
            return found.group(0)
    return ""


def definitions(text: str, path: str, *, follow_imports: bool = True) -> list[Definition]:
    """Every code defined in ``text`` (and, following its imports, in theirs). A file that does not
    parse defines nothing; its syntax errors are `diagnose`'s to report."""
    from textx import get_children

    from wangge.dsl.language import parse

    try:
        model = parse(text, path)
    except RuleFileError:
        return []
    found = []
    parser = model._tx_parser
    defining = [obj for chunk in model.chunks
                for obj in get_children(lambda o: isinstance(getattr(o, "code", None), str) and type(o).__name__ != "Ref", chunk)]
    for obj in defining:
        line, column = _code_position(text, parser, obj)
        label = getattr(obj, "label", None)
        shown = " / ".join(x for x in (getattr(label, "zh", ""), getattr(label, "en", "")) if x) if label else ""
        kind = type(obj).__name__
        found.append(Definition(obj.code, kind, path, line, column, shown))
        if kind == "CaseItem":  # references name an item by its full code: class code + item code
            found.append(Definition(obj.parent.code + obj.code, kind, path, line, column, shown))
    if follow_imports:
        for statement in model.imports:
            imported = _imported(statement, path)
            if imported is not None:
                # `import national` and `extends national` lead to the file itself.
                found.append(Definition(statement.module or statement.path, "RuleFile", str(imported), 0, 0))
                found += definitions(imported.read_text(encoding="utf-8"), str(imported), follow_imports=False)
    return found


def _code_position(text: str, parser, obj) -> tuple[int, int]:
    """0-based line and column of the object's code (not of the keyword that starts its statement)."""
    start = obj._tx_position
    at = text.find(obj.code, start, getattr(obj, "_tx_position_end", start + 200) + 1)
    line, column = parser.pos_to_linecol(at if at >= 0 else start)
    return line - 1, column - 1


def _imported(statement, path: str) -> Optional[Path]:
    name = statement.path or f"{statement.module}.wg"
    beside = Path(path).resolve().parent / name
    if beside.is_file():
        return beside
    if statement.module:
        shipped = resources.files("wangge.rulesets").joinpath(name)
        if shipped.is_file():
            return Path(str(shipped))
    return None


def describe(text: str, path: str, line: int, character: int) -> str:
    """What the code under the position is: each definition's kind, label and place (Markdown), or ""."""
    word = word_at(text, line, character)
    found = [d for d in definitions(text, path) if d.code == word and d.kind != "RuleFile"]
    return "\n\n".join(f"**{d.kind}** `{d.code}`" + (f" — {d.label}" if d.label else "")
                         + f"  \n{os.path.basename(d.path)}:{d.line + 1}" for d in found)


def keywords() -> list[str]:
    """The language's keywords, from the grammar."""
    from wangge.dsl.language import KEYWORDS

    return sorted(k for k in KEYWORDS if _WORD.fullmatch(k))


def completions(text: str, path: str, prefix: str = "") -> list[lsp.CompletionItem]:
    """Keywords and defined codes starting with ``prefix``."""
    items = [lsp.CompletionItem(label=k, kind=lsp.CompletionItemKind.Keyword) for k in keywords() if k.startswith(prefix)]
    seen = set()
    for d in definitions(text, path):
        if d.code.startswith(prefix) and (d.code, d.kind) not in seen:
            seen.add((d.code, d.kind))
            items.append(lsp.CompletionItem(label=d.code, kind=lsp.CompletionItemKind.Reference,
                                            detail=f"{d.kind} {d.label}".strip()))
    return items


#: Statements whose code is a definition, for the editor's colours.
_DEFINERS = ("ruleset", "role", "level", "department", "channel", "severity", "class", "grade", "item", "state",
             "transition", "escalation", "field", "formula", "indicator", "tier", "veto", "earn", "reward",
             "service", "project", "stage", "meeting", "target")


def textmate_grammar() -> dict:
    """The TextMate grammar of .wg files (editors/vscode/syntaxes), with the keywords of the grammar in force."""
    from wangge.dsl.language import KEYWORDS, TOP_LEVEL

    words = sorted((k for k in KEYWORDS if _WORD.fullmatch(k)), key=lambda w: (-len(w), w))
    top = [w for w in words if w in TOP_LEVEL]
    other = [w for w in words if w not in TOP_LEVEL]
    bounded = "(?<![\\w])({})(?![\\w])"
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "wangge rules",
        "scopeName": "source.wangge",
        "fileTypes": ["wg"],
        "patterns": [{"include": f"#{name}"} for name in ("comment", "string", "definition", "keyword", "number",
                                                          "operator")],
        "repository": {
            "comment": {"name": "comment.line.number-sign.wangge", "match": "#.*$"},
            "string": {"name": "string.quoted.double.wangge", "begin": "\"", "end": "\"",
                       "patterns": [{"name": "constant.character.escape.wangge", "match": "\\\\."}]},
            "definition": {
                "match": "^\\s*(" + "|".join(_DEFINERS) + ")\\s+(\\w[\\w\\-]*)",
                "captures": {"1": {"name": "keyword.control.wangge"}, "2": {"name": "entity.name.type.wangge"}}},
            "keyword": {"patterns": [
                {"name": "keyword.control.wangge", "match": bounded.format("|".join(top))},
                {"name": "keyword.other.wangge", "match": bounded.format("|".join(other))}]},
            "number": {"name": "constant.numeric.wangge",
                       "match": "(?<![\\w])(\\d{4}-\\d{2}-\\d{2}|\\d{2}:\\d{2}|[+-]?\\d+(\\.\\d+)?%?)(?![\\w])"},
            "operator": {"name": "keyword.operator.wangge", "match": "->|\\.\\.|>=|/|,|:"},
        },
    }


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def _uri(path: str) -> str:
    return Path(path).resolve().as_uri()


def server():
    """The language server, ready for ``start_io()``."""
    from pygls.lsp.server import LanguageServer

    ls = LanguageServer("wangge-rules", "0.1.0")

    def publish(uri: str) -> None:
        document = ls.workspace.get_text_document(uri)
        path = _path(uri)
        found = to_lsp(diagnose(document.source, path), document.source, path)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=found,
                                                                           version=document.version))

    @ls.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: lsp.DidSaveTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                           diagnostics=[]))

    @ls.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(params: lsp.DefinitionParams) -> list[lsp.Location]:
        document = ls.workspace.get_text_document(params.text_document.uri)
        word = word_at(document.source, params.position.line, params.position.character)
        if not word:
            return []
        found = [d for d in definitions(document.source, _path(params.text_document.uri)) if d.code == word]
        return [lsp.Location(uri=params.text_document.uri if d.path == _path(params.text_document.uri) else _uri(d.path),
                             range=lsp.Range(lsp.Position(d.line, d.column),
                                             lsp.Position(d.line, d.column + len(d.code)))) for d in found]

    @ls.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(params: lsp.HoverParams) -> Optional[lsp.Hover]:
        document = ls.workspace.get_text_document(params.text_document.uri)
        text = describe(document.source, _path(params.text_document.uri), params.position.line,
                        params.position.character)
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text)) if text else None

    @ls.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[" ", ","]))
    def completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        document = ls.workspace.get_text_document(params.text_document.uri)
        lines = document.source.splitlines()
        line = lines[params.position.line] if params.position.line < len(lines) else ""
        before = line[: params.position.character]
        typed = re.search(r"[\w\-]*$", before).group(0)
        return lsp.CompletionList(is_incomplete=False,
                                  items=completions(document.source, _path(params.text_document.uri), typed))

    return ls


def main() -> None:
    """Serve over stdio until the editor says exit."""
    server().start_io()
