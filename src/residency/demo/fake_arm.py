"""A small Azure Resource Manager peer on loopback: list subscriptions, list resources, GET one
resource by id, list a parent's child (proxy) resources. Used by `residency demo` and the
collector tests; `faults` make it misbehave (`HttpFault`: truncated or garbled answers, 5xx,
resets, delays).

There is no ARM emulator. Responses follow the
real shapes: `{"value": [...], "nextLink": ...}` pages whose `nextLink` is built from this
server's own base URL (the SDK follows it verbatim and rewrites `api-version`), generic
resources with `sku` for storage accounts, and ARM's error document (`AuthorizationFailed`).
Resources are held as a GET by id returns them; the generic list (`resources.list`) leaves
out `properties`, as ARM's does. `proxies` are child resources the generic list never returns
(SQL failover groups): GET by id, or listed under their parent. The builders below shape each
type after the sample response of its ARM REST reference page (cited on each).

The same server answers Azure Resource Graph's `POST /providers/Microsoft.ResourceGraph/
resources` (`residency.demo.fake_arg`): one query across the subscriptions, paged with
`$skipToken`, a subscription in `errors` left out as ARG leaves out what the caller may not
read, `graph_throttle` 429 answers before the real one (-1: always), `graph_truncate` to
answer `resultTruncated`, `graph=False` for a cloud without ARG (404).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from residency.demo import fake_arg
from residency.demo._loopback import HttpFault, JsonHandler, LoopbackServer, first_fault

PAGE_SIZE = 2
TENANT = "72f988bf-0000-4000-8000-000000000000"


def _rid(sub: str, rg: str, provider_type: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider_type}/{name}"


def storage_account(sub: str, rg: str, name: str, location: str, sku: str | None,
                    tags: dict[str, str] | None = None, *,
                    secondary_location: str | None = None) -> dict[str, Any]:
    """Storage Accounts - Get Properties (api-version 2023-05-01):
    https://learn.microsoft.com/en-us/rest/api/storagerp/storage-accounts/get-properties
    `secondaryLocation` / `statusOfSecondary` only where the account reports them."""
    res: dict[str, Any] = {
        "id": _rid(sub, rg, "Microsoft.Storage/storageAccounts", name),
        "name": name,
        "type": "Microsoft.Storage/storageAccounts",
        "kind": "StorageV2",
        "location": location,
        "tags": tags or {},
    }
    if sku is not None:
        res["sku"] = {"name": sku, "tier": sku.split("_", 1)[0]}
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "primaryEndpoints": {"blob": f"https://{name}.blob.core.windows.net/"},
        "primaryLocation": location,
        "statusOfPrimary": "available",
        "creationTime": "2024-01-15T10:00:00.0000000Z",
        "accessTier": "Hot",
        "supportsHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
    }
    if secondary_location is not None:
        props["secondaryLocation"] = secondary_location
        props["statusOfSecondary"] = "available"
        props["secondaryEndpoints"] = {"blob": f"https://{name}-secondary.blob.core.windows.net/"}
    res["properties"] = props
    return res


def cosmos_account(sub: str, rg: str, name: str, location: str, locations: list[str],
                   tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Database Accounts - Get (api-version 2024-11-15); ARM answers display names
    ("West Europe") in `location` and `locations[*].locationName`:
    https://learn.microsoft.com/en-us/rest/api/cosmos-db-resource-provider/database-accounts/get"""
    regions = [{"id": f"{name}-{loc.lower().replace(' ', '')}", "locationName": loc,
                "documentEndpoint": f"https://{name}-{loc.lower().replace(' ', '')}"
                                    ".documents.azure.com:443/",
                "provisioningState": "Succeeded", "failoverPriority": i,
                "isZoneRedundant": False} for i, loc in enumerate(locations)]
    return {
        "id": _rid(sub, rg, "Microsoft.DocumentDB/databaseAccounts", name),
        "name": name, "type": "Microsoft.DocumentDB/databaseAccounts", "location": location,
        "kind": "GlobalDocumentDB", "tags": tags or {},
        "properties": {
            "provisioningState": "Succeeded",
            "documentEndpoint": f"https://{name}.documents.azure.com:443/",
            "databaseAccountOfferType": "Standard",
            "consistencyPolicy": {"defaultConsistencyLevel": "Session"},
            "writeLocations": regions[:1], "readLocations": regions, "locations": regions,
            "failoverPolicies": [{"id": r["id"], "locationName": r["locationName"],
                                  "failoverPriority": r["failoverPriority"]} for r in regions],
            "enableMultipleWriteLocations": False,
        },
    }


def sql_server(sub: str, rg: str, name: str, location: str,
               tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Servers - Get: https://learn.microsoft.com/en-us/rest/api/sql/servers/get"""
    return {"id": _rid(sub, rg, "Microsoft.Sql/servers", name), "name": name,
            "type": "Microsoft.Sql/servers", "location": location, "kind": "v12.0",
            "tags": tags or {},
            "properties": {"administratorLogin": "dbadmin", "version": "12.0",
                           "state": "Ready",
                           "fullyQualifiedDomainName": f"{name}.database.windows.net",
                           "publicNetworkAccess": "Disabled"}}


def sql_database(server: dict[str, Any], name: str, backup_redundancy: str | None = "Geo",
                 tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Databases - Get (api-version 2021-11-01); `requestedBackupStorageRedundancy` is
    Geo, GeoZone, Local or Zone: https://learn.microsoft.com/en-us/rest/api/sql/databases/get"""
    props: dict[str, Any] = {"collation": "SQL_Latin1_General_CP1_CI_AS",
                             "maxSizeBytes": 268435456000, "status": "Online",
                             "databaseId": "6c764297-577b-470f-9af4-96d3d41e2ba3",
                             "defaultSecondaryLocation": "northeurope",
                             "catalogCollation": "SQL_Latin1_General_CP1_CI_AS",
                             "zoneRedundant": False, "readScale": "Disabled"}
    if backup_redundancy is not None:
        props["currentBackupStorageRedundancy"] = backup_redundancy
        props["requestedBackupStorageRedundancy"] = backup_redundancy
    return {"id": f"{server['id']}/databases/{name}", "name": name,
            "type": "Microsoft.Sql/servers/databases", "location": server["location"],
            "kind": "v12.0,user", "tags": tags or {},
            "sku": {"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5",
                    "capacity": 2},
            "properties": props}


def failover_group(server: dict[str, Any], name: str, partners: list[dict[str, Any]],
                   databases: list[dict[str, Any]]) -> dict[str, Any]:
    """Failover Groups - Get / List By Server (a proxy resource: not in the generic list):
    https://learn.microsoft.com/en-us/rest/api/sql/failover-groups/get"""
    return {"id": f"{server['id']}/failoverGroups/{name}", "name": name,
            "type": "Microsoft.Sql/servers/failoverGroups", "location": server["location"],
            "properties": {
                "readWriteEndpoint": {"failoverPolicy": "Automatic",
                                      "failoverWithDataLossGracePeriodMinutes": 480},
                "readOnlyEndpoint": {"failoverPolicy": "Disabled"},
                "replicationRole": "Primary", "replicationState": "CATCH_UP",
                "partnerServers": [{"id": p["id"], "location": p["location"],
                                    "replicationRole": "Secondary"} for p in partners],
                "databases": [d["id"] for d in databases],
            }}


def flexible_server(sub: str, rg: str, engine: str, name: str, location: str, *,
                    geo_backup: bool = False, source: dict[str, Any] | None = None,
                    tags: dict[str, str] | None = None) -> dict[str, Any]:
    """PostgreSQL or MySQL flexible server (`engine` "PostgreSQL" / "MySQL"), Servers - Get:
    https://learn.microsoft.com/en-us/rest/api/postgresql/flexibleserver/servers/get
    https://learn.microsoft.com/en-us/rest/api/mysql/flexibleserver/servers/get
    A read replica has `replicationRole` Replica/AsyncReplica and `sourceServerResourceId`."""
    provider_type = f"Microsoft.DBfor{engine}/flexibleServers"
    domain = "postgres" if engine == "PostgreSQL" else "mysql"
    props: dict[str, Any] = {
        "fullyQualifiedDomainName": f"{name}.{domain}.database.azure.com",
        "version": "16" if engine == "PostgreSQL" else "8.0.21", "state": "Ready",
        "storage": {"storageSizeGB": 512},
        "backup": {"backupRetentionDays": 7,
                   "geoRedundantBackup": "Enabled" if geo_backup else "Disabled",
                   "earliestRestoreDate": "2024-01-15T10:00:00+00:00"},
        "highAvailability": {"mode": "Disabled", "state": "NotEnabled"},
        "replicationRole": "Primary" if source is None else (
            "AsyncReplica" if engine == "PostgreSQL" else "Replica"),
        "replicaCapacity": 5,
    }
    if source is not None:
        props["sourceServerResourceId"] = source["id"]
    return {"id": _rid(sub, rg, provider_type, name), "name": name, "type": provider_type,
            "location": location, "tags": tags or {},
            "sku": {"name": "Standard_D4ds_v5", "tier": "GeneralPurpose"},
            "properties": props}


def recovery_vault(sub: str, rg: str, name: str, location: str, redundancy: str,
                   tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Vaults - Get (api-version 2023-04-01); `standardTierStorageRedundancy` GeoRedundant,
    LocallyRedundant or ZoneRedundant:
    https://learn.microsoft.com/en-us/rest/api/recoveryservices/vaults/get"""
    return {"id": _rid(sub, rg, "Microsoft.RecoveryServices/vaults", name), "name": name,
            "type": "Microsoft.RecoveryServices/vaults", "location": location,
            "tags": tags or {}, "sku": {"name": "RS0", "tier": "Standard"},
            "properties": {"provisioningState": "Succeeded",
                           "redundancySettings": {
                               "standardTierStorageRedundancy": redundancy,
                               "crossRegionRestore": "Disabled"},
                           "publicNetworkAccess": "Enabled"}}


def container_registry(sub: str, rg: str, name: str, location: str,
                       tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Registries - Get: https://learn.microsoft.com/en-us/rest/api/containerregistry/registries/get"""
    return {"id": _rid(sub, rg, "Microsoft.ContainerRegistry/registries", name),
            "name": name, "type": "Microsoft.ContainerRegistry/registries",
            "location": location, "tags": tags or {},
            "sku": {"name": "Premium", "tier": "Premium"},
            "properties": {"loginServer": f"{name}.azurecr.io", "adminUserEnabled": False,
                           "provisioningState": "Succeeded"}}


def acr_replication(registry: dict[str, Any], location: str) -> dict[str, Any]:
    """Replications - Get (a tracked child: the generic list returns it with its location):
    https://learn.microsoft.com/en-us/rest/api/containerregistry/replications/get"""
    return {"id": f"{registry['id']}/replications/{location}", "name": location,
            "type": "Microsoft.ContainerRegistry/registries/replications",
            "location": location, "tags": {},
            "properties": {"provisioningState": "Succeeded",
                           "status": {"displayStatus": "Ready"},
                           "regionEndpointEnabled": True, "zoneRedundancy": "Disabled"}}


def namespace_like(sub: str, rg: str, provider_type: str, name: str, location: str,
                   tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Log Analytics workspaces, Service Bus and Event Hubs namespaces, Azure Cache for Redis:
    located by `location` alone (Workspaces - Get, Namespaces - Get, Redis - Get):
    https://learn.microsoft.com/en-us/rest/api/loganalytics/workspaces/get
    https://learn.microsoft.com/en-us/rest/api/servicebus/controlplane-stable/namespaces/get
    https://learn.microsoft.com/en-us/rest/api/eventhub/namespaces/get
    https://learn.microsoft.com/en-us/rest/api/redis/redis/get"""
    return {"id": _rid(sub, rg, provider_type, name), "name": name, "type": provider_type,
            "location": location, "tags": tags or {},
            "properties": {"provisioningState": "Succeeded"}}


def key_vault(sub: str, rg: str, name: str, location: str) -> dict[str, Any]:
    """Vaults - Get: https://learn.microsoft.com/en-us/rest/api/keyvault/keyvault/vaults/get"""
    return {"id": _rid(sub, rg, "Microsoft.KeyVault/vaults", name), "name": name,
            "type": "Microsoft.KeyVault/vaults", "location": location, "tags": {},
            "properties": {"sku": {"family": "A", "name": "premium"}, "tenantId": TENANT,
                           "vaultUri": f"https://{name}.vault.azure.net/",
                           "enablePurgeProtection": True, "enableSoftDelete": True}}


def managed_hsm(sub: str, rg: str, name: str, location: str) -> dict[str, Any]:
    """Managed HSMs - Get:
    https://learn.microsoft.com/en-us/rest/api/keyvault/managedhsm/managed-hsms/get"""
    return {"id": _rid(sub, rg, "Microsoft.KeyVault/managedHSMs", name), "name": name,
            "type": "Microsoft.KeyVault/managedHSMs", "location": location, "tags": {},
            "sku": {"family": "B", "name": "Standard_B1"},
            "properties": {"tenantId": TENANT, "hsmUri": f"https://{name}.managedhsm.azure.net/",
                           "provisioningState": "Succeeded"}}


def with_storage_cmk(account: dict[str, Any], vault_uri: str, key: str) -> dict[str, Any]:
    """A storage account encrypted with a customer-managed key (`encryption.keySource`
    Microsoft.Keyvault, `keyvaultproperties`), Storage Accounts - Get Properties."""
    props = dict(account["properties"])
    props["encryption"] = {"keySource": "Microsoft.Keyvault",
                           "keyvaultproperties": {"keyvaulturi": vault_uri, "keyname": key,
                                                  "keyversion": ""},
                           "services": {"blob": {"enabled": True, "keyType": "Account"}}}
    return {**account, "properties": props}


def with_cosmos_cmk(account: dict[str, Any], key_uri: str) -> dict[str, Any]:
    """A Cosmos DB account with `keyVaultKeyUri` (Database Accounts - Get)."""
    return {**account, "properties": {**account["properties"], "keyVaultKeyUri": key_uri}}


def encryption_protector(server: dict[str, Any], key_uri: str | None) -> dict[str, Any]:
    """Encryption Protectors - Get (`{server}/encryptionProtector/current`): a Key Vault key
    (`serverKeyType` AzureKeyVault, `uri`) or the service-managed key:
    https://learn.microsoft.com/en-us/rest/api/sql/encryption-protectors/get"""
    props: dict[str, Any] = {"serverKeyName": "ServiceManaged", "serverKeyType": "ServiceManaged",
                             "autoRotationEnabled": False}
    if key_uri:
        vault, _, rest = key_uri.removeprefix("https://").partition("/keys/")
        name, _, version = rest.partition("/")
        props = {"serverKeyName": f"{vault.split('.')[0]}_{name}_{version}",
                 "serverKeyType": "AzureKeyVault", "uri": key_uri,
                 "thumbprint": "00112233445566778899AABBCCDDEEFF00112233",
                 "autoRotationEnabled": True}
    return {"id": f"{server['id']}/encryptionProtector/current", "name": "current",
            "type": "Microsoft.Sql/servers/encryptionProtector",
            "kind": "azurekeyvault" if key_uri else "servicemanaged",
            "location": server["location"], "properties": props}


def generic(sub: str, rg: str, provider_type: str, name: str, location: str,
            tags: dict[str, str] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider_type}/{name}",
        "name": name,
        "type": provider_type,
        "location": location,
    }
    if tags is not None:
        res["tags"] = tags
    return res


def authorization_failed(sub: str) -> tuple[int, dict[str, Any]]:
    return 403, {
        "error": {
            "code": "AuthorizationFailed",
            "message": (
                "The client 'residency-scanner' with object id "
                "'11111111-1111-4111-8111-111111111111' does not have authorization to perform "
                "action 'Microsoft.Resources/subscriptions/resources/read' over scope "
                f"'/subscriptions/{sub}' or the scope is invalid. If access was recently "
                "granted, please refresh your credentials."
            ),
        }
    }


@dataclass
class FakeArm:
    subscriptions: list[str] = field(default_factory=list)
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    full: dict[str, dict[str, Any]] = field(default_factory=dict)  # id.lower() -> GET body
    # sub -> child (proxy) resources the generic list never returns (GET, or parent list)
    proxies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # method, path, auth?
    graph: bool = True  # serve Azure Resource Graph (False: 404, as a cloud without it)
    graph_throttle: int = 0  # answer this many ARG queries 429 first (-1: every one)
    graph_truncate: bool = False  # answer resultTruncated "true" where there is more
    graph_queries: list[dict[str, Any]] = field(default_factory=list)  # request bodies
    latency: float = 0.0  # seconds added to every answer (benchmarks: a network's round trip)
    faults: list[HttpFault] = field(default_factory=list)  # the first whose `match` is in the path
    url: str = ""
    _loop: LoopbackServer = field(default_factory=LoopbackServer, repr=False)

    def start(self) -> FakeArm:
        fake = self

        class Handler(JsonHandler):
            extra_headers: ClassVar[dict[str, str]] = {
                "x-ms-request-id": "00000000-0000-0000-0000-000000000000"
            }

            faults: ClassVar[list[HttpFault]] = fake.faults

            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                auth = self.headers.get("Authorization", "")
                fake.requests.append(("GET", self.path, auth.startswith("Bearer ")))
                if fake.latency:
                    time.sleep(fake.latency)
                if not auth.startswith("Bearer "):
                    self._send(401, {"error": {"code": "AuthenticationFailed",
                                               "message": "Authentication failed."}})
                    return
                path, query = self._split()
                segs = [s for s in path.split("/") if s]
                if segs == ["subscriptions"]:
                    self._send(200, fake._subscriptions())
                elif len(segs) == 3 and segs[0] == "subscriptions" and segs[2] == "resources":
                    sub = segs[1]
                    if sub in fake.errors:
                        self._send(*fake.errors[sub])
                        return
                    self._send(200, fake._resources(sub, int(query.get("$skiptoken", "0"))))
                elif "/" + "/".join(segs).lower() in fake.full:
                    self._send(200, fake.full["/" + "/".join(segs).lower()])
                elif (found := fake._by_id("/" + "/".join(segs))) is not None:
                    self._send(200, found)
                elif (kids := fake._children("/" + "/".join(segs))) is not None:
                    self._send(200, fake._page(kids, "/" + "/".join(segs),
                                               query.get("api-version", ""),
                                               int(query.get("$skiptoken", "0"))))
                else:
                    self._send(404, {"error": {"code": "ResourceNotFound",
                                               "message": f"{path} was not found."}})

            def do_POST(self) -> None:  # noqa: N802 - Azure Resource Graph only
                auth = self.headers.get("Authorization", "")
                fake.requests.append(("POST", self.path, auth.startswith("Bearer ")))
                if fake.latency:
                    time.sleep(fake.latency)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                path, query = self._split()
                if not auth.startswith("Bearer "):
                    self._send(401, {"error": {"code": "AuthenticationFailed",
                                               "message": "Authentication failed."}})
                    return
                if not fake.graph or path.lower() != \
                        "/providers/microsoft.resourcegraph/resources":
                    self._send(404, {"error": {"code": "InvalidResourceType", "message":
                                               f"The resource type could not be found for "
                                               f"{path}."}})
                    return
                if query.get("api-version") != fake_arg.API_VERSION:
                    self._send(400, {"error": {"code": "InvalidApiVersionParameter",
                                               "message": "The api-version "
                                               f"'{query.get('api-version')}' is invalid."}})
                    return
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                fake.graph_queries.append(body if isinstance(body, dict) else {})
                if fake.graph_throttle:
                    fake.graph_throttle -= 1 if fake.graph_throttle > 0 else 0
                    self._send_headers(*fake_arg.throttled(), {
                        "Retry-After": "0", "x-ms-user-quota-remaining": "0",
                        "x-ms-user-quota-resets-after": "00:00:00"})
                    return
                readable = [s for s in fake.subscriptions if s not in fake.errors]
                status, doc = fake_arg.answer(body, fake.resources, readable, TENANT,
                                              fake.graph_truncate)
                self._send_headers(status, doc, {"x-ms-user-quota-remaining": "14",
                                                 "x-ms-user-quota-resets-after": "00:00:05"})

            def _send_headers(self, status: int, body: dict[str, Any],
                              headers: dict[str, str]) -> None:
                if first_fault(self.faults, self.path) is not None:
                    self._send(status, body)
                    return
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", self.content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in {**self.extra_headers, **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.url = self._loop.serve(Handler, "residency-fake-arm")
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread: nothing is left running."""
        self._loop.stop()

    def _subscriptions(self) -> dict[str, Any]:
        return {
            "value": [
                {
                    "id": f"/subscriptions/{s}",
                    "authorizationSource": "RoleBased",
                    "managedByTenants": [],
                    "subscriptionId": s,
                    "tenantId": TENANT,
                    "displayName": f"sub-{s[-1]}",
                    "state": "Enabled",
                    "subscriptionPolicies": {
                        "locationPlacementId": "Public_2014-09-01",
                        "quotaId": "PayAsYouGo_2014-09-01",
                        "spendingLimit": "Off",
                    },
                }
                for s in self.subscriptions
            ],
            "count": {"type": "Total", "value": len(self.subscriptions)},
        }

    def _resources(self, sub: str, start: int) -> dict[str, Any]:
        # the generic list answers GenericResourceExpanded: no `properties`
        items = [{k: v for k, v in r.items() if k != "properties"}
                 for r in self.resources.get(sub, [])]
        body: dict[str, Any] = {"value": items[start:start + PAGE_SIZE]}
        if start + PAGE_SIZE < len(items):
            body["nextLink"] = (f"{self.url}/subscriptions/{sub}/resources?"
                                f"api-version=2025-04-01&%24skiptoken={start + PAGE_SIZE}")
        return body

    def _all(self) -> list[dict[str, Any]]:
        return [r for group in (self.resources, self.proxies) for items in group.values()
                for r in items]

    def _by_id(self, path: str) -> dict[str, Any] | None:
        """GET by id: the resource as held (with its properties); ids are case-insensitive."""
        sub = path.split("/")[2] if path.count("/") > 2 else ""
        if sub in self.errors:
            return None
        return next((r for r in self._all() if str(r.get("id", "")).lower() == path.lower()),
                    None)

    def _children(self, path: str) -> list[dict[str, Any]] | None:
        """`GET {parent id}/{collection}`: the parent's children of that type, or None."""
        low = path.lower()
        parent, _, collection = low.rpartition("/")
        if not parent or self._by_id(parent) is None:
            return None
        kids = [r for r in self._all() if str(r.get("id", "")).lower().rpartition("/")[0] == low]
        return kids if kids or collection else None

    def _page(self, items: list[dict[str, Any]], path: str, api: str,
              start: int) -> dict[str, Any]:
        body: dict[str, Any] = {"value": items[start:start + PAGE_SIZE]}
        if start + PAGE_SIZE < len(items):
            body["nextLink"] = (f"{self.url}{path}?api-version={api}"
                                f"&%24skiptoken={start + PAGE_SIZE}")
        return body
