"""Routing decisions per second for a 314-item catalogue, and the escalation sweep.

Three engines decide the owner of the same cases by the same rules:
wangge's `Router` (owner, staged deadline on the working calendar, escalation
chain and trace), a hand-written Python function encoding the same rules (the
practical limit), and the `rule-engine` package evaluating the route rules
as expressions, most specific first, with the same deadline and chain work. Targets: within 3x
of hand-written Python, at least 10x faster than rule-engine.
"""
from __future__ import annotations

import argparse
import json
import random
from datetime import datetime, timedelta, timezone

import rule_engine

from wangge import dsl
from wangge.bench.timing import Timing, median_of, ratio_text
from wangge.core.calendar import for_calendar
from wangge.core.escalation import escalate
from wangge.core.routing import CaseView, Router

CLASSES = 7
ITEMS = 314
DECISIONS = 20_000
SWEEP = 100_000


def rule_file() -> str:
    """TEDA's size: 7 classes, 314 items, routes by class, item, channel and severity."""
    lines = [
        "ruleset bench",
        "level 街道 rank 0", "level 社区", "level 网格",
        "role 网格员 at 网格", "role 社区主任 at 社区", "role 指挥中心 at 街道 office", "role 社工 at 社区",
        "department 电信", "department 城管",
        "channel 巡查", "channel 热线 callback",
        "severity 一般 rank 1 ceiling 社区", "severity 重大 rank 2 ceiling 街道",
    ]
    lines = [line.replace(" rank 0", "") for line in lines]
    per = ITEMS // CLASSES + 1
    code = 0
    for c in range(1, CLASSES + 1):
        lines.append(f'class {c:02d} "类{c}" event escalate 小事 {{')
        for i in range(1, per + 1):
            if code >= ITEMS:
                break
            code += 1
            severity = "重大" if i % 9 == 0 else "一般"
            lines.append(f'  item {i:02d} "事项{c}-{i}" {{ severity {severity} sla 处置 {1 + i % 3} working_days }}')
        lines.append("}")
    lines += [
        "lifecycle {", "  state 发现 initial", "  state 处置", "  state 结案 final closed",
        "  transition 派遣: 发现 -> 处置 by 指挥中心 office", "  transition 办结: 处置 -> 结案 by 网格员", "}",
    ]
    # The first route that matches wins: the most specific come first.
    lines += [f"route item {c:02d}05 to department {'电信' if c % 2 else '城管'}" for c in range(1, CLASSES + 1)]
    lines += [f"route class {c:02d} to {'网格' if c % 2 else '社区'} by {'网格员' if c % 2 else '社区主任'}" for c in range(1, CLASSES + 1)]
    lines += ["route channel 热线 to 社区 by 社工", "route severity 重大 to 街道 by 指挥中心"]
    lines += [
        "escalation 小事 ceiling 社区 then 大事 {", "  step 网格 by 网格员 within 2 working_days",
        "  step 社区 by 社区主任 within 3 working_days", "}",
        "escalation 大事 ceiling 街道 {", "  step 街道 by 指挥中心 within 5 working_days", "}",
    ]
    return "\n".join(lines) + "\n"


def cases(ruleset, count: int, seed: int = 1) -> list[CaseView]:
    rng = random.Random(seed)
    items = list(ruleset.items)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=timezone.utc)
    out = []
    for n in range(count):
        community = rng.randrange(12)
        grids = (("街道", "S1"), ("社区", f"S1.{community:02d}"), ("网格", f"S1.{community:02d}.{rng.randrange(20):02d}"))
        out.append(CaseView(id=str(n), item=rng.choice(items), grids=grids, channel=rng.choice(["巡查", "巡查", "热线"]),
                            opened_at=start + timedelta(minutes=rng.randrange(60 * 24 * 20))))
    return out


def hand_written(ruleset):
    """The same rules as straight-line Python: dict lookups and the same calendar."""
    items, klass = ruleset.items, ruleset.item_class
    by_item = {f"{c:02d}05": (None, None, "电信" if c % 2 else "城管") for c in range(1, CLASSES + 1)}
    by_class = {f"{c:02d}": ("网格" if c % 2 else "社区", "网格员" if c % 2 else "社区主任", None)
                for c in range(1, CLASSES + 1)}
    time = for_calendar(ruleset.settings.calendar, ruleset.settings.timezone)

    def decide(case: CaseView):
        item = items[case.item]
        if case.item in by_item:
            owner = by_item[case.item]
        elif klass[case.item].code in by_class:
            owner = by_class[klass[case.item].code]
        elif case.channel == "热线":
            owner = ("社区", "社工", None)
        elif item.severity == "重大":
            owner = ("街道", "指挥中心", None)
        else:
            owner = ("网格", "网格员", None)  # the default owner: the lowest level's role
        deadline = case.opened_at
        for stage in item.sla:
            deadline = time.add(deadline, stage.within)
        chain = ("网格", "社区") + (("街道",) if item.severity == "重大" else ())
        return owner, deadline, chain

    return decide


def rule_engine_router(ruleset):
    """The route rules as rule-engine expressions, first match wins."""
    rules = []
    for index, route in enumerate(ruleset.routes):
        if route.match_item:
            text = f'item == "{route.match_item}"'
        elif route.match_class:
            text = f'cls == "{route.match_class}"'
        elif route.match_channel:
            text = f'channel == "{route.match_channel}"'
        else:
            text = f'severity == "{route.match_severity}"'
        rules.append((rule_engine.Rule(text), route))
    # Most specific first, as the rule file lists them and wangge takes the first match.
    order = {"item": 0, "cls": 1, "channel": 2, "severity": 3}
    rules.sort(key=lambda pair: order[pair[0].text.split(" ")[0]])
    klass, items = ruleset.item_class, ruleset.items
    time = for_calendar(ruleset.settings.calendar, ruleset.settings.timezone)

    def decide(case: CaseView):
        item = items[case.item]
        facts = {"item": case.item, "cls": klass[case.item].code, "channel": case.channel, "severity": item.severity}
        route = next((route for rule, route in rules if rule.matches(facts)), None)
        owner = (route.level, route.role, route.department) if route else ("网格", "网格员", None)
        deadline = case.opened_at  # the same deadline and chain work as the other two
        for stage in item.sla:
            deadline = time.add(deadline, stage.within)
        chain = ("网格", "社区") + (("街道",) if item.severity == "重大" else ())
        return owner, deadline, chain

    return decide


def check_agreement(router: Router, hand, engine, sample: list[CaseView]) -> None:
    """The three engines must decide alike, or the ratios compare different work; raises AssertionError."""
    for case in sample:
        ours = router.route(case)
        decided = ((ours.level, ours.role, ours.department), ours.deadline, tuple(s.level for s in ours.chain))
        for name, other in (("hand-written", hand), ("rule-engine", engine)):
            assert other(case) == decided, f"case {case.id}: {name} decided {other(case)}, wangge {decided}"


def measure(decisions: int, sweep: int) -> dict:
    """Median CPU and wall times of the three engines on ``decisions`` cases, and of the sweep."""
    ruleset = dsl.loads(rule_file(), "bench.wg")
    work = cases(ruleset, decisions)
    router = Router(ruleset)
    hand = hand_written(ruleset)
    engine = rule_engine_router(ruleset)
    check_agreement(router, hand, engine, work[:2_000])
    sample = work[: max(decisions // 10, 1)]
    # rule-engine is measured on a tenth of the cases, its times scaled up to all of them.
    scale = decisions / len(sample)
    other = median_of(lambda: [engine(c) for c in sample])
    open_cases = cases(ruleset, sweep, seed=2)
    now = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    state = {}
    return {
        "items": len(ruleset.items),
        "router": median_of(lambda: [router.route(c) for c in work]),
        "hand": median_of(lambda: [hand(c) for c in work]),
        "rule_engine": Timing(other.cpu * scale, other.wall * scale),
        "sample": len(sample),
        "sweep": median_of(lambda: state.update(result=escalate(router, open_cases, now)), repeat=1),
        "escalations": len(state["result"].escalations),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_routing", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print one line of JSON figures.")
    parser.add_argument("--decisions", type=int, default=DECISIONS,
                        help=f"Cases routed (default {DECISIONS:,}); fewer for a quick run.")
    parser.add_argument("--sweep", type=int, default=SWEEP, help=f"Open cases swept (default {SWEEP:,}).")
    args = parser.parse_args(argv or [])
    for name in ("decisions", "sweep"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected a positive count, got {getattr(args, name)}")
    f = measure(args.decisions, args.sweep)
    vs_hand, vs_engine = f["router"].over(f["hand"]), f["rule_engine"].over(f["router"])
    if args.json:
        print(json.dumps({
            "bench": "routing", "items": f["items"], "decisions": args.decisions, "sweep_cases": args.sweep,
            "router_x_hand_cpu": round(vs_hand.cpu, 2), "router_x_hand_wall": round(vs_hand.wall, 2),
            "rule_engine_x_router_cpu": round(vs_engine.cpu, 1), "rule_engine_x_router_wall": round(vs_engine.wall, 1),
            "router_decisions_per_s": round(args.decisions / f["router"].wall),
            "sweep_cpu_s": round(f["sweep"].cpu, 3), "sweep_wall_s": round(f["sweep"].wall, 3),
            "escalations": f["escalations"], "target_router_x_hand": 3, "target_rule_engine_x_router": 10,
        }))
        return 0
    print(f"bench_routing: {f['items']} catalogue items, {args.decisions:,} cases over 240 grids (median of 3)")
    print(f"  wangge Router:          {args.decisions / f['router'].wall:,.0f} decisions/s "
          "(owner, staged deadline, chain, trace)")
    print(f"  hand-written Python:    {args.decisions / f['hand'].wall:,.0f} decisions/s")
    print(f"  rule-engine (measured on {f['sample']:,}): {args.decisions / f['rule_engine'].wall:,.0f} decisions/s")
    print("  " + ratio_text("Router vs hand-written", f["router"], f["hand"], target=3))
    verdict = "met" if min(vs_engine) >= 10 else "NOT met"
    print(f"  rule-engine vs Router: CPU {vs_engine.cpu:.1f}x, wall {vs_engine.wall:.1f}x slower "
          f"(target ≥ 10x: {verdict})")
    print(f"  escalation sweep: {args.sweep:,} open cases, CPU {f['sweep'].cpu:.2f} s, wall {f['sweep'].wall:.2f} s "
          f"= {args.sweep / f['sweep'].wall:,.0f} cases/s, {f['escalations']:,} escalations")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
