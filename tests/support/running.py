"""A `wangge` command running as a subprocess (serve, field, demo --serve), its output read as it comes."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

from support.transport import wait_for


class Running:
    """``python -m wangge ARGS`` in ``cwd`` with ``env`` added; `find` waits (bounded) for a printed line."""

    def __init__(self, *args: str, cwd, env: dict | None = None):
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "wangge", *args], cwd=cwd, env=environment,
                                        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def find(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """The first match of ``pattern`` in a line printed so far; fails if the command exits without one."""
        def found():
            hit = next((m for m in (re.search(pattern, line) for line in list(self.lines)) if m), None)
            if hit is None and self.process.poll() is not None:
                raise AssertionError(f"wangge exited ({self.process.returncode}):\n" + "\n".join(self.lines[-20:]))
            return hit
        return wait_for(found, f"a line matching {pattern!r}", timeout=timeout, every=0.05)

    def stop(self) -> int:
        """Stop it as Ctrl-C would (killed if it does not end within 20 s); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
