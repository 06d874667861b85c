"""`residency policies list|validate|show ID` and `residency rules`."""

from __future__ import annotations

from pathlib import Path

import click

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
    unverified = [d.id for d in pack.decisions if not d.verified]
    unverified += [f"{i.id}/{i.regime}" for i in pack.instruments if not i.verified]
    unverified += [f"scope {name} (hr_data)" for name, sc in sorted(pack.scopes.items())
                   if sc.hr_data is not None and not sc.hr_data.verified]
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


@click.command()
@click.option("--format", "fmt", type=click.Choice(("text", "markdown")), default="text",
              show_default=True, help="markdown prints the README's rule reference table.")
def rules(fmt: str) -> None:
    """List the rule catalogue (stable IDs)."""
    if fmt == "markdown":
        click.echo(rules_markdown(), nl=False)
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
