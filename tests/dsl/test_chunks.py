"""Parsing one top-level statement at a time: no position moves, no error is lost, nothing is split wrong."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st
from textx import get_children

from wangge.bench.bench_compile import catalogue
from wangge.dsl.chunks import blank_comments, split
from wangge.dsl.language import metamodel, parse
from support.rules import BASIC, diagnostics, only


def line_col(text: str, word: str) -> tuple[int, int]:
    """1-based line and column of the only occurrence of ``word`` in ``text``."""
    assert text.count(word) == 1, word
    index = text.index(word)
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def test_every_error_of_a_big_file_is_reported_where_it_is():
    text = catalogue(600, 6)  # six classes of a hundred items: six chunks after the header's
    lines = text.split("\n")
    planted = {}  # an error planted in four chunks, and one in the middle of the last class
    for marker, old, new in (("事项2-17", "difficulty", "difficulty 很难 #"),
                             ("事项3-50", "itme", None), ("事项4-99", "热线", "热县"),
                             ("事项5-3", "sla 立案", "sla 立按"), ("事项6-100", "一般", "一殷")):
        at = next(i for i, line in enumerate(lines) if marker in line)
        if new is None:
            lines[at] = lines[at].replace("item", "itme", 1)
        else:
            follow = next(i for i in range(at, at + 8) if old in lines[i])
            lines[follow] = lines[follow].replace(old, new, 1)
        planted[marker] = old if new is None else new
    text = "\n".join(lines)
    found = diagnostics(text, "big.wg")
    expected = [
        ("big.wg", *line_col(text, "很难"), "syntax error: expected a number, found '很难'"),
        ("big.wg", *line_col(text, "itme"), "syntax error: expected 'item' or '}', found 'itme'"),
        ("big.wg", *line_col(text, "热县"), "unknown channel '热县'"),
        ("big.wg", *line_col(text, "立按"), "unknown state '立按'"),
        ("big.wg", *line_col(text, "一殷"), "unknown severity '一殷'"),
    ]
    assert [(d.file, d.line, d.col, d.message) for d in found] == expected
    assert found[2].source_line == text.split("\n")[found[2].line - 1]


def test_positions_after_comments_and_in_later_chunks_are_those_of_the_file():
    text = BASIC + "# 注释 // with 'quotes\" and 社区\nrole 社工 \"社工 # 不是注释\" at 街区 // 注释\n"
    found = only(text)
    assert (found.line, found.col) == line_col(text, "街区")
    assert found.source_line.endswith("// 注释")


def test_a_stray_quote_does_not_hide_the_comments_of_the_statements_after_it():
    text = BASIC + "role 社工 'abc\nrole 巡查员 at 街区 # don't\n"
    found = diagnostics(text)
    assert [(d.line, d.message.split(":")[0]) for d in found] == [
        (line_col(text, "'abc")[0], "syntax error"), (line_col(text, "街区")[0], "unknown level '街区'")]


def test_a_keyword_flush_left_inside_a_block_does_not_cut_the_block():
    text = 'ruleset x\nlevel 网格 "网格" {\nclass A "A类"\nclass B "B类"\n}\n'
    model = parse(text, "t.wg")
    (level,) = model.sections
    assert [c.code for c in level.classes] == ["A", "B"]


def test_a_statement_that_goes_on_with_a_top_level_keyword_is_read_whole():
    # `points` starts a statement flush left, but after a service it is the service's points.
    model = parse('ruleset x\nservice 理发 "理发"\npoints 10\nrole a\n', "t.wg")
    service, role = model.sections
    assert (service.code, service.points, role.code) == ("理发", 10, "a")


def test_a_block_cut_by_a_keyword_still_reports_its_own_error_where_it_is():
    text = 'ruleset x\nlevel 网格 "网格" {\nclass A "A类"\nhouseholds_per_grid many\n}\n'
    found = only(text)
    assert (found.line, found.col) == line_col(text, "many")


def test_a_statement_out_of_order_is_a_syntax_error_where_it_starts():
    found = only("ruleset x\nrole a\nimport national\n")
    assert (found.line, found.col) == (3, 1)
    # What one parse of the whole file says: a role may go on, or a new statement begin.
    assert found.message == ("syntax error: expected 'at', 'headcount', 'office', 'stipend', a new statement, "
                             "a quoted label or end of file, found 'import'")


def test_blanking_comments_keeps_labels_and_every_position():
    text = 'role a "甲 # 乙 // 丙" # 注释\nrole b // 注释 "不是标签"\nformula f for worker { indicator i field(k=#1) weight 1 }\n'
    blanked = blank_comments(text)
    assert len(blanked) == len(text)
    assert blanked.split("\n")[0] == 'role a "甲 # 乙 // 丙"' + " " * len(" # 注释")
    assert blanked.split("\n")[1] == "role b" + " " * len(' // 注释 "不是标签"')
    assert "field(k=#1)" in blanked.split("\n")[2]


# -- round trip: the chunks are the file, and their models are the whole file's -----

words = st.sampled_from(["role", "level", "class", "item", "route", "to", "网格", "a-1", "{", "}", ","])
labels = st.text('ab网格 #/\n', max_size=6).map(lambda s: '"' + s + '"')
comments = st.text("ab注 #/", max_size=6).map(lambda s: "# " + s)
pieces = st.lists(st.one_of(words, labels, comments, st.just("\n"), st.just("  ")), max_size=40)


@given(pieces)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_the_chunks_joined_are_the_text_and_know_where_they_start(parts):
    text = " ".join(parts)
    blanked = blank_comments(text)
    assert len(blanked) == len(text) and blank_comments(blanked) == blanked
    assert [i for i, ch in enumerate(blanked) if ch == "\n"] == [i for i, ch in enumerate(text) if ch == "\n"]
    chunks = split(text)
    assert "".join(c.text for c in chunks) == text
    for chunk in chunks:
        assert text[chunk.offset:chunk.offset + len(chunk.text)] == chunk.text
        assert chunk.line == text.count("\n", 0, chunk.offset)


roles = st.builds(lambda code, label: f'role {code} "{label}"\n', st.from_regex(r"[a-z]{1,3}", fullmatch=True),
                  st.text("网格 #/", max_size=4))
channels = st.builds(lambda code: f"channel {code} callback\n", st.from_regex(r"[a-z]{1,3}", fullmatch=True))
classes = st.builds(lambda code, n: f"class {code} {{\n" + "".join(f"  item {i} {{ severity 一般 }}\n" for i in range(n))
                    + "}\n", st.from_regex(r"[a-z]{1,3}", fullmatch=True), st.integers(0, 3))
statements = st.lists(st.one_of(roles, channels, classes, comments.map(lambda c: c + "\n")), max_size=8)


@given(statements)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_chunked_model_has_the_positions_of_one_parse_of_the_whole_file(body):
    text = "ruleset x\n" + "".join(body)
    whole = metamodel().model_from_str(blank_comments(text))
    chunked = parse(text, "t.wg")

    def places(roots):
        return [(type(o).__name__, o._tx_position, o._tx_position_end)
                for root in roots for o in get_children(lambda o: hasattr(o, "_tx_position"), root)
                if type(o).__name__ != "Model"]
    assert places(chunked.chunks) == places([whole])
