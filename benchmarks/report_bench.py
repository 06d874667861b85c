"""Every report command against `residency check` on the same map, as whole processes.

    .venv/bin/python benchmarks/report_bench.py [--sizes 10000,100000] [--shapes check,deep]
        [--cyclic 0.05] [--timeout 600] [--only tia,html] [--repeat 1]

For each size and shape (check_generate.py's four wide layers, deep_generate.py's deep
cyclic chains) it generates the map (benchmarks/out/, cached), runs `check` and each report
in its own process side by side, and prints wall time, peak RSS (wait4's rusage of that
child), each report's ratio to `check` on the same map, and PASS/FAIL against the targets
(at most 3x the time of `check`, under 1 GiB peak). `--cyclic F` rewrites a share F of the
map's flows into processor → controller back-flows (the cycle that used to hang the
reports) before measuring. Commands the installed `residency` lacks are shown as skipped.
A report that exceeds `--timeout` is killed and shown as such.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
AS_OF = "2026-11-30"
GENERATORS = {"check": "check_generate.py", "deep": "deep_generate.py"}
MAX_RATIO = 3.0
MAX_RSS_MIB = 1024.0

# name -> argv after `residency`; {out} is a scratch path per command
COMMANDS: dict[str, list[str]] = {
    "check": ["check", "--format", "json", "--output", "{out}.json", "--fail-on", "never"],
    "register-csv": ["report", "register", "--output", "{out}.csv"],
    "register-xlsx": ["report", "register", "--format", "xlsx", "--output", "{out}.xlsx"],
    "register-md": ["report", "register", "--format", "markdown", "--output", "{out}.md"],
    "tia": ["report", "tia", "--all", "--output", "{out}-tia"],
    "html": ["report", "html", "--output", "{out}.html"],
    "impact": ["report", "impact", "--assume-invalid", "eu-us-dpf-2023-1795",
               "--output", "{out}.txt"],
    "ropa-xlsx": ["report", "ropa", "--format", "xlsx", "--output", "{out}-ropa.xlsx"],
    "subject-access": ["report", "subject-access", "--subject", "customers",
                       "--output", "{out}-sar.md"],
    "dpv": ["report", "dpv", "--output", "{out}.jsonld"],
    **{f"graph-{fmt}": ["graph", "--format", fmt, "--output", f"{{out}}.{fmt}"]
       for fmt in ("svg", "dot", "json", "mermaid", "graphml")},
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
            time.sleep(0.02)
        wall = time.perf_counter() - start
        exit_code = os.waitstatus_to_exitcode(code)
        if status == "ok" and exit_code not in (0, 1):
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            status = f"exit {exit_code}: {lines[-1][:70] if lines else ''}"
    return wall, usage.ru_maxrss / 1024, status


def map_for(shape: str, n: int, cyclic: float) -> Path:
    path = OUT / f"{shape}-{n}.json"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / GENERATORS[shape]), str(n), "-o", str(path)],
                       check=True)
    if not cyclic:
        return path
    out = OUT / f"{shape}-{n}-cyclic{cyclic:g}.json"
    if not out.exists() or out.stat().st_mtime < path.stat().st_mtime:
        out.write_text(json.dumps(with_back_flows(json.loads(path.read_text()), cyclic)))
    return out


def with_activities(path: Path) -> Path:
    """The map plus a `processing:` section (one controller activity per party that holds
    controller systems, for customers): `report subject-access` answers from activities,
    which the generators do not write. The other commands run on the map as generated."""
    out = path.with_name(path.stem + "-activities.json")
    if out.exists() and out.stat().st_mtime >= path.stat().st_mtime:
        return out
    data = json.loads(path.read_text())
    held: dict[str, list[dict[str, Any]]] = {}
    for s in data["systems"]:
        if s.get("role") == "controller":
            held.setdefault(s["party"], []).append(s)
    data["processing"] = [
        {"id": f"support-{party}", "name": f"Customer support ({party})", "role": "controller",
         "controller": {"party": party, "contact": "privacy@example.org"},
         "purposes": ["Answering customers' support requests"],
         "data_subjects": ["customers"],
         "data_categories": sorted({c for s in systems for c in s.get("data_categories", [])}),
         "systems": [s["id"] for s in systems], "retention": "3 years after closure",
         "security_measures": ["Encryption at rest and in transit"]}
        for party, systems in sorted(held.items())]
    out.write_text(json.dumps(data))
    return out


def with_back_flows(data: dict[str, Any], share: float, seed: int = 5) -> dict[str, Any]:
    """The same number of flows, a share of them replaced by processor → controller flows
    reversing a controller → processor flow (so each closes a cycle), same data."""
    roles = {s["id"]: s.get("role") for s in data["systems"]}
    forward = [f for f in data["flows"]
               if roles.get(f["from"]) == "controller" and roles.get(f["to"]) != "controller"]
    rnd = random.Random(seed)
    flows = list(data["flows"])
    k = min(int(len(flows) * share), len(forward))
    victims = rnd.sample(range(len(flows)), k)
    for i, f in zip(victims, rnd.sample(forward, k), strict=True):
        back = {key: v for key, v in f.items() if key not in ("id", "from", "to")}
        flows[i] = {"id": flows[i]["id"], "from": f["to"], "to": f["from"], **back}
    return {**data, "flows": flows}


def available(exe: str, argv: list[str]) -> bool:
    """Whether the installed CLI has this command (reports are added by other work)."""
    words = argv[:2] if argv[0] == "report" else argv[:1]
    done = subprocess.run([exe, *words, "--help"], capture_output=True, check=False)
    return done.returncode == 0


def command(exe: str, argv: list[str], path: Path) -> list[str]:
    words = 2 if argv[0] == "report" else 1
    return [exe, *argv[:words], "--map", str(path), "--as-of", AS_OF, *argv[words:]]


def verdict(ratio: float, rss: float, status: str) -> str:
    if status != "ok":
        return "FAIL"
    fails = [w for w, bad in (("time", ratio > MAX_RATIO), ("RSS", rss >= MAX_RSS_MIB)) if bad]
    return "PASS" if not fails else "FAIL " + "+".join(fails)


def bench(exe: str, shape: str, n: int, names: list[str], args: argparse.Namespace) -> None:
    path = map_for(shape, n, args.cyclic)
    label = f"{shape}{'+cyc' if args.cyclic else ''}"
    scratch = Path(tempfile.mkdtemp(prefix="report-bench-"))
    try:
        base: tuple[float, float] | None = None
        for name in ["check", *names]:
            runs = []
            for i in range(args.repeat):
                argv = [a.replace("{out}", str(scratch / f"{name}{i}")) for a in COMMANDS[name]]
                on = with_activities(path) if name == "subject-access" else path
                runs.append(measure(command(exe, argv, on), args.timeout))
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            status = next((r[2] for r in runs if r[2] != "ok"), "ok")
            if base is None:
                base = (wall, rss)
            ratio = wall / base[0]
            print(f"{label:<10} {n:>8} {name:<15} {wall:>8.2f} {rss:>9.0f} {ratio:>8.2f} "
                  f"{rss / base[1]:>6.1f}  {verdict(ratio, rss, status):<10} "
                  f"{'' if status == 'ok' else status}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--shapes", default="check,deep")
    ap.add_argument("--cyclic", type=float, default=0.0, metavar="SHARE",
                    help="replace this share of flows by processor -> controller back-flows")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per command")
    ap.add_argument("--repeat", type=int, default=1, help="runs per command (median shown)")
    ap.add_argument("--only", default="", help="comma-separated command names (check always "
                    f"runs): {', '.join(c for c in COMMANDS if c != 'check')}")
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("residency"))
    wanted = [c for c in COMMANDS if c != "check"
              and (not args.only or c in args.only.split(","))]
    names = []
    for name in wanted:
        if available(exe, COMMANDS[name]):
            names.append(name)
        else:
            print(f"skipped {name}: `residency {' '.join(COMMANDS[name][:2])}` does not exist")
    print(f"targets: each report <= {MAX_RATIO:g}x check's wall time, peak RSS < "
          f"{MAX_RSS_MIB:.0f} MiB")
    print(f"{'shape':<10} {'flows':>8} {'command':<15} {'wall s':>8} {'peak MiB':>9} "
          f"{'x check':>8} {'x RSS':>6}  verdict", flush=True)
    for n in (int(s) for s in args.sizes.split(",")):
        for shape in args.shapes.split(","):
            bench(exe, shape, n, names, args)


if __name__ == "__main__":
    main()
