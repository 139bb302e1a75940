"""Every shipped rule file checks clean and compiles to a versioned ruleset."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wangge import rulesets
from wangge.core.ruleset import Ruleset

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["baotaqiao", "jiading", "lianchi", "national", "shushan", "teda"]


def test_the_five_models_and_the_baseline_ship():
    assert rulesets.names() == MODELS


def test_rules_check_passes_on_every_shipped_file_with_no_warnings():
    files = sorted(str(p) for p in (ROOT / "rulesets").glob("*.wg"))
    # A fixed date: the calendar warns about a coming year whose holiday notice is not out yet,
    # which depends on the day the test runs (see test_calendar for that warning).
    result = subprocess.run([sys.executable, "-m", "wangge", "rules", "check", *files, "--on", "2026-06-01"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok: {len(files)} files, no problems" and result.stderr == ""


@pytest.mark.parametrize("name", MODELS)
def test_each_model_round_trips_through_canonical_json(name):
    ruleset = rulesets.load(name)
    again = Ruleset.from_json(ruleset.canonical_json())
    assert again == ruleset and again.version == ruleset.version
    if name != "national":
        assert ruleset.base == "national"


def test_an_unknown_model_name_lists_the_real_ones():
    from wangge.core.errors import UsageError

    with pytest.raises(UsageError, match="expected one of baotaqiao, jiading, lianchi, national, shushan, teda"):
        rulesets.load("beijing")


SEEDS = {"teda": "000_6193b11b8e181151", "baotaqiao": "001_8a9cd8d712e4c296", "shushan": "002_410a1bc455d8deeb",
         "jiading": "003_75aee0153c92d554", "lianchi": "004_9c964185c1b4243d"}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_each_model_file_cites_its_seed_and_marks_what_the_seed_does_not_give(name):
    text = (ROOT / "rulesets" / f"{name}.wg").read_text(encoding="utf-8")
    assert f"shared/seeds/{SEEDS[name]}.txt" in text.splitlines()[1]
    assert "illustrative" in text
