"""`residency demo`, end to end: local peers → seed → scan → check → history → reports.

Everything runs in this process on loopback: moto (AWS), a Cloud Storage peer, an ARM
peer and a peer of each helpdesk vendor's API (SaaS tenants, sub-processor lists). The
real collectors, engine, history store and report builders do the work, exactly
as `scan` would. Peers are stopped and their threads joined before `run_demo` returns;
nothing is written outside the output directory (the history file lives inside it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from residency import __version__
from residency._io import paused_gc, read_document
from residency.collectors.interface import CollectContext, Collector
from residency.demo.estate import EstateIn, isolated_session, load_estate, seed_aws
from residency.errors import ResidencyError
from residency.model import DataMap, Inventory, Report

EXAMPLE = Path(__file__).resolve().parent / "_servicedesk"  # examples/servicedesk, shipped
MAP_LABEL = Path("examples/servicedesk/residency.yaml")  # how reports name the embedded map
MARKER = ".residency-demo"
SCOPE = "demo:servicedesk"
ROLE_NAME = "ResidencyReadOnly"
# module → the distribution that provides it; all come with `pip install 'residency[demo]'`
_NEEDS = {"moto.server": "moto[server]", "boto3": "boto3",
          "google.cloud.storage": "google-cloud-storage",
          "azure.mgmt.resource": "azure-mgmt-resource", "sqlalchemy": "SQLAlchemy",
          "jinja2": "jinja2"}

Progress = Callable[[str], None]


class DemoError(ResidencyError):
    """The demo cannot run: a missing extra, or an output directory it must not touch."""


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo produced; the CLI prints it and exits as `scan` would."""

    report: Report
    output: Path
    html: Path
    json: Path
    tias: tuple[Path, ...]
    history: Path
    run_id: int
    seconds: float


def check_requirements() -> None:
    """One line naming the fix when an extra is missing (the demo needs every cloud SDK)."""
    missing = [dist for mod, dist in _NEEDS.items() if not _importable(mod)]
    if missing:
        raise DemoError(f"residency demo needs {', '.join(missing)}: "
                        "pip install 'residency[demo]'")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def run_demo(
    output: Path,
    as_of: dt.date,
    *,
    example: Path = EXAMPLE,
    progress: Progress | None = None,
) -> DemoResult:
    """Seed the example estate into local peers, scan it, judge it, record it, report it."""
    started = time.monotonic()
    say = progress or (lambda _msg: None)
    check_requirements()
    from residency.policy.engine import Engine, EngineOptions
    from residency.policy.pack import PolicyPack

    pack = PolicyPack.load()
    datamap = _load_map(example / "residency.yaml", pack)
    estate = load_estate(example / "estate.yaml")
    output = output.resolve()
    _claim(output)
    with _environ_unchanged():
        inventories = _scan(estate, datamap, pack, say, example, as_of)
    say("judging every flow under GDPR Chapter V, UK GDPR and the Swiss FADP")
    with paused_gc():
        report = Engine(pack, EngineOptions(as_of, frozenset())).run(datamap, inventories)
    history = output / "history.db"
    run_id = _record(report, history)
    say(f"recorded run {run_id} in {history}")
    html, json_path, tias = _write_reports(report, pack, datamap, output, run_id)
    return DemoResult(report, output, html, json_path, tias, history, run_id,
                      time.monotonic() - started)


# ---------------------------------------------------------------------- inputs and output
def _load_map(path: Path, pack: Any) -> DataMap:
    """The embedded map, named as in the repository so reports read the same everywhere."""
    import hashlib

    from residency.datamap import parse_map

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return parse_map(read_document(path), pack, MAP_LABEL, digest)


def _claim(output: Path) -> None:
    """Create the output directory, or reuse one a previous demo created; never another."""
    if output.exists() and not output.is_dir():
        raise DemoError(f"{output}: exists and is not a directory; choose another --output")
    if output.is_dir() and any(output.iterdir()) and not (output / MARKER).is_file():
        raise DemoError(f"{output}: not empty and not written by `residency demo`; choose an "
                        "empty or new --output")
    try:
        output.mkdir(parents=True, exist_ok=True)
        (output / MARKER).write_text(
            json.dumps({"created_by": "residency demo", "version": __version__}) + "\n",
            encoding="utf-8")
    except OSError as exc:
        raise DemoError(f"{output}: cannot write: {exc.strerror}") from None


@contextlib.contextmanager
def _environ_unchanged() -> Iterator[None]:
    """The environment as it was, whatever ran meanwhile (see `_moto`)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


# ---------------------------------------------------------------------- peers and scan
def _scan(estate: EstateIn, datamap: DataMap, pack: Any, say: Progress, example: Path,
          as_of: dt.date) -> list[Inventory]:
    from residency.collectors.aws import AwsCollector
    from residency.collectors.azure import loopback_collector
    from residency.collectors.gcp import GcpCollector, emulator_client_factory
    from residency.demo.estate import arm_peer, gcs_peer
    from residency.demo.moto_services import MotoServiceGaps

    ctx = CollectContext(datamap.classification, workers=8)
    with contextlib.ExitStack() as stack:
        say("starting local peers: moto (AWS), Cloud Storage, Azure Resource Manager, "
            "helpdesk vendor APIs")
        aws_url = stack.enter_context(_moto())
        gcs = gcs_peer(estate.gcp).start()
        stack.callback(gcs.stop)
        arm = arm_peer(estate.azure).start()
        stack.callback(arm.stop)
        saas = _saas(estate, pack, example, as_of, stack)
        say(f"seeding the service-desk estate into moto at {aws_url}")
        gaps = _seed(estate, aws_url)
        collectors: list[Collector] = [
            AwsCollector(MotoServiceGaps().install(gaps.install(isolated_session())),
                         organization=False,
                         accounts=[a.id for a in estate.aws.accounts], role_name=ROLE_NAME,
                         regions=estate.aws.regions, endpoint_url=aws_url, max_attempts=2),
            GcpCollector(emulator_client_factory(gcs.url), [p.id for p in estate.gcp.projects],
                         catalogue=pack.catalogue),
            loopback_collector(partial(pack.paired_region, "azure"), arm.url,
                               catalogue=pack.catalogue),
            *saas,
        ]
        inventories = []
        for c in collectors:
            say(f"scanning {c.provider} with the real collector")
            inventories.append(c.collect(ctx))
        say("stopping the local peers")
    return inventories


def _saas(estate: EstateIn, pack: Any, example: Path, as_of: dt.date,
          stack: contextlib.ExitStack) -> list[Collector]:
    """The SaaS collector over a local peer of each tenant's vendor API, with the estate's
    attested tenants and sub-processor lists; attestations expire as of the demo's date."""
    spec = estate.saas
    if not spec.tenants and spec.attested is None:
        return []
    from residency.collectors.saas import VENDORS
    from residency.collectors.saas._http import HttpClient
    from residency.collectors.saas._tables import read_attested
    from residency.collectors.saas.collector import SaasCollector, SubprocessorSource, Tenant
    from residency.demo.estate import saas_peer

    fake, tokens = saas_peer(spec, example)
    fake.start()
    stack.callback(fake.stop)
    attested = read_attested(pack, example / spec.attested).attested if spec.attested else ()
    return [SaasCollector(
        pack, {v: cls() for v, cls in VENDORS.items()},
        [Tenant(t.vendor, t.tenant) for t in spec.tenants], tokens=tokens,
        endpoints={v: fake.endpoint(v) for v in VENDORS}, attested=attested,
        attested_source=f"examples/servicedesk/{spec.attested}" if spec.attested else "",
        subprocessors=[SubprocessorSource(item.vendor, f"{fake.url}/lists/{item.file}")
                       for item in spec.subprocessors],
        classification=spec.classification, http=HttpClient(timeout=5.0, retries=1),
        today=lambda: as_of)]


def _seed(estate: EstateIn, aws_url: str) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return seed_aws(estate.aws, aws_url, ROLE_NAME)
    except (BotoCoreError, ClientError) as exc:  # moto refused the estate: say so in a line
        raise DemoError(f"cannot seed the AWS estate into moto: {exc}") from None


@contextlib.contextmanager
def _moto() -> Iterator[str]:
    """moto's server on a free loopback port, with empty backends; stopped and joined after."""
    import urllib.request

    # moto's server asks boto3's default session for region lists, which reads the user's
    # profile variables (a profile missing here fails every request). The demo never uses
    # them: hide them while it runs (`_environ_unchanged` puts them back).
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(var, None)
    server = _moto_server()
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"

    def reset() -> None:  # moto's backends are process-global: start and leave them empty
        req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - our loopback URL
            pass

    try:
        reset()
        yield url
        reset()
    finally:
        server.stop()
        server.close()


def _moto_server() -> Any:
    """moto's `ThreadedMotoServer`, serving one request per connection.

    Its werkzeug server speaks HTTP/1.1 keep-alive, so a thread per pooled boto3 connection
    would outlive the run; HTTP/1.0 closes each connection after its answer, and non-daemon
    request threads let `close()` join every one of them. Request logging is off.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import ThreadedWSGIServer, make_server

    class Handler(MotoRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_request(self, *args: Any) -> None:
            pass

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            server = make_server(self._ip_address, self._port,
                                 DomainDispatcherApplication(create_backend_app),
                                 threaded=True, request_handler=Handler)
            assert isinstance(server, ThreadedWSGIServer)
            server.daemon_threads = False
            self._server = server
            self._server_ready_event.set()
            server.serve_forever()

        def close(self) -> None:
            if self._server is not None:
                self._server.server_close()  # joins the request threads

    return Server(ip_address="127.0.0.1", port=0, verbose=False)


# ---------------------------------------------------------------------- history and reports
def _record(report: Report, path: Path) -> int:
    from residency.history.store import Store

    with Store.open(str(path)) as store:
        return store.record(report, command="demo", scope=SCOPE)


def _write_reports(
    report: Report, pack: Any, datamap: DataMap, output: Path, run_id: int
) -> tuple[Path, Path, tuple[Path, ...]]:
    from residency._io import write_atomic
    from residency.formats import get_formatter
    from residency.reports._common import (
        Provenance,
        collect_parties,
        graph_of,
    )
    from residency.reports.html import render_html
    from residency.reports.tia import (
        INDEX_NAME,
        plan_tia,
        render_index,
        render_markdown,
        write_drafts,
    )

    parties = collect_parties(report, pack, datamap)
    prov = Provenance.of(report, scan_run=f"residency demo, run {run_id} in history.db")
    plan = plan_tia(report, pack, graph_of(report, parties), prov)
    docs = list(plan.documents())
    html = output / "report.html"
    write_atomic(html, render_html(report, parties, docs, prov))
    json_path = output / "report.json"
    write_atomic(json_path, get_formatter("json").render(report))
    files = {d.filename: render_markdown(d) for d in docs}
    files[INDEX_NAME] = render_index(plan)  # every transfer: its draft, or why none is due
    drafts = write_drafts(output / "tia", files)
    return html, json_path, tuple(p for p in drafts.written if p.name != INDEX_NAME)
