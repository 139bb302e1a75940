"""docs/api.md and README.md's "As a library" example run as they are written.

Every ```python block of docs/api.md is executed in order in one namespace,
in a fresh folder, with ``TEDA`` the path of the shipped TEDA rule file:
the blocks' own asserts say what a reader sees, and they hold against the
product, so the document cannot drift from the code. The README's example
runs the same way.
"""
from __future__ import annotations

import re
from pathlib import Path


from wangge import rulesets

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks(doc: Path, after: str = "") -> list[str]:
    text = doc.read_text(encoding="utf-8")
    if after:
        text = text[text.index(after):]
        text = text[: text.find("\n## ", 1)] if "\n## " in text[1:] else text
    return BLOCK.findall(text)


def _run(blocks: list[str], name: str) -> dict:
    namespace = {"TEDA": str(rulesets.path("teda")), "__name__": "__api_doc__"}
    for number, code in enumerate(blocks, 1):
        try:
            exec(compile(code, f"{name} block {number}", "exec"), namespace)
        except Exception as exc:  # say which block broke, with the block's own line numbers in the traceback
            raise AssertionError(f"{name}, python block {number} failed: {exc!r}\n{code}") from exc
    return namespace


def test_every_example_of_the_api_guide_runs_and_its_asserts_hold(tmp_path, monkeypatch):
    blocks = _blocks(ROOT / "docs" / "api.md")
    assert len(blocks) >= 10, "docs/api.md lost its examples"
    monkeypatch.chdir(tmp_path)
    _run(blocks, "docs/api.md")
    assert (tmp_path / "office.db").exists()  # the guide worked in the folder it was given, on a real file


def test_the_readme_library_example_runs(tmp_path, monkeypatch):
    blocks = _blocks(ROOT / "README.md", after="## As a library")
    assert blocks, "README.md's 'As a library' section has no python example"
    monkeypatch.chdir(tmp_path)
    _run(blocks, "README.md")


def test_the_rules_guide_lists_every_metric_the_language_knows():
    from wangge.core.ruleset import METRICS

    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    missing = [code for code in METRICS if f"| `{code}` |" not in text]
    assert missing == [], f"docs/rules.md's Metrics table lacks {missing}"
