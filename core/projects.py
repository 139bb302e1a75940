"""Service projects paid in stages by evaluation (Lianchi's 三社联动).

The government designs a project, a social organisation wins it, a social
work team delivers it, a third party evaluates each stage, and each stage's
share of the contract is paid only if its evaluation reaches the stage's
minimum score. Pure: evaluations in, payments out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from wangge.core.errors import UsageError
from wangge.core.ruleset import ProjectTemplate


@dataclass(frozen=True)
class Payment:
    stage: str
    amount: float
    paid: bool
    why: str


def payments(project: ProjectTemplate, scores: Mapping[str, float], contract: Optional[float] = None) -> list[Payment]:
    """What each stage pays given the evaluators' ``scores`` by stage code.

    ``contract`` defaults to the template's budget. A stage not yet
    evaluated pays nothing and says so. Raises `UsageError` for a score
    naming a stage the project does not have.
    """
    total = contract if contract is not None else project.budget
    if total is None:
        raise UsageError(f"project {project.code} has no budget: give the contract amount")
    stages = {s.code for s in project.stages}
    unknown = sorted(set(scores) - stages)
    if unknown:
        raise UsageError(f"project {project.code} has no stage {', '.join(unknown)}: expected one of {', '.join(sorted(stages))}")
    out = []
    for stage in project.stages:
        amount = round(total * stage.share, 2)
        score = scores.get(stage.code)
        if score is None:
            out.append(Payment(stage.code, 0.0, False, f"{stage.code}: not yet evaluated by {stage.evaluator}"))
        elif stage.min_score is not None and score < stage.min_score:
            out.append(Payment(stage.code, 0.0, False,
                               f"{stage.code}: {stage.evaluator} scored {score:g}, below the {stage.min_score:g} required"))
        else:
            out.append(Payment(stage.code, amount, True,
                               f"{stage.code}: {stage.evaluator} scored {score:g}; pays {stage.share:.0%} = {amount:,.2f}"))
    return out
