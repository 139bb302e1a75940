"""Compile time per catalogue item: TEDA's 314 items against a synthetic 5,000.

Run: ``python -m wangge.bench.bench_compile``. Prints the time per item of
each file and their ratio; a ratio near 1 means compilation is linear in the
size of the file (reference resolution is one indexed lookup per reference).
"""
from __future__ import annotations

import time

from wangge import dsl

HEADER = """ruleset 基准 "基准" / "Benchmark"
level 街道 "街道" / "Street"
level 社区 "社区" / "Community"
level 网格 "网格" / "Grid"
role 网格员 "网格员" / "Grid worker" at 网格
role 中心 "指挥中心" / "Command centre" office
severity 一般 "一般" / "Minor" rank 1
channel 巡查 "巡查" / "Patrol"
channel 热线 "热线" / "Hotline" callback
escalation 小事 ceiling 社区 {
  step 网格 by 网格员 within 2 working_days
  step 社区 by 中心 within 3 working_days
}
lifecycle {
  state 发现 "发现" initial
  state 立案 "立案"
  state 处置 "处置"
  state 结案 "结案" final closed
  transition 上报: 发现 -> 立案 by 网格员 requires photo
  transition 派遣: 立案 -> 处置 by 中心 office
  transition 办结: 处置 -> 结案 by 网格员 requires onsite_confirmation
}
"""


def catalogue(items: int, classes: int) -> str:
    """A rule file with ``items`` catalogue items spread over ``classes`` classes."""
    parts = [HEADER]
    per_class = -(-items // classes)
    made = 0
    for c in range(classes):
        parts.append(f'class {c + 1:02d} "大类{c + 1}" / "Class {c + 1}" event escalate 小事 {{')
        for i in range(min(per_class, items - made)):
            parts.append(
                f'  item {i + 1:03d} "事项{c + 1}-{i + 1}" / "Item {c + 1}-{i + 1}" {{\n'
                f"    severity 一般\n    sla 立案 2 working_hours, 处置 {1 + i % 5} working_days\n"
                f'    evidence photo\n    steps "受理" / "Accept", "处置" / "Handle"\n'
                f"    channels 巡查, 热线\n    difficulty {1 + (i % 3) / 2}\n  }}")
            made += 1
        parts.append("}")
    parts.append("route class 01 to 网格 by 网格员\n")
    return "\n".join(parts)


def per_item(text: str, items: int, repeat: int) -> float:
    """Best seconds per item over ``repeat`` compilations (parse, check, compile)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        ruleset = dsl.loads(text, "bench.wg")
        best = min(best, time.perf_counter() - start)
    assert len(ruleset.items) == items
    return best / items


def main() -> None:
    dsl.loads(catalogue(10, 1), "warmup.wg")  # builds the metamodel once, outside the timing
    small = per_item(catalogue(314, 7), 314, repeat=5)
    large = per_item(catalogue(5000, 50), 5000, repeat=2)
    print(f"314 items (TEDA):     {small * 1e3:.3f} ms/item, {small * 314:.3f} s total")
    print(f"5,000 items:          {large * 1e3:.3f} ms/item, {large * 5000:.3f} s total")
    print(f"ratio 5,000 / 314:    {large / small:.2f}  (near 1 = linear)")


if __name__ == "__main__":
    main()
