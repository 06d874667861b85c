"""Copies Terraform will set up: replication rules, replicas, geo-redundant secondaries.

Each copy is a flow from the resource holding the data to the place the copy lives, so the
engine judges it like any other transfer. A copy whose destination the plan cannot tell
becomes a system with an unknown location (RES-L001), never a silent omission. Google
dual- and multi-region buckets need no flow: their location already covers every country.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from residency.model import Location, Origin, Role, System

if TYPE_CHECKING:
    from residency.plan.reader import _Reader, _Res

_GEO_REDUNDANT = frozenset({"GRS", "RAGRS", "GZRS", "RAGZRS"})


def find_copies(rd: _Reader) -> None:
    _s3(rd)
    _dynamodb(rd)
    _rds_replicas(rd)
    _rds_global(rd)
    _azure_storage(rd)


def _index(items: list[_Res], *keys: str) -> dict[str, _Res]:
    out: dict[str, _Res] = {}
    for r in items:
        for key in keys:
            got = r.values.get(key)
            if isinstance(got, str) and got:
                out[got] = r
    return out


def _find(
    rd: _Reader, r: _Res, index: dict[str, _Res], value: Any, *path: str | int
) -> _Res | None:
    """The planned resource a value (name, ARN) or its configuration reference names."""
    if isinstance(value, str) and value in index:
        return index[value]
    conf = rd.config.resource(r.config_module, r.type, r.name)
    ref = rd.config.reference(conf, *path)
    return rd.resources.get(r.module + ref) if ref else None


def _elsewhere(
    rd: _Reader, ident: str, reason: str | None, like: System, region: str | None = None
) -> System:
    """A copy endpoint outside the plan: its region if the id says it, else unknown."""
    return System(
        id=ident, party=like.party, role=Role.PROCESSOR,
        location=Location(provider=like.party, regions=(region,) if region else (),
                          unknown_reason=None if region else reason),
        data_categories=like.data_categories, origin=Origin.PLANNED,
        classified=like.classified, tags=like.tags, source_file=rd.source,
    )


def _wanted(source: System | None, target: System | None = None) -> bool:
    """Copies of unclassified data add noise, not findings; unknown places still count."""
    return any(s is not None and (s.classified or s.location.unknown_reason is not None)
               for s in (source, target))


# ---------------------------------------------------------------------- AWS S3
def _s3(rd: _Reader) -> None:
    buckets = rd.by_type.get("aws_s3_bucket", [])
    index = _index(buckets, "bucket", "arn")
    for b in buckets:
        name = b.values.get("bucket")
        if isinstance(name, str):
            index.setdefault(f"arn:aws:s3:::{name}", b)
    for b in buckets:  # provider v3 inline `replication_configuration`
        conf = b.values.get("replication_configuration")
        if b.system is not None and isinstance(conf, list) and conf and isinstance(conf[0], dict):
            _s3_rules(rd, b, b.system, index, conf[0].get("rules"), "replication_configuration",
                      0, "rules")
    for rc in rd.by_type.get("aws_s3_bucket_replication_configuration", []):
        name = rc.values.get("bucket")
        src = _find(rd, rc, index, name, "bucket")
        source = src.system if src is not None else None
        if source is None:
            like = System(id="", party="aws", role=Role.PROCESSOR, location=Location())
            ident = f"arn:aws:s3:::{name}" if isinstance(name, str) else f"{rc.address}.bucket"
            source = _elsewhere(rd, ident, f"{rc.address}: source bucket {ident} is not in this "
                                "plan; its region and classification are unknown", like)
            rd.systems.setdefault(source.id, source)
        _s3_rules(rd, rc, source, index, rc.values.get("rule"), "rule")


def _s3_rules(
    rd: _Reader, r: _Res, source: System, index: dict[str, _Res], rules: Any,
    *path: str | int,
) -> None:
    if not isinstance(rules, list):
        if r.unknown.get(str(path[-1])) is True:
            rd.add_copy(source, _elsewhere(rd, f"{r.address}.{path[-1]}", f"{r.address}: "
                                           "replication rules unknown until apply", source))
        return
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or rule.get("status") == "Disabled":
            continue
        dests = rule.get("destination")
        dest = dests[0] if isinstance(dests, list) and dests else {}
        arn = dest.get("bucket") if isinstance(dest, dict) else None
        hit = _find(rd, r, index, arn, *path, i, "destination", 0, "bucket")
        if hit is not None and hit.system is not None:
            target = hit.system
        else:
            ident = arn if isinstance(arn, str) else f"{r.address}.rule[{i}].destination"
            target = _elsewhere(rd, ident, f"{r.address}: replication destination {ident} is "
                                "not in this plan; its region is unknown", source)
        if _wanted(source, target):
            rd.add_copy(source, target)


# ---------------------------------------------------------------------- DynamoDB
def _dynamodb(rd: _Reader) -> None:
    tables = rd.by_type.get("aws_dynamodb_table", [])
    for t in tables:
        replicas = t.values.get("replica")
        if t.system is None or not isinstance(replicas, list) or not _wanted(t.system):
            continue
        for i, rep in enumerate(replicas):
            region = rep.get("region_name") if isinstance(rep, dict) else None
            if isinstance(region, str) and region:
                loc = Location(provider="aws", regions=(region,))
                ident = f"{t.address}/replica/{region}"
            else:
                loc = Location(provider="aws", unknown_reason=f"{t.address}: "
                               f"replica[{i}].region_name unknown until apply")
                ident = f"{t.address}/replica/{i}"
            rd.add_copy(t.system, rd.derived(t.system, ident, loc))
    index = _index(tables, "arn")
    for rep in rd.by_type.get("aws_dynamodb_table_replica", []):
        src = _find(rd, rep, index, rep.values.get("global_table_arn"), "global_table_arn")
        if src is not None and src.system is not None and rep.system is not None \
                and _wanted(src.system, rep.system):
            rd.add_copy(src.system, rep.system)


# ---------------------------------------------------------------------- RDS
def _rds_replicas(rd: _Reader) -> None:
    dbs = rd.by_type.get("aws_db_instance", [])
    index = _index(dbs, "identifier", "arn")
    for d in dbs:
        value = d.values.get("replicate_source_db")
        if d.system is None or (value is None and d.unknown.get("replicate_source_db") is not True):
            continue
        src = _find(rd, d, index, value, "replicate_source_db")
        if src is not None and src.system is not None:
            source = src.system
        elif isinstance(value, str) and value.startswith("arn:aws:rds:"):
            source = _elsewhere(rd, value, None, d.system, value.split(":")[3])
        else:
            continue  # a source named by identifier lives in the replica's own region
        same = (source.location.regions == d.system.location.regions
                and not source.location.unknown_reason and not d.system.location.unknown_reason)
        if not same and _wanted(source, d.system):
            rd.add_copy(source, d.system)


def _rds_global(rd: _Reader) -> None:
    clusters = rd.by_type.get("aws_rds_cluster", [])
    index = _index(clusters, "cluster_identifier", "arn")
    for g in rd.by_type.get("aws_rds_global_cluster", []):
        gid = g.values.get("global_cluster_identifier")
        members: list[_Res] = []
        for c in clusters:
            if c.system is None:
                continue
            value = c.values.get("global_cluster_identifier")
            if (isinstance(gid, str) and value == gid) or (
                value is None and _find(rd, c, {}, None, "global_cluster_identifier") is g
            ):
                members.append(c)
        if len(members) < 2:
            continue
        members.sort(key=lambda m: m.address)
        primary = _find(rd, g, index, g.values.get("source_db_cluster_identifier"),
                        "source_db_cluster_identifier")
        if primary is None or primary not in members:
            primary = members[0]
        head = primary.system
        for m in members:
            if m is not primary and head is not None and m.system is not None \
                    and _wanted(head, m.system):
                rd.add_copy(head, m.system)


# ---------------------------------------------------------------------- Azure
def _azure_storage(rd: _Reader) -> None:
    for a in rd.by_type.get("azurerm_storage_account", []):
        s = a.system
        if s is None or not _wanted(s):
            continue
        kind = a.values.get("account_replication_type")
        if isinstance(kind, str):
            if kind.upper() not in _GEO_REDUNDANT:
                continue
            reason = None
        elif a.unknown.get("account_replication_type") is True:
            reason = f"{a.address}: account_replication_type unknown until apply"
        else:
            continue
        region = s.location.regions[0] if s.location.regions else None
        paired = rd.ctx.paired_region("azure", region) if region and reason is None else None
        if paired:
            loc = Location(provider="azure", regions=(paired,))
        else:
            loc = Location(provider="azure", unknown_reason=reason or (
                f"{a.address}: {kind} copies to the paired region of {region or '?'}, which the "
                "policy pack does not list"))
        rd.add_copy(s, rd.derived(s, f"{a.address}/secondary", loc))
