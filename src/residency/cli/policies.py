"""`residency policies list|validate|show ID|iam PROVIDER` and `residency rules`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click
from pydantic import BaseModel

from residency.cli.common import guarded, policy_options
from residency.policy.pack import PolicyPack
from residency.policy.rules import RULES


@click.group()
def policies() -> None:
    """Inspect and validate the policy pack (the legal knowledge base)."""


@policies.command("list")
@policy_options
@click.option("--regime", default=None, help="Only this regime (eu_gdpr, uk_gdpr, ch_fadp).")
@guarded
def list_(policies: Path | None, regime: str | None) -> None:
    """List adequacy decisions and transfer instruments."""
    pack = PolicyPack.load(policies)
    click.echo(f"{pack.info.name} {pack.info.version} (checked {pack.info.last_checked}, "
               f"digest {pack.info.digest}) from {pack.root}")
    click.echo("\nAdequacy decisions:")
    for d in pack.decisions:
        if regime and d.regime != regime:
            continue
        until = f" until {d.valid_until}" if d.valid_until else ""
        ended = f" ended {d.ended}" if d.ended else ""
        click.echo(f"  {d.id:<28} {d.regime:<8} {d.country:<6} {d.status:<11} from "
                   f"{d.starts}{until}{ended} scope={d.scope}")
    click.echo("\nTransfer instruments:")
    for i in pack.instruments:
        if regime and i.regime != regime:
            continue
        click.echo(f"  {i.id:<14} {i.type:<15} {i.regime:<8} {i.status:<9} {i.name}")
    click.echo("\nRegion tables: " + ", ".join(
        f"{p} ({len(t.locations)} locations)" for p, t in sorted(pack.regions.items())))


@policies.command()
@policy_options
@guarded
def validate(policies: Path | None) -> None:
    """Load the pack with full schema and reference checks (exit 2 on the first problem)."""
    pack = PolicyPack.load(policies)
    unverified = _unverified(pack)
    click.echo(f"ok: {pack.info.name} {pack.info.version}: {len(pack.decisions)} decisions, "
               f"{len(pack.instruments)} instruments, {len(pack.regimes)} regimes, "
               f"{sum(len(t.locations) for t in pack.regions.values())} cloud locations")
    if unverified:
        click.echo(f"note: {len(unverified)} entries are marked unverified: "
                   + ", ".join(unverified))


@policies.command()
@policy_options
@click.argument("ident")
@guarded
def show(policies: Path | None, ident: str) -> None:
    """Show one decision, instrument or regime with its sources."""
    import yaml

    pack = PolicyPack.load(policies)
    items: list[object] = []
    if d := pack.find_decision(ident):
        items.append(d.model_dump(mode="json"))
    items += [i.model_dump(mode="json") for i in pack.find_instrument(ident)]
    if ident in pack.regimes:
        items.append({ident: pack.regimes[ident].model_dump(mode="json")})
    if not items:
        raise click.BadParameter(f"no decision, instrument or regime {ident!r}",
                                 param_hint="ID")
    click.echo(yaml.safe_dump_all(items, sort_keys=False, allow_unicode=True), nl=False)


IAM_PROVIDERS = ("aws", "gcp", "azure")


def iam_definition(provider: str) -> tuple[str, str]:
    """The shipped least-privilege definition for `provider`: (file name, text).

    Read from the package, not from `--policies`: it lists the calls this version's
    collectors make, which a custom legal pack does not change."""
    folder = resources.files("residency") / "_policies" / "iam"
    found = sorted((f for f in folder.iterdir() if f.name.startswith(f"{provider}-")),
                   key=lambda f: f.name)
    if not found:  # the package was built without its data files: the tool is broken (3)
        raise FileNotFoundError(f"no least-privilege definition for {provider} in the "
                                f"installed package ({folder})")
    return found[0].name, found[0].read_text(encoding="utf-8")


@policies.command()
@click.argument("provider", type=click.Choice(IAM_PROVIDERS))
@click.option("--name", "name_only", is_flag=True,
              help="Print only the definition's file name (to save it under that name).")
def iam(provider: str, name_only: bool) -> None:
    """Print the read-only permissions `residency scan` needs on PROVIDER.

    \b
    aws    IAM policy (JSON):  residency policies iam aws > residency-readonly.json
           aws iam create-policy --policy-name ResidencyReadOnly \\
             --policy-document file://residency-readonly.json
    gcp    custom role (YAML): residency policies iam gcp > role.yaml
           gcloud iam roles create residencyReader --project=PROJECT --file=role.yaml
    azure  role definition (JSON): residency policies iam azure > role.json
           (set AssignableScopes first) az role definition create --role-definition @role.json
    """
    name, text = iam_definition(provider)
    click.echo(name if name_only else text, nl=name_only)


@click.command()
@click.option("--format", "fmt", type=click.Choice(("text", "markdown", "docs")),
              default="text", show_default=True,
              help="markdown prints the README's rule reference table; docs prints "
              "docs/rules.md, the page SARIF results link to.")
def rules(fmt: str) -> None:
    """List the rule catalogue (stable IDs)."""
    if fmt in ("markdown", "docs"):
        click.echo(rules_markdown() if fmt == "markdown" else rules_document(), nl=False)
        return
    for r in RULES.values():
        click.echo(f"{r.id}  {r.severity.value:<7}  {r.title}  [{r.article}]")


def rules_markdown() -> str:
    """The rule reference, generated from the rule definitions (README is checked against it)."""
    lines = ["| Rule | Severity | Title | Law | What to do |", "|---|---|---|---|---|"]
    for r in RULES.values():
        lines.append(f"| `{r.id}` | {r.severity.value} | {r.title} | [{r.article}]({r.source}) "
                     f"| {r.remediation} |")
    return "\n".join(lines) + "\n"


def rules_document() -> str:
    """docs/rules.md: one section per rule, its heading the anchor SARIF `helpUri`s point at
    (`#res-t001`); a test keeps the committed file in step."""
    out = [
        "# Rule reference",
        "",
        "<!-- Generated by `residency rules --format docs > docs/rules.md`; do not edit. -->",
        "",
        "Every finding names one of these rules. Rule IDs are stable: an ID never changes "
        "meaning once released. SARIF results link to the rule's section here (`helpUri`).",
        "",
        "| Rule | Severity | Title |",
        "|---|---|---|",
    ]
    out += [f"| [`{r.id}`](#{r.id.lower()}) | {r.severity.value} | {r.title} |"
            for r in RULES.values()]
    for r in RULES.values():
        out += [
            "",
            f"## {r.id}",
            "",
            f"**{r.title}**",
            "",
            f"- Severity: `{r.severity.value}`",
            f"- Law: [{r.article}]({r.source})",
            "",
            r.rationale,
            "",
            f"**What to do:** {r.remediation}",
        ]
    return "\n".join(out) + "\n"


def _unverified(pack: PolicyPack) -> list[str]:
    """Every fact marked `verified: false`, at any depth (a decision, an instrument, a
    scope's HR condition, a regime's incorporation lag or processor-return rule, ...), named
    by its path: a new kind of fact is listed without a change here."""
    roots: list[tuple[str, object]] = [(d.id, d) for d in pack.decisions]
    roots += [(f"{i.id}/{i.regime}", i) for i in pack.instruments]
    roots += [(f"scope {name}", sc) for name, sc in sorted(pack.scopes.items())]
    roots += [(f"regime {rid}", reg) for rid, reg in sorted(pack.regimes.items())]
    found: list[str] = []
    for name, model in roots:
        found += _walk(name, model, top=True)
    return found


def _walk(path: str, value: object, top: bool = False) -> list[str]:
    if isinstance(value, BaseModel):
        out = [path] if getattr(value, "verified", True) is False else []
        for field in type(value).model_fields:
            out += _walk(f"{path} ({field})" if top else f"{path}.{field}",
                         getattr(value, field))
        return out
    if isinstance(value, list | tuple):
        found = [p for i, v in enumerate(value)
                 for p in _walk(f"{path}[{getattr(v, 'id', None) or i}]", v)]
        return found if len(found) <= 5 else [f"{path}: {len(found)} of {len(value)} entries"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _walk(f"{path}[{k}]", v)]
    return []
