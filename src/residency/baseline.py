"""Baselines: accept today's findings once, fail only on what is new.

A baseline file holds the fingerprints of findings (`Finding.fingerprint`: rule, subject,
regime, countries) and of transfers (flow, regime, country, importer). Fingerprints are
built from ids, never positions, so reordering a plan does not change them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from residency._io import write_atomic
from residency.errors import InputError
from residency.model import Report, Transfer

MARKER = "residency_baseline"
VERSION = 1
IN_BASELINE = "in baseline"


def transfer_fingerprints(t: Transfer) -> list[str]:
    """One fingerprint per destination country of a transfer."""
    out = []
    for country in t.countries:
        key = "|".join([t.flow, t.regime, country, t.importer])
        out.append(hashlib.sha256(key.encode()).hexdigest()[:16])
    return out


def baseline_document(report: Report) -> dict[str, Any]:
    """Findings a waiver covers are left out: when the waiver expires they must resurface."""
    findings = sorted({
        f.fingerprint for f in report.findings
        if not f.waived or f.waiver_reason == IN_BASELINE
    })
    transfers = sorted({fp for t in report.transfers for fp in transfer_fingerprints(t)})
    return {
        MARKER: VERSION,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "as_of": report.as_of.isoformat(),
        "policy_pack": f"{report.pack.name} {report.pack.version}",
        "findings": findings,
        "transfers": transfers,
    }


def write_baseline(report: Report, path: Path) -> None:
    """Write atomically; refuse to overwrite anything that is not a residency baseline."""
    if path.exists():
        _read(path)  # raises if it is not ours
    write_atomic(path, json.dumps(baseline_document(report), indent=2) + "\n")


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(str(path), None, "file not found") from None
    except IsADirectoryError:
        raise InputError(str(path), None, "is a directory, not a baseline file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(str(path), None, "not a residency baseline (not JSON); refusing to "
                         "use or overwrite it") from None
    if not isinstance(raw, dict) or raw.get(MARKER) != VERSION:
        raise InputError(str(path), MARKER, "missing: not a residency baseline; refusing to use "
                         "or overwrite it")
    for key in ("findings", "transfers"):
        if not isinstance(raw.get(key), list) or not all(isinstance(x, str) for x in raw[key]):
            raise InputError(str(path), key, "must be a list of fingerprints")
    return raw


def load_baseline(path: Path) -> frozenset[str]:
    return frozenset(_read(path)["findings"])


def apply_baseline(report: Report, known: frozenset[str]) -> Report:
    """Findings already in the baseline are marked waived ("in baseline"); new ones count."""
    findings = tuple(
        replace(f, waived=True, waiver_reason=IN_BASELINE)
        if not f.waived and f.fingerprint in known else f
        for f in report.findings
    )
    return replace(report, findings=findings)
