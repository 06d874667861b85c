"""JSON: a documented, versioned document (schema in `report.schema.json`)."""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TextIO

from residency._fork import Forked
from residency.formats.interface import Formatter
from residency.model import BasisKind, Finding, KeyRef, Report, Transfer

SCHEMA_VERSION = 1


def report_to_dict(report: Report) -> dict[str, Any]:
    """The stable JSON shape; bump SCHEMA_VERSION on any incompatible change."""
    doc = _head(report)
    doc["systems"] = list(_systems(report))
    doc["transfers"] = [transfer_to_dict(t) for t in report.transfers]
    doc["findings"] = [finding_to_dict(f) for f in report.findings]
    doc["coverage_gaps"] = _gaps(report)
    return doc


def _head(report: Report) -> dict[str, Any]:
    return {
        "schema": "https://github.com/residency/residency/report.schema.json",
        "schema_version": SCHEMA_VERSION,
        "as_of": report.as_of.isoformat(),
        "policy_pack": {
            "name": report.pack.name,
            "version": report.pack.version,
            "last_checked": report.pack.last_checked.isoformat(),
            "digest": report.pack.digest,
        },
        "map": {"source": report.map_source, "digest": report.map_digest},
        "assumed_invalid": list(report.assumed_invalid),
        "summary": report.counts(),
    }


def _systems(report: Report) -> Iterator[dict[str, Any]]:
    resolved = dict(report.resolved)
    return (
            {
                "id": s.id,
                "party": s.party,
                "role": s.role.value,
                "location": s.location.describe(),
                "countries": sorted(resolved[s.id].countries) if s.id in resolved else [],
                "any_country": resolved[s.id].any_country if s.id in resolved else True,
                "access_from": sorted(s.access_from),
                "data_categories": sorted(s.data_categories),
                "origin": s.origin.value,
                "resource_id": s.resource_id,
                "keys": [key_to_dict(k) for k in s.keys],
            }
            for s in report.systems
    )


def key_to_dict(k: KeyRef) -> dict[str, Any]:
    """A store's encryption key as the collector found it (TIA step 4 evidence)."""
    return {
        "key": k.key, "algorithm": k.algorithm, "arn": k.arn, "region": k.region,
        "account": k.account, "multi_region": k.multi_region,
        "primary_region": k.primary_region, "replica_regions": list(k.replica_regions),
        "origin": k.origin, "key_manager": k.key_manager, "unknown_reason": k.unknown_reason,
    }


def _gaps(report: Report) -> list[dict[str, str]]:
    return [{"provider": g.provider, "scope": g.scope, "reason": g.reason} for g in report.gaps]


def transfer_to_dict(t: Transfer) -> dict[str, Any]:
    return {
        "flow": t.flow,
        "regime": t.regime,
        "exporter": t.exporter,
        "importer": t.importer,
        "exporter_party": t.exporter_party,
        "importer_party": t.importer_party,
        "countries": list(t.countries),
        "data_categories": list(t.data_categories),
        "onward": t.onward,
        "recurring": t.recurring,
        "same_entity": t.same_entity,
        "lawful": t.lawful,
        "bases": [
            {"country": c, "kind": b.kind, "reference": b.reference, "source": b.source}
            for c, b in t.bases
        ],
    }


def finding_to_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "subject": f.subject,
        "subject_kind": f.subject_kind,
        "regime": f.regime,
        "countries": list(f.countries),
        "instrument": f.instrument,
        "message": f.message,
        "hint": f.hint,
        "waived": f.waived,
        "waiver_reason": f.waiver_reason,
        "fingerprint": f.fingerprint,
    }


class JsonFormatter(Formatter):
    """Indented for small reports; one record per line beyond STREAM_AT transfers, written
    as it goes so a million-flow report never exists as one string or one dict."""

    suffix = ".json"
    STREAM_AT = 20_000
    PARALLEL_AT = 50_000
    """Reports with this many findings encode them on a second core (`residency._fork`)..."""
    PARALLEL_UP_TO = 1_500_000
    """...and no more: beyond, the copy-on-write of every page both processes touch costs
    more than the second core saves (3.05M findings: 5 s slower; 710k: 0.9 s faster)."""

    def render(self, report: Report) -> str:
        buf = io.StringIO()
        self.write(report, buf)
        return buf.getvalue()

    def write(self, report: Report, stream: TextIO) -> None:
        if len(report.transfers) + len(report.findings) < self.STREAM_AT:
            json.dump(report_to_dict(report), stream, indent=2, ensure_ascii=False)
            stream.write("\n")
            return
        dumps = _compact_encoder()
        sink = _Sink(stream)
        sink.add(dumps(_head(report))[:-1].encode())
        # the findings are encoded by a second core meanwhile, into a file of its own
        worker = Forked(lambda fh: _write_section(_finding_lines(report.findings), fh.write)) \
            if self.PARALLEL_AT <= len(report.findings) <= self.PARALLEL_UP_TO else None
        try:
            sections: list[tuple[str, Iterable[bytes]]] = [
                ("systems", (dumps(s).encode() for s in _systems(report))),
                ("transfers", _transfer_lines(report.transfers, dumps)),
                ("findings", _finding_lines(report.findings)),
                ("coverage_gaps", (dumps(g).encode() for g in _gaps(report))),
            ]
            for name, lines in sections:
                sink.add(f',\n"{name}":['.encode())
                done = worker.join() if name == "findings" and worker is not None else None
                if done is not None:
                    with done:
                        sink.copy(done)
                else:
                    _write_section(lines, sink.write)
                sink.add(b"]")
        finally:
            if worker is not None:
                worker.close()
        sink.add(b"}\n")
        sink.close()


def _write_section(lines: Iterable[bytes], write: Callable[[bytes], object]) -> None:
    """A section's records, one per line, comma-separated, in blocks of a few thousand."""
    block: list[bytes] = []
    sep = b"\n"
    for line in lines:
        block.append(sep)
        block.append(line)
        sep = b",\n"
        if len(block) >= 8192:
            write(b"".join(block))
            block.clear()
    if block:
        write(b"".join(block))


class _Sink:
    """Collects encoded records and writes them in large blocks: the binary buffer under a
    UTF-8 text stream when there is one (no decode and re-encode), else the text stream."""

    BLOCK = 4096

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        raw = getattr(stream, "buffer", None)
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self._raw = raw if raw is not None and encoding == "utf8" else None
        if self._raw is not None:
            stream.flush()
        self._parts: list[bytes] = []

    def add(self, piece: bytes) -> None:
        self._parts.append(piece)
        if len(self._parts) >= self.BLOCK:
            self._flush()

    def _flush(self) -> None:
        block = b"".join(self._parts)
        self._parts.clear()
        if self._raw is not None:
            self._raw.write(block)
        else:
            self._stream.write(block.decode())

    def write(self, block: bytes) -> None:
        """Write a large block now (after what `add` has collected)."""
        self._parts.append(block)
        self._flush()

    def copy(self, source: IO[bytes]) -> None:
        """Append a file of encoded records (a worker's section) as it is."""
        if self._raw is not None:
            while chunk := source.read(1 << 20):
                self.write(chunk)
            return
        decode = codecs.getincrementaldecoder("utf-8")().decode  # chunks split characters
        while chunk := source.read(1 << 20):
            self._stream.write(decode(chunk))
        self._stream.write(decode(b"", True))

    def close(self) -> None:
        self._flush()
        if self._raw is not None:
            self._raw.flush()


def _transfer_lines(transfers: Iterable[Transfer], dumps: Any) -> Iterator[bytes]:
    """Transfers of one shape share their bases: encode each distinct bases tuple once and
    splice it into each record. Looked up by identity first, then by value: the rows a
    worker sends back in blocks are equal tuples but not the same ones (at deep 100k,
    84,430 tuples hold 12,203 values)."""
    by_id: dict[int, tuple[bytes, bool]] = {}
    by_value: dict[tuple[object, ...], tuple[bytes, bool]] = {}
    encode = _bytes_encoder()
    none = BasisKind.NONE
    keep: list[object] = []  # the tuples keyed by id stay alive while the ids are used
    for t in transfers:
        bases = t.bases
        hit = by_id.get(id(bases))
        if hit is None:
            hit = by_value.get(bases)
            if hit is None:
                hit = by_value[bases] = (b',"bases":' + dumps(
                    [{"country": c, "kind": b.kind, "reference": b.reference, "source": b.source}
                     for c, b in bases]
                ).encode() + b"}", all(b.kind != none for _, b in bases))
            keep.append(bases)
            by_id[id(bases)] = hit
        record = encode({
            "flow": t.flow, "regime": t.regime, "exporter": t.exporter, "importer": t.importer,
            "exporter_party": t.exporter_party, "importer_party": t.importer_party,
            "countries": t.countries, "data_categories": t.data_categories, "onward": t.onward,
            "recurring": t.recurring, "same_entity": t.same_entity,
            "lawful": t.same_entity or hit[1],
        })
        yield record[:-1] + hit[0]


def _finding_lines(findings: Iterable[Finding]) -> Iterator[bytes]:
    """Each finding as `finding_to_dict` encodes it: its subject, message and fingerprint
    encoded as they come, between parts that findings of one rule, regime and countries
    share (encoded once each; on the deep 100k map 297,811 findings have 11,735 such
    places)."""
    encode = _bytes_encoder()
    leads: dict[tuple[object, ...], bytes] = {}
    middles: dict[tuple[object, ...], bytes] = {}
    ends: dict[tuple[object, ...], bytes] = {}
    for f in findings:
        lead = leads.get((f.rule, f.severity))
        if lead is None:
            lead = leads[(f.rule, f.severity)] = encode(
                {"rule": f.rule, "severity": f.severity.value})[:-1] + b',"subject":'
        place = (f.subject_kind, f.regime, f.countries, f.instrument)
        middle = middles.get(place)
        if middle is None:
            middle = middles[place] = b"," + encode({
                "subject_kind": f.subject_kind, "regime": f.regime, "countries": f.countries,
                "instrument": f.instrument})[1:-1] + b',"message":'
        remedy = (f.hint, f.waived, f.waiver_reason)
        end = ends.get(remedy)
        if end is None:
            end = ends[remedy] = b"," + encode({
                "hint": f.hint, "waived": f.waived, "waiver_reason": f.waiver_reason,
            })[1:-1] + b',"fingerprint":"'
        yield b"".join((lead, encode(f.subject), middle, encode(f.message), end,
                        f.fingerprint.encode(), b'"}'))


def _bytes_encoder() -> Any:
    """orjson's bytes as they are; the stdlib's compact encoding, UTF-8, without it."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency
        enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        return lambda obj: enc(obj).encode()
    return orjson.dumps


def _compact_encoder() -> Any:
    """orjson when installed (about twice as fast on a million records), else the stdlib."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; this keeps JSON working
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode()

    return dumps
