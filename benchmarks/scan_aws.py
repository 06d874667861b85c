"""Benchmark the AWS collector's concurrency against moto with injected per-call latency.

moto runs in its own process (its own GIL) behind a WSGI wrapper that sleeps LATENCY per
request. For each size: an untimed warm-up scan (moto builds its backends lazily), a timed
scan with --workers, and a timed sequential scan (workers=1), all on the same server.

    .venv/bin/python benchmarks/scan_aws.py --accounts 10 50 --latency-ms 20 --workers 16
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
from typing import Any


def serve(port: int, latency: float) -> None:
    """Child process: moto's WSGI app, every request delayed by `latency` seconds."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

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


def scan(url: str, workers: int) -> tuple[float, int, int, int]:
    """(seconds, API calls, systems, gaps) for one scan of the organization."""
    import boto3

    from residency.collectors.aws import AwsCollector
    from residency.collectors.interface import CollectContext
    from residency.model import Classification

    session = boto3.Session(region_name="us-east-1")
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    session.events.register("before-call", count)
    collector = AwsCollector(session, endpoint_url=url, max_attempts=3)
    start = time.perf_counter()
    inv = collector.collect(CollectContext(Classification(), workers=workers))
    return time.perf_counter() - start, calls[0], len(inv.systems), len(inv.gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    if args.serve:
        serve(args.serve, latency)
        return
    for var, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[var] = value
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                              "--latency-ms", str(args.latency_ms)])
    try:
        wait_up(url)
        print(f"latency {args.latency_ms:g} ms/call, workers {args.workers}, "
              f"cpus {os.cpu_count()}")
        for n in args.accounts:
            seed(url, n)
            scan(url, args.workers)  # warm-up: moto creates backends on first use
            wall, calls, systems, gaps = scan(url, args.workers)
            seq, seq_calls, _, _ = scan(url, 1)
            floor = calls * latency / args.workers
            print(f"{n:>3} accounts × 17+ regions: {calls} calls, {systems} systems, "
                  f"{gaps} gaps | parallel {wall:.2f} s, floor {floor:.2f} s "
                  f"({wall / floor:.2f}× floor) | sequential {seq:.2f} s ({seq_calls} calls) "
                  f"→ {seq / wall:.1f}× faster")
    finally:
        child.terminate()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
