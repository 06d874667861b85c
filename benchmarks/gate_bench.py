"""`residency gate` against Checkov and against a bare `json.load`, as whole processes.

    python benchmarks/gate_bench.py [--sizes 1000,10000] [--repeat 3] [--checkov PATH]

For each size: generate a plan (benchmarks/gate_generate.py), then time each command as its
own process (wall clock, CPU = user+sys, peak RSS from wait4). The floor is the cheapest
possible gate: Python start-up plus `json.load` of the same file, with the garbage
collector on (`floor`) and off (`floor-gc0`, the real floor; target: gate within 2x).
Checkov runs once per size (minutes at 10,000 resources) with a custom policy equivalent to ours
(benchmarks/checkov_policy). Install it apart from the project, e.g.
`python3 -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install checkov==3.3.30`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ROOT = HERE.parent


def run(cmd: list[str]) -> tuple[float, float, float, int]:
    """(wall s, cpu s, peak RSS MiB, exit code) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def measure(cmd: list[str], repeat: int) -> tuple[float, float, float, int]:
    runs = [run(cmd) for _ in range(repeat)]
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            max(r[2] for r in runs), runs[-1][3])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--checkov", default="/tmp/checkov-venv/bin/checkov")
    ap.add_argument("--no-checkov", action="store_true")
    args = ap.parse_args()
    python = sys.executable
    residency = str(Path(python).with_name("residency"))
    print(f"{'command':<10}{'resources':>10}{'wall s':>9}{'cpu s':>8}{'RSS MiB':>9}{'exit':>6}")
    for n in (int(x) for x in args.sizes.split(",")):
        plan = OUT / f"plan-{n}.json"
        if not plan.exists():
            subprocess.run([python, str(HERE / "gate_generate.py"), str(n), str(plan)],
                           check=True, stdout=subprocess.DEVNULL)
        commands = {
            "floor": [python, "-c", f"import json; json.load(open({str(plan)!r}))"],
            # the real floor: json.load with the cyclic GC off, as the gate's reader runs it
            "floor-gc0": [python, "-c", "import gc, json; gc.disable(); "
                          f"json.load(open({str(plan)!r}))"],
            "gate": [residency, "gate", str(plan), "--map",
                     str(ROOT / "tests/plan/fixtures/map.yaml"), "--format", "sarif",
                     "--output", str(OUT / f"gate-{n}.sarif")],
        }
        results = {name: measure(cmd, args.repeat) for name, cmd in commands.items()}
        if not args.no_checkov and Path(args.checkov).exists():
            results["checkov"] = run([
                args.checkov, "-f", str(plan), "--framework", "terraform_plan",
                "--external-checks-dir", str(HERE / "checkov_policy"), "--check", "CKV_RES_1",
                "--skip-download", "--compact", "--quiet", "-o", "cli",
            ])
        for name, (wall, cpu, rss, code) in results.items():
            print(f"{name:<10}{n:>10}{wall:>9.2f}{cpu:>8.2f}{rss:>9.0f}{code:>6}")
        gate_wall, floor_wall = results["gate"][0], results["floor"][0]
        nogc = results["floor-gc0"]
        line = f"  {n}: gate/floor wall {gate_wall / floor_wall:.2f}x, cpu " \
               f"{results['gate'][1] / results['floor'][1]:.2f}x; gate/floor-gc0 wall " \
               f"{gate_wall / nogc[0]:.2f}x, cpu {results['gate'][1] / nogc[1]:.2f}x " \
               "(target <= 2x)"
        if "checkov" in results:
            line += f"; checkov/gate wall {results['checkov'][0] / gate_wall:.0f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
