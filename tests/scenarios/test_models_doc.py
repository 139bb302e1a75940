"""docs/models.md stays true to the rule files and the scenarios it cites.

Each table row names the rule-file line that says a rule (`file.wg:LINE` and the
words on that line) and the scenario that checks it (`test_x.py::test_name`);
each model's heading states how many rules are encoded and tested. A line that
moved, a test renamed or a count not updated fails here.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
MODELS = ["teda", "baotaqiao", "shushan", "jiading", "lianchi"]


def section(model: str) -> str:
    start = DOC.index(f"## {model}.wg")
    following = [DOC.index(f"## {m}.wg") for m in MODELS if DOC.index(f"## {m}.wg") > start]
    return DOC[start:min(following, default=len(DOC))]


def rows(model: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section(model).splitlines() if re.match(r"\| \d+ \|", line)]


@pytest.mark.parametrize("model", MODELS)
def test_every_cited_line_holds_the_words_given_with_it(model):
    cited = re.findall(r"`(\w+\.wg):(\d+)` `([^`]+)`", section(model))
    assert cited, f"no rule-file lines cited for {model}"
    wrong = []
    for name, line, words in cited:
        lines = (ROOT / "rulesets" / name).read_text(encoding="utf-8").splitlines()
        if int(line) > len(lines) or words not in lines[int(line) - 1]:
            wrong.append(f"{name}:{line} does not hold {words!r}")
    assert wrong == []


@pytest.mark.parametrize("model", MODELS)
def test_every_cited_test_exists(model):
    missing = []
    for name, function in re.findall(r"`(test_\w+\.py)::(test_\w+)`", section(model)):
        source = (ROOT / "tests" / "scenarios" / name).read_text(encoding="utf-8")
        if not re.search(rf"^def {function}\(", source, re.M):
            missing.append(f"{name}::{function}")
    assert missing == []


@pytest.mark.parametrize("model", MODELS)
def test_the_stated_counts_match_the_table(model):
    table = rows(model)
    encoded = [r for r in table if not r[2].startswith("not sayable")]
    tested = [r for r in encoded if r[3] != "—"]
    stated = re.search(r"\*\*(\d+) of (\d+) rules encoded, (\d+) tested\*\*", section(model))
    assert stated and tuple(map(int, stated.groups())) == (len(encoded), len(table), len(tested))
    assert all(r[3] == "—" for r in table if r[2].startswith("not sayable"))
