"""Time and peak memory of `residency check` as a whole process at 10k, 100k and 1M flows.

    .venv/bin/python benchmarks/check_bench.py [--sizes 10000,100000,1000000] [--format json]
        [--shapes project,deep]

Generates the maps (benchmarks/out/, cached) in both shapes — `project` (check_generate.py:
four wide layers) and `deep` (deep_generate.py: 12-level chains, parties, remote access,
cycles) — runs each check in its own process with the report written to a file, and prints
per shape wall time, peak RSS and the scaling ratio between successive sizes (target: 100k
flows < 6 s; 1M flows < 60 s and < 4 GiB; 10x the flows <= 12x the time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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


def _run(shape: str, n: int, fmt: str, profile: str) -> tuple[int, float, float, float, str]:
    path = _map_path(shape, n, profile)
    exe = str(Path(sys.executable).with_name("residency"))
    report = OUT / f"report-{shape}-{n}.{fmt}"
    wall, rss, _ = measure([exe, "check", "--map", str(path), "--as-of", "2026-11-30",
                            "--format", fmt, "--output", str(report), "--fail-on", "never",
                            "--force"])
    summary = ""
    if fmt == "json":
        with report.open() as fh:
            head = fh.read(4096)
        marker = head.find('"summary"')
        summary = head[marker: head.find("}", marker) + 1] if marker >= 0 else ""
    return n, wall, rss, report.stat().st_size / 2**20, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--shapes", default="project,deep")
    ap.add_argument("--format", default="json", choices=("json", "markdown", "text"))
    ap.add_argument("--profile", default="realistic", choices=("realistic", "worst"),
                    help="share of flows in breach (project shape; see check_generate.py)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for shape in args.shapes.split(","):
        rows = [_run(shape, n, args.format, args.profile) for n in sizes]
        print(f"shape {shape}")
        print(f"{'flows':>9} {'wall s':>8} {'peak MiB':>9} {'report MiB':>10} {'x time':>7}")
        prev = None
        for n, wall, rss, size, _ in rows:
            ratio = f"{wall / prev[1]:.1f}" if prev else ""
            scale = f" (for {n // prev[0]}x flows)" if prev else ""
            print(f"{n:>9} {wall:>8.1f} {rss:>9.0f} {size:>10.0f} {ratio:>7}{scale}")
            prev = (n, wall)
        print(json.dumps({str(n): s for n, _, _, _, s in rows}))


if __name__ == "__main__":
    main()
