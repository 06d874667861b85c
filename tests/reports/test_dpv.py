"""`residency report dpv`: DPV 2.x JSON-LD, loaded with rdflib and queried with SPARQL."""

from __future__ import annotations

import io
import json
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import rdflib
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from residency.cli.main import cli
from residency.errors import PolicyError
from residency.model import Basis
from residency.policy.pack import PolicyPack
from residency.reports.dpv import DpvMap, load_dpv_map, write_dpv

from .dpo_support import estates, processing_doc, run_of, write_map
from .support import AS_OF

DPV = rdflib.Namespace("https://w3id.org/dpv#")
GDPR = rdflib.Namespace("https://w3id.org/dpv/legal/eu/gdpr#")
LOC = rdflib.Namespace("https://w3id.org/dpv/loc#")
PREFIXES = """PREFIX dpv: <https://w3id.org/dpv#>
PREFIX eu-gdpr: <https://w3id.org/dpv/legal/eu/gdpr#>
PREFIX loc: <https://w3id.org/dpv/loc#>
PREFIX dct: <http://purl.org/dc/terms/>
"""


def load_graph(**source: Any) -> rdflib.Graph:
    """rdflib 7's JSON-LD parser builds a ConjunctiveGraph internally, which warns."""
    g = rdflib.Graph()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated",
                                DeprecationWarning)
        g.parse(format="json-ld", **source)
    return g


@pytest.fixture(scope="module")
def mapping(pack: PolicyPack) -> DpvMap:
    return load_dpv_map(pack)


@pytest.fixture(scope="module")
def exported(pack: PolicyPack, mapping: DpvMap) -> tuple[str, Any]:
    run = run_of(processing_doc(), pack)
    fh = io.StringIO()
    write_dpv(run.report, run.pack, run.datamap, run.parties, mapping, fh)
    return fh.getvalue(), run


@pytest.fixture(scope="module")
def graph(exported: tuple[str, Any]) -> rdflib.Graph:
    return load_graph(data=exported[0])


def test_every_instrument_ground_and_decision_maps(pack: PolicyPack, mapping: DpvMap) -> None:
    for inst in pack.instruments:
        assert (inst.regime, inst.id) in mapping.instruments, (inst.regime, inst.id)
        for g in inst.grounds:
            assert (inst.regime, g.key()) in mapping.grounds, (inst.regime, g.article)
    for dec in pack.decisions:
        assert dec.regime in mapping.doc.regimes, dec.id
        concepts = mapping.basis_concepts(dec.regime, Basis("adequacy", dec.id), None, None,
                                          dec.id)
        assert concepts and all(c in mapping.doc.concepts for c in concepts)
    ids = {d.id for d in pack.decisions}
    assert set(mapping.doc.decisions) <= ids  # no mapping for a decision the pack lacks
    # the mapping's rows are the pack's, no stale extras
    assert set(mapping.instruments) == {(i.regime, i.id) for i in pack.instruments}


def test_named_concepts(mapping: DpvMap) -> None:
    sg = mapping.basis_concepts
    assert sg("eu_gdpr", Basis("safeguard"), "2021/914", None, None) == ["eu-gdpr:A46-2-c"]
    assert sg("eu_gdpr", Basis("safeguard"), "BCR", None, None) == ["eu-gdpr:A46-2-b"]
    assert sg("eu_gdpr", Basis("derogation"), None, "49(1)(a)", None) == ["eu-gdpr:A49-1-a"]
    assert sg("eu_gdpr", Basis("derogation"), None, "49(1) second subparagraph",
              None) == ["eu-gdpr:A49-2"]
    assert sg("eu_gdpr", Basis("adequacy"), None, None, "eu-jp-2019-419") == [
        "eu-gdpr:A45-3", "legal-eu:Adequacy-EU-JP"]
    assert sg("uk_gdpr", Basis("safeguard"), "IDTA", None, None) == ["dpv:DataTransferLegalBasis"]
    assert sg("eu_gdpr", Basis("none"), None, None, None) == []


def test_scc_transfer_round_trips_with_a46_2_c(graph: rdflib.Graph) -> None:
    rows = list(graph.query(PREFIXES + """
        SELECT ?t ?exp ?imp WHERE {
          ?t dct:identifier "helpdesk-to-analytics" ;
             dpv:hasThirdCountry loc:SG ;
             dpv:hasLegalBasis eu-gdpr:A46-2-c ;
             dpv:hasDataExporter ?exp ; dpv:hasDataImporter ?imp ;
             dpv:hasApplicableLaw <https://w3id.org/dpv/legal/eu#law-GDPR> ;
             dpv:hasLawfulness dpv:Lawful . }"""))
    assert len(rows) == 1
    _, exp, imp = rows[0]
    assert str(exp) == "urn:residency:party:deskco"
    assert str(imp) == "urn:residency:party:insightly"
    assert (imp, DPV.hasName, rdflib.Literal("Insightly Analytics Pte Ltd")) in graph
    assert (imp, DPV.hasCountry, LOC.SG) in graph


def test_adequacy_derogation_and_unlawful(graph: rdflib.Graph) -> None:
    def bases(flow: str, country: str) -> set[str]:
        q = PREFIXES + f"""SELECT ?b WHERE {{ ?t dct:identifier "{flow}" ;
            dpv:hasThirdCountry loc:{country} ;
            dpv:hasLegalBasis ?b . }}"""
        return {str(r[0]) for r in graph.query(q)}

    assert bases("portal-to-helpdesk", "US") == {str(GDPR["A45-3"])}  # DPF-certified importer
    assert bases("legal-hold-export", "IN") == {str(GDPR["A49-1-e"])}
    assert bases("portal-to-archive", "GB") == {str(GDPR["A45-3"]),
                                                "https://w3id.org/dpv/legal/eu#Adequacy-EU-GB"}
    unlawful = graph.query(PREFIXES + """SELECT ?t WHERE { ?t dct:identifier "helpdesk-to-l2" ;
        dpv:hasThirdCountry loc:IN ; dpv:hasLawfulness dpv:Unlawful .
        FILTER NOT EXISTS { ?t dpv:hasLegalBasis ?b } }""")
    assert len(list(unlawful)) == 3  # one per regime, none with a legal basis


def test_one_node_per_transfer_and_country(graph: rdflib.Graph,
                                           exported: tuple[str, Any]) -> None:
    run = exported[1]
    expected = sum(len(t.bases) for t in run.report.transfers if not t.same_entity)
    nodes = set(graph.subjects(DPV.hasProcessing, DPV.Transfer))
    assert len(nodes) == expected
    assert all((n, DPV.hasDataExporter, None) in graph and (n, DPV.hasDataImporter, None)
               in graph for n in nodes)


def test_activities_are_exported(graph: rdflib.Graph) -> None:
    act = rdflib.URIRef("urn:residency:activity:customer-support")
    assert (act, DPV.hasDataSubject, DPV.Customer) in graph
    assert (act, DPV.hasPersonalData, rdflib.URIRef("https://w3id.org/dpv/pd#Contact")) in graph
    assert (act, DPV.hasDataController, rdflib.URIRef("urn:residency:party:acme-ie")) in graph
    linked = set(graph.transitive_objects(act, DPV.hasPersonalDataHandling))
    assert rdflib.URIRef("urn:residency:transfer:legal-hold-export%2Feu_gdpr%2FIN") in linked
    # as the README says: a SPARQL property path from the activity finds its transfers
    found = {str(r[0]) for r in graph.query(PREFIXES + """SELECT ?t WHERE {
        <urn:residency:activity:customer-support> dpv:hasPersonalDataHandling+ ?t .
        ?t dpv:hasProcessing dpv:Transfer }""")}
    assert found == {str(x) for x in linked if (x, DPV.hasProcessing, DPV.Transfer) in graph}
    assert "urn:residency:transfer:legal-hold-export%2Feu_gdpr%2FIN" in found


def test_each_activity_reaches_its_records_transfers(pack: PolicyPack,
                                                      exported: tuple[str, Any],
                                                      graph: rdflib.Graph) -> None:
    """Activities link to one shared handling node per exporter system they reach, which
    links to its transfers: through them, each activity reaches exactly the transfers its
    Art. 30 record lists, and each handling node is written once."""
    from residency.reports.ropa import build_ropa

    run = exported[1]
    ropa = build_ropa(run.report, run.pack, run.datamap, run.parties)
    for r in ropa.records:
        act = rdflib.URIRef(f"urn:residency:activity:{r.activity.id}")
        direct = set(graph.objects(act, DPV.hasPersonalDataHandling))
        assert all(str(h).startswith("urn:residency:handling:") for h in direct)
        reached = {str(x) for x in graph.transitive_objects(act, DPV.hasPersonalDataHandling)
                   if str(x).startswith("urn:residency:transfer:")}
        want = {"urn:residency:transfer:" + f"{t.flow}/{t.regime}/{c}".replace("/", "%2F")
                for t in r.transfers for c, _ in t.bases}
        assert reached == want and bool(direct) == bool(want), r.activity.id
    ids = re.findall(r'\{"@id":"(urn:residency:handling:[^"]+)","@type"', exported[0])
    assert ids and len(ids) == len(set(ids))
    assert any(r.transfers for r in ropa.records)


def test_export_uses_only_checked_dpv_terms(exported: tuple[str, Any],
                                            mapping: DpvMap) -> None:
    doc = json.loads(exported[0])
    found: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                found.add(k)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str):
            found.add(x)

    walk(doc["@graph"])
    terms = {t for t in found if re.fullmatch(r"(dpv|eu-gdpr|legal-eu|legal-gb):[\w-]+", t)}
    assert terms and terms <= set(mapping.doc.concepts), terms - set(mapping.doc.concepts)


def test_unlisted_concept_fails_the_load(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(PolicyPack.load().root, root)
    text = (root / "dpv.yaml").read_text(encoding="utf-8")
    (root / "dpv.yaml").write_text(text.replace('basis: "eu-gdpr:A46-2-b"',
                                                'basis: "eu-gdpr:A47"'), encoding="utf-8")
    with pytest.raises(PolicyError, match="A47"):
        load_dpv_map(PolicyPack.load(root))


def test_cli(tmp_path: Path) -> None:
    path = write_map(processing_doc(), tmp_path / "residency.yaml")
    out = tmp_path / "register.jsonld"
    result = CliRunner().invoke(cli, ["report", "dpv", "--map", str(path), "--as-of",
                                      AS_OF.isoformat(), "-o", str(out)])
    assert result.exit_code == 0, result.output
    g = load_graph(source=out)
    assert (None, DPV.hasThirdCountry, LOC.US) in g


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(max_size=12), st.text(max_size=8), st.text(max_size=4))
def test_transfer_iris_are_the_quoted_identifier(flow: str, regime: str, country: str) -> None:
    """The fast path (unreserved identifiers left as they are, each part quoted alone) is
    `quote` of the whole `flow/regime/country`, on any text."""
    from urllib.parse import quote

    from residency.model import Transfer
    from residency.reports.dpv import _iri, _transfer_iri

    t = Transfer(flow, regime, "a", "b", "p", "q", (country,), (), (), False, False)
    whole = f"urn:residency:transfer:{quote(f'{flow}/{regime}/{country}', safe='')}"
    assert _transfer_iri(t, country) == whole
    assert _iri("party", flow) == f"urn:residency:party:{quote(flow, safe='')}"


@settings(max_examples=30, derandomize=True, deadline=None)
@given(estates())
def test_handling_nodes_lead_each_activity_to_its_records_transfers(
        pack: PolicyPack, mapping: DpvMap, doc: dict[str, Any]) -> None:
    """On the demo map with random extra flows (cycles included) and random activities:
    following `dpv:hasPersonalDataHandling` from an activity reaches exactly the transfers
    its Art. 30 record lists; every node linked to is in the file, once."""
    from residency.reports.ropa import build_ropa

    run = run_of(doc, pack)
    fh = io.StringIO()
    write_dpv(run.report, run.pack, run.datamap, run.parties, mapping, fh)
    nodes = json.loads(fh.getvalue())["@graph"]
    ids = [n["@id"] for n in nodes]
    assert len(ids) == len(set(ids))
    links = {n["@id"]: [x["@id"] for x in n.get("dpv:hasPersonalDataHandling", ())]
             for n in nodes}
    assert all(x in links for xs in links.values() for x in xs)  # nothing dangles
    for r in build_ropa(run.report, pack, run.datamap, run.parties).records:
        seen: set[str] = set()
        stack = [f"urn:residency:activity:{r.activity.id}"]
        while stack:
            for x in links[stack.pop()]:
                if x not in seen:
                    seen.add(x)
                    stack.append(x)
        reached = {x for x in seen if x.startswith("urn:residency:transfer:")}
        assert reached == {"urn:residency:transfer:" + f"{t.flow}/{t.regime}/{c}".replace(
            "/", "%2F") for t in r.transfers for c, _ in t.bases}, r.activity.id
