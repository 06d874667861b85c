"""The map's optional Art. 30 sections (`processing:`, `transparency:`) → frozen model.

Every reference is checked like the rest of the map (party, system, data category,
safeguard type and instrument), so a typo is an input error naming the key, never an
activity that silently holds nothing. Missing Art. 30 items are not errors: the record
lists them as gaps (`reports/ropa.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from residency.model import Contact, Disclosure, Party, ProcessingActivity, Role, System
from residency.policy.schema import SAFEGUARD_TYPES

from .schema import ContactIn, DataMapIn, DisclosureIn, ProcessingIn

if TYPE_CHECKING:
    from .loader import _Builder


def build_activities(
    doc: DataMapIn, builder: _Builder, parties: Mapping[str, Party],
    systems: Mapping[str, System],
) -> tuple[tuple[ProcessingActivity, ...], tuple[Disclosure, ...]]:
    """The processing activities and the transparency wording, references checked."""
    seen: set[str] = set()
    activities = []
    for i, p in enumerate(doc.processing):
        key = f"processing[{i}](id={p.id})"
        if p.id in seen:
            raise builder.fail(key, "duplicate processing activity id")
        seen.add(p.id)
        activities.append(_activity(p, key, builder, parties, systems))
    disclosures = []
    for section, items in (("recipients", doc.transparency.recipients),
                           ("safeguards", doc.transparency.safeguards)):
        for j, d in enumerate(items):
            disclosures.append(_disclosure(d, f"transparency.{section}[{j}]", section,
                                           builder, parties))
    return tuple(activities), tuple(disclosures)


def _activity(
    p: ProcessingIn, key: str, builder: _Builder, parties: Mapping[str, Party],
    systems: Mapping[str, System],
) -> ProcessingActivity:
    for j, sid in enumerate(p.systems):
        if sid not in systems:
            raise builder.fail(f"{key}.systems[{j}]", f"unknown system {sid!r}")
    for j, name in enumerate(p.data_subjects):
        if not name.strip():
            raise builder.fail(f"{key}.data_subjects[{j}]", "empty data-subject type")

    def one(c: ContactIn | None, where: str) -> Contact | None:
        return None if c is None else _contact(c, f"{key}.{where}", builder, parties)

    return ProcessingActivity(
        id=p.id,
        name=p.name,
        role=Role(p.role),
        controller=one(p.controller, "controller"),
        joint_controllers=tuple(_contact(c, f"{key}.joint_controllers[{j}]", builder, parties)
                                for j, c in enumerate(p.joint_controllers)),
        representative=one(p.representative, "representative"),
        dpo=one(p.dpo, "dpo"),
        processor=one(p.processor, "processor"),
        controllers=tuple(_contact(c, f"{key}.controllers[{j}]", builder, parties)
                          for j, c in enumerate(p.controllers)),
        purposes=tuple(p.purposes),
        data_subjects=tuple(s.strip() for s in p.data_subjects),
        data_categories=builder.categories_of(p.data_categories, f"{key}.data_categories"),
        recipients=tuple(p.recipients),
        systems=tuple(p.systems),
        retention=p.retention,
        security_measures=tuple(p.security_measures),
        transfer_documentation=p.transfer_documentation,
    )


def _contact(c: ContactIn, key: str, builder: _Builder, parties: Mapping[str, Party]) -> Contact:
    if c.party is not None and c.party not in parties:
        raise builder.fail(f"{key}.party", f"unknown party {c.party!r}")
    if c.party is None and not c.name:
        raise builder.fail(key, "give a `party` (a map party id) or a `name`")
    return Contact(c.party, c.name, c.contact)


def _disclosure(
    d: DisclosureIn, key: str, section: str, builder: _Builder, parties: Mapping[str, Party],
) -> Disclosure:
    if section == "recipients" and d.party is None:
        raise builder.fail(key, "a recipient's wording needs `party`")
    if section == "safeguards" and d.party is not None:
        raise builder.fail(f"{key}.party", "a safeguard's wording names `instrument`/`type`, "
                           "not a party (put it under transparency.recipients)")
    if d.party is not None and d.party not in parties:
        raise builder.fail(f"{key}.party", f"unknown party {d.party!r}")
    if d.type is not None and d.type not in SAFEGUARD_TYPES:
        raise builder.fail(f"{key}.type", f"unknown safeguard type {d.type!r} (one of "
                           f"{', '.join(sorted(SAFEGUARD_TYPES))})")
    if d.instrument is not None and not builder.pack.find_instrument(d.instrument):
        raise builder.fail(f"{key}.instrument", f"unknown instrument {d.instrument!r} "
                           "(`residency policies list` shows the pack's ids)")
    if not (d.public_description or d.copy_available_from):
        raise builder.fail(key, "give `public_description` and/or `copy_available_from`")
    return Disclosure(d.party, d.type, d.instrument, d.ref, d.public_description,
                      d.copy_available_from)
