"""The command line: help with examples everywhere, one-line errors, no tracebacks."""
from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from wangge.cli import cli


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [p for p, _ in _commands(cli)], ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"`wangge {' '.join(path)} --help` shows no example"


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "wangge", *args], capture_output=True, text=True, cwd=cwd)


def test_init_creates_a_store_and_refuses_to_create_it_twice(tmp_path):
    target = str(tmp_path / "office.db")
    first = _run("init", target, "--role", "master")
    assert first.returncode == 0 and "created a master store" in first.stdout
    again = _run("init", target)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [f"Error: a store already exists at {target}; open it instead of creating it"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["init", "/no/such/dir/x.db"], "folder /no/such/dir does not exist"),
        (["init", "mysql://h/db"], "unsupported database URL"),
        (["init", "x.db", "--role", "boss"], "Invalid value for '--role'"),
        (["bench", "nosuch"], "no benchmark 'nosuch'"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(tmp_path, args, message):
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_tablet_command_given_the_master_store_says_so_and_changes_nothing(tmp_path):
    office = str(tmp_path / "office.db")
    _run("init", office, "--role", "master")
    before = (tmp_path / "office.db").read_bytes()
    result = _run("sync", office, "--master", "http://127.0.0.1:9", "--passphrase", "secret-words", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: {office} is an unencrypted master store, not a tablet's: a master answers tablets with `wangge serve`"]
    assert (tmp_path / "office.db").read_bytes() == before and not (tmp_path / "office.db.key").exists()


def test_the_demo_runs_the_whole_field_day(tmp_path):
    result = _run("demo", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Encrypted syncs over HTTP (http://127.0.0.1:" in out
    assert "电信通讯箱破损" in out and "结案 (on site, on the tablet)" in out
    assert "critical  household  户主" in out  # the clash is queued, not dropped
    assert re.search(r"^stale +case +status .*接单", out, re.M)  # Li's offline move, second in order, kept and listed
    assert "photos: 1 sent" in out and "photos: 0 sent, 1 received" in out  # up from each tablet, the repair down
    assert "overdue at 网格" in out and "Monthly scores 2026-10" in out
    assert "Tablets enrolled at the office" in out and out.count(" active ") == 2
    assert re.search(r"^C2026\S+ +社区 ", out, re.M)  # the escalated case, by its number
    assert {p.name for p in tmp_path.glob("*.db")} == {"street-master.db", "zhao-tablet.db", "li-tablet.db"}


def test_a_store_with_a_ruleset_scores_explains_and_escalates(tmp_path):
    from support.rules import FIXTURES

    target = str(tmp_path / "office.db")
    created = _run("init", target, "--role", "master", "--rules", str(FIXTURES / "district.wg"))
    assert created.returncode == 0 and "installed ruleset 泰达" in created.stdout
    scored = _run("score", target, "--month", "2026-10", "--csv", str(tmp_path / "s.csv"))
    assert scored.returncode == 0 and "Scores for 2026-10" in scored.stdout and (tmp_path / "s.csv").exists()
    swept = _run("escalate", target, "--now", "2026-10-20 09:00")
    assert swept.returncode == 0 and "Escalated: 0" in swept.stdout
    missing = _run("explain", target, "C1")
    assert missing.returncode == 1 and missing.stderr.strip().startswith("Error: no case 'C1'")


def test_commands_on_a_store_without_a_ruleset_say_how_to_give_one(tmp_path):
    target = str(tmp_path / "bare.db")
    _run("init", target)
    result = _run("score", target, "--month", "2026-10")
    assert result.returncode == 1 and "give one with --rules FILE.wg" in result.stderr


@pytest.mark.parametrize("model", ["teda", "baotaqiao", "shushan", "jiading", "lianchi", "national"])
def test_demo_tours_each_shipped_model(model, tmp_path):
    result = _run("demo", "--model", model, "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"wangge demo --model {model}" in result.stdout
    assert "Scores for 2026-10" in result.stdout and "Escalation of an overdue" in result.stdout
    assert (tmp_path / f"{model}.db").exists()


def test_demo_with_an_unknown_model_lists_the_shipped_ones():
    result = _run("demo", "--model", "beijing")
    assert result.returncode == 2
    assert "no shipped ruleset 'beijing': expected one of baotaqiao, jiading" in result.stderr


def test_the_office_adds_grids_and_workers_checked_against_the_ruleset(tmp_path):
    from support.rules import FIXTURES

    target = str(tmp_path / "office.db")
    _run("init", target, "--role", "master", "--rules", str(FIXTURES / "district.wg"))
    assert _run("grid", "add", target, "TF", "--level", "社区", "--name", "泰丰社区").returncode == 0
    added = _run("grid", "add", target, "TF.03", "--level", "网格", "--name", "泰丰3网格", "--upper", "TF", "--grade", "A")
    assert added.returncode == 0 and "added grid TF.03" in added.stdout
    bad_level = _run("grid", "add", target, "X", "--level", "街区", "--name", "x")
    assert bad_level.returncode == 2 and "unknown level '街区': the ruleset has 街道, 社区, 网格" in bad_level.stderr
    worker = _run("worker", "add", target, "王芳", "--role", "网格员", "--grid", "TF.03")
    assert worker.returncode == 0 and "added worker 王芳" in worker.stdout
    bad_grid = _run("worker", "add", target, "李明", "--role", "网格员", "--grid", "NOPE")
    assert bad_grid.returncode == 2 and "no grid cell with code 'NOPE'" in bad_grid.stderr


def test_a_tablet_command_leaves_an_older_master_store_unmigrated(tmp_path):
    office = str(tmp_path / "office.db")
    _run("init", office, "--role", "master")
    with sqlite3.connect(office) as conn:  # as if made before the latest migration
        conn.execute("DELETE FROM schema_migration WHERE name = '0003_op_field_stamps'")
    result = _run("sync", office, "--master", "http://127.0.0.1:9", "--passphrase", "secret-words", cwd=tmp_path)
    assert result.returncode == 2 and "is an unencrypted master store" in result.stderr
    with sqlite3.connect(office) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM schema_migration")}
    assert "0003_op_field_stamps" not in names
