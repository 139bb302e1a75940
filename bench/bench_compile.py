"""Compile time per catalogue item: TEDA's 314 items against a synthetic 5,000, and a 5 MB file.

Run: ``python -m wangge.bench.bench_compile [--json] [--megabytes N] [--big-only]``.
Prints the time per item of each file and their ratio; a ratio near 1 means
compilation is linear in the size of the file (reference resolution is one
indexed lookup per reference). Then a rule file of N MB (default 5; the
issue's target: checked in under 3 s and 200 MB) is checked as `wangge rules
check` does, three times, each in a fresh process so its peak memory is its
own: the median CPU and wall seconds and peak RSS, against the same process
reading and tokenising the file. ``--json`` prints one line, with keys such
as ``check_5mb_cpu_s``, ``check_5mb_wall_s`` and ``check_5mb_peak_mb``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

# One child process per run, so each run's peak memory is its own. The
# baseline, in the same child, reads the file and splits it into words and
# quoted labels with one regular expression: the least any checker must do.
_CHILD = """
import json, re, resource, sys, time
from wangge import dsl
path = sys.argv[1]
dsl.check([sys.argv[2]])  # the metamodel is built once per process, not per file: build it untimed
wall, cpu = time.perf_counter(), time.process_time()
with open(path, encoding="utf-8") as source:
    words = sum(1 for _ in re.finditer(r'"[^"]*"|[\\w\\-]+|\\S', source.read()))
base_wall, base_cpu = time.perf_counter() - wall, time.process_time() - cpu
wall, cpu = time.perf_counter(), time.process_time()
found = dsl.check([path])
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "base_wall_s": base_wall, "base_cpu_s": base_cpu, "words": words,
                  "problems": len(found)}))
"""


def write_big_file(folder: Path, megabytes: float) -> tuple[Path, int]:
    """A ``megabytes`` MB rule file in ``folder`` and its number of catalogue items."""
    items = int(megabytes * 1e6 / ITEM_BYTES)
    path = folder / "big.wg"
    path.write_text(catalogue(items, max(1, items // 100)), encoding="utf-8")
    return path, items


def check_once(path: Path, small: Path) -> dict:
    """`wangge rules check` of ``path`` in a fresh process: its seconds and peak RSS, and the baseline's."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(small)],
                          capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["problems"]:
        raise RuntimeError(f"the generated rule file has {figures['problems']} problems; it should have none")
    return figures


def big_file(megabytes: float, runs: int = 3) -> dict:
    """Median over ``runs`` fresh processes of checking a ``megabytes`` MB file, with its baseline."""
    with tempfile.TemporaryDirectory() as folder:
        path, items = write_big_file(Path(folder), megabytes)
        small = Path(folder) / "small.wg"
        small.write_text(catalogue(10, 1), encoding="utf-8")
        measured = [check_once(path, small) for _ in range(runs)]
        size = path.stat().st_size / 1e6
    median = {key: statistics.median(m[key] for m in measured) for key in measured[0]}
    return {"megabytes": size, "items": items, **median}


def _size_key(megabytes: float) -> str:
    return f"check_{megabytes:g}mb"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_compile")
    parser.add_argument("--json", action="store_true", help="print one line of figures as JSON")
    parser.add_argument("--megabytes", type=float, default=5.0, help="size of the large file (default 5)")
    parser.add_argument("--big-only", action="store_true", help="only the large file's check")
    args = parser.parse_args(argv or [])  # `wangge bench compile` calls main() with no arguments
    figures: dict = {}
    if not args.big_only:
        dsl.loads(catalogue(10, 1), "warmup.wg")  # builds the metamodel once, outside the timing
        small = per_item(catalogue(314, 7), 314, repeat=5)
        large = per_item(catalogue(5000, 50), 5000, repeat=2)
        figures = {"ms_per_item_314": small * 1e3, "ms_per_item_5000": large * 1e3, "ratio": large / small}
    big = big_file(args.megabytes)
    key = _size_key(args.megabytes)
    figures.update({
        "megabytes": big["megabytes"], "items": big["items"],
        f"{key}_cpu_s": big["cpu_s"], f"{key}_wall_s": big["wall_s"], f"{key}_peak_mb": big["peak_mb"],
        "baseline_tokenise_cpu_s": big["base_cpu_s"], "baseline_tokenise_wall_s": big["base_wall_s"],
        f"{key}_cpu_ratio": big["cpu_s"] / big["base_cpu_s"] if big["base_cpu_s"] else None,
    })
    if args.json:
        print(json.dumps(figures))
        return
    if not args.big_only:
        print(f"314 items (TEDA):     {figures['ms_per_item_314']:.3f} ms/item, {small * 314:.3f} s total")
        print(f"5,000 items:          {figures['ms_per_item_5000']:.3f} ms/item, {large * 5000:.3f} s total")
        print(f"ratio 5,000 / 314:    {figures['ratio']:.2f}  (near 1 = linear)")
    print(f"`wangge rules check` of {big['megabytes']:.1f} MB ({big['items']} items), median of 3 fresh processes:")
    print(f"  CPU {big['cpu_s']:.2f} s, wall {big['wall_s']:.2f} s, peak RSS {big['peak_mb']:.0f} MB"
          f"  (target: under 3 s and 200 MB)")
    print(f"  baseline, reading and tokenising the same file: CPU {big['base_cpu_s']:.3f} s, "
          f"wall {big['base_wall_s']:.3f} s; the check takes {figures[key + '_cpu_ratio']:.0f}x its CPU")


if __name__ == "__main__":
    main(sys.argv[1:])
