"""Benchmark the AWS collector's concurrency against moto with injected per-call latency.

moto runs in its own process (its own GIL) behind a WSGI wrapper that sleeps LATENCY per
request. For each size: an untimed warm-up scan (moto builds its backends lazily), a timed
scan with --workers, and a timed sequential scan (workers=1), all on the same server.

    .venv/bin/python benchmarks/scan_aws.py --accounts 10 50 --latency-ms 20 --workers 16
    .venv/bin/python benchmarks/scan_aws.py --accounts 50 --latency-ms 20 100 --workers 16 32
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def serve(port: int, latency: float) -> None:
    """Child process: moto's WSGI app, every request delayed by `latency` seconds.

    moto shares the machine's cores with the scanner, so two of its per-request costs that
    real AWS never puts on our CPU are removed (disclosed in the output):
    - the ~600 default AMIs per region, which every tagging-API call walks;
    - a directory listing of moto's own package on every request (its dispatcher calls
      `list_of_moto_modules()` per request; the result never changes while it runs).
    """
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)

    def slow(environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            time.sleep(latency)
        return app(environ, start_response)

    run_simple("127.0.0.1", port, slow, threaded=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str) -> None:
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - our loopback URL
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"moto did not start at {url}")


def seed(url: str, accounts: int) -> None:
    """An organization of `accounts` accounts; a bucket and a table in the management one."""
    import boto3

    reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    urllib.request.urlopen(reset).close()  # noqa: S310 - loopback
    org = boto3.client("organizations", region_name="us-east-1", endpoint_url=url)
    org.create_organization(FeatureSet="ALL")
    for i in range(accounts - 1):
        org.create_account(AccountName=f"member-{i}", Email=f"m{i}@example.com")
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=url)
    s3.create_bucket(Bucket="bench-eu", CreateBucketConfiguration={"LocationConstraint":
                                                                   "eu-west-1"})
    s3.put_bucket_tagging(Bucket="bench-eu", Tagging={"TagSet": [
        {"Key": "data-classification", "Value": "servicedesk"}]})
    boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=url).create_table(
        TableName="bench", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the moto process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scan(url: str, workers: int) -> tuple[float, int, int, int, float]:
    """(seconds, API calls, systems, gaps, client CPU seconds) for one scan."""
    import boto3

    from residency.collectors.aws import AwsCollector
    from residency.collectors.interface import CollectContext
    from residency.demo.moto_services import MotoServiceGaps
    from residency.model import Classification

    # moto lacks EFS replication and ElastiCache global datastores (HTTP 500): answer them
    # as the real services do for an empty account, so the figures are of the scanner, not
    # of retried errors (the same fillers the demo and the tests use)
    session = MotoServiceGaps().install(boto3.Session(region_name="us-east-1"))
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    session.events.register("before-call", count)
    collector = AwsCollector(session, endpoint_url=url, max_attempts=3)
    cpu, start = time.process_time(), time.perf_counter()
    inv = collector.collect(CollectContext(Classification(), workers=workers))
    wall = time.perf_counter() - start
    return wall, calls[0], len(inv.systems), len(inv.gaps), time.process_time() - cpu


def start_server(latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                              "--latency-ms", str(latency_ms)])
    wait_up(url)
    return child, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[20.0])
    parser.add_argument("--workers", type=int, nargs="+", default=[16])
    parser.add_argument("--no-sequential", action="store_true",
                        help="skip the sequential run (slow at high latency)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.latency_ms[0] / 1000)
        return
    for var, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[var] = value
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    cores = os.cpu_count() or 1
    print(f"cpus {cores}; moto in its own process on the same cores. Round-trip floor = "
          f"calls × latency / workers; CPU floor = the least time the measured CPU allows: "
          f"max(client CPU, moto CPU, both / {cores} cores), each process having one GIL.")
    print("| latency | workers | accounts | calls | gaps | parallel | round-trip floor | "
          "× floor | CPU floor | client ms/call | moto ms/call | sequential | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for latency_ms in args.latency_ms:
        child, url = start_server(latency_ms)
        try:
            for n in args.accounts:
                seed(url, n)
                scan(url, args.workers[0])  # warm-up: moto creates backends on first use
                seq_text, seq = "-", None
                if not args.no_sequential:
                    seq = scan(url, 1)[0]
                    seq_text = f"{seq:.1f} s"
                for workers in args.workers:
                    before = server_cpu(child.pid)
                    wall, calls, _systems, gaps, cpu = scan(url, workers)
                    moto_cpu = server_cpu(child.pid) - before
                    floor = calls * latency_ms / 1000 / workers
                    cpu_floor = max(cpu, moto_cpu, (cpu + moto_cpu) / cores)
                    speed = f"{seq / wall:.1f}×" if seq else "-"
                    ratio = f"{wall / floor:.2f}×" if floor else "-"
                    print(f"| {latency_ms:g} ms | {workers} | {n} | {calls} | {gaps} | "
                          f"{wall:.2f} s | {floor:.2f} s | {ratio} | "
                          f"{cpu_floor:.2f} s | {cpu / calls * 1000:.2f} | "
                          f"{moto_cpu / calls * 1000:.2f} | {seq_text} | {speed} |",
                          flush=True)
        finally:
            child.terminate()
            child.wait(timeout=10)


if __name__ == "__main__":
    main()
