"""`wangge rules check|compile|show`: exit codes, every error, no traceback."""
from __future__ import annotations

import json

from click.testing import CliRunner

from wangge.cli import cli
from support.rules import FIXTURES

DISTRICT = str(FIXTURES / "district.wg")


def run(*args):
    return CliRunner().invoke(cli, ["rules", *args])


def test_check_ok():
    result = run("check", DISTRICT, str(FIXTURES / "basic.wg"), "--on", "2026-06-01")
    assert result.exit_code == 0 and "no problems" in result.output


def test_check_warns_about_a_year_without_a_holiday_schedule_but_passes():
    result = run("check", str(FIXTURES / "basic.wg"), "--on", "2026-12-07")
    assert result.exit_code == 0
    assert "basic.wg: warning: 2027 has no official holiday schedule yet" in result.output
    assert "ok: 1 file, no errors, 1 warning" in result.output


def test_check_reports_every_error_and_exits_1(tmp_path):
    bad = tmp_path / "bad.wg"
    bad.write_text("ruleset b\nlevel 社区\nrole a at 街区\nrole b at 网格\n", encoding="utf-8")
    result = run("check", str(bad), str(tmp_path / "missing.wg"))
    assert result.exit_code == 1
    assert "bad.wg:3:11: unknown level '街区'" in result.output
    assert "missing.wg: rule file not found" in result.output
    assert result.output.rstrip().endswith("3 errors")
    assert "Traceback" not in result.output


def test_compile_json_is_canonical():
    result = run("compile", DISTRICT, "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["name"] == "泰达"


def test_show_summarises():
    result = run("show", DISTRICT, "--lang", "en")
    assert result.exit_code == 0 and "catalogue: 2 classes, 3 items" in result.output


def test_every_rules_command_has_help_with_an_example():
    for command in ("check", "compile", "show"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Example:" in result.output
