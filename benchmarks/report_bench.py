"""Every report command against `residency check` on the same map, as whole processes.

    .venv/bin/python benchmarks/report_bench.py [--sizes 10000,100000] [--shapes check,deep]
        [--timeout 600] [--only tia,html]

For each size and shape (check_generate.py's four wide layers, deep_generate.py's deep
cyclic chains) it generates the map (benchmarks/out/, cached), runs `check` and each report
in its own process side by side, and prints wall time, peak RSS (from wait4's rusage of
that child) and each report's ratio to `check` on the same map. A report that exceeds
`--timeout` is killed and shown as such (the reports used to hang on cyclic maps).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
AS_OF = "2026-11-30"
GENERATORS = {"check": "check_generate.py", "deep": "deep_generate.py"}

# name -> arguments after the map options; {out} is a scratch path per command
COMMANDS: dict[str, list[str]] = {
    "check": ["check", "--format", "json", "--output", "{out}.json", "--fail-on", "never"],
    "tia": ["report", "tia", "--all", "--output", "{out}-tia"],
    "html": ["report", "html", "--output", "{out}.html"],
    "register-csv": ["report", "register", "--output", "{out}.csv"],
    "register-xlsx": ["report", "register", "--format", "xlsx", "--output", "{out}.xlsx"],
    "impact": ["report", "impact", "--assume-invalid", "eu-us-dpf-2023-1795",
               "--output", "{out}.txt"],
    **{f"graph-{fmt}": ["graph", "--format", fmt, "--output", f"{{out}}.{fmt}"]
       for fmt in ("mermaid", "dot", "svg", "graphml", "json")},
}


def measure(cmd: list[str], timeout: float) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, status) of one child process."""
    with tempfile.TemporaryFile() as err:  # a pipe would fill up: tia lists every file
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        status = "ok"
        while True:
            pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > start + timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                _, code, usage = os.wait4(proc.pid, 0)
                status = "timeout"
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
        exit_code = os.waitstatus_to_exitcode(code)
        if status == "ok" and exit_code not in (0, 1):
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            status = f"exit {exit_code}: {lines[-1] if lines else ''}"
    return wall, usage.ru_maxrss / 1024, status


def map_for(shape: str, n: int) -> Path:
    path = OUT / f"{shape}-{n}.json"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / GENERATORS[shape]), str(n), "-o", str(path)],
                       check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--shapes", default="check,deep")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per command")
    ap.add_argument("--only", default="", help="comma-separated report names (check always runs)")
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("residency"))
    wanted = [c for c in COMMANDS if c != "check"
              and (not args.only or c in args.only.split(","))]
    print(f"{'shape':<6} {'flows':>7} {'command':<14} {'wall s':>8} {'peak MiB':>9} "
          f"{'x check':>8} {'x RSS':>6}  status", flush=True)
    for n in (int(s) for s in args.sizes.split(",")):
        for shape in args.shapes.split(","):
            path = map_for(shape, n)
            scratch = Path(tempfile.mkdtemp(prefix="report-bench-"))
            try:
                base: tuple[float, float] | None = None
                for name in ["check", *wanted]:
                    argv = [a.replace("{out}", str(scratch / name)) for a in COMMANDS[name]]
                    cmd = [exe, *argv[:2], "--map", str(path), "--as-of", AS_OF, *argv[2:]]
                    if argv[0] in ("check", "graph"):
                        cmd = [exe, argv[0], "--map", str(path), "--as-of", AS_OF, *argv[1:]]
                    wall, rss, status = measure(cmd, args.timeout)
                    if base is None:
                        base = (wall, rss)
                    ratio = f"{wall / base[0]:.1f}" if status == "ok" else ">" + \
                        f"{wall / base[0]:.0f}"
                    print(f"{shape:<6} {n:>7} {name:<14} {wall:>8.1f} {rss:>9.0f} {ratio:>8} "
                          f"{rss / base[1]:>6.1f}  {status}", flush=True)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
