"""Every quotation in a model's rule file is the article's own words.

A rule file quotes its seed in comments, in straight double quotes (the
article's own quotation marks inside a quote are written as single quotes);
`...` marks words left out. A double-quoted string in a comment that holds
Chinese is a quotation and must be found in the seed, once whitespace, full-
and half-width punctuation and quotation marks are normalised. Labels (the
quoted strings of the rules themselves) are not quotations.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A copy of shared/seeds kept with the tests, so the check runs in every checkout (a clean CI clone too).
SEEDS_DIR = ROOT / "tests" / "fixtures" / "seeds"
SEEDS = {"teda": "000_6193b11b8e181151", "baotaqiao": "001_8a9cd8d712e4c296", "shushan": "002_410a1bc455d8deeb",
         "jiading": "003_75aee0153c92d554", "lianchi": "004_9c964185c1b4243d"}
_QUOTE_MARKS = re.compile(r"[\"'“”‘’「」『』]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_OMISSION = re.compile(r"\.\.\.|…+")


def normalised(text: str) -> str:
    """Width-folded (NFKC), without whitespace or quotation marks."""
    return re.sub(r"\s+", "", _QUOTE_MARKS.sub("", unicodedata.normalize("NFKC", text)))


def comment_blocks(text: str) -> list[str]:
    """Runs of whole-line comments joined into one block each, and trailing comments on their own."""
    blocks, run = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            run.append(stripped[1:].strip())
            continue
        if run:
            blocks.append(" ".join(run))
            run = []
        if "#" in line and line.count('"', 0, line.index("#")) % 2 == 0:
            blocks.append(line.split("#", 1)[1])
    if run:
        blocks.append(" ".join(run))
    return blocks


def quotations(text: str) -> list[str]:
    return [q for block in comment_blocks(text) for q in re.findall(r'"([^"]+)"', block) if _CJK.search(q)]


def _seed(name: str) -> str:
    return (SEEDS_DIR / f"{SEEDS[name]}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_quotation_in_the_rule_file_is_verbatim_from_its_seed(name):
    article = normalised(_seed(name))
    found = quotations((ROOT / "rulesets" / f"{name}.wg").read_text(encoding="utf-8"))
    assert len(found) >= 15, f"{name}.wg quotes its seed only {len(found)} times"
    not_in_seed = [quote for quote in found
                   if any(normalised(part) not in article for part in _OMISSION.split(quote) if part.strip())]
    assert not_in_seed == []


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_comments_quote_with_straight_quotes_only(name):
    """Curly quotation marks would hide a quotation from the check above."""
    text = (ROOT / "rulesets" / f"{name}.wg").read_text(encoding="utf-8")
    curly = [block for block in comment_blocks(text) if re.search("[“”「」]", block)]
    assert curly == []


def test_a_paraphrase_shown_as_a_quotation_is_caught():
    text = '# "网格长负责收集住户信息" (a paraphrase)\nrole 网格长 "网格长"\n'
    assert quotations(text) == ["网格长负责收集住户信息"]
    assert normalised("网格长负责收集住户信息") not in normalised(_seed("shushan"))
    assert normalised("网格长主要负责网格内基本户况信息的采集") in normalised(_seed("shushan"))
