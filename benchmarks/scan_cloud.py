"""Benchmark the Google Cloud and Azure collectors' concurrency against the local peers with
injected per-call latency.

The peers are the demo's Cloud Storage JSON API and ARM servers (the same ones the tests
use), each answer delayed by LATENCY. N projects (GCP) and N subscriptions (Azure), each
with BUCKETS buckets / resources, listed PAGE_SIZE (2) per page, so every project or
subscription is a chain of dependent page calls. For each size: a timed run with
--workers, then a sequential one (workers=1), printed side by side with the round-trip
floor: calls × latency / workers, or, if longer, the rounds of page chains the workers
must run one after another (ceil(scopes / workers) × pages × latency). The peers run in
this process, so their CPU shares the collector's GIL.

    .venv/bin/python benchmarks/scan_cloud.py --scopes 50 --latency-ms 20 --workers 16
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from residency.collectors.azure import loopback_collector
from residency.collectors.gcp import GcpCollector, emulator_client_factory
from residency.collectors.interface import CollectContext
from residency.demo.fake_arm import PAGE_SIZE as ARM_PAGE
from residency.demo.fake_arm import FakeArm, storage_account
from residency.demo.fake_gcs import PAGE_SIZE as GCS_PAGE
from residency.demo.fake_gcs import FakeGcs, bucket
from residency.model import Classification, ClassificationValue
from residency.policy.pack import PolicyPack

CLASSIFICATION = Classification(
    "data-classification", (("servicedesk", ClassificationValue(frozenset({"tickets"}))),))
TAGS = {"data-classification": "servicedesk"}


def gcs_peer(scopes: int, per_scope: int, latency: float) -> FakeGcs:
    return FakeGcs(projects={
        f"project-{p}": [bucket(f"b-{p}-{i}", "EUROPE-WEST1", "region", TAGS)
                         for i in range(per_scope)]
        for p in range(scopes)
    }, latency=latency).start()


def arm_peer(scopes: int, per_scope: int, latency: float) -> FakeArm:
    subs = [f"00000000-0000-4000-8000-{s:012d}" for s in range(scopes)]
    return FakeArm(subscriptions=subs, resources={
        sub: [storage_account(sub, "rg", f"sa{i}", "westeurope", "Standard_GRS", TAGS)
              for i in range(per_scope)]
        for sub in subs
    }, latency=latency).start()


def timed(collect: Callable[[CollectContext], Any], requests: list[Any],
          workers: int) -> tuple[float, int, int]:
    """(seconds, calls, systems) of one collection."""
    before = len(requests)
    start = time.perf_counter()
    inv = collect(CollectContext(CLASSIFICATION, workers=workers))
    return time.perf_counter() - start, len(requests) - before, len(inv.systems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scopes", type=int, nargs="+", default=[10, 50],
                        help="projects (GCP) and subscriptions (Azure)")
    parser.add_argument("--buckets", type=int, default=6, help="per project / subscription")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[20.0])
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    pack = PolicyPack.load()
    print(f"workers {args.workers}, {args.buckets} buckets / resources per scope")
    print("| provider | latency | scopes | calls | systems | parallel | round-trip floor | "
          "× floor | sequential | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for latency_ms, n in [(lat, n) for lat in args.latency_ms for n in args.scopes]:
        latency = latency_ms / 1000
        gcs = gcs_peer(n, args.buckets, latency)
        arm = arm_peer(n, args.buckets, latency)
        try:
            gcp = GcpCollector(emulator_client_factory(gcs.url),
                               [f"project-{p}" for p in range(n)])
            azure = loopback_collector(partial(pack.paired_region, "azure"), arm.url)
            for name, collector, requests, page in (("gcp", gcp, gcs.requests, GCS_PAGE),
                                                    ("azure", azure, arm.requests, ARM_PAGE)):
                timed(collector.collect, requests, args.workers)  # warm-up: imports, auth
                wall, calls, systems = timed(collector.collect, requests, args.workers)
                seq, _, _ = timed(collector.collect, requests, 1)
                # each scope is a chain of dependent page calls, a worker per chain; Azure
                # first lists the subscriptions
                chain = max(1, math.ceil(args.buckets / page))
                rounds = math.ceil(n / min(args.workers, n))
                floor = max(calls * latency / args.workers, rounds * chain * latency) + (
                    latency if name == "azure" else 0.0)
                print(f"| {name} | {latency_ms:g} ms | {n} | {calls} | {systems} | "
                      f"{wall:.2f} s | {floor:.2f} s | {wall / floor:.2f}× | {seq:.2f} s | "
                      f"{seq / wall:.1f}× |", flush=True)
        finally:
            gcs.stop()
            arm.stop()


if __name__ == "__main__":
    main()
