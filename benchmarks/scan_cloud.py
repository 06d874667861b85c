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

Two more paths: `azure-graph` reads the same subscriptions through one Azure Resource Graph
query (pages of --graph-page rows, 1000 as ARG's by default; its floor is the subscription
list and the chain of pages; ARG's rows carry `properties`, so no read by id follows), and
`gcp-in-depth` adds per project the Cloud SQL (a primary and a cross-region replica, CMEK),
Spanner and Bigtable (two clusters) reads and one Cloud KMS key per project (floor: calls ×
latency / workers).

    .venv/bin/python benchmarks/scan_cloud.py --scopes 50 --latency-ms 20 --workers 16
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import requests

from residency.collectors.azure import loopback_collector
from residency.collectors.gcp import GcpCollector, emulator_client_factory
from residency.collectors.gcp_services import GcpRest
from residency.collectors.interface import CollectContext
from residency.demo import fake_arg
from residency.demo.fake_arm import PAGE_SIZE as ARM_PAGE
from residency.demo.fake_arm import FakeArm, storage_account
from residency.demo.fake_gcp_apis import (
    FakeBigtable,
    FakeKms,
    FakeSpanner,
    FakeSqlAdmin,
    bigtable_instance,
    crypto_key,
    spanner_instance,
    sql_instance,
)
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


def depth_peers(scopes: int, latency: float) -> tuple[FakeSqlAdmin, FakeSpanner, FakeBigtable,
                                                    FakeKms]:
    key = "projects/k/locations/europe-west1/keyRings/r/cryptoKeys/k{}"
    sql = FakeSqlAdmin(projects={f"project-{p}": [
        sql_instance(f"project-{p}", "db", "europe-west1", labels=TAGS, replicas=["db-us"],
                     kms_key=key.format(p)),
        sql_instance(f"project-{p}", "db-us", "us-east1", master=f"project-{p}:db")]
        for p in range(scopes)}, latency=latency)
    spanner = FakeSpanner(projects={f"project-{p}": [spanner_instance(
        f"project-{p}", "sp", "eur6", TAGS)] for p in range(scopes)}, latency=latency)
    tables = {f"project-{p}": bigtable_instance(f"project-{p}", "bt", [
        ("c1", "europe-west1-b"), ("c2", "us-east1-c")], TAGS) for p in range(scopes)}
    bigtable = FakeBigtable(instances={p: [t[0]] for p, t in tables.items()},
                            clusters={p: t[1] for p, t in tables.items()}, latency=latency)
    kms = FakeKms(keys={key.format(p): crypto_key(key.format(p), "HSM")
                        for p in range(scopes)}, latency=latency)
    for peer in (sql, spanner, bigtable, kms):
        peer.start()
    return sql, spanner, bigtable, kms


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
    parser.add_argument("--graph-page", type=int, default=1000,
                        help="rows per Resource Graph page (ARG's own: up to 1000)")
    args = parser.parse_args()
    fake_arg.PAGE_SIZE = args.graph_page
    pack = PolicyPack.load()
    print(f"workers {args.workers}, {args.buckets} buckets / resources per scope")
    print("| provider | latency | scopes | calls | systems | parallel | round-trip floor | "
          "× floor | sequential | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for latency_ms, n in [(lat, n) for lat in args.latency_ms for n in args.scopes]:
        latency = latency_ms / 1000
        gcs = gcs_peer(n, args.buckets, latency)
        arm = arm_peer(n, args.buckets, latency)
        depth = depth_peers(n, latency)
        try:
            projects = [f"project-{p}" for p in range(n)]
            gcp = GcpCollector(emulator_client_factory(gcs.url), projects)
            paired = partial(pack.paired_region, "azure")
            azure = loopback_collector(paired, arm.url)
            graph = loopback_collector(paired, arm.url, resource_graph=True)
            rest = GcpRest(requests.Session(), {"sqladmin": depth[0].url, "spanner":
                                                depth[1].url, "bigtableadmin": depth[2].url,
                                                "cloudkms": depth[3].url}, retries=0)
            in_depth = GcpCollector(emulator_client_factory(gcs.url), projects, rest=rest)
            counted: list[Any] = _Chain([gcs.requests, *(p.requests for p in depth)])
            for name, collector, reqs, page in (
                    ("gcp", gcp, gcs.requests, GCS_PAGE), ("azure", azure, arm.requests, ARM_PAGE),
                    ("azure-graph", graph, arm.requests, fake_arg.PAGE_SIZE),
                    ("gcp-in-depth", in_depth, counted, GCS_PAGE)):
                timed(collector.collect, reqs, args.workers)  # warm-up: imports, auth
                wall, calls, systems = timed(collector.collect, reqs, args.workers)
                seq, _, _ = timed(collector.collect, reqs, 1)
                floor = _floor(name, calls, n, args.buckets, page, latency, args.workers)
                print(f"| {name} | {latency_ms:g} ms | {n} | {calls} | {systems} | "
                      f"{wall:.2f} s | {floor:.2f} s | {wall / floor:.2f}× | {seq:.2f} s | "
                      f"{seq / wall:.1f}× |", flush=True)
        finally:
            for peer in (gcs, arm, *depth):
                peer.stop()


class _Chain(list):  # type: ignore[type-arg]
    """The requests of several peers counted as one (len only)."""

    def __init__(self, parts: list[list[Any]]) -> None:
        super().__init__()
        self._parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)


def _floor(name: str, calls: int, n: int, per_scope: int, page: int, latency: float,
           workers: int) -> float:
    """The round-trip floor: calls × latency / workers, or the dependent chains if longer."""
    rounds = math.ceil(n / min(workers, n))
    if name == "azure-graph":  # the subscription list, 2 dependent query chains, then reads
        chain = 1 + math.ceil(n / page) + math.ceil(n * per_scope / page)
        return max(calls * latency / workers, chain * latency)
    chain = max(1, math.ceil(per_scope / page))
    return max(calls * latency / workers, rounds * chain * latency) + (
        latency if name == "azure" else 0.0)


if __name__ == "__main__":
    main()
