"""The rule catalogue: stable IDs, titles, severities, the law behind them and the fix.

IDs never change meaning once released. Each rule has pass/fail cases in
`tests/rules/<ID>.yaml`, run by one parametrised test; `residency rules` and the README's
rule reference are generated from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from residency.model import Severity


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: Severity
    article: str
    rationale: str
    remediation: str
    source: str


_GDPR = "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32016R0679"
_EDPB_0521 = (
    "https://www.edpb.europa.eu/our-work-tools/our-documents/guidelines/"
    "guidelines-052021-interplay-between-application-article-3-and_en"
)
_EDPB_0120 = (
    "https://www.edpb.europa.eu/our-work-tools/our-documents/recommendations/"
    "recommendations-012020-measures-supplement-transfer_en"
)
_EDPB_0218 = (
    "https://www.edpb.europa.eu/our-work-tools/our-documents/guidelines/"
    "guidelines-22018-derogations-article-49-under-regulation_en"
)

RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "RES-T001",
            "Transfer without a legal basis",
            Severity.ERROR,
            "GDPR Art. 44",
            "Personal data leave the regime's free-flow area for a country with no adequacy "
            "decision covering the importer, no valid Art. 46/47 safeguard and no Art. 49 "
            "derogation.",
            "Sign SCCs (module matching the roles) or IDTA/Addendum for UK data, or stop the flow.",
            _GDPR,
        ),
        Rule(
            "RES-T002",
            "Adequacy decision does not cover this importer",
            Severity.ERROR,
            "GDPR Art. 45",
            "The destination has a partial adequacy decision (e.g. US: DPF-certified "
            "organisations only; Canada: PIPEDA) and the importer is not declared within its "
            "scope, and no other basis applies.",
            "Confirm the importer's certification (e.g. `certifications: [eu_us_dpf]`) or "
            "coverage (`subject_to: [pipeda]`), or sign SCCs.",
            _GDPR,
        ),
        Rule(
            "RES-T003",
            "Onward transfer without a legal basis",
            Severity.ERROR,
            "GDPR Art. 44 (second sentence)",
            "Data already outside the free-flow area are passed on to a further third country "
            "or importer; Chapter V protection follows the data, so the onward hop needs its "
            "own basis.",
            "Require the importer to sign SCCs module 3 with its sub-processor (Clause 8.7/8.8), "
            "or stop the onward flow.",
            _GDPR,
        ),
        Rule(
            "RES-T004",
            "Art. 49 derogation used for a recurring transfer",
            Severity.WARNING,
            "GDPR Art. 49, EDPB Guidelines 2/2018",
            "Derogations are exceptions for occasional, non-repetitive transfers; a recurring "
            "flow in a stable relationship needs an adequacy decision or an Art. 46 safeguard.",
            "Put SCCs (or IDTA/Addendum) in place for the recurring flow.",
            _EDPB_0218,
        ),
        Rule(
            "RES-T005",
            "Safeguard not valid on the evaluation date",
            Severity.ERROR,
            "GDPR Art. 46",
            "The safeguard cannot be relied on: an old SCC decision after its transition "
            "ended (2022-12-27 for EU transfers), an invalidated framework, an expired or "
            "not-yet-signed contract, an instrument that is not a transfer tool, or a "
            "malformed entry (missing module, date or article).",
            "Replace it with the current instrument (SCC 2021/914, IDTA or Addendum) and "
            "record the signing date.",
            _GDPR,
        ),
        Rule(
            "RES-T006",
            "SCC module does not fit the parties' roles",
            Severity.WARNING,
            "Implementing Decision (EU) 2021/914, Annex (Section I)",
            "Module 1 is controller→controller, 2 controller→processor, 3 "
            "processor→processor, 4 processor→controller; a module that does not match the "
            "roles puts the wrong obligations on the parties.",
            "Sign the module that matches the exporter's and importer's roles.",
            "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32021D0914",
        ),
        Rule(
            "RES-T007",
            "Transfer-impact assessment missing or out of date",
            Severity.WARNING,
            "GDPR Art. 46(1), SCC Clause 14, EDPB Recommendations 01/2020",
            "An Art. 46/47 tool to a country without adequacy for this importer must be "
            "backed by a documented assessment of the destination's law and practice, "
            "re-evaluated at appropriate intervals.",
            "Write or review the TIA (`residency report tia`) and record `tia: {ref, date}`.",
            _EDPB_0120,
        ),
        Rule(
            "RES-T008",
            "Stale safeguard beside a valid basis",
            Severity.WARNING,
            "GDPR Art. 5(2), Art. 46 (record hygiene)",
            "A safeguard that was valid once (an old SCC set past its transition, an expired "
            "contract) is still listed for a transfer that another basis covers in every "
            "destination: not an unlawful transfer, but a record that misstates what the "
            "transfer relies on.",
            "Remove the stale entry from the map (or replace it with the current instrument).",
            _GDPR,
        ),
        Rule(
            "RES-T009",
            "Safeguard not drafted for this importer",
            Severity.WARNING,
            "GDPR Art. 3(2), Art. 44; Implementing Decision (EU) 2021/914 Art. 1(1), recital 7",
            "The importer is itself subject to the GDPR under Art. 3(2). The data still leave "
            "the EEA, so it is a transfer, but SCC 2021/914 are drafted only for importers not "
            "subject to the GDPR: they duplicate obligations it already has and the EDPB asks "
            "for clauses fitting that case.",
            "Record the importer's Art. 3(2) status, adapt the clauses with counsel, and "
            "replace them with the Art. 3(2) clauses once the Commission adopts them.",
            "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32021D0914",
        ),
        Rule(
            "RES-L001",
            "Location cannot be resolved to countries",
            Severity.ERROR,
            "GDPR Art. 44 (fail closed)",
            "An unknown region, provider or unresolved plan value means the countries the data "
            "may reach are unknown; it is treated as 'any country' and never passes.",
            "Fix the region name, add it to the policy pack's region table, or declare "
            "`location: {country: ..}`.",
            _GDPR,
        ),
        Rule(
            "RES-L002",
            "Organisation residency rule broken",
            Severity.ERROR,
            "Organisation policy",
            "The organisation's own rule limits where these data categories may live (and, "
            "unless disabled, be accessed from); this system is outside it.",
            "Move the data, remove the remote access, or change the rule.",
            "https://github.com/residency/residency#residency-rules",
        ),
        Rule(
            "RES-K001",
            "Encryption key held or replicated outside the regime's area",
            Severity.WARNING,
            "GDPR Art. 46(1), EDPB Recommendations 01/2020 step 4 (Annex 2, Use Case 1)",
            "Encryption at rest protects data against a third country's authorities only if "
            "the key is held in the EEA (the regime's free-flow area) or an adequate country. "
            "This store's key, or a multi-Region replica of it, is held elsewhere, so the "
            "encryption cannot be counted as a supplementary measure in a TIA.",
            "Use a single-Region customer-managed key in the store's area (remove the "
            "replicas outside it), or an external key store held in the area.",
            _EDPB_0120,
        ),
        Rule(
            "RES-K002",
            "Only a provider-managed key protects classified data",
            Severity.INFO,
            "GDPR Art. 32, EDPB Recommendations 01/2020 step 4 (Annex 2, Use Case 1)",
            "Every key of this store of classified data is managed by the cloud provider "
            "(AWS managed or owned, Microsoft- or Google-managed), which can decrypt without "
            "the customer: a TIA cannot rely on that encryption against the provider's "
            "disclosure obligations.",
            "Encrypt with a customer-managed key (stronger: a CloudHSM/Managed HSM key or an "
            "external key store / Cloud EKM held in the area), or do not rely on encryption "
            "in the TIA.",
            _EDPB_0120,
        ),
        Rule(
            "RES-I001",
            "Collected resource without a classification",
            Severity.WARNING,
            "GDPR Art. 30",
            "A cloud resource has no classification tag/label, so whether it holds personal "
            "data is unknown; it is kept in the inventory.",
            "Tag the resource with the map's classification key, or scan with "
            "`--classified-only` if unclassified resources are out of scope.",
            "https://github.com/residency/residency#classification",
        ),
        Rule(
            "RES-I002",
            "Same-entity processing in a third country",
            Severity.INFO,
            "EDPB Guidelines 05/2021",
            "The data reach a third country but stay within the same legal entity: not a "
            "Chapter V transfer, yet Art. 32 security and the foreign law's reach still apply.",
            "Record it and weigh the destination's law in the security assessment.",
            _EDPB_0521,
        ),
        Rule(
            "RES-I003",
            "Classification value not declared in the map",
            Severity.ERROR,
            "GDPR Art. 30, Art. 5(2) (fail closed)",
            "A resource carries the classification tag with a value the map does not list "
            "(a typo, a different case, a trailing space): it is classified, so it may hold "
            "personal data, but which categories is unknown. It is kept and never passes.",
            "Fix the tag value on the resource, or add the value under `classification.values`.",
            "https://github.com/residency/residency#classification",
        ),
        Rule(
            "RES-I004",
            "Classified resource judged for nothing",
            Severity.ERROR,
            "GDPR Art. 44, Art. 5(2) (fail closed)",
            "A resource holds classified personal data but no flow reaches it (its "
            "classification value has no `fed_by`) and no residency rule covers its "
            "categories, so neither a transfer nor a location rule could be judged.",
            "Give the classification value a `fed_by` system, or add a residency rule for "
            "its categories.",
            "https://github.com/residency/residency#classification",
        ),
        Rule(
            "RES-I005",
            "Classification unknown until apply",
            Severity.WARNING,
            "GDPR Art. 30, Art. 5(2) (fail closed)",
            "The resource's classification tag comes from a value Terraform only knows at "
            "apply. Its location is known and kept; it is judged as possibly holding every "
            "classified category, fed by every classification value's source.",
            "Set the classification tag from a known value (a literal or a variable), or "
            "accept the worst-case judgement.",
            "https://github.com/residency/residency#classification",
        ),
        Rule(
            "RES-P001",
            "Evaluation date outside what the policy pack models",
            Severity.WARNING,
            "GDPR Art. 45(3)-(5) (adequacy decisions are reviewed, amended and repealed)",
            "The law is evaluated on a date after the pack's `last_checked` (decisions "
            "adopted, amended or invalidated since then are not in the pack), or before a "
            "regime's `modelled_from` (e.g. the Swiss FADP before 2023-09-01: the old Act's "
            "rules are not modelled), so the verdicts may be wrong.",
            "Update the policy pack (or point `--policies` at a current one), or evaluate on "
            "a date the pack models.",
            "https://github.com/residency/residency#updating-the-policy-packs",
        ),
        Rule(
            "RES-S001",
            "Scope could not be scanned (coverage gap)",
            Severity.ERROR,
            "GDPR Art. 5(2) (accountability; fail closed)",
            "An account, region, project or subscription could not be read, so data there are "
            "unknown; a scan with gaps never passes.",
            "Grant the read-only role printed by `residency policies iam aws|gcp|azure` or "
            "exclude the scope explicitly.",
            "https://github.com/residency/residency#least-privilege",
        ),
        Rule(
            "RES-S002",
            "Collected evidence out of date",
            Severity.WARNING,
            "GDPR Art. 28(2), 28(4) and 44 (onward transfers by sub-processors must be known)",
            "A scan relied on evidence older than the pack allows (a vendor's sub-processor "
            "list shipped with the pack): the vendor may have added sub-processors, and so "
            "onward transfers, since it was retrieved.",
            "Point the map at the vendor's current list (`subprocessors:` file or URL) or "
            "update the policy pack.",
            "https://github.com/residency/residency#saas-service-desk-collectors",
        ),
        Rule(
            "RES-W001",
            "Waiver expired",
            Severity.WARNING,
            "GDPR Art. 5(2) (accountability)",
            "A waiver accepted a finding until a date that has passed; the finding counts again "
            "and the waiver's owner must renew or remove it.",
            "Review the transfer and its SCC/DPA/TIA reference, then extend `expires` or delete "
            "the waiver.",
            "https://github.com/residency/residency#waivers",
        ),
        Rule(
            "RES-W002",
            "Stale waiver matches nothing",
            Severity.WARNING,
            "GDPR Art. 5(2) (accountability)",
            "A waiver no longer matches any finding (the resource, flow or rule changed); left "
            "in place it could silently accept a future, different problem.",
            "Delete the waiver or fix its scope.",
            "https://github.com/residency/residency#waivers",
        ),
        Rule(
            "RES-W003",
            "Waiver not accepted",
            Severity.WARNING,
            "GDPR Art. 5(2) (accountability)",
            "A waiver lives longer than the maximum waiver life, or uses a wildcard to "
            "silence a coverage gap (RES-S001) or an unresolved location (RES-L001) without "
            "saying so explicitly; it suppresses nothing.",
            "Shorten `expires`, name the resource exactly, or set `allow_fail_closed: true` "
            "for a deliberately broad waiver of a fail-closed rule.",
            "https://github.com/residency/residency#waivers",
        ),
    )
}


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]
