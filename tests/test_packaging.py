"""The flat layout installs as one `wangge` package, data files included."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_FOLDERS = ["core", "dsl", "sync", "rulesets", "bench", "app", "web"]


def test_every_code_folder_is_a_listed_package():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    folders = [p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert sorted(folders) == sorted(CODE_FOLDERS)
    # Sub-packages (web/field/, ...) are listed too: the explicit list installs nothing it does not name.
    nested = [".".join(p.parent.relative_to(ROOT).parts) for f in CODE_FOLDERS for p in (ROOT / f).rglob("__init__.py")]
    assert sorted(packages) == sorted(["wangge"] + [f"wangge.{n}" for n in nested])


def test_the_root_init_imports_nothing():
    tree = ast.parse((ROOT / "__init__.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_the_wheel_holds_the_code_and_data_and_runs_from_elsewhere(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("wangge-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ["wangge/cli.py", "wangge/__main__.py", "wangge/core/store.py", "wangge/sync/__init__.py"]:
        assert module in names
    data = [*ROOT.glob("dsl/*.tx"), *ROOT.glob("rulesets/*.wg")]
    assert {f"wangge/{p.relative_to(ROOT)}" for p in data} <= names
    assert not [n for n in names if n.startswith(("wangge/tests/", "tests/"))]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    result = subprocess.run(
        [sys.executable, "-m", "wangge", "--help"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "Example" in result.stdout
