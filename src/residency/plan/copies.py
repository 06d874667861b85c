"""Copies Terraform will set up: replication rules, replicas, geo-redundant secondaries.

Each copy is a flow from the resource holding the data to the place the copy lives, so the
engine judges it like any other transfer. A copy whose destination the plan cannot tell
becomes a system with an unknown location (RES-L001), never a silent omission. Google
dual- and multi-region buckets need no flow: their location already covers every country.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from residency.model import Location, Origin, Role, System
from residency.policy.catalogue import Step, is_unknown, lookup, normalise, parse_path

if TYPE_CHECKING:
    from residency.plan.reader import _Reader, _Res



def find_copies(rd: _Reader) -> None:
    """Run the copy mechanisms the catalogue names for the types in this plan, then the
    generic ones: attribute paths that list the regions of copies, and geo-redundancy to
    the paired region (`pair_if`)."""
    named = {st.mechanism for r in rd.resources.values() if r.entry is not None
             for st in r.entry.copies if st.mechanism}
    for name, run in _MECHANISMS.items():
        if name in named:
            run(rd)
    for r in list(rd.resources.values()):
        if r.entry is None or not r.entry.copies:
            continue
        for step in r.entry.copies:
            if step.attr is not None:
                _attr_copies(rd, r, step)
            elif step.pair_if is not None:
                _paired_copy(rd, r, step.pair_if)


def _owner(rd: _Reader, r: _Res) -> System | None:
    """The system whose data a copy carries: the resource itself, or (for a configuration
    resource such as a replication or copy-action rule) the one it configures."""
    if r.system is not None:
        return r.system
    conf = rd.config.resource(r.config_module, r.type, r.name)
    for attr in ("source_db_instance_arn", "file_system_id", "source_file_system_id",
                 "cluster_identifier", "repository"):
        ref = rd.config.reference(conf, attr) if conf else None
        hit = rd.resources.get(r.module + ref) if ref else None
        if hit is not None and hit.system is not None:
            return hit.system
    return None


def _attr_copies(rd: _Reader, r: _Res, step: Step) -> None:
    path = parse_path(step.attr or "")
    found = sorted({n for v in lookup(r.values, path) if isinstance(v, str)
                    if (n := normalise(v, step.as_))})
    source = _owner(rd, r)
    if source is None:
        if not found and not is_unknown(r.unknown, path):
            return
        like = System(id="", party=r.provider, role=Role.PROCESSOR, location=Location())
        source = _elsewhere(rd, f"{r.address}.source", f"{r.address}: the data it copies is "
                            "not in this plan; its region and classification are unknown", like)
        rd.systems.setdefault(source.id, source)
    if not _wanted(source):
        return
    home = set(source.location.regions)
    for region in found:
        if region in home:
            continue
        loc = Location(provider=source.location.provider or r.provider, regions=(region,))
        rd.add_copy(source, rd.derived(source, f"{r.address}/replica/{region}", loc))
    if not found and is_unknown(r.unknown, path):
        loc = Location(provider=source.location.provider or r.provider,
                       unknown_reason=f"{r.address}: {step.attr} unknown until apply")
        rd.add_copy(source, rd.derived(source, f"{r.address}/replica/unknown", loc))


def _paired_copy(rd: _Reader, r: _Res, cond: tuple[str, frozenset[str]]) -> None:
    """Geo-redundancy: a copy in the region the pack pairs with the resource's own."""
    s = r.system
    if s is None or not _wanted(s):
        return
    attr, wanted = cond
    path = parse_path(attr)
    got = next(iter(lookup(r.values, path)), None)
    if got is None:
        if not is_unknown(r.unknown, path):
            return
        reason: str | None = f"{r.address}: {attr} unknown until apply"
    elif str(got).upper() not in wanted:
        return
    else:
        reason = None
    region = s.location.regions[0] if s.location.regions else None
    paired = rd.ctx.paired_region(s.location.provider or r.provider, region) \
        if region and reason is None else None
    if paired:
        loc = Location(provider=s.location.provider, regions=(paired,))
    else:
        loc = Location(provider=s.location.provider, unknown_reason=reason or (
            f"{r.address}: {attr}={got} copies to the paired region of {region or '?'}, "
            "which the policy pack does not list"))
    rd.add_copy(s, rd.derived(s, f"{r.address}/secondary", loc))


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
def _dynamodb_replica_resources(rd: _Reader) -> None:
    """`aws_dynamodb_table_replica`: a replica resource of a table named by ARN."""
    index = _index(rd.by_type.get("aws_dynamodb_table", []), "arn")
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


_MECHANISMS = {
    "s3_replication": _s3,
    "dynamodb_replica_resource": _dynamodb_replica_resources,
    "rds_replica": _rds_replicas,
    "rds_global": _rds_global,
}
