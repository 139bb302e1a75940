"""Watched folders: hot-reloaded rules that never break, and the USB inbox."""
from __future__ import annotations

import shutil
from pathlib import Path

from wangge.core.errors import SyncError
from wangge.sync.transport.watch import Inbox, LiveRuleset, watch_inbox, watch_rules

FIXTURE = Path(__file__).parent.parent / "dsl" / "fixtures" / "basic.wg"


def test_a_broken_rule_file_never_replaces_the_running_ruleset(tmp_path, caplog, wait_for):
    rules = tmp_path / "street.wg"
    shutil.copy(FIXTURE, rules)
    live = LiveRuleset(rules)
    observer = watch_rules(live)
    try:
        good = live.version
        assert good and live.reloads == 1
        attempts = live.attempts
        rules.write_text(rules.read_text(encoding="utf-8") + "\nlevel 网格 oops {{{\n", encoding="utf-8")
        wait_for(lambda: live.attempts > attempts and live.last_error, "the broken file to be tried")
        assert live.version == good and live.reloads == 1
        assert "not loaded" in caplog.text
        # fixing the file (a real change) replaces the ruleset
        rules.write_text(FIXTURE.read_text(encoding="utf-8").replace("Small compound", "Small estate"), encoding="utf-8")
        wait_for(lambda: live.reloads == 2, "the fixed file to load")
        assert live.version != good and live.last_error is None
    finally:
        observer.stop()
        observer.join()


def _importer(path: Path) -> str:
    if b"bad" in path.read_bytes():
        raise SyncError(f"{path.name}: signature does not verify")
    return "3 ops"


def test_inbox_imports_dropped_bundles_and_moves_them_aside(tmp_path, wait_for):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "early.wgb").write_bytes(b"good")  # waiting before the watch starts
    inbox = Inbox(folder, _importer)
    observer = watch_inbox(inbox)
    try:
        (folder / "tablet-7.wgb").write_bytes(b"good")
        (folder / "tampered.wgb").write_bytes(b"bad")
        wait_for(lambda: len(inbox.imported) == 2 and inbox.refused, "both bundles to be handled")
    finally:
        observer.stop()
        observer.join()
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["early.wgb", "tablet-7.wgb"]
    reason = (folder / "failed" / "tampered.wgb.reason.txt").read_text(encoding="utf-8")
    assert "signature does not verify" in reason
    assert (folder / "failed" / "tampered.wgb").read_bytes() == b"bad"
    assert not any(p.is_file() for p in folder.iterdir())
