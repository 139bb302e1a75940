"""The console's twins on the command line: `wangge user` and `wangge case` with the same rules
and messages as the browser, and `wangge conflicts` telling each conflict in words."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from support import office as of
from wangge.app import accounts, stores
from wangge.cli import cli


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    made = of.office(tmp_path_factory.mktemp("cli"))
    made.number = of.report_at_office(made, "路灯不亮")
    made.path = str(made.street.folder / "master.db")
    made.store.close()  # the commands open it themselves
    assert run("worker", "add", made.path, "赵巧珍", "--role", "网格员", "--grid", "T.00").exit_code == 0
    yield made


def run(*args, password: str | None = None):
    env = {"WANGGE_ACCOUNT_PASSWORD": password} if password else {}
    return CliRunner().invoke(cli, list(args), env=env)


def test_an_account_is_added_listed_locked_out_unlocked_and_disabled(built):
    added = run("user", "add", built.path, "李站长", "--role", "社工站站长", "--grid", "T", password="station head 1")
    assert added.exit_code == 0 and "added account 李站长 (社工站站长, grid T)" in added.output
    listed = run("user", "list", built.path)
    assert "李站长" in listed.output and "社工站站长" in listed.output and "(all)" in listed.output
    store = stores.open_master(built.path)  # the same file, as the console opens it
    try:
        for _ in range(accounts.MAX_FAILURES):
            with pytest.raises(accounts.LoginRefused):
                accounts.login(store, "李站长", "not it at all")
    finally:
        store.close()
    assert "locked until" in run("user", "list", built.path).output
    changed = run("user", "password", built.path, "李站长", password="a new secret 2")
    assert changed.exit_code == 0 and "password changed" in changed.output
    assert "active" in run("user", "list", built.path).output.split("李站长")[1].splitlines()[0]
    assert run("user", "disable", built.path, "李站长").output.strip() == "account 李站长 disabled"


@pytest.mark.parametrize("args, message", [
    (("user", "add", "{path}", "张主任", "--role", "指挥中心"), "an account named '张主任' exists already"),
    (("user", "add", "{path}", "新人", "--role", "校长"), "unknown role '校长': the ruleset defines"),
    (("user", "add", "{path}", "新人", "--role", "网格员", "--grid", "X.99"), "no grid cell with code 'X.99'"),
    (("user", "add", "{path}", "赵巧珍", "--role", "指挥中心"), "worker 赵巧珍 is a 网格员, not a 指挥中心"),
    (("user", "disable", "{path}", "无此人"), "no account '无此人'"),
])
def test_bad_account_commands_say_why_in_one_line(built, args, message):
    result = run(*[a.format(path=built.path) for a in args], password="long enough 1")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_short_password_is_refused(built):
    result = run("user", "add", built.path, "短密码", "--role", "指挥中心", password="short")
    assert result.exit_code == 2 and "at least 8 characters, got 5" in result.output


def test_case_list_show_and_move_follow_the_consoles_rules(built):
    listed = run("case", "list", built.path, "--as", "张主任", "--status", "立案")
    assert listed.exit_code == 0 and built.number in listed.output and "立案 1" in listed.output
    shown = run("case", "show", built.path, built.number, "--as", "张主任")
    assert "moves for 张主任 (指挥中心):" in shown.output and "派遣 → 派遣" in shown.output
    refused = run("case", "move", built.path, built.number, "派遣", "--as", "网格员1")
    assert refused.exit_code == 1 and "role 网格员 may not make move 派遣 from state 立案" in refused.output
    hidden = run("case", "show", built.path, built.number, "--as", "网格员2")
    assert hidden.exit_code == 1 and f"no case '{built.number}' among the cases account 网格员2 may see" in hidden.output
    moved = run("case", "move", built.path, built.number, "派遣", "--as", "张主任", "--note", "今天处理")
    assert moved.exit_code == 0 and moved.output.strip() == f"case {built.number}: 派遣 done, now 派遣"
    shown = run("case", "show", built.path, built.number, "--as", "张主任")
    assert "派遣: 立案 → 派遣 by 张主任 (指挥中心) at the office — 今天处理" in shown.output
    bad = run("case", "list", built.path, "--as", "张主任", "--status", "飞了")
    assert bad.exit_code == 2 and "unknown status '飞了'" in bad.output


def test_conflicts_are_told_in_words(tmp_path):
    from wangge.web.server import running

    made = of.office(tmp_path)
    with running(made.app) as url:
        of.report_from_tablet(made, url)
        of.critical_conflict(made, url)
    made.store.close()
    made.tablet.close()
    said = run("conflicts", str(tmp_path / "master.db")).output
    line = next(x for x in said.splitlines() if x.startswith("#"))
    assert "household 泰丰里3-2-301, field head_name" in line
    assert "kept 赵建华 (written by the office at 2026-" in line and "CST)" in line
    assert "other 赵建国 (from 网格员1 (tablet0) at 2026-" in line
    assert "None" not in line and "answer with keep or take" in line


def test_a_move_from_the_command_line_attaches_a_photo_or_refuses_a_file_that_is_none(built, tmp_path):
    number = built.number
    text = tmp_path / "note.txt"
    text.write_text("not a photo")
    refused = run("case", "move", built.path, number, "接单", "--as", "电信维修", "--photo", str(text))
    assert refused.exit_code == 2 and "not a JPEG, PNG or WebP image" in refused.output
    photo = tmp_path / "到场.png"
    photo.write_bytes(of.photo_bytes())
    moved = run("case", "move", built.path, number, "接单", "--as", "电信维修", "--photo", str(photo))
    assert moved.exit_code == 0, moved.output
    assert "photos: 1" in run("case", "show", built.path, number, "--as", "张主任").output
