"""Generate a deep, cyclic data map with N flows (JSON), deterministic by seed.

A deliberately different shape from check_generate.py (four wide layers, 1% back edges):
chains of `--depth` (default 12) onward hops, a party for every two systems, remote access
on 30% of systems, and cycles of three kinds — processors sending data back to their
controller, flows back up the chain, and pairs of processors exchanging data. Safeguards
are mixed and partly invalid (wrong SCC module, Art. 28 clauses relied on as a transfer
tool, expired, old SCCs, missing dates and TIAs; names the loader rejects are left out),
so the reports have every kind of row and finding to render.

    python benchmarks/deep_generate.py 100000 -o benchmarks/out/deep-100k.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

EEA = ["IE", "DE", "FR", "NL", "SE", "ES", "IT", "PL", "AT", "BE", "DK", "FI", "PT"]
ELSEWHERE = ["US", "US", "IN", "JP", "CA", "BR", "SG", "AU", "KR", "IL", "PH", "ZA", "MX", "GB",
             "CH", "AR", "NZ", "UY", "TR", "AE"]
CLOUD = [("aws", "eu-west-1"), ("aws", "us-east-1"), ("aws", "ap-southeast-1"),
         ("gcp", "europe-west3"), ("gcp", "us-central1"), ("gcp", "asia-northeast1"),
         ("azure", "westeurope"), ("azure", "eastus"), ("azure", "centralindia")]
CATEGORIES = ["contact_details", "ticket_content", "attachments", "call_recordings",
              "chat_transcripts", "account_data", "payment_data", "usage_logs"]
ACCESS = ["US", "IN", "PH", "GB", "BR", "UA"]


def _safeguards(rnd: random.Random, i: int, module: int) -> list[dict[str, Any]]:
    """One of eleven shapes; about half are valid on 2026-11-30."""
    r = rnd.randrange(11)
    signed = f"202{rnd.randrange(2, 6)}-0{rnd.randrange(1, 9)}-15"
    tia = {"ref": f"TIA-{i}", "date": f"2026-0{rnd.randrange(1, 9)}-01"}
    shapes: list[list[dict[str, Any]]] = [
        [{"type": "scc", "instrument": "2021/914", "module": module, "signed": signed,
          "tia": tia}],
        [{"type": "scc", "instrument": "2021/914", "module": module, "signed": signed,
          "tia": tia}, {"type": "uk_addendum", "signed": signed}],
        [{"type": "idta", "signed": "2023-04-01", "tia": tia}],
        [{"type": "derogation", "article": "49(1)(b)"}],
        [{"type": "scc", "instrument": "2021/914", "module": module % 4 + 1,  # wrong module
          "signed": signed, "tia": tia}],
        [{"type": "scc", "instrument": "2021/914", "module": module}],  # no date, no TIA
        [{"type": "scc", "instrument": "2010/87", "module": module, "signed": "2019-05-01"}],
        [{"type": "scc", "instrument": "2021/915", "module": module, "signed": signed}],
        [{"type": "scc", "instrument": "2021/914", "module": module, "signed": "2022-01-01",
          "expires": "2025-01-01", "tia": tia}],
        [{"type": "idta", "signed": "2023-04-01"}],  # no TIA
        [],
    ]
    return shapes[r]


def _edges(
    rnd: random.Random, n_flows: int, depth: int, levels: list[list[str]], ids: list[str]
) -> list[tuple[str, str]]:
    """Chains first (every system fed from the level above), then onward hops and cycles."""
    level_of = {sid: k for k, members in enumerate(levels) for sid in members}
    edges: list[tuple[str, str]] = []
    for k in range(1, depth + 1):
        edges.extend((rnd.choice(levels[k - 1]), sid) for sid in levels[k])
    while len(edges) < n_flows:
        r = rnd.random()
        src = rnd.choice(ids)
        k = level_of[src]
        if r < 0.05 and k > 0:  # back to a controller: the cycle that hung the reports
            dst = rnd.choice(levels[0])
        elif r < 0.10 and k > 1:  # back up the chain
            dst = rnd.choice(levels[rnd.randrange(1, k)])
        elif r < 0.13 and k > 0:  # two processors exchanging data
            dst = rnd.choice(levels[k])
        elif k < depth:
            dst = rnd.choice(levels[min(depth, k + rnd.choice((1, 1, 1, 2, 3)))])
        else:
            continue
        if dst != src:
            edges.append((src, dst))
    return edges[:n_flows]


def generate(n_flows: int, seed: int = 11, depth: int = 12) -> dict[str, Any]:
    rnd = random.Random(seed)
    n_systems = max(4 * (depth + 1), n_flows // 3)
    n_parties = max(8, n_systems // 2)
    parties = []
    for i in range(n_parties):
        controller = i % 6 == 0
        country = rnd.choice(EEA if controller else ELSEWHERE + EEA[:4])
        certs = ["eu_us_dpf"] if country == "US" and rnd.random() < 0.5 else []
        subject_to = {"CA": ["pipeda"], "JP": ["appi"], "KR": ["pipa"]}.get(country, [])
        parties.append({"id": f"dp{i}", "name": f"Deep Party {i}", "country": country,
                        "certifications": certs, "subject_to": subject_to,
                        "group": f"g{i % 40}" if rnd.random() < 0.2 else None})
    controllers = [p for i, p in enumerate(parties) if i % 6 == 0]
    processors = [p for i, p in enumerate(parties) if i % 6 != 0]
    levels: list[list[str]] = [[] for _ in range(depth + 1)]
    systems = []
    for i in range(n_systems):
        level = i % (depth + 1)
        party = rnd.choice(controllers if level == 0 else processors)
        if rnd.random() < 0.6:
            provider, region = rnd.choice(CLOUD)
            location: dict[str, Any] = {"provider": provider, "region": region}
        else:
            location = {"country": party["country"]}
        system: dict[str, Any] = {"id": f"d{i}", "party": party["id"],
                                  "role": "controller" if level == 0 else "processor",
                                  "location": location}
        if level == 0 or rnd.random() < 0.05:
            system["data_categories"] = rnd.sample(CATEGORIES, 3)
        if rnd.random() < 0.3:
            system["access_from"] = rnd.sample(ACCESS, rnd.randrange(1, 3))
        systems.append({k: v for k, v in system.items() if v is not None})
        levels[level].append(system["id"])
    role = {s["id"]: s["role"] for s in systems}
    edges = _edges(rnd, n_flows, depth, levels, [s["id"] for s in systems])
    flows = []
    for i, (src, dst) in enumerate(edges):
        module = {("controller", "processor"): 2, ("processor", "processor"): 3,
                  ("controller", "controller"): 1, ("processor", "controller"): 4}[
            (role[src], role[dst])]
        flow: dict[str, Any] = {"id": f"df{i}", "from": src, "to": dst,
                                "safeguards": _safeguards(rnd, i, module),
                                "recurring": rnd.random() < 0.8}
        if rnd.random() < 0.4:
            flow["data_categories"] = rnd.sample(CATEGORIES, 2)
        if rnd.random() < 0.3:
            flow["purpose"] = rnd.choice(("support", "hosting", "analytics", "backup"))
        flows.append(flow)
    return {
        "version": 1,
        "parties": [{k: v for k, v in p.items() if v is not None} for p in parties],
        "systems": systems,
        "flows": flows,
        "residency": [{"data_categories": ["call_recordings"], "allowed": ["EEA", "CH"]}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("flows", type=int)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--depth", type=int, default=12, help="onward hops in the longest chains")
    args = ap.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(generate(args.flows, args.seed, args.depth)))


if __name__ == "__main__":
    main()
