"""Rulesets built directly in Python, so the engines are tested without the rules language.

`teda()` is a TEDA-like street: 发现→立案→派遣→处置→审核→结案→评估, closure
only with the reporter's on-site confirmation, three grid levels and the
"小事不出社区、大事不出街道" ceilings. `jiading()` is a Jiading-like hotline
whose every request needs a callback (回访) before it closes, scored by
closure and satisfaction rates.
"""
from __future__ import annotations

from functools import lru_cache

from wangge.core.ruleset import (
    CaseClass, CaseItem, Channel, Department, Duration, EscalationPath, EscalationStep, Formula, GridLevel,
    Indicator, Lifecycle, Role, RouteRule, Ruleset, Severity, SlaStage, State, Tier, Transition, Veto,
)


def days(n: float) -> Duration:
    return Duration(amount=n, unit="working_days")


def hours(n: float) -> Duration:
    return Duration(amount=n, unit="working_hours")


LEVELS = (GridLevel(code="街道", rank=0), GridLevel(code="社区", rank=1), GridLevel(code="网格", rank=2))

TEDA_LIFECYCLE = Lifecycle(
    states=tuple(State(code=c, initial=c == "发现", final=c == "评估", flags=("closed",) if c == "结案" else ())
                 for c in ("发现", "立案", "派遣", "处置", "审核", "结案", "评估")),
    transitions=(
        Transition(code="上报", sources=("发现",), target="立案", roles=("网格员",), requires=("photo",)),
        Transition(code="派遣", sources=("立案",), target="派遣", roles=("指挥中心",), office=True),
        Transition(code="接单", sources=("派遣",), target="处置", roles=("网格员", "社工")),
        Transition(code="送审", sources=("处置",), target="审核", roles=("网格员", "社工")),
        Transition(code="返工", sources=("审核",), target="处置", roles=("指挥中心",), office=True),
        Transition(code="结案", sources=("审核",), target="结案", roles=("指挥中心",), office=True,
                   requires=("onsite_confirmation",)),
        Transition(code="评估", sources=("结案",), target="评估", roles=("第三方",)),
    ),
)

ESCALATIONS = (
    EscalationPath(code="小事", ceiling="社区", next="大事", steps=(
        EscalationStep(level="网格", role="网格员", after=days(0), within=days(2)),
        EscalationStep(level="社区", role="社区主任", after=days(2), within=days(3)),
    )),
    EscalationPath(code="大事", ceiling="街道", steps=(
        EscalationStep(level="街道", role="指挥中心", department="城管", after=days(3), within=days(5)),
    )),
)


@lru_cache(maxsize=None)
def teda() -> Ruleset:
    return Ruleset(
        name="teda-like",
        roles=(Role(code="网格员", level="网格"), Role(code="社工", level="社区"), Role(code="社区主任", level="社区"),
               Role(code="指挥中心", level="街道", office=True), Role(code="第三方", office=True)),
        levels=LEVELS,
        departments=(Department(code="电信"), Department(code="城管")),
        channels=(Channel(code="巡查"), Channel(code="论坛"), Channel(code="热线", callback=True)),
        severities=(Severity(code="琐事", rank=0, ceiling="网格"), Severity(code="一般", rank=1, ceiling="社区"),
                    Severity(code="重大", rank=2, ceiling="街道")),
        catalogue=(
            CaseClass(code="01", kind="component", escalation="小事", items=(
                CaseItem(code="0101", severity="一般", sla=(SlaStage(state="处置", within=days(3)),)),
                CaseItem(code="0102", severity="一般", evidence=("photo", "onsite_confirmation"), difficulty=1.5,
                         sla=(SlaStage(state="立案", within=hours(2)), SlaStage(state="处置", within=days(3)))),
            )),
            CaseClass(code="02", escalation="小事", items=(
                CaseItem(code="0201", severity="一般", sla=(SlaStage(state="处置", within=days(5)),)),
                CaseItem(code="0202", severity="琐事", sla=(SlaStage(state="处置", within=days(1)),)),
            )),
        ),
        lifecycle=TEDA_LIFECYCLE,
        routes=(
            RouteRule(match_item="0102", department="电信"),  # first match wins: the item above its class
            RouteRule(match_class="01", level="网格", role="网格员"),
            RouteRule(match_class="02", match_channel="论坛", level="社区", role="社工"),
            RouteRule(match_channel="热线", level="社区", role="社工"),
            RouteRule(match_severity="重大", level="街道", role="指挥中心"),
            RouteRule(level="网格", role="网格员"),  # everything else: the grid's own worker
        ),
        escalations=ESCALATIONS,
        formulas=(Formula(
            code="月考", indicators=(
                Indicator(code="结案率", numerator="closed", denominator="registered", weight=30, target=0.95),
                Indicator(code="按期", numerator="closed_on_time", denominator="closed", weight=20),
                Indicator(code="返工率", numerator="reworked", denominator="closed", weight=10, lower_is_better=True),
                Indicator(code="满意度", numerator="satisfaction", weight=40),
            ),
            tiers=(Tier(code="优秀", min=90, max=100), Tier(code="良好", min=80, max=90),
                   Tier(code="合格", min=60, max=80), Tier(code="不合格", min=0, max=60)),
            vetoes=(Veto(code="降档", metric="tier_drops_year", at_least=3, bars=("优秀",)),),
        ),),
    )


@lru_cache(maxsize=None)
def jiading() -> Ruleset:
    return Ruleset(
        name="jiading-like",
        roles=(Role(code="社工", level="社区"), Role(code="居委", level="网格"), Role(code="紧急事务小组", level="社区")),
        levels=LEVELS,
        channels=(Channel(code="社工热线", callback=True, hours="24h"), Channel(code="信访", callback=True),
                  Channel(code="微信")),
        severities=(Severity(code="一般", rank=1, ceiling="社区"), Severity(code="较大", rank=2, ceiling="街道")),
        catalogue=(CaseClass(code="17", kind="service", escalation="小事", items=(
            CaseItem(code="1701", severity="一般", sla=(SlaStage(state="发现", within=Duration(amount=1, unit="hours")),
                                                       SlaStage(state="处置", within=Duration(amount=1, unit="days")))),
            CaseItem(code="1703", severity="较大", sla=(SlaStage(state="发现", within=Duration(amount=4, unit="hours")),
                                                       SlaStage(state="处置", within=days(5)))),
        )),),
        lifecycle=Lifecycle(
            states=(State(code="发现", initial=True), State(code="立案"), State(code="处置"),
                    State(code="办结", final=True, flags=("closed",)), State(code="作废", final=True, flags=("void",))),
            transitions=(
                Transition(code="登记", sources=("发现",), target="立案", roles=("社工", "居委")),
                Transition(code="作废", sources=("发现",), target="作废", roles=("社工",)),
                Transition(code="处置", sources=("立案",), target="处置", roles=("社工", "居委", "紧急事务小组")),
                Transition(code="办结", sources=("处置",), target="办结", roles=("社工", "居委", "紧急事务小组")),
            ),
        ),
        routes=(RouteRule(match_item="1701", level="社区", role="社工"),
                RouteRule(match_item="1703", level="社区", role="紧急事务小组")),
        escalations=ESCALATIONS,
        formulas=(Formula(
            code="热线考核", role="社工",
            indicators=(Indicator(code="办结率", numerator="closed", denominator="registered", weight=50),
                        Indicator(code="满意率", numerator="satisfaction", weight=50)),
            tiers=(Tier(code="奖励", min=95, max=100), Tier(code="达标", min=80, max=95), Tier(code="扣罚", min=0, max=80)),
        ),),
    )
