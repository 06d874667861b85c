"""Answers for the AWS calls moto does not implement, shaped as the real services document.

Used by `residency demo` (its scanner session) and by the collector tests, so both see the
same AWS: installed as botocore event handlers on the scanner's session, they answer at
`before-send` (botocore's parser and the collector's body check still run) or amend a parsed
answer at `after-call`. Nothing here imports moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class _Raw:
    """The raw stream of an HTTP answer, as botocore reads it (`AWSResponse.raw`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        return iter([self._data])


def _answer(request: Any, body: bytes, content_type: str) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse(request.url, 200, {"Content-Type": content_type}, _Raw(body))


def _signed_region(request: Any) -> str:
    auth = request.headers["Authorization"]
    auth = auth.decode() if isinstance(auth, bytes) else auth
    return str(auth.split("Credential=")[1].split("/")[2])


@dataclass
class MotoServiceGaps:
    """Answers, at `before-send` (so botocore's parser and the collector's body check see
    them like any HTTP answer), the calls moto 5.2.5 lacks, as the real services document:

    - EFS `DescribeReplicationConfigurations` (moto: HTTP 500 "not implemented"): the
      region's replication configurations, `{"Replications": [...]}`, `efs_replications`;
    - ElastiCache `DescribeGlobalReplicationGroups` (moto: HTTP 500): the global datastores
      with their members (`ShowMemberInfo`), query-protocol XML, `cache_globals`;
    - Connect `ListInstanceStorageConfigs` (moto: HTTP 404): the storage configs of an
      instance for one resource type, `connect_storage[(instance id, type)]`;
    - KMS `DescribeKey` of a multi-Region primary lists its `ReplicaKeys` (moto's
      `ReplicateKey` fails, so it never has any): `kms_replicas[key arn]` (after-call);
    - the tagging API lists ECR repositories (moto's does not): `tagged[arn]` (after-call).
    Without an entry each answers "none", as the real service does for an empty account.
    """

    efs_replications: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cache_globals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    connect_storage: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    kms_replicas: dict[str, list[str]] = field(default_factory=dict)
    tagged: dict[str, dict[str, str]] = field(default_factory=dict)

    def install(self, session: Any) -> Any:
        events = session.events
        events.register("before-send.efs.DescribeReplicationConfigurations", self._efs)
        events.register("before-send.elasticache.DescribeGlobalReplicationGroups", self._cache)
        events.register("before-send.connect.ListInstanceStorageConfigs", self._connect)
        events.register("after-call.kms.DescribeKey", self._kms)
        events.register("after-call.resource-groups-tagging-api.GetResources", self._tagging)
        return session

    def _efs(self, request: Any, **_: Any) -> Any:
        found = self.efs_replications.get(_signed_region(request), [])
        return _answer(request, json.dumps({"Replications": found}).encode(),
                       "application/json")

    def _cache(self, request: Any, **_: Any) -> Any:
        from xml.sax.saxutils import escape

        def member(m: dict[str, Any]) -> str:
            return "<GlobalReplicationGroupMember>" + "".join(
                f"<{k}>{escape(str(v))}</{k}>" for k, v in m.items()
            ) + "</GlobalReplicationGroupMember>"

        groups = "".join(
            f"<GlobalReplicationGroup><GlobalReplicationGroupId>{escape(g['id'])}"
            f"</GlobalReplicationGroupId><Status>available</Status><Members>"
            f"{''.join(member(m) for m in g['members'])}</Members></GlobalReplicationGroup>"
            for g in self.cache_globals.get(_signed_region(request), []))
        body = ('<DescribeGlobalReplicationGroupsResponse xmlns="http://elasticache.amazonaws'
                '.com/doc/2015-02-02/"><DescribeGlobalReplicationGroupsResult>'
                f"<GlobalReplicationGroups>{groups}</GlobalReplicationGroups>"
                "</DescribeGlobalReplicationGroupsResult><ResponseMetadata><RequestId>r1"
                "</RequestId></ResponseMetadata></DescribeGlobalReplicationGroupsResponse>")
        return _answer(request, body.encode(), "text/xml")

    def _connect(self, request: Any, **_: Any) -> Any:
        from urllib.parse import parse_qs, unquote, urlsplit

        url = urlsplit(request.url)
        instance = unquote(url.path.split("/instance/")[1].split("/")[0])
        rtype = parse_qs(url.query).get("resourceType", [""])[0]
        found = self.connect_storage.get((instance, rtype), [])
        return _answer(request, json.dumps({"StorageConfigs": found}).encode(),
                       "application/json")

    def _kms(self, parsed: dict[str, Any], **_: Any) -> None:
        meta = parsed.get("KeyMetadata") or {}
        regions = self.kms_replicas.get(str(meta.get("Arn")))
        if regions:
            arn = str(meta["Arn"])
            meta.setdefault("MultiRegionConfiguration", {})["ReplicaKeys"] = [
                {"Arn": arn.replace(f":{arn.split(':')[3]}:", f":{r}:", 1), "Region": r}
                for r in regions]

    def _tagging(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        region = context.get("client_region")
        items = parsed.setdefault("ResourceTagMappingList", [])
        for arn, tags in self.tagged.items():
            if arn.split(":")[3] == region:
                items.append({"ResourceARN": arn,
                              "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]})
