"""Baselines: accept today's findings once, fail only on what is new.

A baseline file holds fingerprints of findings and of transfers. A finding's fingerprint
covers what decides its meaning: rule, subject, regime, destination countries, instrument
and, for a flow, its exporter, importer system and importer party (for a system, its
party), so re-pointing a flow to another importer makes its finding new. Fingerprints are
built from ids, never positions, so reordering a plan does not change them.

Entries carry their scheme (`v2:`). Entries of the first scheme (bare hashes of rule,
subject, regime and countries only) cannot be upgraded, as the hash does not say which
importer was accepted: they match nothing and the loader says so (fail closed).
Fail-closed rules (RES-S001, RES-L001) never enter a baseline: unknown stays unknown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from residency._io import parse_json, read_bytes, write_atomic
from residency.errors import InputError
from residency.model import Finding, Report, Transfer

MARKER = "residency_baseline"
VERSION = 1
SCHEME = "v2"
IN_BASELINE = "in baseline"
FAIL_CLOSED_RULES = frozenset({"RES-S001", "RES-L001"})
"""Rules meaning "unknown, so not passed" (a coverage gap, an unresolved location): they
count whether new or not, and only an explicit waiver accepts them."""


def _hash(parts: Iterable[str]) -> str:
    return f"{SCHEME}:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def finding_fingerprint(f: Finding, context: str = "") -> str:
    """The finding's own fields plus `context`: who exports and imports (see module doc)."""
    return _hash([f.rule, f.subject_kind, f.subject, f.regime or "",
                  ",".join(sorted(f.countries)), f.instrument or "", context])


def transfer_context(exporter: str, importer: str, importer_party: str) -> str:
    return f"{exporter}>{importer}@{importer_party}"


def report_contexts(report: Report) -> Callable[[Finding], str]:
    """Each finding's context in `report`: the transfers of its flow and regime (importer
    party after any re-partying), else the flow's ends, or a system's party."""
    party = {s.id: s.party for s in report.systems}
    ends = {f.id: (f.source, f.target) for f in report.flows}
    moved: dict[tuple[str, str], set[str]] = defaultdict(set)
    for t in report.transfers:
        moved[(t.flow, t.regime)].add(transfer_context(t.exporter, t.importer, t.importer_party))

    def context(f: Finding) -> str:
        if f.subject_kind == "flow":
            got = moved.get((f.subject, f.regime or ""))
            if got:
                return "+".join(sorted(got))
            if f.subject in ends:
                source, target = ends[f.subject]
                return transfer_context(source, target, party.get(target, ""))
        if f.subject_kind == "system" and f.subject in party:
            return f"@{party[f.subject]}"
        return ""

    return context


def transfer_fingerprints(t: Transfer) -> list[str]:
    """One fingerprint per destination country of a transfer."""
    return [_hash([t.flow, t.regime, country, t.exporter, t.importer, t.importer_party])
            for country in t.countries]


def baseline_document(report: Report) -> dict[str, Any]:
    """Findings a waiver covers are left out: when the waiver expires they must resurface.

    Fail-closed findings are left out too: a baseline never accepts an unknown.
    """
    context = report_contexts(report)
    findings = sorted({
        finding_fingerprint(f, context(f)) for f in report.findings
        if (not f.waived or f.waiver_reason == IN_BASELINE) and f.rule not in FAIL_CLOSED_RULES
    })
    transfers = sorted({fp for t in report.transfers for fp in transfer_fingerprints(t)})
    return {
        MARKER: VERSION,
        "fingerprints": SCHEME,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "as_of": report.as_of.isoformat(),
        "policy_pack": f"{report.pack.name} {report.pack.version}",
        "findings": findings,
        "transfers": transfers,
    }


@dataclass(frozen=True, slots=True)
class Baseline:
    """A loaded baseline: the usable fingerprints and how many old entries were ignored."""

    path: str
    findings: frozenset[str]
    outdated: int = 0

    def warnings(self) -> list[str]:
        if not self.outdated:
            return []
        return [f"{self.path}: findings: {self.outdated} entr{'y' if self.outdated == 1 else 'ies'}"
                " use the old fingerprint (no importer or destination) and match nothing, so "
                "those findings count again; re-create the baseline with --write-baseline"]


def write_baseline(report: Report, path: Path) -> None:
    """Write atomically; refuse to overwrite anything that is not a residency baseline."""
    if path.exists():
        _read(path)  # raises if it is not ours
    # rewriting the baseline this run read (`--baseline b --write-baseline b`) is the point
    write_atomic(path, json.dumps(baseline_document(report), indent=2) + "\n",
                 updates_input=True)


def _read(path: Path) -> dict[str, Any]:
    data = read_bytes(path)  # bounded, noted as an input: only `write_baseline` replaces it
    try:
        raw = parse_json(data, str(path))
    except InputError as exc:
        raise InputError(str(path), exc.key, f"not a residency baseline ({exc.problem}); "
                         "refusing to use or overwrite it") from None
    if not isinstance(raw, dict) or MARKER not in raw:
        raise InputError(str(path), MARKER, "missing: not a residency baseline; refusing to use "
                         "or overwrite it")
    if raw[MARKER] != VERSION:
        raise InputError(str(path), MARKER, f"unsupported version {raw[MARKER]!r} (this "
                         f"residency reads {VERSION}); re-create it with --write-baseline")
    for key in ("findings", "transfers"):
        if not isinstance(raw.get(key), list) or not all(isinstance(x, str) for x in raw[key]):
            raise InputError(str(path), key, "must be a list of fingerprints")
    return raw


def load_baseline(path: Path) -> Baseline:
    """Entries of an older fingerprint scheme are counted, never matched (fail closed)."""
    entries = _read(path)["findings"]
    current = frozenset(e for e in entries if e.startswith(f"{SCHEME}:"))
    return Baseline(str(path), current, len(set(entries) - current))


def apply_baseline(report: Report, baseline: Baseline) -> Report:
    """Findings already in the baseline are marked waived ("in baseline"); new ones count.

    Fail-closed findings always count, even if an old or hand-edited baseline lists them.
    """
    context = report_contexts(report)
    findings = tuple(
        replace(f, waived=True, waiver_reason=IN_BASELINE)
        if not f.waived and f.rule not in FAIL_CLOSED_RULES
        and finding_fingerprint(f, context(f)) in baseline.findings else f
        for f in report.findings
    )
    return replace(report, findings=findings)
