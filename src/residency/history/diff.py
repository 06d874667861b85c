"""What changed between two stored runs: transfers, findings and newly reached countries.

Transfers are compared per destination country, keyed by (flow, regime, country,
exporter, importer); findings by their baseline fingerprint with the exporter, importer and
importer party of their flow's transfers, so a flow re-pointed to another importer has new
findings, not the old ones. Every transfer country is already
outside the regime's free-flow area (the engine records nothing else), so a country new
to a data category is a new third country for it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from residency.baseline import finding_fingerprint, transfer_context
from residency.history.store import RunInfo, Store, TransferRow, gc_paused
from residency.model import Finding, KeyRef, Severity, System


@dataclass(frozen=True, slots=True)
class TransferChange:
    before: TransferRow
    after: TransferRow


@dataclass(frozen=True, slots=True)
class KeyChange:
    """A system whose encryption keys changed: moved region, another key, another manager."""

    system: str
    before: tuple[KeyRef, ...]
    after: tuple[KeyRef, ...]


@dataclass(frozen=True, slots=True)
class RunDiff:
    run_a: RunInfo
    run_b: RunInfo
    new_transfers: tuple[TransferRow, ...]
    resolved_transfers: tuple[TransferRow, ...]
    changed_transfers: tuple[TransferChange, ...]
    new_findings: tuple[Finding, ...]
    resolved_findings: tuple[Finding, ...]
    new_third_countries: tuple[tuple[str, tuple[str, ...]], ...]  # category -> countries
    new_systems: tuple[str, ...] = ()
    """Systems the newer run has and the older did not (a SaaS vendor's new sub-processor
    is one even inside the EEA, where it makes no transfer)."""
    changed_keys: tuple[KeyChange, ...] = ()
    """Systems in both runs whose at-rest keys differ (a key that moved is TIA step 4
    evidence that no longer holds)."""

    @property
    def empty(self) -> bool:
        return not (self.new_transfers or self.resolved_transfers or self.changed_transfers
                    or self.new_findings or self.resolved_findings or self.new_third_countries
                    or self.new_systems or self.changed_keys)

    def new_errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.new_findings
                     if f.severity is Severity.ERROR and not f.waived)


def diff(store: Store, run_a: int, run_b: int) -> RunDiff:
    """Compare run_a (older) with run_b (newer)."""
    with gc_paused():  # ~200,000 short-lived acyclic objects; see store.gc_paused
        return _diff(store, run_a, run_b)


def _diff(store: Store, run_a: int, run_b: int) -> RunDiff:
    info_a, info_b = store.run(run_a), store.run(run_b)
    out = diff_rows(info_a, info_b, store.transfer_rows(run_a), store.transfer_rows(run_b),
                    store.findings(run_a), store.findings(run_b))
    before = {s.id: s for s in store.systems(run_a)}
    after = store.systems(run_b)
    added = tuple(sorted(s.id for s in after if s.id not in before))
    return replace(out, new_systems=added, changed_keys=changed_keys(before.values(), after))


def changed_keys(before: Iterable[System], after: Iterable[System]) -> tuple[KeyChange, ...]:
    """Systems present in both whose keys differ in any recorded fact (order ignored)."""
    old = {s.id: s.keys for s in before}
    out = []
    for s in sorted(after, key=lambda x: x.id):
        if s.id in old and set(old[s.id]) != set(s.keys):
            out.append(KeyChange(s.id, old[s.id], s.keys))
    return tuple(out)


def diff_rows(
    info_a: RunInfo,
    info_b: RunInfo,
    transfers_a: Iterable[TransferRow],
    transfers_b: Iterable[TransferRow],
    findings_a: Iterable[Finding],
    findings_b: Iterable[Finding],
) -> RunDiff:
    a = {r.key: r for r in transfers_a}
    b = {r.key: r for r in transfers_b}
    changed = tuple(
        TransferChange(a[k], b[k]) for k in b
        if k in a and _essence(a[k]) != _essence(b[k])
    )
    fa = _by_identity(findings_a, a.values())
    fb = _by_identity(findings_b, b.values())
    return RunDiff(
        run_a=info_a,
        run_b=info_b,
        new_transfers=tuple(r for k, r in b.items() if k not in a),
        resolved_transfers=tuple(r for k, r in a.items() if k not in b),
        changed_transfers=changed,
        new_findings=tuple(f for k, f in fb.items() if k not in fa),
        resolved_findings=tuple(f for k, f in fa.items() if k not in fb),
        new_third_countries=_new_countries(a.values(), b.values()),
    )


def _by_identity(findings: Iterable[Finding], rows: Iterable[TransferRow]
                 ) -> dict[str, Finding]:
    ends: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        ends[(r.flow, r.regime)].add(transfer_context(r.exporter, r.importer, r.importer_party))

    def context(f: Finding) -> str:
        if f.subject_kind != "flow":
            return ""
        return "+".join(sorted(ends.get((f.subject, f.regime or ""), ())))

    return {finding_fingerprint(f, context(f)): f for f in findings}


def _essence(r: TransferRow) -> tuple[object, ...]:
    return (r.basis_kind, r.basis_reference, tuple(sorted(r.data_categories)))


def _reach(rows: Iterable[TransferRow]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        for cat in r.data_categories:
            out[cat].add(r.country)
    return out


def _new_countries(old: Iterable[TransferRow], new: Iterable[TransferRow]
                   ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    before, after = _reach(old), _reach(new)
    out = []
    for cat in sorted(after):
        added = sorted(after[cat] - before.get(cat, set()))
        if added:
            out.append((cat, tuple(added)))
    return tuple(out)


# ---------------------------------------------------------------------- rendering
def _t(r: TransferRow) -> str:
    basis = r.basis_kind + (f" ({r.basis_reference})" if r.basis_reference else "")
    return (f"{r.flow} [{r.regime}] {r.exporter} → {r.importer} to {r.country}: "
            f"{', '.join(r.data_categories)}; basis {basis}")


def _f(f: Finding) -> str:
    return f"{f.severity.value.upper()} {f.rule} {f.message}" + (" (waived)" if f.waived else "")


def _key(k: KeyRef) -> str:
    name = k.arn or k.key or "service-owned key"
    where = k.region or "unknown region"
    if k.replica_regions:
        where += f" (replicas {', '.join(k.replica_regions)})"
    extra = [x for x in (k.key_manager and f"managed by {k.key_manager}",
                         k.origin and f"origin {k.origin}") if x]
    return f"{name} in {where}" + (f", {', '.join(extra)}" if extra else "")


def _keys(keys: tuple[KeyRef, ...]) -> str:
    return "; ".join(_key(k) for k in keys) or "no key recorded"


def _sections(d: RunDiff) -> list[tuple[str, list[str]]]:
    return [
        ("New third countries", [f"{cat}: {', '.join(cs)}" for cat, cs in d.new_third_countries]),
        ("New transfers", [_t(r) for r in d.new_transfers]),
        ("Resolved transfers", [_t(r) for r in d.resolved_transfers]),
        ("Changed transfers", [f"{_t(c.before)}  ⇒  {c.after.basis_kind}"
                               + (f" ({c.after.basis_reference})"
                                  if c.after.basis_reference else "")
                               + f"; {', '.join(c.after.data_categories)}"
                               for c in d.changed_transfers]),
        ("New findings", [_f(f) for f in d.new_findings]),
        ("Resolved findings", [_f(f) for f in d.resolved_findings]),
        ("New systems", list(d.new_systems)),
        ("Changed encryption keys", [f"{c.system}: {_keys(c.before)}  ⇒  {_keys(c.after)}"
                                     for c in d.changed_keys]),
    ]


def headline(d: RunDiff) -> str:
    """One line for chat notifications and logs."""
    parts = [f"{len(d.new_findings)} new finding(s) ({len(d.new_errors())} error)",
             f"{len(d.resolved_findings)} resolved",
             f"{len(d.new_transfers)} new / {len(d.resolved_transfers)} resolved / "
             f"{len(d.changed_transfers)} changed transfer(s)"]
    if d.new_third_countries:
        parts.append("new third countries: " + "; ".join(
            f"{cat}: {', '.join(cs)}" for cat, cs in d.new_third_countries))
    return (f"residency {d.run_b.scope}: run {d.run_a.id} → {d.run_b.id}: "
            + ", ".join(parts))


def render_text(d: RunDiff) -> str:
    lines = [headline(d)]
    for title, items in _sections(d):
        if items:
            lines += ["", f"{title}:"] + [f"  {i}" for i in items]
    return "\n".join(lines) + "\n"


def render_markdown(d: RunDiff) -> str:
    lines = [f"## residency: run {d.run_a.id} → {d.run_b.id} (`{d.run_b.scope}`)", "",
             headline(d).partition(": run ")[2].partition(": ")[2]]
    for title, items in _sections(d):
        if items:
            lines += ["", f"### {title}", ""] + [f"- {i}" for i in items]
    return "\n".join(lines) + "\n"


def _run_dict(r: RunInfo) -> dict[str, Any]:
    return {"id": r.id, "scope": r.scope, "command": r.command, "shard": r.shard,
            "finished_at": r.finished_at.isoformat(), "as_of": r.as_of.isoformat(),
            "pack_version": r.pack.version, "counts": dict(r.counts)}


def _transfer_dict(r: TransferRow) -> dict[str, Any]:
    return {"flow": r.flow, "regime": r.regime, "exporter": r.exporter,
            "importer": r.importer, "country": r.country,
            "data_categories": list(r.data_categories),
            "basis": {"kind": r.basis_kind, "reference": r.basis_reference}}


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {"fingerprint": f.fingerprint, "rule": f.rule, "severity": f.severity.value,
            "subject": f.subject, "regime": f.regime, "countries": list(f.countries),
            "message": f.message, "waived": f.waived}


def diff_to_dict(d: RunDiff) -> dict[str, Any]:
    return {
        "run_a": _run_dict(d.run_a),
        "run_b": _run_dict(d.run_b),
        "summary": {
            "new_findings": len(d.new_findings),
            "new_errors": len(d.new_errors()),
            "resolved_findings": len(d.resolved_findings),
            "new_transfers": len(d.new_transfers),
            "resolved_transfers": len(d.resolved_transfers),
            "changed_transfers": len(d.changed_transfers),
        },
        "new_third_countries": {cat: list(cs) for cat, cs in d.new_third_countries},
        "new_systems": list(d.new_systems),
        "changed_keys": [{"system": c.system, "before": [_key(k) for k in c.before],
                          "after": [_key(k) for k in c.after]} for c in d.changed_keys],
        "new_transfers": [_transfer_dict(r) for r in d.new_transfers],
        "resolved_transfers": [_transfer_dict(r) for r in d.resolved_transfers],
        "changed_transfers": [{"before": _transfer_dict(c.before),
                               "after": _transfer_dict(c.after)}
                              for c in d.changed_transfers],
        "new_findings": [_finding_dict(f) for f in d.new_findings],
        "resolved_findings": [_finding_dict(f) for f in d.resolved_findings],
    }


def render_json(d: RunDiff) -> str:
    return json.dumps(diff_to_dict(d), indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}

NOTIFY_LIMIT = 20  # items per list in a webhook payload; chat tools truncate long posts


def notify_payload(d: RunDiff, style: str) -> dict[str, Any]:
    """The webhook body: Slack's `{"text": ...}` or a generic summary document."""
    if style == "slack":
        lines = [headline(d)]
        lines += [f"• {_f(f)}" for f in d.new_findings[:NOTIFY_LIMIT]]
        return {"text": "\n".join(lines)}
    body = diff_to_dict(d)
    for key in ("new_transfers", "resolved_transfers", "changed_transfers", "new_findings",
                "resolved_findings"):
        body[key] = body[key][:NOTIFY_LIMIT]
    return {"event": "residency.diff", "text": headline(d)} | body
