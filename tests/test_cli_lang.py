"""The command line in Chinese and English: by the locale, WANGGE_LANG or --lang, with catalogs that cannot go stale."""
from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import click
import pytest
from babel.messages.pofile import read_po
from click.testing import CliRunner

import wangge.cli
from wangge import cli_i18n
from wangge.core import i18n
from wangge.cli import cli
from wangge.core import lifecycle

LOCALE = ("WANGGE_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")


def _env(**chosen: str) -> dict:
    return {**{name: None for name in LOCALE}, **chosen}


def _invoke(args, input=None, **env):
    return CliRunner().invoke(cli, args, env=_env(**env), input=input)


def _run(*args, cwd, **env):
    """``python -m wangge ARGS`` in a process whose locale is only what ``env`` says."""
    environment = {k: v for k, v in os.environ.items() if k not in LOCALE} | env
    return subprocess.run([sys.executable, "-m", "wangge", *args], capture_output=True, text=True, cwd=cwd,
                          env=environment)


def _catalog(domain: str):
    with resources.files("wangge").joinpath("locale", "zh", "LC_MESSAGES", f"{domain}.po").open("rb") as po:
        return read_po(po)


def _zh(message: str) -> str:
    return i18n.catalog("wangge", "cli", "zh")[message]


# -- what a user sees ---------------------------------------------------------------------------


def test_a_chinese_locale_gets_chinese_help_and_click_speaks_it_too(tmp_path):
    shown = _run("init", "--help", cwd=tmp_path, LANG="zh_CN.UTF-8")
    assert shown.returncode == 0
    assert shown.stdout.startswith("用法: wangge init [OPTIONS] TARGET")
    assert _zh(_help_of(wangge.cli.init)).split("\n")[0] in shown.stdout
    assert "示例：" in shown.stdout and "显示本帮助后退出。" in shown.stdout
    assert _zh("A street-office master, or a field worker's tablet.") in shown.stdout


def test_a_bad_argument_is_refused_in_chinese_in_one_framed_line(tmp_path):
    refused = _run("init", "x.db", "--role", "boss", cwd=tmp_path, LANG="zh_CN.UTF-8")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[-1] == "错误：'--role' 的取值无效：'boss' 不在可选值 'master', 'device' 之中。"
    assert "用 'wangge init --help' 查看帮助。" in refused.stderr
    assert not (tmp_path / "x.db").exists()


def test_the_c_locale_gets_english(tmp_path):
    refused = _run("init", "x.db", "--role", "boss", cwd=tmp_path, LANG="C.UTF-8")
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == "Error: Invalid value for '--role': 'boss' is not one of 'master', 'device'."
    shown = _run("--help", cwd=tmp_path, LANG="C.UTF-8")
    assert shown.stdout.startswith("Usage: wangge") and "Show this message and exit." in shown.stdout


@pytest.mark.parametrize("args, env, usage", [
    (["--lang", "en", "init", "--help"], {"LANG": "zh_CN.UTF-8"}, "Usage:"),
    (["--lang=zh", "init", "--help"], {"LANG": "C.UTF-8"}, "用法:"),
    (["init", "--help"], {"LANG": "C.UTF-8", "WANGGE_LANG": "zh"}, "用法:"),
    (["init", "--help"], {"LANG": "zh_CN.UTF-8", "WANGGE_LANG": "en"}, "Usage:"),
    (["--lang", "en", "init", "--help"], {"WANGGE_LANG": "zh"}, "Usage:"),
    (["init", "--help"], {"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "Usage:"),  # LC_ALL outranks LANG
    (["init", "--help"], {"LANG": "C", "LC_MESSAGES": "zh_CN.UTF-8"}, "用法:"),
    (["init", "--help"], {}, "Usage:"),
])
def test_lang_then_wangge_lang_then_the_locale_choose(args, env, usage):
    result = _invoke(args, **env)
    assert result.exit_code == 0 and result.output.startswith(usage)


def test_every_command_has_lang_and_a_wrong_one_is_refused():
    result = _invoke(["--lang", "fr", "grid", "add", "--help"])
    assert result.exit_code == 2 and "Invalid value for '--lang': 'fr' is not one of 'zh', 'en'." in result.output
    assert "--lang [zh|en]" in _invoke(["--help"]).output
    # A command's own --lang (the labels of `rules show`) stays that command's.
    assert cli_i18n.choose(["rules", "show", "x.wg", "--lang", "zh"], {"LANG": "C.UTF-8"}) == "en"


def test_switching_language_in_one_process_puts_every_text_back():
    chinese = _invoke(["device", "enroll", "--help"], LANG="zh_CN.UTF-8").output
    english = _invoke(["device", "enroll", "--help"], LANG="C.UTF-8").output
    again = _invoke(["device", "enroll", "--help"], LANG="zh_CN.UTF-8").output
    assert chinese == again and "Show this message and exit." in english
    assert not re.search(r"[\u4e00-\u9fff]", english.replace("王芳的平板", "")), english


def test_the_command_lines_own_summary_and_a_library_refusal_in_chinese(tmp_path):
    office = tmp_path / "office.db"
    made = _invoke(["init", str(office), "--role", "master"], LANG="zh_CN.UTF-8")
    assert made.exit_code == 0, made.output
    assert re.fullmatch(r"已在 sqlite:///.*office\.db 创建 master 数据库（设备 [0-9a-f-]+）\n", made.output)
    again = _invoke(["init", str(office)], LANG="zh_CN.UTF-8")
    assert again.exit_code == 2 and again.output == f"错误：{office} 已有数据库：请直接打开它，不要重新创建\n"
    missing = tmp_path / "none.db"
    refused = _invoke(["device", "list", str(missing)], LANG="zh_CN.UTF-8")
    assert refused.exit_code == 2
    assert refused.output == f"错误：{missing} 处没有数据库：请先用 `wangge init {missing} --role master` 创建\n"
    english = _invoke(["device", "list", str(missing)], LANG="C.UTF-8")
    assert english.output == f"Error: no store at {missing}: create one with `wangge init {missing} --role master`\n"


def test_prompts_and_a_wrong_passphrase_in_chinese(tmp_path):
    tablet = str(tmp_path / "tablet.db")
    enrolled = _invoke(["device", "enroll", tablet, "--name", "王芳的平板"], input="一二三四五六七八\n一二三四五六七八\n",
                       LANG="zh_CN.UTF-8")
    assert enrolled.exit_code == 0, enrolled.output
    assert "口令: " in enrolled.output and "请再输入一次确认: " in enrolled.output
    wrong = _invoke(["device", "passphrase", tablet], input="不对的口令不对的口令\n" + "另一个新的口令啊\n" * 2,
                   LANG="zh_CN.UTF-8")
    assert wrong.exit_code == 3
    assert wrong.output.startswith("当前口令: ")
    assert re.search(r"错误：口令不对（.+）：无法解锁这台平板的数据库", wrong.output), wrong.output


def test_a_weak_passphrase_and_a_bad_period_are_explained_in_chinese(tmp_path):
    weak = _invoke(["device", "enroll", str(tmp_path / "t.db"), "--name", "x", "--passphrase", "abc"],
                   LANG="zh_CN.UTF-8")
    assert weak.exit_code == 2 and "3 个字符的口令太短" in weak.output
    office = tmp_path / "office.db"
    _invoke(["init", str(office), "--role", "master", "--rules", str(_shipped("teda"))])
    period = _invoke(["score", str(office), "--month", "2026-13"], LANG="zh_CN.UTF-8")
    assert period.exit_code == 2 and period.output.startswith("错误：--month: 格式应如 ") \
        and "收到的是 '2026-13'" in period.output


def test_a_refused_move_is_said_in_chinese_with_the_evidence_it_needs(tmp_path):
    from support import office as of

    made = of.office(tmp_path)
    number = of.report_at_office(made, "通讯箱", moves=(("派遣", "指挥中心", ()), ("接单", "专业部门", ()),
                                                     ("修复", "专业部门", ())))
    made.store.close()
    master = str(tmp_path / "master.db")
    refused = _invoke(["case", "move", master, number, "结案", "--as", "网格员1"], LANG="zh_CN.UTF-8")
    assert refused.exit_code == 1
    needs = _zh(lifecycle.EVIDENCE_NAMES["onsite_confirmation"])
    assert refused.output == f"错误：网格员 在状态 审核 办理 结案 需要 {needs}，但没有提供\n"
    english = _invoke(["case", "move", master, number, "结案", "--as", "网格员1"], LANG="C.UTF-8")
    assert english.output == ("Error: move 结案 from state 审核 by 网格员 needs the reporter's on-site confirmation; "
                              "it was not given\n")


def _shipped(model: str) -> Path:
    from wangge import rulesets

    return Path(rulesets.path(model))


# -- the catalogs cannot go stale ---------------------------------------------------------------


def _help_of(command: click.Command) -> str:
    return inspect.cleandoc(command.callback.__doc__)


def test_the_cli_catalog_holds_exactly_the_messages_the_command_line_uses():
    held = {m.id for m in _catalog("cli") if m.id}
    used = {m.id for m in cli_i18n.template() if m.id}
    assert {"no conflicts", _help_of(wangge.cli.init), "Passphrase", lifecycle.NO_MOVES} <= used
    assert sorted(used - held) == [], "add these to locale/zh/LC_MESSAGES/cli.po"
    assert sorted(held - used) == [], "no longer used: remove them from locale/zh/LC_MESSAGES/cli.po"


@pytest.mark.parametrize("domain", ["cli", "click"])
def test_every_message_is_translated_with_its_placeholders(domain):
    for message in (m for m in _catalog(domain) if m.id):
        singular = message.id[0] if isinstance(message.id, tuple) else message.id
        text = message.string[0] if isinstance(message.string, tuple) else message.string
        assert text and not message.fuzzy, f"{singular!r} is not translated"
        assert re.search(r"[\u4e00-\u9fff]", text), f"{singular!r}: {text!r} is not Chinese"
        given = set(re.findall(r"%\((\w+)\)s|\{(\w+)[!}]", " ".join(message.id if isinstance(message.id, tuple)
                                                                     else [message.id])))
        used = set(re.findall(r"%\((\w+)\)s|\{(\w+)[!}]", text))
        assert used <= given, f"{singular!r}: {text!r} uses a value the message does not have"


def test_the_click_catalog_holds_only_clicks_current_messages():
    stale = {m.id[0] if isinstance(m.id, tuple) else m.id for m in _catalog("click") if m.id} - cli_i18n.click_messages()
    assert sorted(stale) == [], "click no longer says these: remove them from locale/zh/LC_MESSAGES/click.po"


@pytest.mark.parametrize("reason", sorted(lifecycle.REFUSALS))
def test_a_refusal_is_read_back_from_its_text(reason):
    template = lifecycle.REFUSALS[reason]
    values = {name: f"值{index}" for index, name in enumerate(re.findall(r"%\((\w+)\)s", template))}
    assert i18n.values_of(template % values, template) == values
    said = i18n.reword(template % values, [template], i18n.translator(i18n.catalog("wangge", "cli", "zh")))
    assert said == _zh(template) % values


def test_the_catalogs_are_package_data():
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "locale/**/*" in data["tool"]["setuptools"]["package-data"]["wangge"]
    for domain in ("cli", "click"):
        assert resources.files("wangge").joinpath("locale", "zh", "LC_MESSAGES", f"{domain}.po").is_file()
