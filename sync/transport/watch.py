"""Watched folders on the master: hot-reloaded rule files and a USB-stick inbox.

Two jobs, each a small piece of policy plus a watchdog handler that only
forwards file events to it:

* `LiveRuleset` holds the running ruleset. `reload` loads the rule file
  through ``wangge.dsl.load`` (parse, check, compile); a file that fails
  never replaces the running ruleset — the error is logged and kept in
  ``last_error`` for `wangge serve`'s health endpoint. An unchanged version
  is not a change.
* `Inbox` imports bundle files dropped into a folder (from a USB stick)
  through an importer the caller passes in, then moves each aside: into
  ``done/`` once imported, into ``failed/`` with a ``.reason.txt`` next to it
  otherwise. Nothing dropped in the inbox is ever deleted.

`watch_rules` and `watch_inbox` start watchdog observers; the caller stops
them (``observer.stop(); observer.join()``).
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable, Optional

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from wangge.core.errors import RuleError, WanggeError

log = logging.getLogger("wangge.watch")

RULE_SUFFIX = ".wg"
#: Files still being copied or written by an editor; never imported or loaded.
_TRANSIENT = (".tmp", ".part", ".partial", ".swp", "~")


def _load_rules(path: Path):
    from wangge import dsl

    return dsl.load(path)


class LiveRuleset:
    """The master's running ruleset, replaced only by a rule file that passes every check.

    ``on_change(ruleset)`` is called after each successful replacement.
    """

    def __init__(self, path: str | Path, *, load: Callable[[Path], object] = _load_rules,
                 on_change: Optional[Callable[[object], None]] = None):
        self.path = Path(path)
        self.load = load
        self.on_change = on_change
        self.current = None
        self.last_error: Optional[str] = None
        self.last_errors: Optional[str] = None  # every problem, file:line:col with hints, for the console
        self.reloads = 0  # successful replacements, for tests and health
        self.attempts = 0  # every reload tried, good or bad
        self._lock = threading.Lock()

    @property
    def version(self) -> Optional[str]:
        return getattr(self.current, "version", None)

    def reload(self) -> bool:
        """Load the rule file; return True if it replaced the running ruleset.

        Never raises for a bad rule file: the error is logged and kept in
        ``last_error``, and the running ruleset stays.
        """
        with self._lock:
            self.attempts += 1
            try:
                ruleset = self.load(self.path)
            except (RuleError, WanggeError) as exc:
                # Logged before it is recorded: whoever sees ``last_error`` finds the full report in the log.
                log.error("rule file %s not loaded, still running version %s:\n%s",
                          self.path, (self.version or "none")[:12], exc)
                self.last_errors = str(exc)
                self.last_error = getattr(exc, "summary", None) or str(exc).splitlines()[0]
                return False
            self.last_error = self.last_errors = None
            if self.current is not None and ruleset.version == self.version:
                return False
            self.current = ruleset
            self.reloads += 1
            log.info("rule file %s loaded: version %s", self.path, ruleset.version[:12])
        if self.on_change is not None:
            self.on_change(ruleset)
        return True


class _RuleEvents(FileSystemEventHandler):
    """Reload on any change to a rule file in the folder (the main file or one it imports)."""

    def __init__(self, live: LiveRuleset):
        self.live = live

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("modified", "created", "moved", "closed"):
            return
        name = os.fsdecode(getattr(event, "dest_path", "") or event.src_path)
        if not event.is_directory and name.endswith(RULE_SUFFIX):
            self.live.reload()


def watch_rules(live: LiveRuleset) -> Observer:
    """Load ``live``'s rule file now, then reload it whenever a rule file beside it changes.

    Only the rule file's own folder is watched, not the folders below it: the
    master often runs in the folder that holds its rule file, its database and
    its transfers, and a recursive watch there wakes on every write of every
    sync (and warns about every folder it cannot read).
    """
    live.reload()
    observer = Observer()
    observer.schedule(_RuleEvents(live), str(live.path.resolve().parent), recursive=False)
    observer.start()
    return observer


class Inbox:
    """A folder of bundle files to import, each moved aside when done.

    ``importer(path)`` imports one bundle and returns a one-line summary; it
    raises a `WanggeError` (or `OSError`) to refuse the bundle. ``on_event(text)``
    hears one line per file handled, for `wangge serve` to print.
    """

    def __init__(self, folder: str | Path, importer: Callable[[Path], str], *,
                 on_event: Optional[Callable[[str], None]] = None):
        self.folder = Path(folder)
        self.importer = importer
        self.on_event = on_event or (lambda text: None)
        self.done = self.folder / "done"
        self.failed = self.folder / "failed"
        for sub in (self.folder, self.done, self.failed):
            sub.mkdir(parents=True, exist_ok=True)
        self.imported: list[str] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def waiting(self) -> list[Path]:
        """Bundle files in the inbox, oldest first."""
        files = [p for p in self.folder.iterdir() if p.is_file() and _ready(p.name)]
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    def scan(self) -> int:
        """Import every waiting file; return how many were handled."""
        files = self.waiting()
        for path in files:
            self.take(path)
        return len(files)

    def take(self, path: Path) -> bool:
        """Import one file and move it aside; True if imported. Never raises for a bad bundle."""
        with self._lock:
            if not path.is_file():
                return False  # already handled by another event
            try:
                summary = self.importer(path)
            except (WanggeError, OSError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                target = _move(path, self.failed)
                target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
                self.refused.append(path.name)
                log.error("inbox: %s refused and moved to %s: %s", path.name, self.failed, reason)
                self.on_event(f"inbox: {path.name} refused and moved to {self.failed}: {reason}")
                return False
            _move(path, self.done)
            self.imported.append(path.name)
            log.info("inbox: %s imported: %s", path.name, summary)
            self.on_event(f"inbox: {path.name} imported: {summary}")
            return True


def _ready(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(_TRANSIENT) and not name.endswith(".reason.txt")


def _move(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` without overwriting a file of the same name."""
    target, n = folder / path.name, 1
    while target.exists():
        target, n = folder / f"{path.stem}.{n}{path.suffix}", n + 1
    os.replace(path, target)
    return target


class _InboxEvents(FileSystemEventHandler):
    # Only "closed" (the writer closed the file) and "moved" (renamed into the
    # inbox) mean a file is complete; acting on "created" would import half a
    # copy from a slow USB stick.
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def on_closed(self, event: FileSystemEvent) -> None:
        self._consider(event.src_path)

    def on_moved(self, event: FileSystemEvent) -> None:
        self._consider(event.dest_path)

    def _consider(self, raw) -> None:
        path = Path(os.fsdecode(raw))
        if path.parent == self.inbox.folder and _ready(path.name):
            self.inbox.take(path)


def watch_inbox(inbox: Inbox) -> Observer:
    """Import what is already waiting, then every file that arrives (not recursive)."""
    observer = Observer()
    observer.schedule(_InboxEvents(inbox), str(inbox.folder), recursive=False)
    observer.start()
    inbox.scan()
    return observer
