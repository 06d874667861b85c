"""SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

Every rule of the catalogue is listed once. Each finding is a result with a logical location
(the resource address, flow or system) and a physical one, as GitHub code scanning requires:
a file relative to the repository root (`%SRCROOT%`) and a line. A planned resource points at
the line of its `"address"` in the plan JSON (a flow: of its planned end); a declared system
or flow at the line of its `id` in the map; a collected resource at the classification value
its tag names, and a flow feeding it at the declared system. Anything else (a coverage gap,
a waiver, the pack's age) points at the map, else the first plan, else `residency.yaml`, on
line 1. Waived findings stay in the log as suppressed.

The repository root is `$RESIDENCY_SARIF_ROOT`, else the nearest directory holding `.git`
above the first artifact (or the working directory), else the working directory. A file
outside the root is named by its file name alone: never `..`, never an absolute path.
To find the lines this formatter reads the artifacts' text again; an unreadable one gets
line 1, never an error.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from residency import __version__
from residency.formats.interface import Formatter
from residency.model import Finding, Report, Severity
from residency.policy.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_KIND = {"system": "resource", "flow": "resource", "location": "resource", "scope": "namespace",
         "waiver": "object"}
INFO_URI = "https://github.com/residency/residency"
RULES_DOC = f"{INFO_URI}/blob/main/docs/rules.md"
ROOT_ENV = "RESIDENCY_SARIF_ROOT"
SRCROOT = "%SRCROOT%"
DEFAULT_MAP = "residency.yaml"  # where a scan without a map anchors its results
FINGERPRINT = "residencyFingerprint/v1"
_MAX_READ = 1 << 30  # larger artifacts are not searched for lines: line 1

# `"address": "..."` in a plan; in a map, the sections and their `id:` keys (YAML or JSON),
# and under `classification` the values a collected resource's tag may name
# (the string body unrolled, `[^"\\]*(?:\\.[^"\\]*)*`: twice the speed of an alternation per char)
_ADDRESS = re.compile(r'"address"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')
_ADDRESS_BYTES = re.compile(_ADDRESS.pattern.encode())
_VALUE = r"""(?P<val>"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\s,}\]#'"][^,}\]#\n]*)"""
_YAML_ID = re.compile(r"""(?:^|(?<=[\s{,]))(?P<q>["']?)id(?P=q)[ \t]*:[ \t]*""" + _VALUE)
_YAML_KEY = re.compile(r"""^[ \t]+(?P<key>[\w.-]+|"[^"\n]*"|'[^'\n]*')[ \t]*:""")
_JSON_SECTION = re.compile(r'"(systems|flows|parties|residency|classification)"\s*:')
_JSON_ID = re.compile(r'"id"\s*:\s*("(?:[^"\\]|\\.)*")')
_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


def rule_anchor(rule_id: str) -> str:
    """The fragment of a rule's section in docs/rules.md (GitHub's heading slug)."""
    return rule_id.lower()


def _rules() -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "name": "".join(w.capitalize() for w in r.title.replace("-", " ").split()
                            if w.isalnum()),
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": r.rationale},
            "help": {
                "text": f"{r.remediation} ({r.article})",
                "markdown": f"**{r.title}** ({r.article})\n\n{r.rationale}\n\n"
                f"**Fix:** {r.remediation}\n\nSource: {r.source}",
            },
            "helpUri": f"{RULES_DOC}#{rule_anchor(r.id)}",
            "defaultConfiguration": {"level": _LEVEL[r.severity]},
            "properties": {"tags": ["gdpr", "data-residency"], "article": r.article},
        }
        for r in RULES.values()
    ]


class SarifFormatter(Formatter):
    suffix = ".sarif"

    def render(self, report: Report) -> str:
        return "".join(self._chunks(report))

    def write(self, report: Report, stream: TextIO) -> None:
        """Streamed: the log's frame once, each result encoded as it is located."""
        for chunk in self._chunks(report):
            stream.write(chunk)

    def _chunks(self, report: Report) -> Iterator[str]:
        anchors = _Anchors(report, os.environ)
        rules = _rules()
        index = {r["id"]: i for i, r in enumerate(rules)}
        head, tail = _frame(report, rules, anchors.root)
        yield head
        sep = ""
        batch: list[str] = []
        for f in report.findings:
            batch.append(_result_json(f, index, anchors))
            if len(batch) == 1000:
                yield sep + ",".join(batch)
                sep, batch = ",", []
        if batch:
            yield sep + ",".join(batch)
        yield tail


def _frame(report: Report, rules: list[dict[str, Any]], root: Path) -> tuple[str, str]:
    """The log before and after its results, encoded once."""
    doc = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "residency",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFO_URI,
                        "rules": rules,
                    }
                },
                # no automationDetails: upload-sarif fills it from its `category`
                # only when absent, and one fixed id would make two gates of one
                # repository (two Terraform roots) replace each other's alerts
                "originalUriBaseIds": {
                    SRCROOT: {"uri": _folder_uri(root),
                              "description": {"text": "The repository root."}},
                },
                "columnKind": "unicodeCodePoints",  # O(1) per column on one-line JSON
                "results": _RESULTS,
                "properties": {
                    "asOf": report.as_of.isoformat(),
                    "policyPack": {"name": report.pack.name, "version": report.pack.version,
                                   "digest": report.pack.digest},
                },
            }
        ],
    }
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    head, tail = text.split(_enc(_RESULTS), 1)
    return head + "[", "]" + tail + "\n"


# stands for the results in the frame (a NUL no rule text holds, escaped by any encoder)
_RESULTS = "\x00residency:results\x00"
_enc = json.encoder.encode_basestring  # C, as `json.dumps(..., ensure_ascii=False)` does


def _result_json(f: Finding, index: dict[str, int], anchors: _Anchors) -> str:
    """One result, encoded: what `json.dumps` of its dict writes, without building it."""
    subject = anchors.portable(f.subject)
    uri, line, column = anchors.locate(f)
    region = f'"startLine":{line}' if column is None else \
        f'"startLine":{line},"startColumn":{column}'
    # a plan given by path (several plans: `<path>:<address>`) must not make the identity
    # depend on where the repository was checked out
    fingerprint = f.fingerprint if subject == f.subject else replace(f, subject=subject).fingerprint
    message = f.message + (f" — {f.hint}" if f.hint else "")
    props = f'"subjectKind":{_enc(f.subject_kind)}'
    if f.regime:
        props += f',"regime":{_enc(f.regime)}'
    if f.countries:
        props += f',"countries":[{",".join(map(_enc, f.countries))}]'
    if f.instrument:
        props += f',"instrument":{_enc(f.instrument)}'
    out = (
        f'{{"ruleId":{_enc(f.rule)},"level":"{_LEVEL[f.severity]}",'
        f'"message":{{"text":{_enc(message)}}},'
        f'"locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":{_enc(uri)},'
        f'"uriBaseId":"{SRCROOT}"}},"region":{{{region}}}}},'
        f'"logicalLocations":[{{"fullyQualifiedName":{_enc(subject)},'
        f'"kind":"{_KIND.get(f.subject_kind, "resource")}"}}]}}],'
        f'"partialFingerprints":{{"{FINGERPRINT}":{_enc(fingerprint)}}},'
        f'"properties":{{{props}}}'
    )
    if f.rule in index:
        out += f',"ruleIndex":{index[f.rule]}'
    if f.waived:
        out += (',"suppressions":[{"kind":"external","status":"accepted",'
                f'"justification":{_enc(f.waiver_reason or "waived")}}}]')
    return out + "}"


def _folder_uri(folder: Path) -> str:
    uri = folder.as_uri()
    return uri if uri.endswith("/") else uri + "/"


def find_root(artifacts: Iterable[str], env: Mapping[str, str] | None = None) -> Path:
    """`$RESIDENCY_SARIF_ROOT`, else the git work tree above the first artifact (or the
    working directory), else the working directory."""
    env = os.environ if env is None else env
    configured = env.get(ROOT_ENV)
    if configured:
        return Path(configured).resolve()
    for start in [*(Path(a).resolve().parent for a in artifacts), Path.cwd().resolve()]:
        for folder in (start, *start.parents):
            if (folder / ".git").exists():  # a directory, or a file in worktrees/submodules
                return folder
    return Path.cwd().resolve()


def relative_uri(path: str, root: Path) -> str:
    """`path` relative to `root` as a URI reference; a file outside it by its name alone."""
    absolute = Path(path).resolve()
    try:
        rel = absolute.relative_to(root).as_posix()
    except ValueError:
        rel = absolute.name
    return quote(rel or absolute.name, safe="/")


class _Anchors:
    """Where each finding points: the artifact (relative URI) and the line in it."""

    def __init__(self, report: Report, env: Mapping[str, str]) -> None:
        self.files = {s.id: s.source_file for s in report.systems if s.source_file}
        self.ends = {f.id: (f.source, f.target) for f in report.flows}
        self.map_source = report.map_source
        # a collected resource's tag values: one of them names the map's classification value
        self.tags = {s.id: tuple(v for _, v in s.tags) for s in report.systems
                     if s.tags and not s.source_file}
        artifacts = list(dict.fromkeys(
            x for x in [report.map_source, *self.files.values()] if x))
        self.fallback = report.map_source or (artifacts[0] if artifacts else None)
        self.root = find_root(artifacts, env)
        self._uris: dict[str, str] = {}
        self._texts: dict[str, _Text | None] = {}
        # several plans prefix their resources with `<plan path>:`; put the portable URI there
        self._prefixes = sorted(
            {(f"{s.source_file}:", f"{self.uri(s.source_file)}:") for s in report.systems
             if s.source_file and s.id.startswith(f"{s.source_file}:")},
            key=lambda p: -len(p[0]),
        )

    def uri(self, path: str) -> str:
        out = self._uris.get(path)
        if out is None:
            out = self._uris[path] = relative_uri(path, self.root)
        return out

    def portable(self, subject: str) -> str:
        for prefix, uri in self._prefixes:
            if prefix in subject:
                subject = subject.replace(prefix, uri)
        return subject

    def locate(self, f: Finding) -> tuple[str, int, int | None]:
        path = self.files.get(f.subject)
        ends = self.ends.get(f.subject) if f.subject_kind == "flow" else None
        if ends and path is None:
            path = self.files.get(ends[1]) or self.files.get(ends[0])
        path = path or self.fallback
        if path is None:
            return DEFAULT_MAP, 1, None
        text = self._text(path)
        where = None
        if text is not None:
            if path == self.map_source:
                where = text.declared(f.subject_kind, f.subject, ends,
                                      self.tags.get(f.subject, ()))
            if where is None:
                where = text.resource(f.subject, ends, self.files, path)
        line, column = where or (1, None)
        return self.uri(path), line, column

    def _text(self, path: str) -> _Text | None:
        if path not in self._texts:
            try:
                p = Path(path)
                data = p.read_bytes() if p.stat().st_size <= _MAX_READ else None
            except OSError:
                data = None
            self._texts[path] = None if data is None else _Text(data)
        return self._texts[path]


@dataclass
class _Text:
    """One artifact's text with the first position of each plan address and map id.
    An ASCII artifact (most plans) is searched as bytes, where offsets are code points
    too: no decoded copy of a plan of hundreds of megabytes."""

    raw: bytes
    _str: str | None = None
    _ascii: bool | None = None
    _lines: list[int] = field(default_factory=list)
    _addresses: dict[str, int] | None = None
    _ids: dict[tuple[str, str], tuple[int, int]] | None = None

    def declared(
        self, kind: str, subject: str, ends: tuple[str, str] | None, tags: tuple[str, ...]
    ) -> tuple[int, int | None] | None:
        """A map's system or flow: the line of its `id`; a flow the map does not declare
        (fed by a classification) points at the declared end; a collected resource at the
        classification value its tag names."""
        ids = self._map_ids()
        keys = [("flows", subject)] if kind == "flow" else []
        keys += [("systems", name) for name in
                 ((subject,) if kind == "system" else (ends or ()))]
        keys += [("classification", value) for value in tags]
        for key in keys:
            if (where := ids.get(key)) is not None:
                return where
        return None

    def resource(
        self, subject: str, ends: tuple[str, str] | None, files: dict[str, str], path: str
    ) -> tuple[int, int | None] | None:
        """A planned resource: the line of its address (a flow: of its end in this plan)."""
        names = [subject] if ends is None else [e for e in (ends[1], ends[0])
                                                if files.get(e) == path]
        addresses = self._plan_addresses()
        for name in names:
            if (pos := addresses.get(name.removeprefix(f"{path}:"))) is not None:
                return self.position(pos)  # the first candidate, found: most resources
            for candidate in _address_candidates(name, path):
                if (pos := addresses.get(candidate)) is not None:
                    return self.position(pos)
        return None

    @property
    def text(self) -> str:
        if self._str is None:
            self._str = self.raw.decode("utf-8", "replace")
        return self._str

    @property
    def ascii(self) -> bool:
        if self._ascii is None:
            self._ascii = self.raw.isascii()
        return self._ascii

    def position(self, offset: int) -> tuple[int, int]:
        if not self._lines:
            if self.ascii:
                self._lines = [0] + [m.end() for m in re.finditer(b"\n", self.raw)]
            else:
                self._lines = [0] + [m.end() for m in re.finditer("\n", self.text)]
        line = bisect.bisect_right(self._lines, offset)
        return line, offset - self._lines[line - 1] + 1

    def _plan_addresses(self) -> dict[str, int]:
        if self._addresses is None:
            out: dict[str, int] = {}
            self._addresses = out
            matches = (_ADDRESS_BYTES.finditer(self.raw) if self.ascii
                       else _ADDRESS.finditer(self.text))
            for m in matches:
                value = m.group(1)
                if isinstance(value, bytes):
                    value = value.decode("ascii")
                if "\\" in value:
                    value = _unquote(f'"{value}"')
                if value:
                    out.setdefault(value, m.start())
        return self._addresses

    def _map_ids(self) -> dict[tuple[str, str], tuple[int, int]]:
        if self._ids is None:
            self._ids = {}
            if self.text.lstrip()[:1] == "{":
                self._json_ids(self._ids)
            else:
                self._yaml_ids(self._ids)
        return self._ids

    def _yaml_ids(self, out: dict[tuple[str, str], tuple[int, int]]) -> None:
        """Line by line (a regex over a million-flow map is several times slower): a line
        starting in column 0 opens a section; `id:` keys, and `classification` keys, in it."""
        section = ""
        for number, line in enumerate(self.text.split("\n"), 1):
            if line[:1] not in ("", " ", "\t", "#", "-"):
                section = _unquote(line.split(":", 1)[0])
            elif section == "classification":
                if m := _YAML_KEY.match(line):
                    key = (section, _unquote(m.group("key")))
                    out.setdefault(key, (number, m.start("key") + 1))
            elif "id" in line:
                for m in _YAML_ID.finditer(line):
                    if value := _unquote(m.group("val")):
                        out.setdefault((section, value), (number, m.start() + 1))

    def _json_ids(self, out: dict[tuple[str, str], tuple[int, int]]) -> None:
        marks = [(m.start(), m.group(1)) for m in _JSON_SECTION.finditer(self.text)]
        for (start, section), (end, _) in zip(marks, [*marks[1:], (len(self.text), "")],
                                              strict=True):
            pattern = _JSON_KEY if section == "classification" else _JSON_ID
            for m in pattern.finditer(self.text, start, end):
                value = _unquote(m.group(1) if pattern is _JSON_ID else f'"{m.group(1)}"')
                if value and (section, value) not in out:
                    out[(section, value)] = self.position(m.start())


def _unquote(raw: str) -> str:
    """A YAML or JSON scalar as written (plain, single- or double-quoted) → its text."""
    raw = raw.strip()
    if raw.startswith('"'):
        if "\\" not in raw and len(raw) > 1 and raw.endswith('"'):
            return raw[1:-1]  # no escapes: the text as it stands (most addresses)
        try:
            value = json.loads(raw)
        except ValueError:
            return ""
        return value if isinstance(value, str) else ""
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    return raw


def _address_candidates(name: str, path: str) -> list[str]:
    """The address to look for: without the `<plan>:` prefix of several plans, then without
    the `/replica/...` suffix of a derived copy, then (Terraform 0.12 states) the local
    address of a module resource."""
    name = name.removeprefix(f"{path}:")
    out = [name]
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        out.append(name)
    for address in list(out):
        if address.startswith("module."):
            local = re.sub(r"^(?:module\.[^.]+\.)+", "", address)
            out.append(local)
            out.append(re.sub(r"\[[^\]]*\]$", "", local))
    return list(dict.fromkeys(out))
