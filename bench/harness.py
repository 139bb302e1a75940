"""A tiny benchmark harness: best-of-N wall time, and ratios printed against a baseline.

Machines here are shared and noisy, so absolute times mean little: every
benchmark measures its baseline in the same run and prints the ratio.
"""
from __future__ import annotations

import time
from typing import Callable


def best_of(run: Callable[[], object], setup: Callable[[], object] | None = None, repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs of ``run`` in seconds; ``setup`` runs untimed before each."""
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def ratio_line(name: str, seconds: float, baseline: float, target: float | None = None) -> str:
    """One line: the measurement, the baseline, their ratio, and the target if any."""
    ratio = seconds / baseline if baseline else float("inf")
    verdict = ""
    if target is not None:
        verdict = f"  (target ≤ {target:g}x: {'met' if ratio <= target else 'NOT met'})"
    return f"{name}: {seconds * 1000:.1f} ms vs baseline {baseline * 1000:.1f} ms = {ratio:.2f}x{verdict}"
