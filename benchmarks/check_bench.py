"""Time and peak memory of `residency check` as a whole process at 10k, 100k and 1M flows.

    .venv/bin/python benchmarks/check_bench.py [--sizes 10000,100000,1000000] [--format json]
        [--shapes project,deep] [--repeat N] [--one-core]

Generates the maps (benchmarks/out/, cached) in both shapes — `project` (check_generate.py:
four wide layers) and `deep` (deep_generate.py: 12-level chains, parties, remote access,
cycles) — runs each check in its own process with the report written to a file, and prints
per shape wall time, peak RSS and the scaling ratio between successive sizes (target: 100k
flows < 6 s; 1M flows < 60 s and < 4 GiB; 10x the flows <= 12x the time). `--one-core`
runs each map once with RESIDENCY_WORKERS=1 and once on two cores, alternately, and prints
both with their ratio.

The previous run's report is deleted before each timed run: replacing it makes the file
system free the old file inside the run (0.15-0.65 s for the 300 MB deep 100k report on
an ext4 mounted with `discard`), which is not the tool's work. report_bench.py writes
into a fresh directory, so both measure the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of one child process (the peak is the
    largest of it and the workers it forked, not their sum: they share pages)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        err = proc.stderr.read().decode() if proc.stderr else ""
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024, code


def _map_path(shape: str, n: int, profile: str) -> Path:
    if shape == "deep":
        path = OUT / f"deep-{n}.json"
        if not path.exists():
            subprocess.run([sys.executable, str(HERE / "deep_generate.py"), str(n), "-o",
                            str(path)], check=True)
        return path
    path = OUT / f"map-{profile}-{n}.json"
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "check_generate.py"), str(n), "-o",
                        str(path), "--profile", profile], check=True)
    return path


def _run(shape: str, n: int, fmt: str, profile: str,
         workers: str = "") -> tuple[int, float, float, float, str]:
    path = _map_path(shape, n, profile)
    exe = str(Path(sys.executable).with_name("residency"))
    report = OUT / f"report-{shape}-{n}.{fmt}"
    env = {"RESIDENCY_WORKERS": workers} if workers else None
    report.unlink(missing_ok=True)
    os.sync()  # the old report's blocks are freed now, not during the next run
    wall, rss, _ = measure([exe, "check", "--map", str(path), "--as-of", "2026-11-30",
                            "--format", fmt, "--output", str(report), "--fail-on", "never",
                            "--force"], env)
    summary = ""
    if fmt == "json":
        with report.open() as fh:
            head = fh.read(4096)
        marker = head.find('"summary"')
        summary = head[marker: head.find("}", marker) + 1] if marker >= 0 else ""
    return n, wall, rss, report.stat().st_size / 2**20, summary


def _median_run(shape: str, n: int, fmt: str, profile: str,
                repeat: int) -> tuple[int, float, float, float, str]:
    runs = [_run(shape, n, fmt, profile) for _ in range(max(repeat, 1))]
    if len(runs) > 1:
        print(f"{shape} {n}: " + " ".join(f"{r[1]:.2f}" for r in runs) + " s", flush=True)
    wall = statistics.median(r[1] for r in runs)
    return n, wall, max(r[2] for r in runs), runs[-1][3], runs[-1][4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--shapes", default="project,deep")
    ap.add_argument("--format", default="json", choices=("json", "markdown", "text"))
    ap.add_argument("--profile", default="realistic", choices=("realistic", "worst"),
                    help="share of flows in breach (project shape; see check_generate.py)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per map: the median wall time and the largest peak are shown")
    ap.add_argument("--one-core", action="store_true",
                    help="also run each check with RESIDENCY_WORKERS=1, side by side")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.one_core:
        _side_by_side(args.shapes.split(","), sizes, args.format, args.profile)
        return
    for shape in args.shapes.split(","):
        rows = [_median_run(shape, n, args.format, args.profile, args.repeat) for n in sizes]
        print(f"shape {shape}")
        print(f"{'flows':>9} {'wall s':>8} {'peak MiB':>9} {'report MiB':>10} {'x time':>7}")
        prev = None
        for n, wall, rss, size, _ in rows:
            ratio = f"{wall / prev[1]:.1f}" if prev else ""
            scale = f" (for {n // prev[0]}x flows)" if prev else ""
            print(f"{n:>9} {wall:>8.1f} {rss:>9.0f} {size:>10.0f} {ratio:>7}{scale}")
            prev = (n, wall)
        print(json.dumps({str(n): s for n, _, _, _, s in rows}))


def _side_by_side(shapes: list[str], sizes: list[int], fmt: str, profile: str) -> None:
    """One process vs two cores, alternating runs of the same map (a noisy machine drifts)."""
    print(f"{'shape':<8} {'flows':>9} {'1 core s':>9} {'2 cores s':>10} {'ratio':>6} "
          f"{'1 core MiB':>11} {'2 cores MiB':>12}")
    for shape in shapes:
        for n in sizes:
            one = _run(shape, n, fmt, profile, "1")
            two = _run(shape, n, fmt, profile)
            print(f"{shape:<8} {n:>9} {one[1]:>9.1f} {two[1]:>10.1f} {one[1] / two[1]:>6.2f} "
                  f"{one[2]:>11.0f} {two[2]:>12.0f}")


if __name__ == "__main__":
    main()
