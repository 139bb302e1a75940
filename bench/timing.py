"""CPU and wall time of a benchmark step, median of several runs, and ratios against a baseline.

A shared machine makes one run's wall time noisy and hides waits (fsync) from
CPU time, so both are kept: each run's CPU seconds (`time.process_time`) and
wall seconds (`time.perf_counter`), and the median of each over the runs.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, NamedTuple, Optional


class Timing(NamedTuple):
    """Median seconds of a step: CPU and wall."""

    cpu: float
    wall: float

    def over(self, baseline: "Timing") -> "Timing":
        """How many times ``baseline`` this step costs, CPU and wall."""
        return Timing(_ratio(self.cpu, baseline.cpu), _ratio(self.wall, baseline.wall))


def median_of(run: Callable[[], object], setup: Optional[Callable[[], object]] = None, repeat: int = 3) -> Timing:
    """The median CPU and wall seconds of ``repeat`` runs of ``run``; ``setup`` runs untimed before each."""
    cpus, walls = [], []
    for _ in range(repeat):
        if setup is not None:
            setup()
        cpu, wall = time.process_time(), time.perf_counter()
        run()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return Timing(statistics.median(cpus), statistics.median(walls))


def ratio_text(name: str, measured: Timing, baseline: Timing, target: Optional[float] = None) -> str:
    """One line: CPU and wall times of ``measured`` and ``baseline``, their ratios, and the target if any."""
    ratio = measured.over(baseline)
    verdict = ""
    if target is not None:
        worst = max(ratio)
        verdict = f"  (target ≤ {target:g}x: {'met' if worst <= target else 'NOT met'})"
    return (f"{name}: CPU {measured.cpu * 1000:.1f} ms vs {baseline.cpu * 1000:.1f} ms = {ratio.cpu:.2f}x, "
            f"wall {measured.wall * 1000:.1f} ms vs {baseline.wall * 1000:.1f} ms = {ratio.wall:.2f}x{verdict}")


def _ratio(seconds: float, baseline: float) -> float:
    return seconds / baseline if baseline else float("inf")
