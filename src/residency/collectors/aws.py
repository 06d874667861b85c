"""AWS collector: S3, RDS, DynamoDB and every tagged resource, across accounts and regions;
the copies other services make (Secrets Manager replicas, AWS Backup copy rules, EFS, ECR and
ElastiCache global datastore replication), Amazon Connect's storage, and the KMS keys of
classified stores.

Read-only (List/Describe/Get only; policies/iam/aws-readonly-policy.json lists every call).
Work runs on one bounded thread pool as account → region × service → per-resource tasks, so
a slow scope never holds up the others. Every task passes `_Scan._task`, which turns any
exception into a `CoverageGap` for its scope (one redacted line, never a body), and a
`before-parse` hook on every client refuses a 2xx body that is not the JSON or XML its
protocol promises, which botocore would otherwise parse as an empty answer.

Clients are costly to build (about 3 ms of CPU each, more than the calls they make) and an
organization scan needs services × regions of them per account. So every account reached
through the same session shares one client per (service, region): each task runs "as" its
account (a context variable) and a `before-sign` hook signs the request with that account's
credentials. Connections are reused across accounts too.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from residency.collectors import _faults
from residency.collectors._aws_stores import LISTINGS, Listing, arn_type
from residency.collectors.interface import (
    CollectContext,
    Collector,
    replication_flow,
    resource_system,
)
from residency.errors import CollectorError
from residency.model import (
    CoverageGap,
    Flow,
    Inventory,
    KeyRef,
    Location,
    Origin,
    Role,
    System,
)
from residency.policy.catalogue import Catalogue, lookup, parse_path
from residency.redact import one_line

PROVIDER = "aws"
DEFAULT_ROLE_NAME = "ResidencyReadOnly"
# Regions a `describe_regions` entry may carry; "not-opted-in" regions cannot be called.
_ENABLED = frozenset({"opt-in-not-required", "opted-in"})
# S3 GetBucketLocation quirks (API reference): null means us-east-1, legacy `EU` is eu-west-1.
_S3_LOCATION_ALIASES = {"": "us-east-1", "EU": "eu-west-1"}
_GLOBAL_REGION = "aws-global"
# a bucket ARN in any partition (aws, aws-us-gov, aws-cn, aws-iso*, aws-eusc ...)
_S3_ARN = re.compile(r"^arn:[a-z0-9-]+:s3:::(?P<bucket>[^/]+)$")
# the region each partition's global services (S3 ListBuckets, STS) answer in, when the
# session names none of that partition's regions (botocore's partitions data has none)
_PARTITION_HOME = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1",
                   "aws-iso": "us-iso-east-1", "aws-iso-b": "us-isob-east-1",
                   "aws-iso-e": "eu-isoe-west-1", "aws-iso-f": "us-isof-south-1",
                   "aws-eusc": "eusc-de-east-1"}
_KEY_PATTERN = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
# regional scans: progress/gap label → botocore service name
_SERVICES = {"rds": "rds", "dynamodb": "dynamodb", "tagging": "resourcegroupstaggingapi",
             "secretsmanager": "secretsmanager", "backup": "backup", "efs": "efs",
             "ecr": "ecr", "elasticache": "elasticache", "connect": "connect"}
# the AWS managed key a service uses when a store names none (KMS developer guide, "AWS
# managed keys": single-Region, origin AWS_KMS, managed by AWS)
_SECRETS_DEFAULT_KEY = "alias/aws/secretsmanager"
_S3_DEFAULT_KEY = "alias/aws/s3"
_ECR_DEFAULT_KEY = "alias/aws/ecr"
_JSON_PROTOCOLS = frozenset({"json", "rest-json"})
_XML_PROTOCOLS = frozenset({"query", "rest-xml", "ec2"})

SessionFactory = Callable[[str | None], Any]
"""profile name (None = default chain) → boto3.Session."""


def _default_session_factory(profile: str | None) -> Any:
    import boto3

    return boto3.Session(profile_name=profile)


# --------------------------------------------------------------------------- records
@dataclass(slots=True)
class _Resource:
    """A resource as read, before classification turns it into a System."""

    arn: str
    name: str
    account: str
    regions: tuple[str, ...]
    tags: dict[str, str]
    unknown_reason: str | None = None
    # the answer that named it carries no tags: take the tagging API's (one call per region
    # instead of one per resource; a failed tagging call is that region's gap)
    tags_from_tagging: bool = False


KeyFacts = KeyRef  # the model's record of a store's encryption key


@dataclass(frozen=True, slots=True)
class _KeyRef:
    """A store naming a key: either the facts already known (an AWS managed or owned key),
    or a DescribeKey to look up when the scan ends."""

    system: str
    algorithm: str | None
    lookup: tuple[str, str, str] | None = None  # (account, region asked, key id as named)
    facts: KeyFacts | None = None


@dataclass(frozen=True, slots=True)
class _Edge:
    """Replication seen on the wire; built into a Flow once every endpoint is known."""

    source: str
    target: str
    kind: str
    target_account: str | None
    target_region: str | None  # None: resolve later (S3 destination buckets)


@dataclass(frozen=True, slots=True, eq=False)
class _Account:
    """An account entered: its requests go through `session`'s clients, signed with
    `credentials` (botocore credentials: the session's own, or an assumed role's)."""

    id: str
    session: Any
    credentials: Any
    partition: str = "aws"


# The account the current task acts in; read by the signing hook of every shared client.
_ACTING: ContextVar[_Account | None] = ContextVar("residency_aws_account", default=None)


def _sign_as_acting(request: Any, **_: Any) -> None:
    """`before-sign` hook: sign with the acting account's credentials, never a default."""
    acct = _ACTING.get()
    if acct is None:
        raise RuntimeError("aws: request sent outside an account's task")  # a collector bug
    request.context.setdefault("signing", {})["request_credentials"] = acct.credentials


class MalformedAnswerError(Exception):
    """A 2xx answer whose body is not the JSON or XML its protocol promises (cut short by a
    proxy or a dropped connection, garbled): without this, botocore's JSON parser reads it
    as `{'message': body}`, which a collector would take for an empty list."""


def _check_body(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    """`before-parse` hook on every client the collector builds: refuse what would parse to
    nothing. Empty bodies stay with the parser (some protocols allow them); streamed and
    blob/string payloads are not documents. The message never quotes the body."""
    status = int(response_dict.get("status_code") or 0)
    body = response_dict.get("body")
    if not 200 <= status < 300 or operation_model.has_streaming_output:
        return
    if not isinstance(body, (bytes, bytearray)) or not body.strip():
        return
    output = operation_model.output_shape
    payload = output.serialization.get("payload") if output is not None else None
    if payload and output.members[payload].type_name in ("blob", "string"):
        return
    protocol = operation_model.service_model.resolved_protocol
    where = (f"{operation_model.service_model.service_name} {operation_model.name}: "
             f"HTTP {status} answer of {len(body)} bytes")
    if protocol in _JSON_PROTOCOLS:
        try:
            doc = json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise MalformedAnswerError(f"{where} is not well-formed JSON "
                                       f"({_faults.first_line(exc)})") from None
        if not isinstance(doc, dict):
            raise MalformedAnswerError(f"{where} is JSON but not an object")
    elif protocol in _XML_PROTOCOLS:
        from xml.etree.ElementTree import ParseError, XMLParser

        try:
            # the same bytes botocore hands to ElementTree next; expat >= 2.4.1 bounds
            # entity expansion, and nothing is resolved or kept
            parser = XMLParser()  # noqa: S314
            parser.feed(bytes(body))
            parser.close()
        except ParseError as exc:
            raise MalformedAnswerError(f"{where} is not well-formed XML "
                                       f"({_faults.first_line(exc)})") from None


@dataclass(frozen=True, slots=True)
class _Target:
    """An account to enter: by profile, by role in a known account, or the base session."""

    account: str | None = None
    profile: str | None = None
    assume: bool = False


class _Redactor:
    """Strips every credential the scan has seen from text before it leaves the collector."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.update(v for v in values if v and len(v) >= 8)

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return _KEY_PATTERN.sub("[redacted]", text)


# --------------------------------------------------------------------------- collector
class AwsCollector(Collector):
    """Collects an AWS estate: an organization, a list of accounts, or a list of profiles."""

    provider = PROVIDER

    def __init__(
        self,
        session: Any | None = None,
        *,
        organization: bool = True,
        accounts: Sequence[str] = (),
        profiles: Sequence[str] = (),
        role_name: str = DEFAULT_ROLE_NAME,
        role_duration: int = 3600,
        regions: Sequence[str] = (),
        endpoint_url: str | None = None,
        max_attempts: int = 10,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session_factory: SessionFactory = _default_session_factory,
        catalogue: Catalogue | None = None,
    ) -> None:
        self._session = session
        self._catalogue = catalogue
        self._organization = organization
        self._accounts = tuple(accounts)
        self._profiles = tuple(profiles)
        self._role_name = role_name
        self._role_duration = role_duration
        self._regions = tuple(regions)
        self._endpoint_url = endpoint_url
        self._max_attempts = max_attempts
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._session_factory = session_factory
        self.last_keys: dict[str, tuple[KeyFacts, ...]] = {}
        """The keys of the last `collect`'s systems, by system id (see `KeyFacts`)."""

    def collect(self, ctx: CollectContext) -> Inventory:
        if self._catalogue is None:
            self._catalogue = _shipped_catalogue()
        scan = _Scan(self, ctx)
        inventory = scan.run()
        self.last_keys = scan.keys
        return inventory

    # used by _Scan
    def _config(self, workers: int, service: str) -> Any:
        from botocore.config import Config

        extra: dict[str, Any] = {}
        if service == "s3" and self._endpoint_url:
            extra["s3"] = {"addressing_style": "path"}
        return Config(
            # total attempts, the first included (botocore's `max_attempts` counts retries)
            retries={"mode": "adaptive", "total_max_attempts": self._max_attempts},
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            max_pool_connections=max(10, workers),
            **extra,
        )


class _Scan:
    """One run of the collector: the pool, the results and the clients."""

    def __init__(self, owner: AwsCollector, ctx: CollectContext) -> None:
        self.o = owner
        self.ctx = ctx
        self.redact = _Redactor()
        self.base = owner._session if owner._session is not None else (
            owner._session_factory(None)
        )
        self._lock = threading.Lock()
        self._session_locks: dict[int, threading.Lock] = {}
        self._idle = threading.Condition()
        self._pending = 0
        self._errors: list[BaseException] = []
        self._pool: ThreadPoolExecutor | None = None
        self._clients: dict[tuple[int, str, str], Any] = {}
        self._sts: Any = None
        self.resources: dict[str, _Resource] = {}
        self.tagged: dict[str, _Resource] = {}
        self.edges: list[_Edge] = []
        self.gaps: list[CoverageGap] = []
        self.accounts: list[_Account] = []
        self.bucket_regions: dict[str, str] = {}
        self.key_refs: list[_KeyRef] = []
        self.key_facts: dict[tuple[str, str, str], KeyFacts] = {}
        self.keys: dict[str, tuple[KeyFacts, ...]] = {}
        self._partitions: dict[str, str] = {}
        self._offered_regions: dict[tuple[str, str], frozenset[str]] = {}
        self.base_partition = "aws"

    # ------------------------------------------------------------------ orchestration
    def run(self) -> Inventory:
        base_account = self._base_identity()
        targets = [t for t in self._targets(base_account)
                   if self.ctx.wants(t.account or t.profile or "")]
        with ThreadPoolExecutor(max_workers=self.ctx.workers,
                                thread_name_prefix="residency-aws") as pool:
            self._pool = pool
            for target in targets:
                scope = (f"account {target.account}" if target.account
                         else f"profile {target.profile}")
                self._submit(scope, self._open_account, target, base_account)
            self._drain()
            self._resolve_destinations()
            self._drain()
        return self._build()

    def _submit(self, scope: str, fn: Callable[..., None], *args: Any) -> None:
        """Queue one unit of work for `scope`; whatever it raises becomes that scope's gap."""
        if self._pool is None:
            raise RuntimeError("_submit outside run()")
        with self._idle:
            self._pending += 1
        self._pool.submit(self._task, scope, fn, *args).add_done_callback(self._finished)

    def _submit_as(self, acct: _Account, scope: str, fn: Callable[..., None],
                   *args: Any) -> None:
        """Run `fn(acct, *args)` as `acct`: its requests are signed with acct's credentials."""
        self._submit(scope, _acting, acct, fn, *args)

    def _task(self, scope: str, fn: Callable[..., None], *args: Any) -> None:
        """The one place every unit of work passes: any exception (an SDK error, a reset,
        a timeout, a KeyError from a short answer, a malformed body) is a gap for `scope`,
        and the rest of the scan goes on with what was readable."""
        try:
            fn(*args)
        except Exception as exc:
            self._gap(scope, exc)
        finally:
            self._done(scope)

    def _finished(self, fut: Future[None]) -> None:
        with self._idle:
            self._pending -= 1
            exc = fut.exception()
            if exc is not None:  # only if recording a gap itself failed
                self._errors.append(exc)
            if self._pending == 0:  # only then can the waiter go on: no wake-up per task
                self._idle.notify_all()

    def _drain(self) -> None:
        """Wait until no task is pending; tasks may submit further tasks meanwhile."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
            if self._errors:
                raise self._errors[0]  # a bug in the collector is loud, never a silent gap

    def _done(self, label: str) -> None:
        if self.ctx.progress is not None:
            self.ctx.progress(label, 1)

    def _gap(self, scope: str, exc: BaseException | str) -> None:
        if isinstance(exc, str):
            reason = _faults.shorten(one_line(self.redact(exc)))
        else:
            reason = self._reason(exc)
        with self._lock:
            self.gaps.append(CoverageGap(PROVIDER, scope, reason))

    def _reason(self, exc: BaseException) -> str:
        """One redacted line: the AWS error code and message, else the exception type."""
        return _faults.reason(exc, _aws_error, self.redact)

    # ------------------------------------------------------------------ clients
    def _session_lock(self, session: Any) -> threading.Lock:
        with self._lock:
            return self._session_locks.setdefault(id(session), threading.Lock())

    def _client(self, session: Any, service: str, region: str) -> Any:
        with self._session_lock(session):  # boto3 sessions are not thread-safe; clients are
            client = session.client(
                service, region_name=region, endpoint_url=self.o._endpoint_url,
                config=self.o._config(self.ctx.workers, service),
            )
        client.meta.events.register("before-parse", _check_body)
        return client

    def _base_sts(self) -> Any:
        """STS as the caller itself (identity, AssumeRole): one client for the scan."""
        with self._lock:
            sts = self._sts
        if sts is None:
            sts = self._client(self.base, "sts", self._home_region(self.base))
            with self._lock:
                sts = self._sts = self._sts or sts
        return sts

    def _acct_client(self, acct: _Account, service: str, region: str) -> Any:
        """The (service, region) client shared by every account of acct's session; it must
        be used inside a task acting as acct (see `_submit_as`)."""
        if _ACTING.get() is not acct:
            raise RuntimeError(f"aws: client for account {acct.id} used outside its task")
        key = (id(acct.session), service, region)
        client = self._clients.get(key)
        if client is None:
            with self._session_lock(acct.session):  # built once, even when asked for at once
                client = self._clients.get(key)
                if client is None:
                    client = acct.session.client(
                        service, region_name=region, endpoint_url=self.o._endpoint_url,
                        config=self.o._config(self.ctx.workers, service),
                    )
                    client.meta.events.register("before-sign", _sign_as_acting)
                    client.meta.events.register("before-parse", _check_body)
                    self._clients[key] = client
        return client

    def _home_region(self, session: Any) -> str:
        return str(getattr(session, "region_name", None) or "us-east-1")

    # ------------------------------------------------------------------ accounts
    def _base_identity(self) -> str | None:
        """The caller's account; no credentials at all is the one error that stops a scan."""
        from botocore.exceptions import NoCredentialsError

        if self._profiles_only:
            return None
        creds = self.base.get_credentials()
        if creds is None:
            raise CollectorError(
                "aws: no credentials found; set AWS_PROFILE, AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, or pass --aws-profile"
            )
        frozen = creds.get_frozen_credentials()
        self.redact.add(frozen.access_key, frozen.secret_key, frozen.token)
        try:
            ident = self._base_sts().get_caller_identity()
            # the partition is found, never assumed: a GovCloud or China caller's ARN says
            self.base_partition = _partition_of(str(ident.get("Arn", "")))
            return str(ident["Account"])
        except NoCredentialsError:
            raise CollectorError("aws: no credentials found") from None
        except Exception as exc:  # every road (incl. a short or garbled answer) is one line
            raise CollectorError(
                f"aws: cannot identify the caller with the given credentials: "
                f"{self._reason(exc)}"
            ) from None

    @property
    def _profiles_only(self) -> bool:
        """Profiles without a session: only the profiles' accounts. With a session too, an
        estate spanning partitions: the session's organization (or accounts) and each
        profile's account in its own partition (a GovCloud or China account is a separate
        identity, never reachable from a commercial one)."""
        return bool(self.o._profiles) and self.o._session is None

    def _targets(self, base_account: str | None) -> list[_Target]:
        profiles = [_Target(profile=p) for p in self.o._profiles]
        if self._profiles_only:
            return profiles
        if self.o._accounts:
            return profiles + [_Target(account=a, assume=a != base_account)
                               for a in self.o._accounts]
        targets = [*profiles, _Target(account=base_account)]
        if self.o._organization:
            for acct in self._org_accounts(base_account):
                targets.append(_Target(account=acct, assume=True))
        return targets

    def _org_accounts(self, base_account: str | None) -> list[str]:
        try:
            org = self._client(self.base, "organizations", self._home_region(self.base))
            out: list[str] = []
            for page in org.get_paginator("list_accounts").paginate():
                for acct in page.get("Accounts", []):
                    if acct.get("Status", "ACTIVE") == "ACTIVE" and acct["Id"] != base_account:
                        out.append(str(acct["Id"]))
            return sorted(out)
        except Exception as exc:
            if _code(exc) == "AWSOrganizationsNotInUseException":
                return []  # a standalone account: nothing else to enter
            self._gap("organization", f"cannot list member accounts, only account "
                      f"{base_account} scanned: {self._reason(exc)}")
        return []

    def _open_account(self, target: _Target, base_account: str | None) -> None:
        acct = self._enter(target, base_account)
        with self._lock:
            self.accounts.append(acct)
        _acting(acct, self._fan_out)

    def _fan_out(self, acct: _Account) -> None:
        regions = self._enabled_regions(acct, f"account {acct.id}")
        self._submit_as(acct, f"account {acct.id}/s3", self._scan_s3)
        for region in regions:
            for label, service in _SERVICES.items():
                if self._offered(acct, service, region):
                    self._submit_as(acct, f"account {acct.id}/{region} {label}",
                                    self._scan_regional, region, label)
            for listing in LISTINGS:
                if self._offered(acct, listing.service, region):
                    self._submit_as(acct, f"account {acct.id}/{region} {listing.label}",
                                    self._scan_listing, region, listing)
        if regions:
            home = "us-east-1" if "us-east-1" in regions else regions[0]
            self._submit_as(acct, f"account {acct.id}/{home} rds global clusters",
                            self._scan_global_clusters, home)

    def _enter(self, target: _Target, base_account: str | None) -> _Account:
        if target.profile is not None:
            session = self.o._session_factory(target.profile)
            creds = session.get_credentials()
            if creds is not None:
                frozen = creds.get_frozen_credentials()
                self.redact.add(frozen.access_key, frozen.secret_key, frozen.token)
            ident = self._client(session, "sts", self._home_region(session)).get_caller_identity()
            return _Account(str(ident["Account"]), session, creds,
                            _partition_of(ident.get("Arn", "")))
        if not target.assume:
            return _Account(str(target.account or base_account), self.base,
                            self.base.get_credentials(), self.base_partition)
        from botocore.credentials import RefreshableCredentials

        account = str(target.account)
        # refreshed (assumed again) before they expire, so a scan may outlast one session
        creds = RefreshableCredentials.create_from_metadata(
            self._assume(account), lambda: self._assume(account), "assume-role")
        return _Account(account, self.base, creds, self.base_partition)

    def _assume(self, account: str) -> dict[str, str]:
        """AssumeRole into `account`, as botocore's refreshable-credentials metadata."""
        role_arn = f"arn:{self.base_partition}:iam::{account}:role/{self.o._role_name}"
        got = self._base_sts().assume_role(
            RoleArn=role_arn, RoleSessionName="residency-scan",
            DurationSeconds=self.o._role_duration)["Credentials"]
        self.redact.add(got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"])
        expiry = got["Expiration"]
        return {"access_key": got["AccessKeyId"], "secret_key": got["SecretAccessKey"],
                "token": got["SessionToken"],
                "expiry_time": expiry.isoformat() if hasattr(expiry, "isoformat") else str(expiry)}

    def _enabled_regions(self, acct: _Account, scope: str) -> list[str]:
        home = self._home_region(acct.session)
        enabled: list[str] = []
        status: dict[str, str] = {}
        try:
            ec2 = self._acct_client(acct, "ec2", home)
            for reg in ec2.describe_regions(AllRegions=False)["Regions"]:
                name = str(reg["RegionName"])
                status[name] = str(reg.get("OptInStatus", "opt-in-not-required"))
                if status[name] in _ENABLED and self._partition(acct, name) == acct.partition:
                    enabled.append(name)
            if status and not any(self._partition(acct, n) == acct.partition for n in status):
                # never "no region, no gap": an account whose regions are all of another
                # partition than the one its identity says is a scope nothing was read in
                self._gap(f"{scope} regions", f"none of the {len(status)} regions offered is "
                          f"in the account's partition {acct.partition}; regional services "
                          "not scanned")
                return []
        except Exception as exc:
            if self.o._regions:
                # trust the operator's list (this partition's part); calls will tell
                return [n for n in self.o._regions
                        if self._partition(acct, n) == acct.partition]
            self._gap(f"{scope} regions", f"cannot list enabled regions, regional services "
                      f"not scanned: {self._reason(exc)}")
            return []
        if not self.o._regions:
            return sorted(enabled)
        chosen = []
        asked = [n for n in self.o._regions if self._partition(acct, n) == acct.partition]
        if not asked:  # never "no region, no gap" (an estate's list spans partitions)
            self._gap(f"{scope} regions", f"none of the regions asked for is in the "
                      f"account's partition {acct.partition}; regional services not scanned")
        for name in asked:  # another partition's regions are for that partition's accounts
            if name in enabled:
                chosen.append(name)
            elif name in status:
                self._gap(f"{scope}/{name}", f"region not enabled (opt-in status "
                          f"{status[name]})")
            else:
                self._gap(f"{scope}/{name}", "region not offered to this account")
        return chosen

    def _offered(self, acct: _Account, service: str, region: str) -> bool:
        """Whether `service` has an endpoint in `region` by botocore's endpoint data (Amazon
        Connect is in a third of the regions; calling it elsewhere is a DNS error, not a
        reading). A region that data does not know at all is called: fail closed."""
        def regions(name: str) -> frozenset[str]:
            key = (acct.partition, name)
            hit = self._offered_regions.get(key)
            if hit is None:
                with self._session_lock(acct.session):
                    hit = frozenset(acct.session.get_available_regions(
                        name, partition_name=acct.partition))
                self._offered_regions[key] = hit
            return hit

        return region in regions(service) or region not in regions("ec2")

    def _partition(self, acct: _Account, region: str) -> str:
        """Partitions are static data, but botocore rebuilds its resolver on every ask:
        look each region up once per scan."""
        hit = self._partitions.get(region)
        if hit is None:
            with self._session_lock(acct.session):
                hit = str(acct.session.get_partition_for_region(region))
            self._partitions[region] = hit
        return hit

    # ------------------------------------------------------------------ S3
    def _global_region(self, acct: _Account) -> str:
        """Where the partition's global endpoints answer (S3 ListBuckets/GetBucketLocation)."""
        home = self._home_region(acct.session)
        if self._partition(acct, home) == acct.partition:
            return home if acct.partition != "aws" else "us-east-1"
        return _PARTITION_HOME.get(acct.partition, home)

    def _scan_s3(self, acct: _Account) -> None:
        s3 = self._acct_client(acct, "s3", self._global_region(acct))
        for page in _pages(s3, "list_buckets"):
            for bucket in page.get("Buckets", []):
                name = str(bucket["Name"])
                self._submit_as(acct, f"account {acct.id}/s3 bucket {name}",
                                self._scan_bucket, name)

    def _scan_bucket(self, acct: _Account, name: str) -> None:
        """A bucket whose location cannot be read is kept with an unknown location, and
        one whose tags cannot be read is kept untagged; the task's gap says why."""
        arn = f"arn:{acct.partition}:s3:::{name}"
        try:
            region = self._bucket_region(acct, name)
        except Exception as exc:
            reason = f"bucket location unreadable: {self._reason(exc)}"
            self._add(_Resource(arn, name, acct.id, (), {}, reason))
            raise
        with self._lock:
            self.bucket_regions[name] = region
        s3 = self._acct_client(acct, "s3", region)
        tags: dict[str, str] = {}
        try:
            tags = _tags(s3.get_bucket_tagging(Bucket=name).get("TagSet", []))
        except Exception as exc:
            if _code(exc) != "NoSuchTagSet":
                self._add(_Resource(arn, name, acct.id, (region,), {}))
                raise
        self._add(_Resource(arn, name, acct.id, (region,), tags))
        if self.ctx.classification.tag in tags:
            self._submit_as(acct, f"account {acct.id}/s3 bucket {name} encryption",
                            self._scan_bucket_key, name, region)
        try:
            config = s3.get_bucket_replication(Bucket=name)["ReplicationConfiguration"]
        except Exception as exc:
            if _code(exc) == "ReplicationConfigurationNotFoundError":
                return
            raise
        for rule in config.get("Rules", []):
            if rule.get("Status", "Enabled") != "Enabled":
                continue
            dest = rule.get("Destination", {})
            target = str(dest.get("Bucket", ""))
            if target:
                self._edge(_Edge(arn, target, "replication",
                                 dest.get("Account") or None, None))

    def _scan_bucket_key(self, acct: _Account, name: str, region: str) -> None:
        """A classified bucket's default encryption. No configuration at all (before 2023,
        or a fake) records no key: nothing says the data is encrypted."""
        s3 = self._acct_client(acct, "s3", region)
        try:
            config = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
        except Exception as exc:
            if _code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
                return
            raise
        arn = f"arn:{acct.partition}:s3:::{name}"
        for rule in config.get("Rules", []):
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            algorithm = str(default.get("SSEAlgorithm") or "")
            if algorithm.startswith("aws:kms"):  # aws:kms, aws:kms:dsse
                self._key(acct, arn, region, default.get("KMSMasterKeyID"), _S3_DEFAULT_KEY,
                          algorithm)
            elif algorithm:  # AES256: S3-managed keys, not KMS keys
                self._owned_key(arn, algorithm)

    def _bucket_region(self, acct: _Account, name: str) -> str:
        s3 = self._acct_client(acct, "s3", self._global_region(acct))
        raw = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or ""
        return _S3_LOCATION_ALIASES.get(str(raw), str(raw))

    def _resolve_destinations(self) -> None:
        """S3 replication targets: a scanned bucket's region, else ask S3, else unknown."""
        by_account = {a.id: a for a in self.accounts}
        for edge in list(self.edges):
            m = _S3_ARN.match(edge.target)
            if edge.target_region is not None or m is None:
                continue
            bucket = m["bucket"]
            if bucket in self.bucket_regions:
                continue
            src = self.resources.get(edge.source)
            acct = by_account.get(src.account) if src else None
            if acct is not None:
                self._submit_as(acct, f"s3 destination {bucket}", self._probe_bucket, bucket)

    def _probe_bucket(self, acct: _Account, bucket: str) -> None:
        """Outside the scan, an unreadable location is the placeholder's unknown reason."""
        try:
            region = self._bucket_region(acct, bucket)
        except Exception as exc:
            with self._lock:
                self.bucket_regions.setdefault(
                    f"?{bucket}", f"outside the scanned accounts, location unreadable: "
                    f"{self._reason(exc)}")
        else:
            with self._lock:
                self.bucket_regions.setdefault(bucket, region)

    # ------------------------------------------------------------------ regional
    def _scan_regional(self, acct: _Account, region: str, service: str) -> None:
        fn = {"rds": self._scan_rds, "dynamodb": self._scan_dynamodb,
              "tagging": self._scan_tagging, "secretsmanager": self._scan_secrets,
              "backup": self._scan_backup, "efs": self._scan_efs, "ecr": self._scan_ecr,
              "elasticache": self._scan_elasticache, "connect": self._scan_connect}[service]
        fn(acct, region)

    def _scan_rds(self, acct: _Account, region: str) -> None:
        rds = self._acct_client(acct, "rds", region)
        for page in _pages(rds, "describe_db_instances"):
            for db in page.get("DBInstances", []):
                arn = str(db["DBInstanceArn"])
                # the ARN names the region; moto reports a replica's AZ as its source's
                self._add(_Resource(arn, str(db["DBInstanceIdentifier"]), acct.id,
                                    (_arn_region(arn) or region,), _tags(db.get("TagList", []))))
                for replica in db.get("ReadReplicaDBInstanceIdentifiers", []):
                    target = _rds_arn(str(replica), arn, "db")
                    self._edge(_Edge(arn, target, "replication", _arn_account(target),
                                     _arn_region(target)))
                source = db.get("ReadReplicaSourceDBInstanceIdentifier")
                if source:
                    src = _rds_arn(str(source), arn, "db")
                    self._edge(_Edge(src, arn, "replication", acct.id, _arn_region(arn)))
                for backup in db.get("DBInstanceAutomatedBackupsReplications", []):
                    target = str(backup.get("DBInstanceAutomatedBackupsArn", ""))
                    if target:
                        self._edge(_Edge(arn, target, "backup-replication",
                                         _arn_account(target), _arn_region(target)))
        for page in _pages(rds, "describe_db_clusters"):
            for cluster in page.get("DBClusters", []):
                arn = str(cluster["DBClusterArn"])
                self._add(_Resource(arn, str(cluster["DBClusterIdentifier"]), acct.id,
                                    (_arn_region(arn) or region,),
                                    _tags(cluster.get("TagList", []))))
                for replica in cluster.get("ReadReplicaIdentifiers", []):
                    target = _rds_arn(str(replica), arn, "cluster")
                    self._edge(_Edge(arn, target, "replication", _arn_account(target),
                                     _arn_region(target)))

    def _scan_global_clusters(self, acct: _Account, region: str) -> None:
        """Aurora global databases: the writer cluster replicates to every reader region."""
        rds = self._acct_client(acct, "rds", region)
        for page in _pages(rds, "describe_global_clusters"):
            for gc in page.get("GlobalClusters", []):
                for member in gc.get("GlobalClusterMembers", []):
                    if not member.get("IsWriter"):
                        continue
                    writer = str(member["DBClusterArn"])
                    for reader in member.get("Readers", []):
                        self._edge(_Edge(writer, str(reader), "replication",
                                         _arn_account(str(reader)), _arn_region(str(reader))))

    def _scan_dynamodb(self, acct: _Account, region: str) -> None:
        ddb = self._acct_client(acct, "dynamodb", region)
        for page in _pages(ddb, "list_tables"):
            for name in page.get("TableNames", []):
                self._submit_as(acct, f"account {acct.id}/{region} dynamodb table {name}",
                                self._scan_table, region, str(name))

    def _scan_table(self, acct: _Account, region: str, name: str) -> None:
        ddb = self._acct_client(acct, "dynamodb", region)
        table = ddb.describe_table(TableName=name)["Table"]  # none: a gap, never a skip
        arn = str(table["TableArn"])
        tags: dict[str, str] = {}
        for page in _pages(ddb, "list_tags_of_resource", ResourceArn=arn):
            tags.update(_tags(page.get("Tags", [])))
        self._add(_Resource(arn, name, acct.id, (region,), tags))
        sse = table.get("SSEDescription") or {}  # absent: an AWS owned key (no KMS key)
        if self.ctx.classification.tag in tags and sse.get("KMSMasterKeyArn"):
            self._key(acct, arn, region, sse["KMSMasterKeyArn"], "",
                      str(sse.get("SSEType") or "KMS"))
        for replica in table.get("Replicas", []):  # global tables version 2019.11.21
            other = str(replica.get("RegionName", ""))
            if other and other != region:
                target = arn.replace(f":{region}:", f":{other}:", 1)
                self._edge(_Edge(arn, target, "replication", acct.id, other))

    def _scan_tagging(self, acct: _Account, region: str) -> None:
        tagging = self._acct_client(acct, "resourcegroupstaggingapi", region)
        for page in _pages(tagging, "get_resources", ResourcesPerPage=100):
            for item in page.get("ResourceTagMappingList", []):
                arn = str(item["ResourceARN"])
                if _S3_ARN.match(arn):
                    continue  # buckets: region from GetBucketLocation, never from here
                where = _arn_region(arn) or _GLOBAL_REGION
                res = _Resource(arn, _arn_name(arn), _arn_account(arn) or acct.id, (where,),
                                _tags(item.get("Tags", [])))
                with self._lock:
                    self.tagged.setdefault(arn, res)

    # ------------------------------------------------------------------ listed stores
    def _scan_listing(self, acct: _Account, region: str, listing: Listing) -> None:
        """Every store of one catalogue type in a region, tagged or not (untagged: RES-I001),
        through the one `Listing` mechanism; its tags inline or from the tagging API."""
        client = self._acct_client(acct, listing.service, region)
        key_path = parse_path(listing.key) if listing.key else None
        for page in _pages(client, listing.operation, **dict(listing.params)):
            for item in page.get(listing.items, []):
                if isinstance(item, dict) and listing.skip_if and item.get(listing.skip_if):
                    continue
                res = self._listed_resource(acct, region, listing, item)
                self._listed(res)
                if key_path is None or not isinstance(item, dict) or not (
                        res.tags_from_tagging or self.ctx.classification.tag in res.tags):
                    continue
                for key in lookup(item, key_path):
                    self._key(acct, res.arn, region, key, "")

    def _listed_resource(self, acct: _Account, region: str, listing: Listing,
                         item: Any) -> _Resource:
        if isinstance(item, str):  # a name, or a URL ending in the name (SQS)
            name = item.rstrip("/").rpartition("/")[2]
            fields: dict[str, Any] = {}
        else:
            fields = item
            name = str(item.get(listing.name) or "") if listing.name else ""
        if listing.arn:
            arn = str(fields[listing.arn])  # none: a short answer, the task's gap
        else:
            arn = str(listing.arn_template).format(partition=acct.partition, region=region,
                                                   account=acct.id, name=name)
        raw = fields.get(listing.tags) if listing.tags else None
        tags = (_tags(raw) if isinstance(raw, list) else
                {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {})
        owner = _arn_account(arn) or acct.id
        return _Resource(arn, name or _arn_name(arn), owner, (_arn_region(arn) or region,),
                         tags, tags_from_tagging=listing.tags is None)

    def _listed(self, res: _Resource) -> None:
        """A listed store: a record that read its tags beats one waiting for the tagging
        API's; otherwise the first record stays (the in-depth readers' and the copies')."""
        with self._lock:
            mine = self.resources.get(res.arn)
            if mine is None or (mine.tags_from_tagging and not res.tags_from_tagging):
                self.resources[res.arn] = res

    # ------------------------------------------------------------------ copies
    def _scan_secrets(self, acct: _Account, region: str) -> None:
        """Secrets Manager: ListSecrets gives tags and key but not the replicas, so each
        primary is described (a replica lists its primary's region and is named there)."""
        sm = self._acct_client(acct, "secretsmanager", region)
        for page in _pages(sm, "list_secrets"):
            for secret in page.get("SecretList", []):
                arn = str(secret["ARN"])
                name = str(secret.get("Name") or _arn_name(arn))
                tags = _tags(secret.get("Tags", []))
                self._add(_Resource(arn, name, acct.id, (region,), tags))
                self._key(acct, arn, region, secret.get("KmsKeyId"), _SECRETS_DEFAULT_KEY)
                primary = secret.get("PrimaryRegion")
                if primary and primary != region:
                    continue  # a replica: its primary's DescribeSecret names it
                if self._wanted(tags):
                    self._submit_as(acct, f"account {acct.id}/{region} secretsmanager "
                                    f"secret {name}", self._scan_secret, region, arn)

    def _scan_secret(self, acct: _Account, region: str, arn: str) -> None:
        sm = self._acct_client(acct, "secretsmanager", region)
        secret = sm.describe_secret(SecretId=arn)
        for replica in secret.get("ReplicationStatus", []):
            other = str(replica["Region"])
            if other != region:
                target = _in_region(arn, other)
                self._edge(_Edge(arn, target, "replication", acct.id, other))
                self._key(acct, target, other, replica.get("KmsKeyId"), _SECRETS_DEFAULT_KEY)
        for replica in secret.get("CrossAccountReplicas", []):
            target = str(replica["ReplicaSecretARN"])
            self._edge(_Edge(arn, target, "replication", _arn_account(target),
                             _arn_region(target)))

    def _scan_backup(self, acct: _Account, region: str) -> None:
        """AWS Backup plans: the rules (and their copy actions) are only in GetBackupPlan."""
        backup = self._acct_client(acct, "backup", region)
        for page in _pages(backup, "list_backup_plans"):
            for plan in page.get("BackupPlansList", []):
                plan_id = str(plan["BackupPlanId"])
                label = plan.get("BackupPlanName") or plan_id
                self._submit_as(acct, f"account {acct.id}/{region} backup plan {label}",
                                self._scan_backup_plan, region, plan_id)

    def _scan_backup_plan(self, acct: _Account, region: str, plan_id: str) -> None:
        """Each copy action copies the recovery points of the rule's vault to another vault
        (its region and account in its ARN): a flow from vault to vault."""
        backup = self._acct_client(acct, "backup", region)
        plan = backup.get_backup_plan(BackupPlanId=plan_id)["BackupPlan"]
        for rule in plan.get("Rules", []):
            actions = rule.get("CopyActions", [])
            if not actions:
                continue
            vault = str(rule["TargetBackupVaultName"])
            source = f"arn:{acct.partition}:backup:{region}:{acct.id}:backup-vault:{vault}"
            self._note(_Resource(source, vault, acct.id, (region,), {},
                                 tags_from_tagging=True))
            for action in actions:
                target = str(action["DestinationBackupVaultArn"])
                self._edge(_Edge(source, target, "backup-copy", _arn_account(target),
                                 _arn_region(target)))

    def _scan_efs(self, acct: _Account, region: str) -> None:
        """EFS replication: every configuration of the region in one paginated call."""
        efs = self._acct_client(acct, "efs", region)
        try:
            for page in _pages(efs, "describe_replication_configurations"):
                for config in page.get("Replications", []):
                    self._efs_replication(acct, region, config)
        except Exception as exc:
            if _code(exc) != "ReplicationNotFound":  # EFS's answer for "there are none"
                raise

    def _efs_replication(self, acct: _Account, region: str, config: dict[str, Any]) -> None:
        source = str(config["SourceFileSystemArn"])
        where = str(config.get("SourceFileSystemRegion") or _arn_region(source) or region)
        owner = _arn_account(source) or acct.id
        self._note(_Resource(source, _arn_name(source), owner, (where,), {},
                             tags_from_tagging=True))
        for dest in config.get("Destinations", []):
            other = str(dest["Region"])
            dest_owner = str(dest.get("OwnerId") or owner)
            target = (f"arn:{_partition_of(source)}:elasticfilesystem:{other}:{dest_owner}:"
                      f"file-system/{dest['FileSystemId']}")
            if target != source:
                self._edge(_Edge(source, target, "replication", dest_owner, other))

    def _scan_ecr(self, acct: _Account, region: str) -> None:
        """ECR registry replication copies every repository its rules' filters match; the
        repositories are listed only when the registry replicates at all."""
        ecr = self._acct_client(acct, "ecr", region)
        rules = (ecr.describe_registry().get("replicationConfiguration") or {}).get("rules", [])
        if not rules:
            return
        for page in _pages(ecr, "describe_repositories"):
            for repo in page.get("repositories", []):
                arn, name = str(repo["repositoryArn"]), str(repo["repositoryName"])
                targets = [(str(d["region"]), str(d.get("registryId") or acct.id))
                           for rule in rules if _ecr_rule_matches(rule, name)
                           for d in rule.get("destinations", [])]
                targets = [t for t in dict.fromkeys(targets) if t != (region, acct.id)]
                if not targets:
                    continue
                self._note(_Resource(arn, name, acct.id, (region,), {},
                                     tags_from_tagging=True))
                enc = repo.get("encryptionConfiguration") or {}
                kind = str(enc.get("encryptionType") or "")
                if kind.startswith("KMS"):  # KMS, KMS_DSSE
                    self._key(acct, arn, region, enc.get("kmsKey"), _ECR_DEFAULT_KEY, kind)
                elif kind:
                    self._owned_key(arn, kind)
                for other, registry in targets:
                    target = f"arn:{acct.partition}:ecr:{other}:{registry}:repository/{name}"
                    self._edge(_Edge(arn, target, "replication", registry, other))

    def _scan_elasticache(self, acct: _Account, region: str) -> None:
        """ElastiCache global datastores: the primary replication group replicates to each
        secondary (members are in the datastore's account, each in its own region)."""
        cache = self._acct_client(acct, "elasticache", region)
        for page in _pages(cache, "describe_global_replication_groups", ShowMemberInfo=True):
            for group in page.get("GlobalReplicationGroups", []):
                members = group.get("Members", [])
                primary = [m for m in members if m.get("Role") == "PRIMARY"]
                if len(primary) != 1:  # a failover under way: who copies to whom is unknown
                    self._gap(f"account {acct.id}/{region} elasticache global datastore "
                              f"{group.get('GlobalReplicationGroupId')}",
                              f"{len(primary)} primary members listed; copies not read")
                    continue
                source = self._cache_arn(acct, primary[0])
                self._note(_Resource(source, str(primary[0]["ReplicationGroupId"]), acct.id,
                                     (str(primary[0]["ReplicationGroupRegion"]),), {},
                                     tags_from_tagging=True))
                for member in members:
                    if member is not primary[0]:
                        other = str(member["ReplicationGroupRegion"])
                        self._edge(_Edge(source, self._cache_arn(acct, member), "replication",
                                         acct.id, other))

    @staticmethod
    def _cache_arn(acct: _Account, member: dict[str, Any]) -> str:
        return (f"arn:{acct.partition}:elasticache:{member['ReplicationGroupRegion']}:"
                f"{acct.id}:replicationgroup:{member['ReplicationGroupId']}")

    # ------------------------------------------------------------------ Amazon Connect
    def _scan_connect(self, acct: _Account, region: str) -> None:
        """A contact centre keeps recordings, transcripts, attachments and contact records
        where its storage configs say. The resource types are botocore's enum (data: a
        type AWS adds arrives with botocore), one task per instance and type."""
        connect = self._acct_client(acct, "connect", region)
        types = connect.meta.service_model.shape_for("InstanceStorageResourceType").enum
        for page in _pages(connect, "list_instances"):
            for inst in page.get("InstanceSummaryList", []):
                if inst.get("InstanceStatus") == "CREATION_FAILED":
                    continue  # never held a contact
                arn, inst_id = str(inst["Arn"]), str(inst["Id"])
                alias = str(inst.get("InstanceAlias") or inst_id)
                self._note(_Resource(arn, alias, acct.id, (region,), {},
                                     tags_from_tagging=True))
                for rtype in types:
                    self._submit_as(acct, f"account {acct.id}/{region} connect instance "
                                    f"{alias} {rtype}", self._scan_connect_storage, region,
                                    arn, alias, str(rtype))

    def _scan_connect_storage(self, acct: _Account, region: str, arn: str, alias: str,
                              rtype: str) -> None:
        connect = self._acct_client(acct, "connect", region)
        inst_id = _arn_name(arn)
        for page in _pages(connect, "list_instance_storage_configs", InstanceId=inst_id,
                           ResourceType=rtype):
            for config in page.get("StorageConfigs", []):
                self._connect_storage(acct, region, arn, alias, rtype, config)

    def _connect_storage(self, acct: _Account, region: str, arn: str, alias: str,
                         rtype: str, config: dict[str, Any]) -> None:
        kind = config.get("StorageType")
        encryption: dict[str, Any] = {}
        if kind == "S3":
            s3 = config["S3Config"]
            target, target_region = f"arn:{acct.partition}:s3:::{s3['BucketName']}", None
            encryption = s3.get("EncryptionConfig") or {}
        elif kind == "KINESIS_VIDEO_STREAM":
            # Connect creates one stream per contact, named from the prefix, in its region
            # (Connect admin guide, "Live media streaming")
            video = config["KinesisVideoStreamConfig"]
            target = (f"arn:{acct.partition}:kinesisvideo:{region}:{acct.id}:stream/"
                      f"{video['Prefix']}-connect-{alias}-contact-*")
            target_region, encryption = region, video.get("EncryptionConfig") or {}
        elif kind == "KINESIS_STREAM":
            target = str(config["KinesisStreamConfig"]["StreamArn"])
            target_region = _arn_region(target)
        elif kind == "KINESIS_FIREHOSE":
            target = str(config["KinesisFirehoseConfig"]["FirehoseArn"])
            target_region = _arn_region(target)
        else:  # a storage type botocore does not know yet: never a silent skip
            raise ValueError(f"{rtype} storage of type {kind!r} not understood")
        account = _arn_account(target) if target_region else None
        self._edge(_Edge(arn, target, "storage", account, target_region))
        if encryption.get("KeyId"):
            self._key(acct, target, _arn_region(target) or region, encryption["KeyId"], "",
                      str(encryption.get("EncryptionType") or "KMS"))

    # ------------------------------------------------------------------ keys
    def _key(self, acct: _Account, system: str, region: str, key_id: Any, default: str,
             algorithm: str | None = None) -> None:
        """Note that `system` is encrypted with `key_id` (else the service's AWS managed
        key `default`); each distinct key is described once, on the pool."""
        if not key_id or key_id == default:
            if default:
                self._facts(system, KeyFacts(key=default, algorithm=algorithm, region=region,
                                             account=acct.id, origin="AWS_KMS",
                                             key_manager="AWS"))
            return
        key = str(key_id)
        where = _arn_region(key) if key.startswith("arn:") else region
        lookup = (acct.id, where or region, key)
        with self._lock:
            self.key_refs.append(_KeyRef(system, algorithm, lookup=lookup))
            new = lookup not in self.key_facts
            if new:
                self.key_facts[lookup] = KeyFacts(key=key, region=where,
                                                  unknown_reason="not described")
        if new:
            self._submit_as(acct, f"account {acct.id}/{lookup[1]} kms key {key}",
                            self._describe_key, lookup)

    def _owned_key(self, system: str, algorithm: str) -> None:
        """Encryption with the service's own keys (SSE-S3, ECR AES256): no KMS key."""
        self._facts(system, KeyFacts(key="", algorithm=algorithm, key_manager="AWS"))

    def _facts(self, system: str, facts: KeyFacts) -> None:
        with self._lock:
            self.key_refs.append(_KeyRef(system, facts.algorithm, facts=facts))

    def _describe_key(self, acct: _Account, lookup: tuple[str, str, str]) -> None:
        """A key that cannot be described stays with its reason (and the task's gap)."""
        _, region, key = lookup
        kms = self._acct_client(acct, "kms", region)
        try:
            meta = kms.describe_key(KeyId=key)["KeyMetadata"]
            arn = str(meta["Arn"])
            multi = meta.get("MultiRegionConfiguration") or {}
            facts = KeyFacts(
                key=key, arn=arn, region=_arn_region(arn), account=_arn_account(arn),
                multi_region=bool(meta.get("MultiRegion")),
                primary_region=(multi.get("PrimaryKey") or {}).get("Region"),
                replica_regions=tuple(sorted({str(r["Region"])
                                              for r in multi.get("ReplicaKeys", [])})),
                origin=meta.get("Origin"), key_manager=meta.get("KeyManager"))
        except Exception as exc:
            with self._lock:
                self.key_facts[lookup] = KeyFacts(
                    key=key, region=region, unknown_reason=self._reason(exc))
            raise
        with self._lock:
            self.key_facts[lookup] = facts

    def _wanted(self, tags: dict[str, str]) -> bool:
        """Whether a resource so tagged is kept: reading more of a skipped one is waste."""
        return not self.ctx.classified_only or self.ctx.classification.tag in tags

    # ------------------------------------------------------------------ results
    def _add(self, res: _Resource) -> None:
        with self._lock:
            self.resources[res.arn] = res

    def _note(self, res: _Resource) -> None:
        """A resource named by another's answer (a copy's source): never replaces one read
        in depth."""
        with self._lock:
            self.resources.setdefault(res.arn, res)

    def _edge(self, edge: _Edge) -> None:
        with self._lock:
            self.edges.append(edge)

    def _build(self) -> Inventory:
        systems: dict[str, System] = {}
        flows: dict[str, Flow] = {}
        known = dict(self.resources)
        for arn, res in self.tagged.items():
            mine = known.get(arn)
            if mine is None:
                known[arn] = res  # specific collectors win; the tagging API fills in
            elif mine.tags_from_tagging:
                known[arn] = replace(mine, tags=res.tags)
        for arn, res in sorted(known.items()):
            if not self._is_store(arn, res):
                continue
            system, fed = resource_system(
                provider=PROVIDER, resource_id=arn, name=res.name, account=res.account,
                regions=res.regions, tags=res.tags, ctx=self.ctx,
                unknown_reason=res.unknown_reason,
            )
            if system is None:
                continue
            systems[arn] = system
            flows.update((f.id, f) for f in fed)
        for edge in self.edges:
            src = systems.get(edge.source)
            if src is None:
                continue  # skipped as unclassified (--classified-only), or never seen
            if edge.target not in systems:
                systems[edge.target] = self._placeholder(edge, src, known.get(edge.target))
            flow = replication_flow(src, edge.target, edge.kind)
            flows[flow.id] = flow
        self.keys = self._keys_of(systems)
        for sid, keys in self.keys.items():  # supplementary-measures evidence on the store
            systems[sid] = replace(systems[sid], keys=keys)
        gaps = sorted(set(self.gaps), key=lambda g: (g.scope, g.reason))
        return Inventory(
            tuple(sorted(systems.values(), key=lambda s: s.id)),
            tuple(sorted(flows.values(), key=lambda f: f.id)),
            tuple(gaps),
        )

    def _is_store(self, arn: str, res: _Resource) -> bool:
        """A resource the catalogue says holds no data (a VPC, a role, a key) is kept only
        when it is classified anyway; every other one, of a type the catalogue does not know
        included, is a store (unclassified: RES-I001), so nothing unknown is dropped."""
        if self.ctx.classification.tag in res.tags:
            return True
        tf = arn_type(arn)
        if tf is None:
            return True
        cat = self.o._catalogue or Catalogue()
        entry = cat.entry(tf)
        return entry.store if entry is not None else not cat.is_known_non_store(tf)

    def _keys_of(self, systems: dict[str, System]) -> dict[str, tuple[KeyFacts, ...]]:
        found: dict[str, dict[KeyFacts, None]] = {}
        for ref in self.key_refs:
            if ref.system in systems:
                facts = ref.facts if ref.lookup is None else self.key_facts[ref.lookup]
                if facts is None:
                    continue
                if ref.algorithm and facts.algorithm is None:
                    facts = replace(facts, algorithm=ref.algorithm)
                found.setdefault(ref.system, {})[facts] = None
        for system, facts_of in found.items():  # a listing and a reader naming one key:
            named = {f.key for f in facts_of if f.algorithm}  # keep the one saying how
            found[system] = {f: None for f in facts_of if f.algorithm or f.key not in named}
        # one entry per statement (a bucket's default and Connect's config may name the
        # same key), in an order that does not depend on which task finished first
        return {system: tuple(sorted(facts, key=lambda f: (f.key, f.algorithm or "")))
                for system, facts in sorted(found.items())}

    def _placeholder(self, edge: _Edge, src: System, seen: _Resource | None) -> System:
        """A replica outside the scope (or skipped): it holds what its source holds."""
        account: str | None
        why: str | None
        if seen is not None:
            regions, account, why = seen.regions, seen.account, seen.unknown_reason
            tags = tuple(sorted(seen.tags.items()))
        else:
            region = edge.target_region
            why = None
            m = _S3_ARN.match(edge.target)
            if region is None and m is not None:
                bucket = m["bucket"]
                region = self.bucket_regions.get(bucket)
                if region is None:
                    why = self.bucket_regions.get(
                        f"?{bucket}", "replication destination outside the scanned accounts")
            regions = (region,) if region else ()
            if not regions and why is None:
                why = "replication destination region unknown"
            account, tags = edge.target_account, ()
        return System(
            id=edge.target, party=PROVIDER, role=Role.PROCESSOR,
            location=Location(provider=PROVIDER, regions=regions, unknown_reason=why),
            data_categories=src.data_categories, origin=Origin.COLLECTED,
            classified=src.classified, name=_arn_name(edge.target), resource_id=edge.target,
            account=account, tags=tags,
        )


# --------------------------------------------------------------------------- helpers
def _shipped_catalogue() -> Catalogue:
    """The shipped pack's catalogue, for callers that pass none (the CLI passes its own)."""
    from residency.policy.pack import PolicyPack

    return PolicyPack.load().catalogue


def _acting(acct: _Account, fn: Callable[..., None], *args: Any) -> None:
    token = _ACTING.set(acct)
    try:
        fn(acct, *args)
    finally:
        _ACTING.reset(token)


def _pages(client: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    if client.can_paginate(operation):
        yield from client.get_paginator(operation).paginate(**kwargs)
    else:
        yield getattr(client, operation)(**kwargs)


def _tags(items: list[dict[str, Any]]) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in items}


def _error(exc: BaseException) -> dict[str, Any]:
    """The parsed `Error` of a ClientError; {} for anything else, including the connection
    and timeout errors whose `response` is None."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return error if isinstance(error, dict) else {}


def _code(exc: BaseException) -> str:
    return str(_error(exc).get("Code") or "")


def _aws_error(exc: BaseException) -> str | None:
    """A gap reason for an AWS error answer: its code and message, never the request; the
    HTTP status when the answer had no code (a gateway's page). None for every other
    exception (see `_faults.generic`)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = _code(exc)
    message = (str(_error(exc).get("Message") or "").strip().splitlines() or [""])[0]
    if code:
        return f"{code}: {message}".rstrip(": ")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if status:
        return f"HTTP {status}: {message or 'an answer without an error code'}"
    return None


def _arn_parts(arn: str) -> list[str]:
    return arn.split(":", 5)


def _arn_region(arn: str) -> str | None:
    parts = _arn_parts(arn)
    return parts[3] or None if len(parts) > 3 else None


def _arn_account(arn: str) -> str | None:
    parts = _arn_parts(arn)
    return parts[4] or None if len(parts) > 4 else None


def _arn_name(arn: str) -> str:
    parts = _arn_parts(arn)
    tail = parts[5] if len(parts) > 5 else arn
    return re.split(r"[:/]", tail)[-1] or tail


def _partition_of(arn: str) -> str:
    parts = _arn_parts(arn)
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def _in_region(arn: str, region: str) -> str:
    """The same resource's ARN in another region (a replica named like its primary)."""
    parts = _arn_parts(arn)
    return ":".join([*parts[:3], region, *parts[4:]])


def _ecr_rule_matches(rule: dict[str, Any], repository: str) -> bool:
    """No filter copies every repository; a filter type this code does not know is taken
    to match (a copy assumed is a finding to check, a copy missed is a silent transfer)."""
    filters = rule.get("repositoryFilters") or []
    return not filters or any(
        f.get("filterType") != "PREFIX_MATCH" or repository.startswith(str(f.get("filter", "")))
        for f in filters)


def _rds_arn(ident: str, sibling_arn: str, kind: str) -> str:
    """Same-region replicas are named by identifier, cross-region ones by ARN."""
    if ident.startswith("arn:"):
        return ident
    prefix = sibling_arn.split(":", 5)
    return ":".join([*prefix[:5], f"{kind}:{ident}"])


__all__ = ["DEFAULT_ROLE_NAME", "AwsCollector", "KeyFacts"]
