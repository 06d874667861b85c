"""Generate a synthetic service-desk data map with N flows (JSON), deterministic by seed.

Layers of systems: controllers in the EEA/UK/CH → processors (helpdesk SaaS) →
sub-processors → sub-sub-processors, so onward-hop analysis has real chains to follow;
about 1% of flows point back up the chain to make cycles. Safeguards are a mix of
valid SCCs, SCCs without a current TIA, old SCCs, IDTAs, derogations and none:
`--profile realistic` (default) has most flows covered, `--profile worst` has most
flows in breach (more findings, a bigger report).

    python benchmarks/check_generate.py 100000 -o benchmarks/out/map-100k.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

CONTROLLER_COUNTRIES = ["IE", "DE", "FR", "NL", "SE", "ES", "IT", "PL", "GB", "CH"]
PROCESSOR_COUNTRIES = ["US", "US", "US", "IN", "JP", "CA", "BR", "SG", "AU", "DE", "IE", "GB",
                       "KR", "IL", "PH", "ZA", "MX", "NL", "FR"]
CLOUD = [("aws", "eu-west-1"), ("aws", "us-east-1"), ("aws", "ap-south-1"), ("gcp", "EU"),
         ("gcp", "us-central1"), ("gcp", "EUR4"), ("azure", "westeurope"), ("azure", "brazilsouth"),
         ("azure", "uksouth"), ("aws", "eu-central-1")]
CATEGORIES = ["contact_details", "ticket_content", "attachments", "call_recordings",
              "chat_transcripts", "account_data"]
LAYERS = 4


# cumulative thresholds: valid SCC + fresh TIA, SCC without TIA, old SCC, IDTA, derogation
PROFILES = {
    "realistic": (0.62, 0.70, 0.73, 0.76, 0.79),
    "worst": (0.32, 0.45, 0.55, 0.62, 0.70),
}


def generate(  # noqa: PLR0915 - one recipe
    n_flows: int, seed: int = 7, profile: str = "realistic"
) -> dict[str, Any]:
    valid, no_tia, old, idta, derog = PROFILES[profile]
    rnd = random.Random(seed)
    n_systems = max(40, n_flows // 5)
    n_parties = max(10, n_systems // 4)
    parties = []
    for i in range(n_parties):
        controller = i % 5 == 0
        country = rnd.choice(CONTROLLER_COUNTRIES if controller else PROCESSOR_COUNTRIES)
        certs = ["eu_us_dpf"] if country == "US" and rnd.random() < 0.7 else []
        if certs and rnd.random() < 0.5:
            certs.append("uk_extension")
        subject_to = {"CA": ["pipeda"], "JP": ["appi"], "KR": ["pipa"]}.get(country, [])
        parties.append({"id": f"p{i}", "name": f"Party {i}", "country": country,
                        "certifications": certs, "subject_to": subject_to})
    controllers = [p for i, p in enumerate(parties) if i % 5 == 0]
    processors = [p for i, p in enumerate(parties) if i % 5 != 0]
    systems = []
    layer_of: dict[int, list[str]] = {k: [] for k in range(LAYERS)}
    for i in range(n_systems):
        layer = 0 if i % 8 == 0 else 1 + i % (LAYERS - 1)
        party = rnd.choice(controllers if layer == 0 else processors)
        if rnd.random() < 0.5:
            provider, region = rnd.choice(CLOUD)
            location: dict[str, Any] = {"provider": provider, "region": region}
        else:
            location = {"country": party["country"]}
        system: dict[str, Any] = {
            "id": f"s{i}", "party": party["id"],
            "role": "controller" if layer == 0 else "processor",
            "location": location,
        }
        if layer == 0:
            system["data_categories"] = rnd.sample(CATEGORIES, 3)
        if rnd.random() < 0.15:
            system["access_from"] = rnd.sample(["US", "IN", "PH", "GB"], 1)
        systems.append(system)
        layer_of[layer].append(system["id"])
    role = {s["id"]: s["role"] for s in systems}
    flows = []
    for i in range(n_flows):
        if rnd.random() < 0.01:  # a back edge: cycles must terminate
            src_layer, dst_layer = LAYERS - 1, 1
        else:
            src_layer = rnd.randrange(LAYERS - 1)
            dst_layer = src_layer + 1
        src = rnd.choice(layer_of[src_layer])
        dst = rnd.choice(layer_of[dst_layer])
        module = {("controller", "processor"): 2, ("processor", "processor"): 3,
                  ("controller", "controller"): 1, ("processor", "controller"): 4}[
            (role[src], role[dst])]
        r = rnd.random()
        safeguards: list[dict[str, Any]] = []
        if r < no_tia:
            sg: dict[str, Any] = {"type": "scc", "instrument": "2021/914", "module": module,
                                  "signed": f"202{rnd.randrange(2, 6)}-0{rnd.randrange(1, 9)}-15"}
            if r < valid:  # reviewed within the last year
                sg["tia"] = {"ref": f"TIA-{i}", "date": f"2026-0{rnd.randrange(1, 9)}-01"}
            elif rnd.random() < 0.5:
                sg["tia"] = {"ref": f"TIA-{i}", "date": "2024-03-01"}
            safeguards.append(sg)
            if r < valid and rnd.random() < 0.85:  # UK data rides on the Addendum
                safeguards.append({"type": "uk_addendum", "signed": sg["signed"]})
        elif r < old:
            safeguards.append({"type": "scc", "instrument": "2010/87", "module": module,
                               "signed": "2019-05-01"})
        elif r < idta:
            safeguards.append({"type": "idta", "signed": "2023-04-01",
                               "tia": {"ref": f"TRA-{i}", "date": "2026-05-01"}})
        elif r < derog:
            safeguards.append({"type": "derogation", "article": "49(1)(b)"})
        flow: dict[str, Any] = {"id": f"f{i}", "from": src, "to": dst, "safeguards": safeguards,
                                "recurring": rnd.random() < 0.9}
        if rnd.random() < 0.5:
            flow["data_categories"] = rnd.sample(CATEGORIES, 2)
        flows.append(flow)
    return {
        "version": 1,
        "parties": parties,
        "systems": systems,
        "flows": flows,
        "residency": [{"data_categories": ["call_recordings"], "allowed": ["EEA", "GB", "CH"]}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("flows", type=int)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile", choices=tuple(PROFILES), default="realistic")
    args = ap.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(generate(args.flows, args.seed, args.profile)))


if __name__ == "__main__":
    main()
