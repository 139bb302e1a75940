"""Syntax errors and unreadable files: located, every one of them, never a traceback."""
from __future__ import annotations

from wangge import dsl
from support.rules import diagnostics, only


def test_syntax_error_points_at_the_word_and_suggests_the_keyword():
    d = only("ruleset x\nclass 01 { itme 02 }\n")
    assert d.format() == (
        "t.wg:2:12: syntax error: expected 'item' or '}', found 'itme'\n"
        "    class 01 { itme 02 }\n"
        "               ^\n"
        "  hint: did you mean item?"
    )


def test_every_broken_statement_is_reported():
    found = diagnostics("ruleset x\nrole a \"x\" att b\nlevell 社区\nclass 01 { itme 02 }\n")
    assert [(d.line, d.col, d.hint) for d in found] == [
        (2, 12, "did you mean at?"), (3, 1, "did you mean level?"), (4, 12, "did you mean item?")]
    assert found[1].message == "syntax error: expected a new statement or end of file, found 'levell'"


def test_missing_code_at_end_of_file():
    d = only("ruleset")
    assert (d.line, d.col, d.message) == (1, 8, "syntax error: expected a code, found end of file")


def test_empty_file():
    d = only("# nothing here\n")
    assert d.message == "the rule file is empty"


def test_missing_header():
    d = only("level 社区\n")
    assert (d.line, d.col, d.message) == (1, 1, "a rule file must start with `ruleset CODE`")


def test_file_not_found(tmp_path):
    (d,) = dsl.check([tmp_path / "nope.wg"])
    assert (d.line, d.message, d.hint) == (0, "rule file not found", "check the path; rule files end in .wg")
    assert d.format().startswith(f"{tmp_path / 'nope.wg'}: rule file not found")


def test_not_utf8(tmp_path):
    path = tmp_path / "gbk.wg"
    path.write_bytes("ruleset 网格\n".encode("gbk"))
    (d,) = dsl.check([path])
    assert (d.line, d.col, d.message, d.hint) == (1, 9, "the file is not valid UTF-8", "save the rule file as UTF-8")


def test_binary_file(tmp_path):
    path = tmp_path / "bin.wg"
    path.write_bytes(b"ruleset a\n\x00\x01\x02")
    (d,) = dsl.check([path])
    assert (d.line, d.message) == (2, "the file contains a NUL character")
