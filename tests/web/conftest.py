"""Fixtures of the web apps' tests: one browser per module (Debian's Chromium), served offices, screenshots kept."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright; the test is skipped where there is none."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on this machine: the browser tests need Debian's chromium package")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served_office(tmp_path_factory):
    """A street office served as `wangge serve` serves it, with a case a tablet reported and synced:
    (office, url, case number)."""
    from support import office as of
    from wangge.web.server import running

    built = of.office(tmp_path_factory.mktemp("office"))
    with running(built.app) as url:
        number = of.report_from_tablet(built, url)
        yield built, url, number
    built.store.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS

