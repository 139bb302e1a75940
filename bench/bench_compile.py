"""Compile time per catalogue item: TEDA's 314 items against a synthetic 5,000, and a 5 MB file.

Run: ``python -m wangge.bench.bench_compile [--json] [--megabytes N]``.
Prints the time per item of each file and their ratio; a ratio near 1 means
compilation is linear in the size of the file (reference resolution is one
indexed lookup per reference). Then a rule file of N MB (default 5; the
issue's target: checked in under 3 s and 200 MB) is compiled in a fresh
process, so its peak memory is its own: wall time, CPU time, peak RSS.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
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


#: Bytes of one synthetic catalogue item, to size a file in megabytes.
ITEM_BYTES = len(catalogue(1000, 10).encode()) / 1000


def big_file(megabytes: float) -> dict:
    """Compile a ``megabytes`` MB rule file in a fresh process: wall and CPU seconds, peak RSS in MB."""
    items = int(megabytes * 1e6 / ITEM_BYTES)
    code = ("import json, resource, sys, time\n"
            "from wangge import dsl\nfrom wangge.bench.bench_compile import catalogue\n"
            f"text = catalogue({items}, {max(1, items // 100)})\n"
            "dsl.loads(catalogue(10, 1), 'warmup.wg')\n"
            "wall, cpu = time.perf_counter(), time.process_time()\n"
            "dsl.loads(text, 'big.wg')\n"
            "print(json.dumps({'megabytes': len(text.encode()) / 1e6, 'items': " + str(items) + ", "
            "'wall_s': time.perf_counter() - wall, 'cpu_s': time.process_time() - cpu, "
            "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_compile")
    parser.add_argument("--json", action="store_true", help="print one line of figures as JSON")
    parser.add_argument("--megabytes", type=float, default=5.0, help="size of the large file (default 5)")
    args = parser.parse_args(argv or [])  # `wangge bench compile` calls main() with no arguments
    dsl.loads(catalogue(10, 1), "warmup.wg")  # builds the metamodel once, outside the timing
    small = per_item(catalogue(314, 7), 314, repeat=5)
    large = per_item(catalogue(5000, 50), 5000, repeat=2)
    big = big_file(args.megabytes)
    if args.json:
        print(json.dumps({"ms_per_item_314": small * 1e3, "ms_per_item_5000": large * 1e3,
                          "ratio": large / small, **big}))
        return
    print(f"314 items (TEDA):     {small * 1e3:.3f} ms/item, {small * 314:.3f} s total")
    print(f"5,000 items:          {large * 1e3:.3f} ms/item, {large * 5000:.3f} s total")
    print(f"ratio 5,000 / 314:    {large / small:.2f}  (near 1 = linear)")
    print(f"{big['megabytes']:.1f} MB, {big['items']} items: wall {big['wall_s']:.1f} s, CPU {big['cpu_s']:.1f} s, "
          f"peak RSS {big['peak_rss_mb']:.0f} MB  (target: under 3 s and 200 MB)")


if __name__ == "__main__":
    main(sys.argv[1:])
